"""ONNX Runtime backend: providers, threads, and running only the outputs asked for."""

from __future__ import annotations

from pathlib import Path

import model_fixtures as mf
import numpy as np
import onnxruntime as ort
import pytest

from mtdepth_ros.inference.backends.base import BackendOptions, BackendUnavailable, create_backend
from mtdepth_ros.inference.backends.onnxruntime import OnnxRuntimeBackend
from mtdepth_ros.inference.model_file import read_card

INPUT = np.zeros((1, 3, mf.HEIGHT, mf.WIDTH), np.float32)


@pytest.fixture(scope='module')
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mf.write_model(tmp_path_factory.mktemp('model') / 'tiny.onnx')


def make(model: Path, variant: str = '', **options: object) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend(model, read_card(model), variant, BackendOptions(**options))  # type: ignore[arg-type]


def test_default_variant_runs_on_cpu(model: Path) -> None:
    backend = make(model)
    assert backend.variant == 'cpu'
    assert 'CPUExecutionProvider' in backend.description


def test_returns_only_the_outputs_asked_for(model: Path) -> None:
    results = make(model).run(INPUT, ['depth_out'])
    assert list(results) == ['depth_out']
    assert results['depth_out'].shape == (1, 1, mf.HEIGHT, mf.WIDTH)


def test_empty_output_list_still_runs(model: Path) -> None:
    assert make(model).run(INPUT, []) == {}


def test_unknown_output_is_named(model: Path) -> None:
    with pytest.raises(ValueError, match='nope'):
        make(model).run(INPUT, ['nope'])


def test_threads_option_reaches_the_session(model: Path) -> None:
    backend = make(model, threads=1)
    assert backend.session.get_session_options().intra_op_num_threads == 1
    assert 'threads 1' in backend.description


def test_precision_other_than_fp32_is_noted_on_cpu(model: Path) -> None:
    assert 'TensorRT only' in make(model, precision='fp16').description


def test_unknown_variant_is_a_configuration_error(model: Path) -> None:
    with pytest.raises(ValueError, match='unknown onnxruntime variant'):
        make(model, 'openvino')


@pytest.mark.skipif('CUDAExecutionProvider' in ort.get_available_providers(),
                    reason='this onnxruntime build has CUDA')
def test_missing_cuda_provider_is_unavailable_with_reason(model: Path) -> None:
    with pytest.raises(BackendUnavailable, match='CUDAExecutionProvider is not in this onnxruntime'):
        make(model, 'cuda')


@pytest.mark.gpu
@pytest.mark.skipif('CUDAExecutionProvider' not in ort.get_available_providers(),
                    reason='needs onnxruntime-gpu with a CUDA GPU')
def test_cuda_provider_runs(model: Path) -> None:
    results = make(model, 'cuda').run(INPUT, ['depth_out'])
    assert results['depth_out'].shape == (1, 1, mf.HEIGHT, mf.WIDTH)


def test_unreadable_model_is_unavailable_with_path(model: Path, tmp_path: Path) -> None:
    garbage = tmp_path / 'garbage.onnx'
    garbage.write_bytes(b'not a model')
    with pytest.raises(BackendUnavailable, match='garbage.onnx'):
        OnnxRuntimeBackend(garbage, read_card(model), '', BackendOptions())


def test_create_backend_picks_onnxruntime(model: Path) -> None:
    backend, skipped = create_backend(['onnxruntime'], model, read_card(model))
    assert isinstance(backend, OnnxRuntimeBackend) and skipped == []
