"""``mtdepth_node``: camera in; depth, intervals, segmentation, confidence and a cloud out.

The image callback only checks a frame and keeps the newest (FrameSlot); one
worker thread pairs it with its camera_info, runs the model for the heads
that subscribed outputs need, and publishes. Bad frames are dropped, counted
by reason in ``/diagnostics`` and logged (throttled, never raising); an
exception in one frame is counted and the next frame is processed. SIGINT,
SIGTERM and SIGHUP stop the worker before the ROS context goes (``main``).
Parameters: ``mtdepth_ros.node.parameters``; message building: ``mtdepth_ros.inference.outputs``.
"""

from __future__ import annotations

import signal
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
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Float32MultiArray

from mtdepth_ros.conversions.camera import CameraInfoError, PinholeCamera
from mtdepth_ros.conversions.geometry import Region
from mtdepth_ros.conversions.images import (
    SUPPORTED_ENCODINGS,
    ImageError,
    image_to_array,
    image_to_rgb,
)
from mtdepth_ros.inference.backends.base import BackendUnavailable
from mtdepth_ros.inference.card import CardError
from mtdepth_ros.inference.framing import (
    AXIS_MISMATCH_TOLERANCE,
    FocalCorrectionError,
    axis_mismatch,
    focal_scale,
)
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
    PARAMETERS,
    NodeConfig,
    ParameterError,
    config_from_values,
    declare_parameters,
    unknown_names,
)
from mtdepth_ros.node.qos import LATCHED, qos_profile
from mtdepth_ros.node.throttled_log import ThrottledLog

NODE_NAME = 'mtdepth_node'
DIAGNOSTICS_TOPIC = '/diagnostics'
DIAGNOSTIC_TASK = 'inference'
WORKER_POLL_S = 0.1  # how often an idle worker checks for shutdown
WORKER_JOIN_S = 5.0
LOG_THROTTLE_S = 5.0  # at most one log line per problem kind in this time
SPIN_SLICE_S = 0.1  # the spin loop checks for a stop signal this often
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NO_CAMERA_NOTE = 'points skipped: no camera_info'
UNUSABLE_CAMERA_NOTE = 'unusable camera_info'
AXIS_NOTE = 'x/y scale differs from training'
DOUBLE_PARAMETERS = frozenset(p.name for p in PARAMETERS if isinstance(p.default, float))
NANOSECONDS = 1e9
MESSAGE_TYPES = {output: (CameraInfo if output == 'depth_camera_info' else
                          PointCloud2 if output == 'points' else Image) for output in TOPICS}


class StartupError(RuntimeError):
    """The node cannot start with this model or these parameters; the text says why."""

    def __init__(self, node_name: str, reason: str) -> None:
        super().__init__(f'{node_name}: cannot start: {reason}')
        self.node_name = node_name
        self.reason = reason


class FrameDropped(Exception):
    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason


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
        # Everything destroy_node touches exists before anything can fail.
        self.predictor: Predictor | None = None
        self._slot: FrameSlot[Image] = FrameSlot()
        self._worker: threading.Thread | None = None
        self._log = ThrottledLog(self.get_logger(), LOG_THROTTLE_S)
        try:
            self.add_pre_set_parameters_callback(self.coerce_parameters_callback)
            self.config: NodeConfig = self._declare_parameters()
            self.predictor = self._load_model()
        except StartupError:
            self.destroy_node()
            raise
        self.builder = OutputBuilder(self.predictor.card)
        self._check_drop_classes(self.config)
        self.stats = FrameStats()
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

    def _refuse(self, reason: str) -> StartupError:
        return StartupError(self.get_fully_qualified_name(), reason)

    def _declare_parameters(self) -> NodeConfig:
        # What -p and params files set (rclpy keeps them as overrides, applied on declaring).
        overrides = {name: p.value for name, p in self._parameter_overrides.items()}
        try:
            config = declare_parameters(self, overrides)
        except (ParameterError, ParameterException) as error:
            raise self._refuse(f'bad parameter: {error}') from error
        problem = unknown_names(overrides, self._parameters)
        if problem:
            raise self._refuse(problem)
        return config

    def _load_model(self) -> Predictor:
        config = self.config
        try:
            path = resolve_model_path(config.model_path)
            predictor = Predictor(path, config.backends, config.backend_options)
        except (FileNotFoundError, CardError, BackendUnavailable, ValueError) as error:
            raise self._refuse(str(error)) from error
        for skipped in predictor.skipped_backends:
            self.get_logger().warning(f'backend skipped: {skipped}')
        try:
            predictor.warm_up()
        except Exception as error:  # noqa: BLE001  any backend failure on a blank frame
            predictor.close()
            raise self._refuse(f'{path} does not run: {error}') from error
        self.get_logger().info(f'model {path}:\n{predictor.card.describe()}\n'
                               f'backend: {predictor.description}')
        return predictor

    def _create_publishers(self) -> dict[str, Any]:
        card = self.model.card
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
        coding = self.model.card.depth_coding
        if 'intervals' not in self._pubs or coding is None:
            return None
        publisher = self.create_publisher(Float32MultiArray, BIN_EDGES_TOPIC, LATCHED)
        publisher.publish(bin_edges_message(coding))
        return publisher

    @property
    def model(self) -> Predictor:
        assert self.predictor is not None  # set in __init__ or the node does not exist
        return self.predictor

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
        card = self.model.card
        status = build_status(
            window, self.config.diagnostics, f'{self.get_name()}: {DIAGNOSTIC_TASK}',
            hardware_id=card.name,
            extra={'backend': self.model.description, 'model': card.name,
                   'model path': str(self.model.model_path)})
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)

    def coerce_parameters_callback(self, params: list[Parameter[Any]]) -> list[Parameter[Any]]:
        """At runtime, integers for double parameters become doubles
        (``ros2 param set /mtdepth/mtdepth_node points.max_depth 30``)."""
        return [Parameter(p.name, Parameter.Type.DOUBLE, float(p.value))
                if p.name in DOUBLE_PARAMETERS and p.type_ == Parameter.Type.INTEGER else p
                for p in params]

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
        _, unknown = class_ids(self.model.card, config.cloud.drop_classes)
        if unknown:
            self.get_logger().info(  # the default 'sky' on an indoor model, say: not an error
                f'points.drop_classes: model {self.model.card.name} has no class '
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
                if not self.context.ok():
                    return  # shutting down: publishers are gone, nothing to report
                self.stats.dropped(ERROR_REASON)
                self._log.error(ERROR_REASON, f'frame failed: {error!r}\n{traceback.format_exc()}')

    def _process(self, msg: Image) -> None:
        start = time.perf_counter()
        config = self.config
        wanted = {o for o, pub in self._pubs.items() if pub.get_subscription_count() > 0}
        if not wanted:
            self.stats.idle()
            return
        region = self.model.region(msg.width, msg.height)
        camera, focal = self._camera_for(msg, region, config)
        if camera is None and wanted & {'points', 'depth_camera_info'}:
            if 'points' in wanted:
                self.stats.noted(NO_CAMERA_NOTE)
                self._log.warning('no_camera_info', 'no usable camera_info for the image stamp '
                                  '(set cache_camera_info if they differ): cloud skipped')
            wanted -= {'points', 'depth_camera_info'}
        rgb = image_to_rgb(msg)  # (H, W, 3) uint8
        heads = heads_for(wanted, self.model.card)
        prediction = self.model.predict(rgb, heads, focal) if heads else Prediction()
        size = self.model.input_size
        if config.output_resolution == 'input':
            size = (region.width, region.height)
            prediction = resize_prediction(prediction, *size)
        view = camera.cropped(region) if camera is not None else None
        messages = self.builder.build(wanted, msg.header, prediction, region.of(rgb), view, size,
                                      config.cloud)
        if not messages:  # the cloud alone was wanted, and skipped
            self.stats.idle()
            return
        for output, message in messages.items():
            self._pubs[output].publish(message)
        latency = self.get_clock().now() - Time.from_msg(msg.header.stamp)
        self.stats.published(latency.nanoseconds / NANOSECONDS, prediction.inference_s,
                             time.perf_counter() - start)

    def _camera_for(self, msg: Image, region: Region,
                    config: NodeConfig) -> tuple[PinholeCamera | None, float | None]:
        """The image's camera and the fx for focal correction; (None, None) if unusable."""
        # Wait for a late camera_info only while someone publishes one.
        publishers = self.count_publishers(self._camera_info_sub.topic_name)
        info = self._pairing.match(msg.header, config.camera_info_wait if publishers else 0.0)
        if info is None:
            return None, None
        try:
            camera = PinholeCamera.from_camera_info(info)
            if (camera.width, camera.height) != (msg.width, msg.height):
                raise FrameDropped('size_mismatch', f'image is {msg.width}x{msg.height} but its '
                                   f'camera_info is {camera.width}x{camera.height}')
            if config.focal_correction:
                focal_scale(self.model.card, camera.fx, region)
        except (CameraInfoError, FocalCorrectionError) as error:
            self.stats.noted(UNUSABLE_CAMERA_NOTE)
            self._log.warning('camera_info', f'unusable camera_info: {error}')
            return None, None
        mismatch = axis_mismatch(self.model.card, region, camera.fx, camera.fy)
        if abs(mismatch) > AXIS_MISMATCH_TOLERANCE:
            self.stats.noted(AXIS_NOTE)
            self._log.warning('axis', f'x/y scale to the network input differs from training by '
                                      f'{mismatch:+.1%} (fx {camera.fx:g}, fy {camera.fy:g}): '
                                      'objects look squashed to the network')
        return camera, camera.fx if config.focal_correction else None

    def _drop(self, problem: FrameDropped) -> None:
        self.stats.dropped(problem.reason)
        self._log.warning(problem.reason, f'frame dropped: {problem}')

    def destroy_node(self) -> None:
        """Stop the worker first (it may be publishing), then the model, then the node."""
        self._slot.close()
        if self._worker is not None:
            self._worker.join(WORKER_JOIN_S)
        if self.predictor is not None:
            self.predictor.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run the node until SIGINT, SIGTERM or SIGHUP; 0 after a clean stop, 1 if it cannot start.

    rclpy's own signal handlers would shut the context down while the worker
    may be publishing; here a signal only asks the spin loop to stop, and the
    worker is stopped before the context goes.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda *_: stop.set())
    try:
        node = MtDepthNode()
    except StartupError as error:
        rclpy.logging.get_logger(NODE_NAME).fatal(str(error))
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=SPIN_SLICE_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.remove_node(node)
        node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
