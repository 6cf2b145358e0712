"""Every parameter of ``mtdepth_node``, declared once, and the typed config read from them.

:data:`PARAMETERS` is the single list: name, default, description, range or
choices, and whether it may change at runtime. ``config/mtdepth.yaml``
mirrors it (a test keeps the two in step). Start-time parameters (model,
backend, topics, QoS) are read by the lifecycle *configure* transition and
change only while the node is unconfigured; the others take effect on the
next frame when set with ``ros2 param set``.

No rclpy here: ``declare_parameters`` takes the node duck-typed and only
builds ``rcl_interfaces`` descriptors.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

from mtdepth_ros.inference.backends.base import (
    EXECUTION_MODES,
    PRECISIONS,
    BackendOptions,
    parse_spec,
)
from mtdepth_ros.inference.backends.engine_cache import REBUILD_POLICIES
from mtdepth_ros.inference.outputs import OUTPUT_RESOLUTIONS, SWITCHES, CloudSettings
from mtdepth_ros.node.diagnostics import DiagnosticsSettings

QOS_PROFILES = ('sensor_data', 'reliable')  # sensor_data = best effort, as rclpy's preset
INPUT_TRANSPORTS = ('raw', 'compressed')
MAX_THREADS = 256
MAX_DLA_CORE = 7
MAX_WORKSPACE_MB = 1 << 20
MAX_QOS_DEPTH = 100
MAX_DECIMATION = 64
MAX_RANGE_M = 1000.0
MAX_RATE_HZ = 1000.0
MAX_WAIT_S = 10.0
CLOSE_NAME_CUTOFF = 0.6  # difflib similarity for a 'did you mean' hint


class ParameterError(ValueError):
    """A parameter value the node cannot start (or continue) with; the text names it."""


@dataclass(frozen=True)
class Param:
    name: str
    default: bool | int | float | str
    description: str
    runtime: bool = False  # may change while the node runs; else only while unconfigured
    low: float | None = None  # inclusive range for numbers
    high: float | None = None
    choices: tuple[str, ...] = ()  # allowed strings (checked by this module)


_OUTPUT_TEXT = {
    'depth': 'depth (32FC1 metres; +-inf outside the valid range, NaN no estimate) and '
             'depth/camera_info',
    'intervals': 'intervals (mono8 interval index) and the latched intervals/bin_edges',
    'intervals_color': 'intervals/color (rgb8)',
    'segmentation': 'segmentation (mono8, or mono16 above 255 classes)',
    'segmentation_color': 'segmentation/color (rgb8, the card palette)',
    'confidence': 'confidence (32FC1, 0..1)',
    'points': 'points (PointCloud2, docs/conversions.md layout)',
}

PARAMETERS: tuple[Param, ...] = (
    Param('autostart', True, 'configure and activate at start by itself; false: wait for a '
          'lifecycle manager (change_state / get_state services)'),
    Param('model_path', '', "ONNX model with a model card; '' = the bundled "
          'share/mtdepth_ros/models/mtdepth_default.onnx'),
    Param('backend', 'onnxruntime', 'backend chain, tried in order, comma separated: '
          'onnxruntime[:cpu|cuda|tensorrt], tensorrt'),
    Param('backend_fallback', True, 'use the next backend of the chain when one cannot run '
          '(an ERROR in diagnostics); false: configure fails instead'),
    Param('input_transport', 'raw', "camera input: raw (sensor_msgs/Image on 'image') or "
          "compressed (sensor_msgs/CompressedImage, JPEG or PNG, on 'image/compressed')",
          choices=INPUT_TRANSPORTS),
    Param('precision', 'fp32', 'TensorRT precision (engines and the onnxruntime TensorRT '
          'provider)', choices=PRECISIONS),
    Param('threads', 1, 'CPU threads of the onnxruntime CPU provider (1 held up best on a '
          'shared 2-core machine: python -m bench onnxruntime); 0 = ONNX Runtime decides',
          low=0, high=MAX_THREADS),
    Param('onnxruntime.spinning', False, 'let ONNX Runtime worker threads spin while they '
          'wait (faster on an idle machine, steals a core on a shared one)'),
    Param('onnxruntime.execution_mode', 'sequential', 'ONNX Runtime execution mode: '
          'sequential or parallel (runs independent branches at once)',
          choices=EXECUTION_MODES),
    Param('engine_cache_dir', '', "TensorRT engine cache; '' = beside the model"),
    Param('engine_rebuild', 'auto', 'TensorRT engine rebuild policy: auto (when missing or '
          'stale), always, never (refuse to start without a valid engine)',
          choices=REBUILD_POLICIES),
    Param('dla_core', -1, 'TensorRT DLA core on Jetson; -1 = GPU only', low=-1, high=MAX_DLA_CORE),
    Param('workspace_mb', 1024, 'TensorRT builder workspace (MiB)', low=1, high=MAX_WORKSPACE_MB),
    *(Param(f'outputs.{name}', True, f'publish {_OUTPUT_TEXT[name]}') for name in SWITCHES),
    Param('output_resolution', 'network', 'size of the published maps and cloud: network '
          '(the card input size, intrinsics scaled) or input (resized to the image)',
          runtime=True, choices=OUTPUT_RESOLUTIONS),
    Param('focal_correction', True, 'scale depth by the live fx over the training fx (both '
          'at the network input) when camera_info is paired', runtime=True),
    Param('flip', False, 'also run the mirror image and average depth and confidence with '
          'it, flipped back (docs/node.md, "Flip"): a second image in each network run; '
          'intervals and segmentation from the direct image', runtime=True),
    Param('ground_contact', False, 'put what the segmentation finds standing on the ground '
          '(cars, walls, hedges) at the depth of the ground beneath it, column by column '
          '(docs/node.md, "Ground contact"); runs the segmentation head with depth',
          runtime=True),
    Param('cache_camera_info', False, 'pair images with the latest camera_info instead of '
          'the one with the same stamp'),
    Param('camera_info_wait', 0.05, 'seconds to wait for the camera_info with the image '
          'stamp (only while camera_info has a publisher)', low=0.0, high=MAX_WAIT_S),
    Param('points.organized', True, 'H x W cloud with NaN invalid points (depth_image_proc); '
          'false: 1 x N valid points only', runtime=True),
    Param('points.max_depth', 0.0, 'drop points farther than this (metres along the optical '
          'axis); 0 = no limit', runtime=True, low=0.0, high=MAX_RANGE_M),
    Param('points.decimation', 1, 'keep every n-th row and column of the cloud',
          runtime=True, low=1, high=MAX_DECIMATION),
    Param('points.min_confidence', 0.0, 'drop points whose confidence is below this; '
          '0 = keep all', runtime=True, low=0.0, high=1.0),
    Param('points.color', True, 'add the image colour as the rgb field', runtime=True),
    Param('points.drop_classes', 'sky', "drop points the segmentation gives these classes "
          "(comma-separated names of the model's classes; names it lacks are ignored, and "
          "logged); '' = keep all", runtime=True),
    Param('qos.input', 'sensor_data', 'QoS of image and camera_info subscriptions',
          choices=QOS_PROFILES),
    Param('qos.input_depth', 2, 'history depth of the input subscriptions',
          low=1, high=MAX_QOS_DEPTH),
    Param('qos.output', 'reliable', 'QoS of the outputs (reliable reaches every subscriber)',
          choices=QOS_PROFILES),
    Param('qos.output_depth', 2, 'history depth of the output publishers',
          low=1, high=MAX_QOS_DEPTH),
    Param('diagnostics.period', 1.0, 'seconds between /diagnostics messages',
          low=0.1, high=60.0),
    Param('diagnostics.expected_rate', 0.0, 'expected output rate in Hz; 0 = the input rate',
          runtime=True, low=0.0, high=MAX_RATE_HZ),
    Param('diagnostics.rate_tolerance', 0.1, 'WARN when the output rate is below '
          '(1 - tolerance) x the expected rate', runtime=True, low=0.0, high=1.0),
    Param('diagnostics.max_latency', 0.5, 'WARN when stamp-to-publish latency exceeds this '
          '(s); 0 = no limit', runtime=True, low=0.0, high=MAX_WAIT_S),
)
BY_NAME = {p.name: p for p in PARAMETERS}


@dataclass(frozen=True)
class NodeConfig:
    autostart: bool
    model_path: str
    backends: tuple[str, ...]
    backend_fallback: bool
    input_transport: str
    backend_options: BackendOptions
    outputs: frozenset[str]  # switched-on outputs (SWITCHES names)
    output_resolution: str
    focal_correction: bool
    flip: bool
    ground_contact: bool
    cache_camera_info: bool
    camera_info_wait: float
    cloud: CloudSettings
    qos_input: str
    qos_input_depth: int
    qos_output: str
    qos_output_depth: int
    diagnostics_period: float
    diagnostics: DiagnosticsSettings


def defaults() -> dict[str, Any]:
    return {p.name: p.default for p in PARAMETERS}


def descriptor(param: Param) -> ParameterDescriptor:
    kind = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
            float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
    # Start-time parameters change only while the node is unconfigured (the node's
    # parameter callback says so); rclpy's read_only would forbid even that.
    desc = ParameterDescriptor(name=param.name, type=kind[type(param.default)],
                               description=param.description)
    constraints = [] if param.runtime else ['changes only while unconfigured']
    if param.choices:
        constraints.insert(0, 'one of: ' + ', '.join(param.choices))
    desc.additional_constraints = '; '.join(constraints)
    if param.low is not None and param.high is not None:
        if isinstance(param.default, float):
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(param.low), to_value=float(param.high), step=0.0)]
        else:
            desc.integer_range = [IntegerRange(
                from_value=int(param.low), to_value=int(param.high), step=1)]
    return desc


def declare_parameters(node: Any, overrides: Mapping[str, Any]) -> NodeConfig:
    """Declare every parameter on ``node`` (rclpy checks types and ranges); read the config.

    ``overrides`` are the values given at start (``-p``, params files): an
    integer for a double parameter is taken as that double, as a user means it.
    Raises ParameterError for values rclpy cannot check (choices, backend names).
    """
    values = {}
    for param in PARAMETERS:
        given = overrides.get(param.name)
        if isinstance(param.default, float) and isinstance(given, int) and \
                not isinstance(given, bool):
            declared = node.declare_parameter(param.name, float(given), descriptor(param),
                                              ignore_override=True)
        else:
            declared = node.declare_parameter(param.name, param.default, descriptor(param))
        values[param.name] = declared.value
    return config_from_values(values)


def config_from_values(values: Mapping[str, Any]) -> NodeConfig:
    """The typed config from ``{name: value}``; missing names take their defaults."""
    v = {**defaults(), **values}
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise ParameterError(f'unknown parameters {unknown}')
    for name, value in v.items():
        param = BY_NAME[name]
        if param.choices and value not in param.choices:
            raise ParameterError(f'{name} must be one of {list(param.choices)}, got {value!r}')
    return NodeConfig(
        autostart=v['autostart'], model_path=v['model_path'],
        backends=_backend_chain(v['backend']), backend_fallback=v['backend_fallback'],
        input_transport=v['input_transport'],
        backend_options=BackendOptions(
            precision=v['precision'], threads=v['threads'],
            spinning=v['onnxruntime.spinning'],
            execution_mode=v['onnxruntime.execution_mode'],
            engine_cache_dir=v['engine_cache_dir'], rebuild=v['engine_rebuild'],
            dla_core=v['dla_core'], workspace_mb=v['workspace_mb']),
        outputs=frozenset(s for s in SWITCHES if v[f'outputs.{s}']),
        output_resolution=v['output_resolution'], focal_correction=v['focal_correction'],
        flip=v['flip'], ground_contact=v['ground_contact'],
        cache_camera_info=v['cache_camera_info'], camera_info_wait=v['camera_info_wait'],
        cloud=CloudSettings(
            organized=v['points.organized'], max_depth=v['points.max_depth'],
            decimation=v['points.decimation'], min_confidence=v['points.min_confidence'],
            color=v['points.color'], drop_classes=_names(v['points.drop_classes'])),
        qos_input=v['qos.input'], qos_input_depth=v['qos.input_depth'],
        qos_output=v['qos.output'], qos_output_depth=v['qos.output_depth'],
        diagnostics_period=v['diagnostics.period'],
        diagnostics=DiagnosticsSettings(
            expected_rate=v['diagnostics.expected_rate'],
            rate_tolerance=v['diagnostics.rate_tolerance'],
            max_latency=v['diagnostics.max_latency']))


def _names(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name.strip() for name in text.split(',') if name.strip()))


def _backend_chain(text: str) -> tuple[str, ...]:
    chain = tuple(spec.strip() for spec in text.split(',') if spec.strip())
    if not chain:
        raise ParameterError("backend is empty; use e.g. 'onnxruntime' or 'tensorrt,onnxruntime'")
    for spec in chain:
        try:
            parse_spec(spec)
        except ValueError as error:
            raise ParameterError(f'backend: {error}') from error
    return chain


def unknown_names(overrides: Mapping[str, Any], declared: Collection[str]) -> str | None:
    """Why overrides that name no declared parameter cannot start the node, or None."""
    unknown = sorted(set(overrides) - set(declared))
    if not unknown:
        return None
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(declared), n=1, cutoff=CLOSE_NAME_CUTOFF)
        hints.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ''))
    return f'unknown parameter {", ".join(hints)}; the parameters are listed in docs/node.md'
