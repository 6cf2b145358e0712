"""TensorRT backend: a cached engine run on its own CUDA stream.

On start it looks for an engine whose build description matches this model,
TensorRT version, GPU, precision, DLA core and input shape
(:mod:`engine_cache`), and builds one (:func:`engine_builder.build`) when there
is none, as the rebuild policy allows: ``auto`` builds only when no usable
engine exists, ``always`` builds at every start, ``never`` refuses to start
without one. A foreign, corrupt or stale engine is never run.

Per frame: the input is copied into page-locked memory and onto the GPU,
the engine runs with ``execute_async_v3`` on the backend's own stream (device
buffers are allocated once per input shape and bound with
``set_tensor_address``), and only the outputs asked for are copied back.

A different input shape (a camera that changes resolution, with a model
exported with dynamic height and width) gets its own engine, built or loaded
from the cache under the same rules, without a restart. A model with a fixed
input shape takes only that shape; the Predictor resizes every image to it.

Anything that stops TensorRT from running here (not installed, no GPU, a
build that fails, no engine under ``never``) raises :class:`BackendUnavailable`
with the reason, so the node falls back to the next backend in its chain.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mtdepth_ros.inference.backends.base import (
    MAX_BATCH,
    Backend,
    BackendOptions,
    BackendUnavailable,
)
from mtdepth_ros.inference.backends.calibration import CalibrationError
from mtdepth_ros.inference.backends.cuda_memory import (
    CudaError,
    DeviceBuffer,
    PinnedBuffer,
    Stream,
    gpu_identity,
)
from mtdepth_ros.inference.backends.engine_builder import (
    BuildError,
    BuildRequest,
    TensorRTFeatures,
    build,
    load_tensorrt,
    static_profile,
)
from mtdepth_ros.inference.backends.engine_cache import (
    REBUILD_POLICIES,
    EngineCacheError,
    EngineKey,
    ShapeProfile,
    cache_dir_for,
    engine_path,
    file_sha256,
    find_engine,
    must_build,
    read_engine,
)
from mtdepth_ros.inference.backends.onnx_precision import PrecisionError, input_dims, load_graph
from mtdepth_ros.inference.card import ModelCard

if TYPE_CHECKING:
    import tensorrt as trt

LOG = logging.getLogger(__name__)
MAX_LIVE_ENGINES = 2  # input shapes kept loaded; others are reloaded from the disk cache
INPUT_RANK = 4  # (N, 3, H, W)


class TensorRTBackend(Backend):
    name = 'tensorrt'

    def __init__(self, model_path: Path, card: ModelCard, variant: str,
                 options: BackendOptions) -> None:
        if variant:
            raise ValueError(f'the tensorrt backend has no variants, got {variant!r}')
        if options.rebuild not in REBUILD_POLICIES:
            raise ValueError(f'rebuild policy must be one of {REBUILD_POLICIES}, '
                             f'got {options.rebuild!r}')
        super().__init__(model_path, card, variant, options)
        load_tensorrt()
        self.gpu = gpu_identity()
        import tensorrt as trt  # noqa: PLC0415  (load_tensorrt checked it is the real one)

        self.features = TensorRTFeatures.detect(trt)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        if options.dla_core >= 0:
            self._runtime.DLA_core = options.dla_core
        self._cache_dir = cache_dir_for(model_path, options.engine_cache_dir)
        self._onnx_sha = file_sha256(model_path)
        dims = input_dims(load_graph(model_path), card.input.name)
        self._dynamic = None in dims
        self._batch_is_free = bool(dims) and dims[0] is None
        self._runners: OrderedDict[tuple[int, ...], EngineRunner] = OrderedDict()
        self._stream = Stream()
        try:
            self._default_profile = static_profile(model_path, card)
            self.engine_file = self._runner(self._default_profile.opt).engine_file
        except BaseException:
            self.close()
            raise

    @property
    def max_batch(self) -> int:
        # A free batch dimension gets an engine per batch size met (built once, cached).
        return MAX_BATCH if self._batch_is_free else 1

    @property
    def description(self) -> str:
        return (f'tensorrt {self.features.version} {self.options.precision} on {self.gpu.name} '
                f'({self.engine_file.name})')

    def run(self, image: np.ndarray, outputs: Collection[str]) -> dict[str, np.ndarray]:
        if not isinstance(image, np.ndarray) or image.ndim != INPUT_RANK or image.shape[1] != 3:
            raise ValueError(f'expected a (1, 3, H, W) float32 input, got shape '
                             f'{getattr(image, "shape", None)}')
        return self._runner(tuple(int(d) for d in image.shape)).run(image, outputs, self._stream)

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()
        if hasattr(self, '_stream'):
            self._stream.close()

    def _runner(self, shape: tuple[int, ...]) -> EngineRunner:
        """The loaded engine for input ``shape``: kept, loaded from the cache, or built."""
        if shape in self._runners:
            self._runners.move_to_end(shape)
            return self._runners[shape]
        if self._runners and not self._dynamic:
            raise ValueError(f'{self.model_path} takes input {self._default_profile.opt} only '
                             f'(exported with a fixed shape); got {shape}')
        try:
            runner = self._load(ShapeProfile.fixed(shape))
        except PermissionError as error:  # e.g. the model installed in a read-only share/
            raise BackendUnavailable(
                f'cannot write TensorRT engines to {self._cache_dir} ({error}); set the '
                'engine cache directory to a writable folder') from error
        except (EngineCacheError, BuildError, CalibrationError, PrecisionError, CudaError,
                OSError) as error:
            raise BackendUnavailable(str(error)) from error
        self._runners[shape] = runner
        while len(self._runners) > MAX_LIVE_ENGINES:
            self._runners.popitem(last=False)[1].close()
        return runner

    def _load(self, profile: ShapeProfile) -> EngineRunner:
        key = EngineKey(
            onnx_sha256=self._onnx_sha, tensorrt_version=self.features.version,
            gpu_name=self.gpu.name, compute_capability=self.gpu.compute_capability,
            precision=self.options.precision, input_profile=profile,
            dla_core=self.options.dla_core)
        preferred = engine_path(self._cache_dir, self.model_path, key)
        lookup = find_engine(self._cache_dir, key, preferred)
        engine = lookup.engine
        if must_build(self.options.rebuild, lookup, self.model_path):
            LOG.warning('building a TensorRT engine for %s (%s); this takes a while. Why: %s',
                        self.model_path, profile.label,
                        'rebuild policy always' if self.options.rebuild == 'always'
                        else lookup.reason())
            engine, _ = build(BuildRequest(
                model_path=self.model_path, card=self.card, precision=self.options.precision,
                profile=profile, out=preferred, workspace_mb=self.options.workspace_mb,
                dla_core=self.options.dla_core), gpu=self.gpu, log=LOG.info)
        assert engine is not None  # must_build returned False only with an engine found
        return EngineRunner(self._runtime, engine, read_engine(engine, key),
                            self.card.input.name, profile.opt)


@dataclass
class _Tensor:
    """One engine input or output: its device buffer and page-locked host mirror."""

    device: DeviceBuffer
    host: PinnedBuffer

    def close(self) -> None:
        self.device.close()
        self.host.close()


class EngineRunner:
    """One deserialized engine with its execution context and buffers for one input shape."""

    def __init__(self, runtime: trt.Runtime, engine_file: Path, data: bytes, input_name: str,
                 input_shape: tuple[int, ...]) -> None:
        import tensorrt as trt  # noqa: PLC0415

        self.engine_file = engine_file
        self.input_name = input_name
        engine = runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise EngineCacheError(f'TensorRT refused to load {engine_file} (see its log)')
        self.engine: trt.ICudaEngine | None = engine
        self.context: trt.IExecutionContext | None = engine.create_execution_context()
        if self.context is None:  # the bindings return None when TensorRT cannot allocate it
            raise EngineCacheError(f'TensorRT could not create a context for {engine_file} '
                                   '(GPU memory?)')
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if inputs != [input_name]:
            raise EngineCacheError(f'{engine_file} has inputs {inputs}; the model card names '
                                   f'{input_name!r}')
        if not self.context.set_input_shape(input_name, input_shape):
            raise EngineCacheError(f'{engine_file} does not accept input shape {input_shape}')
        self.outputs = [n for n in names if n != input_name]
        self.tensors: dict[str, _Tensor] = {}
        try:
            for name in names:
                dims = self.context.get_tensor_shape(name)
                shape = tuple(dims[i] for i in range(len(dims)))
                dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
                tensor = _Tensor(DeviceBuffer(int(np.prod(shape)) * dtype.itemsize),
                                 PinnedBuffer(shape, dtype))
                self.tensors[name] = tensor
                if not self.context.set_tensor_address(name, tensor.device.pointer):
                    raise EngineCacheError(f'TensorRT refused the buffer for {name!r}')
        except BaseException:
            self.close()
            raise

    def run(self, image: np.ndarray, outputs: Collection[str],
            stream: Stream) -> dict[str, np.ndarray]:
        unknown = sorted(set(outputs) - set(self.outputs))
        if unknown:
            raise ValueError(f'{self.engine_file} has no outputs {unknown} '
                             f'(its outputs: {self.outputs})')
        if self.context is None:
            raise RuntimeError(f'{self.engine_file} was closed')
        source = self.tensors[self.input_name]
        np.copyto(source.host.array, image, casting='same_kind')  # float32 (or float16 I/O)
        source.device.copy_from_host(source.host.array, stream)
        if not self.context.execute_async_v3(stream.pointer):
            raise RuntimeError(f'TensorRT could not enqueue {self.engine_file} (see its log)')
        for name in outputs:  # only what the caller will use crosses the bus
            self.tensors[name].device.copy_to_host(self.tensors[name].host.array, stream)
        stream.synchronize()
        # Copies: the pinned buffers are overwritten by the next frame.
        return {name: self.tensors[name].host.array.copy() for name in outputs}

    def close(self) -> None:
        # The context and engine go first: TensorRT may still reference the buffers.
        self.context = None
        self.engine = None
        for tensor in self.tensors.values():
            tensor.close()
        self.tensors.clear()
