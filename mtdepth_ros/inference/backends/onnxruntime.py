"""ONNX Runtime backend: the embedded default, on CPU or through CUDA / TensorRT providers.

Variants name the execution provider: ``onnxruntime`` or ``onnxruntime:cpu``
(default), ``onnxruntime:cuda``, ``onnxruntime:tensorrt``. A variant whose
provider is not in this ONNX Runtime build, or that ONNX Runtime silently
replaced by the CPU provider (a CUDA library failed to load), raises
:class:`BackendUnavailable` with the reason, so the fallback chain moves on.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from mtdepth_ros.inference.backends.base import (
    MAX_BATCH,
    Backend,
    BackendOptions,
    BackendUnavailable,
)
from mtdepth_ros.inference.card import ModelCard

CPU = 'CPUExecutionProvider'
CUDA = 'CUDAExecutionProvider'
TENSORRT = 'TensorrtExecutionProvider'
# variant -> providers in ONNX Runtime's order of preference; the first is the one asked for.
VARIANT_PROVIDERS = {
    'cpu': (CPU,),
    'cuda': (CUDA, CPU),
    'tensorrt': (TENSORRT, CUDA, CPU),
}
DEFAULT_VARIANT = 'cpu'
ENGINE_CACHE_SUBDIR = 'ort_trt_cache'  # beside the model when engine_cache_dir is ''


class OnnxRuntimeBackend(Backend):
    name = 'onnxruntime'

    def __init__(self, model_path: Path, card: ModelCard, variant: str,
                 options: BackendOptions) -> None:
        variant = variant or DEFAULT_VARIANT
        if variant not in VARIANT_PROVIDERS:
            raise ValueError(f'unknown onnxruntime variant {variant!r}; '
                             f'known variants: {sorted(VARIANT_PROVIDERS)}')
        super().__init__(model_path, card, variant, options)
        wanted = VARIANT_PROVIDERS[variant][0]
        available = ort.get_available_providers()
        if wanted not in available:
            raise BackendUnavailable(
                f'{wanted} is not in this onnxruntime build {ort.__version__} '
                f'(available: {", ".join(available)})')
        try:
            self.session = ort.InferenceSession(
                str(model_path), sess_options=self._session_options(),
                providers=self._providers())
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise BackendUnavailable(f'onnxruntime cannot load {model_path}: {error}') from error
        active = self.session.get_providers()
        if active[0] != wanted:  # ONNX Runtime falls back to CPU with only a log line
            raise BackendUnavailable(
                f'{wanted} could not be started (onnxruntime fell back to {active[0]}); '
                'check the CUDA/TensorRT libraries')
        self.output_names = {o.name for o in self.session.get_outputs()}
        batch = self.session.get_inputs()[0].shape[0]
        self._max_batch = batch if isinstance(batch, int) and batch > 0 else MAX_BATCH

    @property
    def max_batch(self) -> int:
        return self._max_batch

    def _session_options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.options.threads  # 0 = ONNX Runtime's default
        options.inter_op_num_threads = 1  # one image at a time: parallelism is within operators
        spinning = '1' if self.options.spinning else '0'
        options.add_session_config_entry('session.intra_op.allow_spinning', spinning)
        options.add_session_config_entry('session.inter_op.allow_spinning', spinning)
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL \
            if self.options.execution_mode == 'parallel' else ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: warnings about unused initialisers are noise
        return options

    def _providers(self) -> list[Any]:
        providers: list[Any] = []
        for provider in VARIANT_PROVIDERS[self.variant]:
            if provider == TENSORRT:
                providers.append((provider, self._tensorrt_options()))
            else:
                providers.append(provider)
        return providers

    def _tensorrt_options(self) -> dict[str, Any]:
        cache = Path(self.options.engine_cache_dir or self.model_path.parent / ENGINE_CACHE_SUBDIR)
        return {
            'trt_fp16_enable': self.options.precision in ('fp16', 'int8'),
            'trt_int8_enable': self.options.precision == 'int8',
            'trt_engine_cache_enable': True,
            'trt_engine_cache_path': str(cache),
            'trt_max_workspace_size': self.options.workspace_mb * 1024 * 1024,
        }

    def run(self, image: np.ndarray, outputs: Collection[str]) -> dict[str, np.ndarray]:
        unknown = sorted(set(outputs) - self.output_names)
        if unknown:
            raise ValueError(f'{self.model_path} has no outputs {unknown} '
                             f'(outputs: {sorted(self.output_names)})')
        names = list(outputs)
        # An empty list would make ONNX Runtime return every output: ask for
        # one and drop it, so warm-up still runs the network.
        fetch = names or [next(iter(sorted(self.output_names)))]
        results = self.session.run(fetch, {self.card.input.name: image})
        return dict(zip(names, results))

    @property
    def description(self) -> str:
        provider = self.session.get_providers()[0]
        precision = self.options.precision if provider == TENSORRT else 'fp32'
        note = '' if precision == self.options.precision else \
            f', precision {self.options.precision} applies to TensorRT only'
        threads = f', threads {self.options.threads}' if self.options.threads else ''
        spinning = ', spinning' if self.options.spinning else ''
        mode = ', parallel' if self.options.execution_mode == 'parallel' else ''
        return (f'onnxruntime {ort.__version__} {provider} '
                f'({precision}{threads}{spinning}{mode}{note})')

    def close(self) -> None:
        # Dropping the session releases its memory (and GPU allocations).
        self.__dict__.pop('session', None)
