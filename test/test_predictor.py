"""Predictor: preprocessing, head selection, decoding and focal correction on tiny models."""

from __future__ import annotations

from pathlib import Path

import model_fixtures as mf
import numpy as np
import pytest

from mtdepth_ros.inference.backends.base import BackendUnavailable
from mtdepth_ros.inference.card import CardError
from mtdepth_ros.inference.predictor import Prediction, Predictor

IMAGE_SHAPE = (48, 64, 3)  # twice the tiny network input


@pytest.fixture(scope='module')
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    return Predictor(mf.write_model(tmp_path_factory.mktemp('model') / 'tiny.onnx'))


def blank(shape: tuple[int, int, int] = IMAGE_SHAPE) -> np.ndarray:
    return np.zeros(shape, np.uint8)


def test_depth_decodes_normalised_log_to_metres(predictor: Predictor) -> None:
    depth = predictor.predict(blank()).depth
    assert depth is not None and depth.dtype == np.float32
    np.testing.assert_allclose(depth, mf.expected_depth(), rtol=1e-6)


def test_every_head_comes_back_at_network_resolution(predictor: Predictor) -> None:
    prediction = predictor.predict(blank())
    for head in mf.ALL_HEADS:
        assert getattr(prediction, head).shape == (mf.HEIGHT, mf.WIDTH), head
    assert prediction.inference_s > 0


def test_integer_heads_decode_to_uint8(predictor: Predictor) -> None:
    prediction = predictor.predict(blank())
    assert prediction.intervals is not None and prediction.segmentation is not None
    assert prediction.intervals.dtype == np.uint8 and prediction.segmentation.dtype == np.uint8
    np.testing.assert_array_equal(prediction.intervals, mf.expected_intervals())
    np.testing.assert_array_equal(prediction.segmentation, mf.expected_segmentation())


def test_confidence_is_float_in_unit_range(predictor: Predictor) -> None:
    confidence = predictor.predict(blank()).confidence
    assert confidence is not None and confidence.dtype == np.float32
    np.testing.assert_array_equal(confidence, mf.expected_confidence())


def test_only_requested_heads_are_decoded(predictor: Predictor) -> None:
    prediction = predictor.predict(blank(), heads=['segmentation'])
    assert prediction.segmentation is not None
    assert prediction.depth is None and prediction.intervals is None and prediction.confidence is None


def test_unknown_head_is_refused_by_name(tmp_path: Path) -> None:
    predictor = Predictor(mf.write_model(tmp_path / 'depth_only.onnx', heads=('depth',)))
    with pytest.raises(ValueError, match='segmentation'):
        predictor.predict(blank(), heads=['segmentation'])


def test_focal_correction_scales_depth_by_focal_ratio(predictor: Predictor) -> None:
    # The image is twice the network width, so fx 90 at the image is 45 at the
    # network: 1.5 times the training camera's 30.
    image_focal = 2 * 1.5 * mf.FOCAL_PX
    depth = predictor.predict(blank(), heads=['depth'], focal_px=image_focal).depth
    assert depth is not None
    np.testing.assert_allclose(depth, 1.5 * mf.expected_depth(), rtol=1e-6)


def test_focal_correction_needs_a_positive_focal_length(predictor: Predictor) -> None:
    with pytest.raises(ValueError, match='focal'):
        predictor.predict(blank(), focal_px=0.0)


def test_many_classes_decode_to_uint16(tmp_path: Path) -> None:
    predictor = Predictor(mf.write_model(tmp_path / 'many.onnx', num_classes=300))
    segmentation = predictor.predict(blank()).segmentation
    assert segmentation is not None and segmentation.dtype == np.uint16
    assert segmentation.max() == 299


def test_preprocess_normalises_and_resizes(tmp_path: Path) -> None:
    predictor = Predictor(mf.write_model(tmp_path / 'echo.onnx', echo=True))
    image = np.zeros(IMAGE_SHAPE, np.uint8)
    image[..., 0], image[..., 2] = 200, 10
    depth = predictor.predict(image).depth  # the echo model returns channel 0 as metres
    assert depth is not None and depth.shape == (mf.HEIGHT, mf.WIDTH)
    np.testing.assert_allclose(depth, (200 / 255 - 0.485) / 0.229, rtol=1e-5)


def test_bgr_card_feeds_blue_first(tmp_path: Path) -> None:
    predictor = Predictor(mf.write_model(tmp_path / 'bgr.onnx', echo=True, color_order='BGR'))
    image = np.zeros(IMAGE_SHAPE, np.uint8)
    image[..., 0], image[..., 2] = 10, 200
    tensor = predictor.preprocess(image)
    np.testing.assert_allclose(tensor[0, 0], (200 / 255 - 0.485) / 0.229, rtol=1e-5)


def test_echo_depth_non_positive_is_nan(tmp_path: Path) -> None:
    predictor = Predictor(mf.write_model(tmp_path / 'echo.onnx', echo=True))
    depth = predictor.predict(blank()).depth  # (0 - mean) / std < 0: no valid depth
    assert depth is not None and np.isnan(depth).all()


def test_rejects_non_rgb_input_with_shape(predictor: Predictor) -> None:
    with pytest.raises(ValueError, match=r'\(H, W, 3\) uint8'):
        predictor.predict(np.zeros((8, 8), np.uint8))


def test_model_without_card_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CardError, match='no model card'):
        Predictor(mf.write_model_without_card(tmp_path / 'nocard.onnx'))


def test_card_naming_missing_output_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="'nowhere'"):
        Predictor(mf.write_model_with_missing_output(tmp_path / 'broken.onnx'))


def test_unavailable_backend_chain_lists_reasons(tmp_path: Path) -> None:
    path = mf.write_model(tmp_path / 'tiny.onnx')
    with pytest.raises(BackendUnavailable, match='onnxruntime:tensorrt'):
        Predictor(path, backends=('onnxruntime:tensorrt',))


def test_falls_back_along_the_chain(tmp_path: Path) -> None:
    predictor = Predictor(mf.write_model(tmp_path / 'tiny.onnx'),
                          backends=('onnxruntime:cuda', 'onnxruntime'))
    assert 'CPUExecutionProvider' in predictor.description
    assert predictor.skipped_backends and 'onnxruntime:cuda' in predictor.skipped_backends[0]


def test_prediction_defaults_to_empty() -> None:
    assert Prediction().depth is None and Prediction().inference_s == 0.0
