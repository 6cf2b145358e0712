"""TensorRT on a GPU: build engines from the bundled model, run them, compare with ONNX Runtime.

Skipped, with the reason, where TensorRT or a GPU is missing (every
development and CI machine of this project) or before the bundled model
exists. Engines are built into a temporary cache, never beside the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mtdepth_ros.inference.backends.base import BackendOptions, BackendUnavailable
from mtdepth_ros.inference.backends.cuda_memory import gpu_identity
from mtdepth_ros.inference.backends.engine_builder import load_tensorrt
from mtdepth_ros.inference.backends.engine_cache import description_path
from mtdepth_ros.inference.backends.tensorrt import TensorRTBackend
from mtdepth_ros.inference.predictor import Prediction, Predictor

MODEL = Path(__file__).resolve().parents[1] / 'models' / 'mtdepth_default.onnx'
SEED = 11
# FP16 against FP32 ONNX Runtime: depth relative error, and the share of label pixels that
# may flip where two classes or intervals are nearly tied.
TOLERANCE = {'fp32': (1e-3, 0.001), 'fp16': (2e-2, 0.01)}


def skip_reason() -> str | None:
    try:
        load_tensorrt()
        gpu_identity()
    except BackendUnavailable as error:
        return f'TensorRT cannot run here: {error}'
    if not MODEL.is_file():
        return f'{MODEL} does not exist yet (the demo adds the bundled model)'
    return None


pytestmark = [pytest.mark.gpu, pytest.mark.slow,
              pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))]


@pytest.fixture(scope='module')
def image() -> np.ndarray:
    """A road-like test image: sky-to-ground gradient with texture, (H, W, 3) uint8 RGB."""
    rng = np.random.default_rng(SEED)
    rows = np.linspace(220, 60, 352)[:, None, None]
    texture = rng.normal(0, 20, (352, 1216, 3))
    return np.clip(rows + texture, 0, 255).astype(np.uint8)


@pytest.fixture(scope='module')
def reference(image: np.ndarray) -> Prediction:
    predictor = Predictor(MODEL, backends=('onnxruntime',))
    return predictor.predict(image)


@pytest.fixture(scope='module')
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp('engines')


def tensorrt_predictor(cache: Path, precision: str, rebuild: str = 'auto') -> Predictor:
    options = BackendOptions(precision=precision, engine_cache_dir=str(cache), rebuild=rebuild)
    predictor = Predictor(MODEL, backends=('tensorrt',), options=options)
    assert isinstance(predictor.backend, TensorRTBackend)
    return predictor


def engine_file(predictor: Predictor) -> Path:
    assert isinstance(predictor.backend, TensorRTBackend)
    return predictor.backend.engine_file


@pytest.mark.parametrize('precision', ['fp32', 'fp16'])
def test_engine_matches_onnxruntime(cache: Path, image: np.ndarray, reference: Prediction,
                                    precision: str) -> None:
    depth_rtol, flips = TOLERANCE[precision]
    prediction = tensorrt_predictor(cache, precision).predict(image)
    if reference.depth is not None:
        assert prediction.depth is not None
        valid = np.isfinite(reference.depth) & np.isfinite(prediction.depth)
        relative = np.abs(prediction.depth - reference.depth)[valid] / reference.depth[valid]
        assert np.median(relative) < depth_rtol
    for head in ('intervals', 'segmentation'):
        expected, got = getattr(reference, head), getattr(prediction, head)
        if expected is not None:
            assert np.mean(expected != got) <= flips, head
    if reference.confidence is not None:
        assert np.median(np.abs(prediction.confidence - reference.confidence)) < 10 * depth_rtol


def test_a_cached_engine_is_loaded_not_rebuilt(cache: Path, image: np.ndarray) -> None:
    first = tensorrt_predictor(cache, 'fp16')
    engine = engine_file(first)
    stamp = description_path(engine).read_text()
    first.close()
    second = tensorrt_predictor(cache, 'fp16', rebuild='never')
    assert engine_file(second) == engine
    assert description_path(engine).read_text() == stamp
    second.predict(image)


def test_only_requested_outputs_come_back(cache: Path, image: np.ndarray) -> None:
    predictor = tensorrt_predictor(cache, 'fp32')
    output = next(iter(predictor.card.heads.values())).output
    result = predictor.backend.run(predictor.preprocess(image), [output])
    assert list(result) == [output]


def test_policy_never_without_an_engine_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="rebuild policy 'never'"):
        tensorrt_predictor(tmp_path, 'fp32', rebuild='never')
