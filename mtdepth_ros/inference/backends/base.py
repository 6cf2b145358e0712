"""The inference backend interface and the fallback chain that picks one.

A backend runs one exported model: it takes the preprocessed input tensor and
returns the head outputs the caller asks for (the node asks only for outputs
that are switched on and subscribed). Backends are named by spec strings,
``name`` or ``name:variant`` (``onnxruntime:cuda``, ``tensorrt``), and the
node tries a chain of them in order, logging why each one that fails could
not be used.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtdepth_ros.inference.card import ModelCard

# name -> "module:class"; imported only when asked for, so a missing runtime
# (TensorRT on a laptop) costs nothing until it is chosen.
BACKENDS = {
    'onnxruntime': 'mtdepth_ros.inference.backends.onnxruntime:OnnxRuntimeBackend',
    'tensorrt': 'mtdepth_ros.inference.backends.tensorrt:TensorRTBackend',
}
PRECISIONS = ('fp32', 'fp16', 'int8')
EXECUTION_MODES = ('sequential', 'parallel')
MAX_BATCH = 8  # frames per run for models exported with a free batch dimension (8 cameras)


class BackendUnavailable(RuntimeError):
    """This backend cannot run here (runtime not installed, no GPU, build failed)."""


@dataclass(frozen=True)
class BackendOptions:
    precision: str = 'fp32'
    threads: int = 0  # CPU threads for CPU backends; 0 = the runtime's default
    # ONNX Runtime: worker threads that wait for work by spinning burn a core a shared
    # machine needs; False lets them sleep (session.intra_op/inter_op.allow_spinning)
    spinning: bool = False
    execution_mode: str = 'sequential'  # ONNX Runtime: sequential or parallel (branches)
    engine_cache_dir: str = ''  # TensorRT: '' = beside the ONNX file
    rebuild: str = 'auto'  # TensorRT: 'auto' (when stale), 'always', 'never'
    dla_core: int = -1  # TensorRT on Jetson: -1 = GPU only
    workspace_mb: int = 1024


class Backend(ABC):
    """One loaded model, ready to run."""

    name: str = ''

    def __init__(self, model_path: Path, card: ModelCard, variant: str,
                 options: BackendOptions) -> None:
        self.model_path = model_path
        self.card = card
        self.variant = variant
        self.options = options

    @abstractmethod
    def run(self, image: np.ndarray, outputs: Collection[str]) -> dict[str, np.ndarray]:
        """Run on ``image`` (N, 3, H, W) float32, N <= max_batch; return ``{output name:
        (N, ...) array}`` for ``outputs``.

        ``outputs`` are ONNX output names from the card; an empty collection
        still runs the network (for warm-up and timing).
        """

    @property
    def max_batch(self) -> int:
        """Images one ``run`` takes: MAX_BATCH for a model with a free batch dimension, else 1."""
        return 1

    @property
    def description(self) -> str:
        """What actually runs, for logs and diagnostics (e.g. the execution provider)."""
        return f'{self.name}:{self.variant}' if self.variant else self.name

    def close(self) -> None:
        """Release device memory and runtime handles."""


def parse_spec(spec: str) -> tuple[str, str]:
    name, _, variant = spec.strip().partition(':')
    if name not in BACKENDS:
        raise ValueError(f'unknown backend {spec!r}; known backends: {sorted(BACKENDS)}')
    return name, variant


def backend_class(name: str) -> type[Backend]:
    module_name, class_name = BACKENDS[name].split(':')
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BackendUnavailable(f'{name}: cannot import its runtime: {error}') from error
    backend: type[Backend] = getattr(module, class_name)
    return backend


def create_backend(chain: Sequence[str], model_path: str | Path, card: ModelCard,
                   options: BackendOptions | None = None) -> tuple[Backend, list[str]]:
    """Create the first backend of ``chain`` that works.

    Returns the backend and one line per backend that was skipped, saying why.
    Raises BackendUnavailable, listing every reason, when none works.
    """
    if not chain:
        raise ValueError('the backend chain is empty')
    options = options or BackendOptions()
    if options.precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {options.precision!r}')
    skipped: list[str] = []
    for spec in chain:
        name, variant = parse_spec(spec)
        try:
            return backend_class(name)(Path(model_path), card, variant, options), skipped
        except BackendUnavailable as error:
            skipped.append(f'{spec}: {error}')
    raise BackendUnavailable('no backend could be started: ' + '; '.join(skipped))
