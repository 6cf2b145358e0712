"""Building a TensorRT engine from an exported model, for the backend and the command.

The engine and its build description (``.engine.json``: ONNX sha256,
TensorRT version, GPU name and compute capability, precision, input shape,
build time, ...) are written beside the ONNX file unless the request says
otherwise, under the name the node's ``tensorrt`` backend looks for. The
backend calls :func:`build` when it has to (re)build on the vehicle; the
``mtdepth-build-engine`` command (:mod:`.build_engine`) calls it ahead of time.

Precision, the way each TensorRT wants it (:func:`plan_build`):

- Strongly typed networks (TensorRT 10 and later): the network's tensor types
  decide the precision, so FP16 is built from an FP16 copy of the ONNX and
  INT8 from a Q/DQ copy (:mod:`onnx_precision`); no precision flags. The
  weak-typing flags (``BuilderFlag.FP16``/``INT8``) are deprecated since 10.12
  and removed in 11.
- Older TensorRT without strong typing: the FP32 ONNX with ``BuilderFlag.FP16``,
  and for INT8 ``BuilderFlag.INT8`` with TensorRT's entropy calibrator.
  ``--legacy-int8`` asks for that implicit calibration on a TensorRT 10 that
  still has it (deprecated since 10.1).

A precision that cannot be had is an error, never a silent FP32 engine.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mtdepth_ros.inference.backends.base import PRECISIONS, BackendUnavailable
from mtdepth_ros.inference.backends.calibration import (
    CalibrationSource,
    Preprocess,
    calibration_batches,
    calibration_cache_path,
    make_entropy_calibrator,
    predictor_preprocess,
)
from mtdepth_ros.inference.backends.cuda_memory import GpuIdentity, gpu_identity
from mtdepth_ros.inference.backends.engine_cache import (
    GPU_ONLY,
    BuildDescription,
    EngineKey,
    ShapeProfile,
    engine_path,
    file_sha256,
    write_engine,
)
from mtdepth_ros.inference.backends.onnx_precision import (
    cached_qdq_matches,
    convert_to_fp16,
    has_qdq,
    input_dims,
    load_graph,
    qdq_source,
    quantize_to_qdq,
)
from mtdepth_ros.inference.card import ModelCard

if TYPE_CHECKING:
    import tensorrt as trt

TENSORRT_MODULE = 'tensorrt'
WEAK_TYPING_DEPRECATED = (10, 12)  # BuilderFlag.FP16/INT8/... deprecated; removed in 11
IMPLICIT_INT8_DEPRECATED = (10, 1)  # IInt8EntropyCalibrator2 & co. deprecated; removed in 11
DEFAULT_WORKSPACE_MB = 1024
BYTES_PER_MB = 1 << 20
ONNX_FORMS = ('original', 'fp16', 'qdq')  # which ONNX TensorRT parses


class BuildError(RuntimeError):
    """An engine that cannot be built as asked; the message says why."""


def load_tensorrt() -> ModuleType:
    """Import TensorRT's Python API, or say why it cannot be used here."""
    try:
        module = importlib.import_module(TENSORRT_MODULE)
    except ImportError as error:
        raise BackendUnavailable(
            f'cannot import tensorrt ({error}); install TensorRT for Python '
            '(JetPack: python3-libnvinfer; x86: pip install tensorrt)') from error
    if not hasattr(module, 'Builder'):
        # tensorrt-stubs (for type checking) installs a bare `tensorrt` package of .pyi files
        raise BackendUnavailable(
            'the tensorrt package here has no runtime (only type stubs, e.g. tensorrt-stubs); '
            'install TensorRT for Python (JetPack: python3-libnvinfer; x86: pip install tensorrt)')
    return module


def version_tuple(version: str) -> tuple[int, ...]:
    """'10.13.0.35' -> (10, 13, 0, 35); stops at the first part that is not a number."""
    parts = []
    for part in version.split('.'):
        match = re.match(r'\d+', part)
        if not match:
            break
        parts.append(int(match.group()))
    return tuple(parts)


@dataclass(frozen=True)
class TensorRTFeatures:
    """What the installed TensorRT offers for precision, found by looking, not by version alone."""

    version: str
    strongly_typed: bool  # NetworkDefinitionCreationFlag.STRONGLY_TYPED exists
    weak_typing_flags: bool  # BuilderFlag.FP16 / INT8 exist (gone in 11)
    implicit_int8: bool  # IInt8EntropyCalibrator2 and IBuilderConfig.int8_calibrator exist

    @classmethod
    def detect(cls, trt_module: Any) -> TensorRTFeatures:
        flags = trt_module.BuilderFlag
        return cls(
            version=str(trt_module.__version__),
            strongly_typed=hasattr(trt_module.NetworkDefinitionCreationFlag, 'STRONGLY_TYPED'),
            weak_typing_flags=hasattr(flags, 'FP16') and hasattr(flags, 'INT8'),
            implicit_int8=hasattr(trt_module, 'IInt8EntropyCalibrator2')
            and hasattr(trt_module.IBuilderConfig, 'int8_calibrator'))

    @property
    def weak_typing_deprecated(self) -> bool:
        return version_tuple(self.version) >= WEAK_TYPING_DEPRECATED


@dataclass(frozen=True)
class BuildPlan:
    """How to get ``precision`` from this TensorRT: which ONNX, typing mode, flags, INT8 scales."""

    precision: str
    onnx_form: str  # one of ONNX_FORMS
    strongly_typed: bool
    flags: tuple[str, ...] = ()  # BuilderFlag member names
    scales: str = ''  # INT8 only: one of INT8_SCALES
    notes: tuple[str, ...] = ()

    @property
    def needs_calibration_data(self) -> bool:
        return self.scales in ('onnxruntime', 'tensorrt')

    @property
    def implicit_calibration(self) -> bool:
        return self.scales == 'tensorrt'


# Where INT8 scales come from: ONNX Runtime entropy calibration written as Q/DQ, TensorRT's
# own (implicit) entropy calibrator, or Q/DQ nodes already in the exported ONNX.
INT8_SCALES = ('onnxruntime', 'tensorrt', 'onnx')


def plan_build(precision: str, features: TensorRTFeatures, onnx_is_qdq: bool,
               legacy_int8: bool = False, dla_core: int = GPU_ONLY) -> BuildPlan:
    """Decide how to build ``precision`` with ``features``; BuildError when it cannot be had."""
    if precision not in PRECISIONS:
        raise BuildError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    if dla_core != GPU_ONLY and precision == 'fp32':
        raise BuildError('DLA runs FP16 or INT8 only: build with --fp16 or --int8 for a DLA core')
    if onnx_is_qdq and precision != 'int8':
        raise BuildError(f'the ONNX has Q/DQ nodes (it is quantised): build it as int8, '
                         f'not {precision}')
    fallback = ('GPU_FALLBACK',) if dla_core != GPU_ONLY else ()  # layers DLA lacks run on GPU
    strong = features.strongly_typed
    if precision == 'fp32':
        return BuildPlan('fp32', 'original', strong, fallback)
    if precision == 'fp16':
        if strong:
            return BuildPlan('fp16', 'fp16', True, fallback)
        _require_weak_flags(features, 'FP16')
        return BuildPlan('fp16', 'original', False, ('FP16', *fallback), notes=(
            f'TensorRT {features.version} has no strongly typed networks: using BuilderFlag.FP16',))
    if onnx_is_qdq:
        note = 'the ONNX is already quantised (Q/DQ nodes): its own scales are used'
        if strong:
            return BuildPlan('int8', 'original', True, fallback, 'onnx', (note,))
        _require_weak_flags(features, 'INT8')
        return BuildPlan('int8', 'original', False, ('INT8', 'FP16', *fallback), 'onnx', (note,))
    if strong and not legacy_int8:
        return BuildPlan('int8', 'qdq', True, fallback, 'onnxruntime', (
            'INT8 scales from entropy calibration (ONNX Runtime) written as a Q/DQ ONNX',))
    if not features.implicit_int8:
        raise BuildError(f'TensorRT {features.version} has no implicit INT8 calibration '
                         '(removed in 11): build without --legacy-int8 (explicit Q/DQ)')
    _require_weak_flags(features, 'INT8')
    note = ('implicit INT8 calibration with IInt8EntropyCalibrator2'
            + (' (deprecated since TensorRT 10.1)'
               if version_tuple(features.version) >= IMPLICIT_INT8_DEPRECATED else ''))
    # FP16 beside INT8: layers TensorRT keeps out of INT8 run in FP16 rather than FP32.
    return BuildPlan('int8', 'original', False, ('INT8', 'FP16', *fallback), 'tensorrt', (note,))


def _require_weak_flags(features: TensorRTFeatures, flag: str) -> None:
    if not features.weak_typing_flags:
        raise BuildError(f'TensorRT {features.version} has neither strongly typed networks nor '
                         f'BuilderFlag.{flag}; cannot build this precision')


@dataclass
class BuildRequest:
    """One engine to build: from which model, for which precision, shape and device."""

    model_path: Path
    card: ModelCard
    precision: str
    profile: ShapeProfile
    out: Path | None = None  # None: the canonical name in the model's folder
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    dla_core: int = GPU_ONLY
    calibration: CalibrationSource | None = None
    legacy_int8: bool = False
    preprocess: Preprocess | None = None  # for calibration; None = the Predictor's


def static_profile(model_path: Path, card: ModelCard) -> ShapeProfile:
    """The engine shape for the card's input size (dynamic ONNX dimensions filled from the card)."""
    dims = input_dims(load_graph(model_path), card.input.name)
    wanted = (1, 3, card.input.height, card.input.width)
    if len(dims) != len(wanted):
        raise BuildError(f'{model_path}: input {card.input.name} has {len(dims)} dimensions, '
                         'expected (N, 3, H, W)')
    return ShapeProfile.fixed(tuple(d if d is not None else w for d, w in zip(dims, wanted)))


def build(request: BuildRequest, gpu: GpuIdentity | None = None,
          log: Any = print) -> tuple[Path, BuildDescription]:
    """Build, write and describe the engine; return its path and description."""
    trt_module = load_tensorrt()
    gpu = gpu or gpu_identity()
    features = TensorRTFeatures.detect(trt_module)
    onnx_sha = file_sha256(request.model_path)
    plan = plan_build(request.precision, features, has_qdq(load_graph(request.model_path)),
                      request.legacy_int8, request.dla_core)
    key = EngineKey(onnx_sha256=onnx_sha, tensorrt_version=features.version, gpu_name=gpu.name,
                    compute_capability=gpu.compute_capability, precision=request.precision,
                    input_profile=request.profile, dla_core=request.dla_core)
    engine = request.out or engine_path(request.model_path.parent, request.model_path, key)
    for note in plan.notes:
        log(f'note: {note}')
    parsed = _prepare_onnx(plan, request, engine.parent, onnx_sha, log)
    start = time.monotonic()
    data, calibration = _serialize(plan, parsed, request, engine.parent, onnx_sha)
    description = BuildDescription(
        key=key, engine_sha256=hashlib.sha256(data).hexdigest(),
        onnx_path=str(request.model_path), input_name=request.card.input.name,
        parsed_onnx=str(parsed) if parsed != request.model_path else '',
        strongly_typed=plan.strongly_typed, builder_flags=plan.flags,
        calibration=calibration, workspace_mb=request.workspace_mb,
        build_seconds=round(time.monotonic() - start, 1))
    write_engine(engine, data, description)
    return engine, description


def _prepare_onnx(plan: BuildPlan, request: BuildRequest, folder: Path, onnx_sha: str,
                  log: Any) -> Path:
    """The ONNX file TensorRT parses for ``plan``: the model itself or a converted copy."""
    stem = f'{request.model_path.stem}.{onnx_sha[:12]}'
    if plan.onnx_form == 'fp16':
        target = folder / f'{stem}.fp16.onnx'
        log(f'converting {request.model_path} to FP16: {target}')
        convert_to_fp16(request.model_path, target)
        return target
    if plan.onnx_form == 'qdq':
        source = _require_calibration(request)
        target = folder / f'{stem}.int8-qdq.onnx'
        tag = qdq_source(onnx_sha, source.digest())
        if cached_qdq_matches(target, tag):
            log(f'reusing INT8 Q/DQ model {target} (same model and calibration images)')
            return target
        log(f'calibrating INT8 on {source.describe()} -> {target}')
        quantize_to_qdq(request.model_path, target, request.card.input.name,
                        calibration_batches(source, _preprocess(request)), tag)
        return target
    return request.model_path


def _require_calibration(request: BuildRequest) -> CalibrationSource:
    if request.calibration is None:
        raise BuildError(f'INT8 needs calibration images for {request.model_path}: '
                         '`mtdepth-build-engine MODEL.onnx --int8 --calib DIR` '
                         '(a folder of PNG/JPEG images or a rosbag)')
    return request.calibration


def _preprocess(request: BuildRequest) -> Preprocess:
    return request.preprocess or predictor_preprocess(request.model_path)


def _serialize(plan: BuildPlan, parsed: Path, request: BuildRequest, folder: Path,
               onnx_sha: str) -> tuple[bytes, str]:
    """Run TensorRT's builder; return the serialized engine and where INT8 scales came from."""
    import tensorrt as trt  # noqa: PLC0415  (load_tensorrt checked it is the real one)

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) \
        if plan.strongly_typed else 0
    network = builder.create_network(flags)
    _parse(network, logger, parsed)
    config = _configure(builder, network, plan, request)
    calibrator = None
    calibration = 'Q/DQ scales in the ONNX' if plan.scales == 'onnx' else ''
    if plan.scales == 'onnxruntime' and request.calibration is not None:
        calibration = f'entropy (ONNX Runtime) on {request.calibration.describe()}'
    if plan.implicit_calibration:
        source = _require_calibration(request)
        cache = calibration_cache_path(folder, request.model_path, onnx_sha)
        calibrator = make_entropy_calibrator(
            calibration_batches(source, _preprocess(request)), request.profile.opt, cache)
        config.int8_calibrator = calibrator
        calibration = f'entropy (TensorRT, cache {cache.name}) on {source.describe()}'
    serialized = builder.build_serialized_network(network, config)
    error = getattr(calibrator, 'error', None)
    if error is not None:
        raise BuildError(f'INT8 calibration failed: {error}') from error
    if serialized is None:
        raise BuildError(f'TensorRT {trt.__version__} could not build an engine from '
                         f'{parsed} (its log above says why)')
    return bytes(serialized), calibration


def _parse(network: trt.INetworkDefinition, logger: trt.ILogger, parsed: Path) -> None:
    import tensorrt as trt  # noqa: PLC0415

    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(parsed)):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BuildError(f'TensorRT cannot parse {parsed}: {errors}')


def _configure(builder: trt.Builder, network: trt.INetworkDefinition, plan: BuildPlan,
               request: BuildRequest) -> trt.IBuilderConfig:
    import tensorrt as trt  # noqa: PLC0415

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE,
                                 request.workspace_mb * BYTES_PER_MB)
    for name in plan.flags:
        config.set_flag(trt.BuilderFlag.__members__[name])
    if request.dla_core != GPU_ONLY:
        if request.dla_core >= builder.num_DLA_cores:
            raise BuildError(f'DLA core {request.dla_core} asked for; this device has '
                             f'{builder.num_DLA_cores} DLA core(s)')
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = request.dla_core
    name = request.card.input.name
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    if [t.name for t in inputs] != [name]:
        raise BuildError(f'the network inputs are {[t.name for t in inputs]}; the card names '
                         f'one input, {name!r}')
    shape = inputs[0].shape
    if any(shape[i] < 0 for i in range(len(shape))):  # dynamic: one profile for this shape
        profile = builder.create_optimization_profile()
        profile.set_shape(name, trt.Dims(list(request.profile.min)),
                          trt.Dims(list(request.profile.opt)), trt.Dims(list(request.profile.max)))
        config.add_optimization_profile(profile)
        if plan.implicit_calibration:
            config.set_calibration_profile(profile)
    return config
