"""``mtdepth_node``: camera in; depth, intervals, segmentation, confidence and a cloud out.

The image callback only checks a frame and keeps the newest (FrameSlot); one
worker thread pairs it with its camera_info, runs the model for the heads
that subscribed outputs need, and publishes. Bad frames are dropped, counted
by reason in ``/diagnostics`` and logged (throttled); the node keeps running.
Parameters: ``mtdepth_ros.node.parameters``; message building: ``mtdepth_ros.inference.outputs``.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import Any

import rclpy
import rclpy.logging
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Float32MultiArray

from mtdepth_ros.conversions.camera import CameraInfoError, PinholeCamera
from mtdepth_ros.conversions.images import (
    SUPPORTED_ENCODINGS,
    ImageError,
    image_to_array,
    image_to_rgb,
)
from mtdepth_ros.inference.backends.base import BackendUnavailable
from mtdepth_ros.inference.card import CardError
from mtdepth_ros.inference.outputs import (
    BIN_EDGES_TOPIC,
    SWITCH_OF,
    TOPICS,
    OutputBuilder,
    available_outputs,
    bin_edges_message,
    class_ids,
    heads_for,
    resize_prediction,
)
from mtdepth_ros.inference.predictor import Prediction, Predictor
from mtdepth_ros.inference.resources import resolve_model_path
from mtdepth_ros.node.camera_pairing import CameraInfoPairing
from mtdepth_ros.node.diagnostics import ERROR_REASON, SUPERSEDED, FrameStats, build_status
from mtdepth_ros.node.frame_slot import FrameSlot
from mtdepth_ros.node.parameters import (
    BY_NAME,
    NodeConfig,
    ParameterError,
    config_from_values,
    declare_parameters,
)

NODE_NAME = 'mtdepth_node'
DIAGNOSTICS_TOPIC = '/diagnostics'
DIAGNOSTIC_TASK = 'inference'
WORKER_POLL_S = 0.1  # how often an idle worker checks for shutdown
WORKER_JOIN_S = 5.0
LOG_THROTTLE_S = 5.0  # at most one log line per problem kind in this time
NANOSECONDS = 1e9
MESSAGE_TYPES = {output: (CameraInfo if output == 'depth_camera_info' else
                          PointCloud2 if output == 'points' else Image) for output in TOPICS}


class StartupError(RuntimeError):
    """The node cannot start with this model or these parameters; the text says why."""


class FrameDropped(Exception):
    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason


def qos_profile(name: str, depth: int) -> QoSProfile:
    """'sensor_data' (best effort, as rclpy's qos_profile_sensor_data) or 'reliable'."""
    reliability = ReliabilityPolicy.RELIABLE if name == 'reliable' else \
        ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)


LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def check_image(msg: Image) -> FrameDropped | None:
    """Why ``msg`` cannot be used (cheap: no pixel is touched), or None."""
    if msg.encoding not in SUPPORTED_ENCODINGS:
        return FrameDropped('encoding', f"unsupported image encoding '{msg.encoding}'; "
                                        f"supported: {', '.join(sorted(SUPPORTED_ENCODINGS))}")
    if msg.width == 0 or msg.height == 0:
        return FrameDropped('empty', f'empty image ({msg.width}x{msg.height})')
    try:
        image_to_array(msg)  # a view: checks step and data length against the size
    except ImageError as error:
        return FrameDropped('layout', str(error))
    return None


class MtDepthNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._last_log: dict[str, float] = {}
        try:
            self.config: NodeConfig = self._declare_parameters()
            self.predictor = self._load_model()
        except StartupError:
            super().destroy_node()
            raise
        self.builder = OutputBuilder(self.predictor.card)
        self._check_drop_classes(self.config)
        self.stats = FrameStats()
        self._slot: FrameSlot[Image] = FrameSlot()
        self._pairing = CameraInfoPairing(cache_latest=self.config.cache_camera_info)
        self._pubs = self._create_publishers()
        self._bin_edges_pub = self._publish_bin_edges()
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self.create_timer(self.config.diagnostics_period, self.diagnostics_callback)
        self.add_on_set_parameters_callback(self.parameters_callback)
        input_qos = qos_profile(self.config.qos_input, self.config.qos_input_depth)
        self.create_subscription(Image, 'image', self.image_callback, input_qos)
        self._camera_info_sub = self.create_subscription(
            CameraInfo, 'camera_info', self.camera_info_callback, input_qos)
        self._worker = threading.Thread(target=self._work, name='mtdepth_worker', daemon=True)
        self._worker.start()

    def _declare_parameters(self) -> NodeConfig:
        try:
            return declare_parameters(self)
        except (ParameterError, ParameterException) as error:
            raise StartupError(f'bad parameter: {error}') from error

    def _load_model(self) -> Predictor:
        config = self.config
        try:
            path = resolve_model_path(config.model_path)
            predictor = Predictor(path, config.backends, config.backend_options)
        except (FileNotFoundError, CardError, BackendUnavailable, ValueError) as error:
            raise StartupError(str(error)) from error
        for skipped in predictor.skipped_backends:
            self.get_logger().warning(f'backend skipped: {skipped}')
        predictor.warm_up()
        self.get_logger().info(f'model {path}:\n{predictor.card.describe()}\n'
                               f'backend: {predictor.description}')
        return predictor

    def _create_publishers(self) -> dict[str, Any]:
        card = self.predictor.card
        available = available_outputs(card)
        qos = qos_profile(self.config.qos_output, self.config.qos_output_depth)
        publishers = {}
        for output in available:
            if SWITCH_OF[output] in self.config.outputs:
                publishers[output] = self.create_publisher(MESSAGE_TYPES[output], TOPICS[output], qos)
        missing = sorted(set(self.config.outputs) - set(available))
        if missing:
            self.get_logger().info(f'model {card.name} has no head for outputs {missing}')
        self.get_logger().info('publishing: ' + ', '.join(TOPICS[o] for o in publishers))
        return publishers

    def _publish_bin_edges(self) -> Any:
        coding = self.predictor.card.depth_coding
        if 'intervals' not in self._pubs or coding is None:
            return None
        publisher = self.create_publisher(Float32MultiArray, BIN_EDGES_TOPIC, LATCHED)
        publisher.publish(bin_edges_message(coding))
        return publisher

    # -- callbacks -----------------------------------------------------------------

    def image_callback(self, msg: Image) -> None:
        self.stats.received()
        problem = check_image(msg)
        if problem is not None:
            self._drop(problem)
        elif self._slot.put(msg) is not None:
            self.stats.dropped(SUPERSEDED)

    def camera_info_callback(self, msg: CameraInfo) -> None:
        self._pairing.add(msg)

    def diagnostics_callback(self) -> None:
        window = self.stats.snapshot()
        card = self.predictor.card
        status = build_status(
            window, self.config.diagnostics, f'{self.get_name()}: {DIAGNOSTIC_TASK}',
            hardware_id=card.name,
            extra={'backend': self.predictor.description, 'model': card.name,
                   'model path': str(self.predictor.model_path)})
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)

    def parameters_callback(self, params: list[Any]) -> SetParametersResult:
        # rclpy has checked types, ranges and read-only; choices are checked here.
        values = {name: self.get_parameter(name).value for name in BY_NAME}
        values.update({p.name: p.value for p in params if p.name in BY_NAME})
        try:
            config = config_from_values(values)
        except ParameterError as error:
            return SetParametersResult(successful=False, reason=str(error))
        self._check_drop_classes(config)
        self.config = config  # one assignment: the worker sees the old or the new config
        return SetParametersResult(successful=True)

    def _check_drop_classes(self, config: NodeConfig) -> None:
        _, unknown = class_ids(self.predictor.card, config.cloud.drop_classes)
        if unknown:
            self.get_logger().info(  # the default 'sky' on an indoor model, say: not an error
                f'points.drop_classes: model {self.predictor.card.name} has no class '
                f'{", ".join(map(repr, unknown))}; nothing dropped for it')

    # -- the worker ------------------------------------------------------------------

    def _work(self) -> None:
        while not self._slot.closed:
            msg = self._slot.take(WORKER_POLL_S)
            if msg is None:
                continue
            try:
                self._process(msg)
            except FrameDropped as problem:
                self._drop(problem)
            except Exception as error:  # noqa: BLE001  one bad frame must not stop the node
                self.stats.dropped(ERROR_REASON)
                self._log_throttled(ERROR_REASON, f'frame failed: {error!r}\n{traceback.format_exc()}')

    def _process(self, msg: Image) -> None:
        start = time.perf_counter()
        config = self.config
        wanted = {o for o, pub in self._pubs.items() if pub.get_subscription_count() > 0}
        if not wanted:
            self.stats.idle()
            return
        camera = self._camera_for(msg, config)
        if camera is None and wanted & {'points', 'depth_camera_info'}:
            if 'points' in wanted:
                self.stats.noted('points skipped: no camera_info')
                self._log_throttled('no_camera_info', 'no camera_info for the image stamp '
                                    '(set cache_camera_info if they differ): cloud skipped', warn=True)
            wanted -= {'points', 'depth_camera_info'}
        rgb = image_to_rgb(msg)  # (H, W, 3) uint8
        heads = heads_for(wanted, self.predictor.card)
        focal = camera.fx if camera is not None and config.focal_correction else None
        prediction = self.predictor.predict(rgb, heads, focal) if heads else Prediction()
        size = self.predictor.input_size
        if config.output_resolution == 'input':
            size = (msg.width, msg.height)
            prediction = resize_prediction(prediction, *size)
        messages = self.builder.build(wanted, msg.header, prediction, rgb, camera, size,
                                      config.cloud)
        if not messages:  # the cloud alone was wanted, and skipped
            self.stats.idle()
            return
        for output, message in messages.items():
            self._pubs[output].publish(message)
        latency = self.get_clock().now() - Time.from_msg(msg.header.stamp)
        self.stats.published(latency.nanoseconds / NANOSECONDS, prediction.inference_s,
                             time.perf_counter() - start)

    def _camera_for(self, msg: Image, config: NodeConfig) -> PinholeCamera | None:
        # Wait for a late camera_info only while someone publishes one.
        publishers = self.count_publishers(self._camera_info_sub.topic_name)
        info = self._pairing.match(msg.header, config.camera_info_wait if publishers else 0.0)
        if info is None:
            return None
        try:
            camera = PinholeCamera.from_camera_info(info)
        except CameraInfoError as error:
            self.stats.noted('unusable camera_info')
            self._log_throttled('camera_info', f'unusable camera_info: {error}', warn=True)
            return None
        if (camera.width, camera.height) != (msg.width, msg.height):
            raise FrameDropped('size_mismatch', f'image is {msg.width}x{msg.height} but its '
                                                f'camera_info is {camera.width}x{camera.height}')
        return camera

    def _drop(self, problem: FrameDropped) -> None:
        self.stats.dropped(problem.reason)
        self._log_throttled(problem.reason, f'frame dropped: {problem}')

    def _log_throttled(self, kind: str, text: str, warn: bool = False) -> None:
        """Log at most once per LOG_THROTTLE_S for each kind of problem."""
        now = time.monotonic()
        if now - self._last_log.get(kind, -LOG_THROTTLE_S) < LOG_THROTTLE_S:
            return
        self._last_log[kind] = now
        (self.get_logger().warning if warn else self.get_logger().error)(text)

    def destroy_node(self) -> None:
        self._slot.close()
        self._worker.join(WORKER_JOIN_S)
        self.predictor.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node = None
    try:
        node = MtDepthNode()
        rclpy.spin(node)
    except StartupError as error:
        rclpy.logging.get_logger(NODE_NAME).fatal(f'cannot start: {error}')
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
