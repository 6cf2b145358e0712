"""``mtdepth_node``: one camera in; depth, intervals, segmentation, confidence and a cloud out.

A managed (lifecycle) node:

- *configure* reads the parameters and loads the model (or the TensorRT
  engine, which can take minutes on a Jetson: diagnostics say so meanwhile);
  a failure returns FAILURE with the reason logged once, and the node stays
  unconfigured, ready for a corrected parameter;
- *activate* subscribes to the camera and starts publishing; *deactivate*
  stops both and keeps the model; *cleanup* releases the model; *shutdown*
  is clean from any state.

The image callback only checks a frame and keeps the newest; the process's
inference worker (:mod:`.scheduler`, one per model, shared by every camera
node of the process) runs the per-frame work of :mod:`.camera_frames`.
Parameters: :mod:`.parameters`; the process, signals and autostart: :mod:`.process`.
"""

from __future__ import annotations

from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Float32MultiArray

from mtdepth_ros.conversions.cloud_bytes import warm_up as cloud_kernel_warm_up
from mtdepth_ros.conversions.colorize import warm_up as colour_kernel_warm_up
from mtdepth_ros.conversions.serialized_image import SerializedImageError, read_image
from mtdepth_ros.inference.backends.base import BackendUnavailable
from mtdepth_ros.inference.card import CardError
from mtdepth_ros.inference.ground_contact import GroundContactError
from mtdepth_ros.inference.model_file import read_card
from mtdepth_ros.inference.outputs import (
    BIN_EDGES_TOPIC,
    TOPICS,
    available_outputs,
    bin_edges_message,
    class_ids,
    enabled_outputs,
    message_type,
)
from mtdepth_ros.inference.resources import resolve_model_path
from mtdepth_ros.node import model_pool
from mtdepth_ros.node.camera_frames import (
    CameraFrames,
    FrameDropped,
    RosSide,
    check_compressed,
    check_image,
)
from mtdepth_ros.node.camera_pairing import CameraInfoPairing
from mtdepth_ros.node.diagnostics import (
    ERROR,
    OK,
    SUPERSEDED,
    WARN,
    FrameStats,
    build_status,
    state_status,
)
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
LOG_THROTTLE_S = 5.0  # at most one log line per problem kind in this time
NANOSECONDS = 1e9
DOUBLE_PARAMETERS = frozenset(p.name for p in PARAMETERS if isinstance(p.default, float))
START_PARAMETERS = frozenset(p.name for p in PARAMETERS if not p.runtime)
MESSAGE_CLASSES = {'sensor_msgs/msg/Image': Image, 'sensor_msgs/msg/CameraInfo': CameraInfo,
                   'sensor_msgs/msg/PointCloud2': PointCloud2}
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class StartupError(RuntimeError):
    """The node cannot start with this model or these parameters; the text says why."""

    def __init__(self, node_name: str, reason: str) -> None:
        super().__init__(f'{node_name}: cannot start: {reason}')
        self.node_name = node_name
        self.reason = reason


class MtDepthNode(LifecycleNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._log = ThrottledLog(self.get_logger(), LOG_THROTTLE_S)
        self.stage = 'unconfigured'  # or configuring, inactive, active, finalized
        self.configure_error = ''
        self.model: model_pool.SharedModel | None = None
        self.frames: CameraFrames | None = None
        self.stats = FrameStats()
        self._pubs: dict[str, Any] = {}
        self._subs: list[Any] = []
        self._fallback = ''  # the backends skipped on the way to the one running
        self.add_pre_set_parameters_callback(self.coerce_parameters_callback)
        self.config: NodeConfig = self._declare_parameters()
        self.add_on_set_parameters_callback(self.parameters_callback)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        # its own group: diagnostics keep coming while configure loads or builds the model
        self.create_timer(self.config.diagnostics_period, self.diagnostics_callback,
                          callback_group=MutuallyExclusiveCallbackGroup())

    def _declare_parameters(self) -> NodeConfig:
        # What -p and params files set (rclpy keeps them as overrides, applied on declaring).
        overrides = {name: p.value for name, p in self._parameter_overrides.items()}
        try:
            config = declare_parameters(self, overrides)
        except (ParameterError, ParameterException) as error:
            raise self.refusal(f'bad parameter: {error}') from error
        problem = unknown_names(overrides, self._parameters)
        if problem:
            raise self.refusal(problem)
        return config

    def refusal(self, reason: str) -> StartupError:
        return StartupError(self.get_fully_qualified_name(), reason)

    def autostart(self) -> None:
        """Configure and activate (what ``autostart: true`` does); StartupError on failure."""
        if self.trigger_configure() != SUCCESS:
            raise self.refusal(self.configure_error)
        if self.trigger_activate() != SUCCESS:
            raise self.refusal('activation failed (see the log)')

    # -- lifecycle transitions ------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stage = 'configuring'
        try:
            self.config = self._read_config()
            self.model = self._load_model(self.config)
        except (ParameterError, FileNotFoundError, CardError, BackendUnavailable, ValueError,
                RuntimeError) as error:
            self.configure_error = str(error)
            self.stage = 'unconfigured'
            if not self.config.autostart:  # with autostart the process says it, as FATAL
                self.get_logger().error(f'configure failed: {error}')
            return FAILURE
        card = self.model.predictor.card
        cloud_kernel_warm_up()  # compiled (or loaded from numba's cache) before the first frame
        colour_kernel_warm_up()
        self._check_drop_classes(self.config)
        self._pubs = self._create_publishers()
        pairing = CameraInfoPairing(cache_latest=self.config.cache_camera_info)
        ros = RosSide(subscribed=self._subscribed, camera_info_publishers=self._info_publishers,
                      latency_s=self._latency_s, publish=self._publish,
                      running=lambda: self.stage == 'active' and self.context.ok())
        self.frames = CameraFrames(self.model.predictor, lambda: self.config,
                                   self.model.scheduler.new_slot(), ros, self.stats, self._log,
                                   pairing)
        self.configure_error = ''
        self.stage = 'inactive'
        self.get_logger().info(f'model {self.model.key.path}:\n{card.describe()}\n'
                               f'backend: {self.model.predictor.description}')
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        assert self.frames is not None and self.model is not None
        result = super().on_activate(state)  # enables the lifecycle publishers
        self._subs = self._create_subscriptions(self.config)
        self.model.scheduler.attach(self.frames)
        if 'intervals' in self._pubs and self.model.predictor.card.depth_coding is not None:
            self._publish_bin_edges()
        self.stage = 'active'
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stage = 'inactive'  # frames in flight stop reporting errors from here on
        self._stop_input()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.stage = 'unconfigured'
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stage = 'finalized'
        self._stop_input()
        self._release()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stage = 'unconfigured'
        self._stop_input()
        self._release()
        return SUCCESS  # back to unconfigured

    def destroy_node(self) -> None:
        """Stop serving frames before anything the worker uses goes away."""
        self._stop_input()
        self._release()
        super().destroy_node()

    def _read_config(self) -> NodeConfig:
        return config_from_values({name: self.get_parameter(name).value for name in BY_NAME})

    def _load_model(self, config: NodeConfig) -> model_pool.SharedModel:
        path = resolve_model_path(config.model_path)
        read_card(path)  # a bad card is named before any backend starts
        key = model_pool.ModelKey(path, config.backends, config.backend_options)
        shared = model_pool.acquire(key)
        skipped = shared.predictor.skipped_backends
        if skipped and not config.backend_fallback:
            model_pool.release(shared)
            raise BackendUnavailable('backend_fallback is false and the first backend cannot '
                                     'run: ' + '; '.join(skipped))
        for reason in skipped:
            self.get_logger().error(f'backend fallback: {reason}')
        if config.ground_contact:
            try:
                _ = shared.predictor.ground_contact_classes  # a model that cannot is refused
            except GroundContactError:
                model_pool.release(shared)
                raise
        if shared.users > 1:
            self.get_logger().info(f'sharing the loaded model with {shared.users - 1} other '
                                   'camera node(s) of this process')
        self._fallback = '; '.join(skipped)
        return shared

    def _stop_input(self) -> None:
        for subscription in self._subs:
            self.destroy_subscription(subscription)
        self._subs = []
        if self.model is not None and self.frames is not None:
            self.model.scheduler.detach(self.frames)  # waits for a frame in flight

    def _release(self) -> None:
        for publisher in self._pubs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._pubs = {}
        self.frames = None
        if self.model is not None:
            model_pool.release(self.model)
            self.model = None

    # -- topics ---------------------------------------------------------------------------

    def _create_publishers(self) -> dict[str, Any]:
        assert self.model is not None
        card = self.model.predictor.card
        qos = qos_profile(self.config.qos_output, self.config.qos_output_depth)
        publishers = {output: self.create_lifecycle_publisher(
            MESSAGE_CLASSES[message_type(output)], TOPICS[output], qos)
            for output in enabled_outputs(card, self.config.outputs)}
        missing = sorted(set(self.config.outputs) - set(available_outputs(card)))
        if missing:
            self.get_logger().info(f'model {card.name} has no head for outputs {missing}')
        if 'intervals' in publishers and card.depth_coding is not None:
            publishers['bin_edges'] = self.create_lifecycle_publisher(
                Float32MultiArray, BIN_EDGES_TOPIC, LATCHED)
        self.get_logger().info('publishing: ' + ', '.join(
            TOPICS.get(o, BIN_EDGES_TOPIC) for o in publishers))
        return publishers

    def _publish_bin_edges(self) -> None:
        assert self.model is not None and self.model.predictor.card.depth_coding is not None
        self._pubs['bin_edges'].publish(bin_edges_message(self.model.predictor.card.depth_coding))

    def _create_subscriptions(self, config: NodeConfig) -> list[Any]:
        qos = qos_profile(config.qos_input, config.qos_input_depth)
        if config.input_transport == 'compressed':
            image = self.create_subscription(CompressedImage, 'image/compressed',
                                             self.compressed_callback, qos)
        else:
            # serialized: read in place (conversions/serialized_image.py), not converted
            image = self.create_subscription(Image, 'image', self.image_callback, qos, raw=True)
        self._camera_info_sub = self.create_subscription(
            CameraInfo, 'camera_info', self.camera_info_callback, qos)
        return [image, self._camera_info_sub]

    def _subscribed(self) -> set[str]:
        return {o for o, pub in self._pubs.items()
                if o != 'bin_edges' and pub.get_subscription_count() > 0}

    def _info_publishers(self) -> int:
        return self.count_publishers(self._camera_info_sub.topic_name) if self._subs else 0

    def _latency_s(self, stamp: Any) -> float:
        return (self.get_clock().now() - Time.from_msg(stamp)).nanoseconds / NANOSECONDS

    def _publish(self, messages: dict[str, Any]) -> None:
        for output, message in messages.items():
            self._pubs[output].publish(message)

    # -- callbacks ------------------------------------------------------------------------

    def image_callback(self, data: bytes) -> None:
        try:
            msg = read_image(data)
        except SerializedImageError as error:
            self._frame_arrived(None, FrameDropped('serialization', f'not an Image: {error}'))
            return
        self._frame_arrived(msg, check_image(msg))

    def compressed_callback(self, msg: CompressedImage) -> None:
        self._frame_arrived(msg, check_compressed(msg))

    def _frame_arrived(self, msg: Any, problem: FrameDropped | None) -> None:
        frames = self.frames
        if frames is None:
            return
        self.stats.received()
        if problem is not None:
            frames.drop(problem)
        elif frames.slot.put(msg) is not None:
            self.stats.dropped(SUPERSEDED)

    def camera_info_callback(self, msg: CameraInfo) -> None:
        if self.frames is not None:
            self.frames.pairing.add(msg)

    def diagnostics_callback(self) -> None:
        name = f'{self.get_name()}: {DIAGNOSTIC_TASK}'
        model = self.model
        if self.stage != 'active' or model is None:
            status = state_status(name, *self._state_message(), hardware_id=NODE_NAME)
        else:
            card = model.predictor.card
            extra = {'backend': model.predictor.description, 'model': card.name,
                     'model path': str(model.key.path), 'state': self.stage}
            if self._fallback:
                extra['backend fallback'] = self._fallback
            status = build_status(self.stats.snapshot(), self.config.diagnostics, name,
                                  hardware_id=card.name, extra=extra,
                                  error=f'backend fallback: {self._fallback}'
                                  if self._fallback else '')
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)

    def _state_message(self) -> tuple[int, str]:
        if self.stage == 'configuring':
            tensorrt = any(b.startswith('tensorrt') for b in self.config.backends)
            return OK, ('configuring: loading the model' + (
                '; building a TensorRT engine when none is cached takes minutes'
                if tensorrt else ''))
        if self.stage == 'unconfigured' and self.configure_error:
            return ERROR, f'unconfigured: configure failed: {self.configure_error}'
        return WARN, f'{self.stage}: not processing images'

    def coerce_parameters_callback(self, params: list[Parameter[Any]]) -> list[Parameter[Any]]:
        """At runtime, integers for double parameters become doubles
        (``ros2 param set /mtdepth/mtdepth_node points.max_depth 30``)."""
        return [Parameter(p.name, Parameter.Type.DOUBLE, float(p.value))
                if p.name in DOUBLE_PARAMETERS and p.type_ == Parameter.Type.INTEGER else p
                for p in params]

    def parameters_callback(self, params: list[Any]) -> SetParametersResult:
        # rclpy has checked types and ranges; choices and the lifecycle rule are checked here.
        fixed = sorted(p.name for p in params if p.name in START_PARAMETERS)
        if fixed and self.stage not in ('unconfigured', 'finalized'):
            return SetParametersResult(
                successful=False, reason=f'{", ".join(fixed)} can change only while the node '
                                         f'is unconfigured (it is {self.stage}: cleanup first)')
        values = {name: self.get_parameter(name).value for name in BY_NAME}
        values.update({p.name: p.value for p in params if p.name in BY_NAME})
        try:
            config = config_from_values(values)
        except ParameterError as error:
            return SetParametersResult(successful=False, reason=str(error))
        if self.model is not None:
            self._check_drop_classes(config)
            if config.ground_contact:
                try:
                    _ = self.model.predictor.ground_contact_classes
                except GroundContactError as error:
                    return SetParametersResult(successful=False, reason=str(error))
        self.config = config  # one assignment: the worker sees the old or the new config
        return SetParametersResult(successful=True)

    def _check_drop_classes(self, config: NodeConfig) -> None:
        assert self.model is not None
        card = self.model.predictor.card
        _, unknown = class_ids(card, config.cloud.drop_classes)
        if unknown:
            self.get_logger().info(  # the default 'sky' on an indoor model, say: not an error
                f'points.drop_classes: model {card.name} has no class '
                f'{", ".join(map(repr, unknown))}; nothing dropped for it')
