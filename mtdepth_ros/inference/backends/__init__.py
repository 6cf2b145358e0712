"""Inference backends: ONNX Runtime (embedded default) and TensorRT (vehicle GPUs)."""

from mtdepth_ros.inference.backends.base import (
    BACKENDS,
    Backend,
    BackendOptions,
    BackendUnavailable,
    create_backend,
    parse_spec,
)

__all__ = ['BACKENDS', 'Backend', 'BackendOptions', 'BackendUnavailable', 'create_backend',
           'parse_spec']
