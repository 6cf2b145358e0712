"""The tensorrt backend where TensorRT or a GPU is missing: fallback and what it says."""

from __future__ import annotations

from pathlib import Path

import model_fixtures as mf
import pytest

from mtdepth_ros.inference.backends.base import BackendOptions, BackendUnavailable, create_backend
from mtdepth_ros.inference.backends.cuda_memory import CudaError, check, gpu_identity
from mtdepth_ros.inference.backends.engine_builder import load_tensorrt
from mtdepth_ros.inference.backends.onnxruntime import OnnxRuntimeBackend
from mtdepth_ros.inference.backends.tensorrt import TensorRTBackend
from mtdepth_ros.inference.model_file import read_card


def unavailable_reason() -> str | None:
    """Why TensorRT cannot run here (None where it can)."""
    try:
        load_tensorrt()
        gpu_identity()
    except BackendUnavailable as error:
        return str(error)
    return None


needs_no_tensorrt = pytest.mark.skipif(unavailable_reason() is None,
                                       reason='TensorRT and a GPU are available here')


@pytest.fixture(scope='module')
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mf.write_model(tmp_path_factory.mktemp('model') / 'tiny.onnx')


@needs_no_tensorrt
def test_the_chain_falls_back_to_onnxruntime_and_says_why(model: Path) -> None:
    backend, skipped = create_backend(['tensorrt', 'onnxruntime'], model, read_card(model))
    assert isinstance(backend, OnnxRuntimeBackend)
    assert len(skipped) == 1 and skipped[0] == f'tensorrt: {unavailable_reason()}'
    backend.close()


@needs_no_tensorrt
def test_tensorrt_alone_stops_with_the_reason(model: Path) -> None:
    with pytest.raises(BackendUnavailable) as error:
        create_backend(['tensorrt'], model, read_card(model))
    assert str(error.value) == f'no backend could be started: tensorrt: {unavailable_reason()}'


@needs_no_tensorrt
def test_the_reason_names_what_to_install() -> None:
    reason = unavailable_reason()
    assert reason is not None
    assert 'install TensorRT for Python' in reason or 'no usable CUDA GPU' in reason \
        or 'no CUDA GPU' in reason


def test_tensorrt_has_no_variants(model: Path) -> None:
    with pytest.raises(ValueError, match='no variants'):
        create_backend(['tensorrt:fp16'], model, read_card(model))


def test_an_unknown_rebuild_policy_is_refused_before_anything_loads(model: Path) -> None:
    with pytest.raises(ValueError, match='rebuild policy must be one of'):
        TensorRTBackend(model, read_card(model), '', BackendOptions(rebuild='sometimes'))


def test_cuda_results_are_unwrapped() -> None:
    from cuda.bindings import runtime as cudart

    assert check((cudart.cudaError_t.cudaSuccess, 5), 'cudaX') == 5
    assert check((cudart.cudaError_t.cudaSuccess,), 'cudaX') is None
    with pytest.raises(CudaError, match='cudaX failed: cudaErrorNoDevice: no CUDA-capable'):
        check((cudart.cudaError_t.cudaErrorNoDevice, None), 'cudaX')


def test_the_gpu_is_identified_or_its_absence_explained() -> None:
    try:
        gpu = gpu_identity()
    except BackendUnavailable as error:  # this machine: CUDA says why (e.g. no driver)
        assert 'GPU' in str(error) and ('cuda' in str(error) or 'CUDA' in str(error))
    else:
        assert gpu.name and '.' in gpu.compute_capability
