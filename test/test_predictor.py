"""Predictor: preprocessing, head selection, decoding and focal correction on tiny models."""

from __future__ import annotations

from pathlib import Path

import model_fixtures as mf
import numpy as np
import pytest

from mtdepth_ros.conversions.geometry import Region
from mtdepth_ros.inference.backends.base import BackendUnavailable
from mtdepth_ros.inference.card import CardError
from mtdepth_ros.inference.framing import FocalCorrectionError
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


@pytest.mark.parametrize('fx', [0.0, 1e-300, 1e300, float('nan'), 2 * mf.FOCAL_PX * 4.01])
def test_focal_correction_outside_its_bounds_is_refused(predictor: Predictor, fx: float) -> None:
    # a factor below 0.25 or above 4 means a broken camera_info, not a camera
    with pytest.raises(FocalCorrectionError, match='outside 0.25-4'):
        predictor.predict(blank(), focal_px=fx)


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


def test_flip_puts_the_mirror_pass_back_on_its_pixels(tmp_path: Path) -> None:
    # the echo model's depth is the input's first channel, a ramp to the right: the
    # mirror pass sees the ramp falling, and flipped back it matches the direct pass
    # (not flipped back, the mean would be flat)
    predictor = Predictor(mf.write_model(tmp_path / 'echo.onnx', echo=True, std=1 / 255))
    ramp = np.linspace(2, 38, mf.WIDTH).round().astype(np.uint8)  # metres inside the coding
    image = np.zeros((mf.HEIGHT, mf.WIDTH, 3), np.uint8)
    image[..., 0] = ramp
    flipped = predictor.predict(image, flip=True)
    assert flipped.depth is not None
    np.testing.assert_allclose(flipped.depth, np.broadcast_to(ramp, flipped.depth.shape))
    assert flipped.inference_s > 0


def test_flip_averages_confidence_and_keeps_the_class_heads(predictor: Predictor) -> None:
    direct, flipped = predictor.predict(blank()), predictor.predict(blank(), flip=True)
    assert flipped.confidence is not None and flipped.depth is not None
    # the fixture's confidence: 1 on the left half, LOW_CONFIDENCE on the right
    np.testing.assert_allclose(flipped.confidence, (1 + mf.LOW_CONFIDENCE) / 2)
    np.testing.assert_allclose(flipped.depth, mf.expected_depth(), rtol=1e-6)  # by row only
    for head in ('intervals', 'segmentation'):  # class ids: the direct image's
        np.testing.assert_array_equal(getattr(flipped, head), getattr(direct, head))


def test_flip_keeps_far_classes_and_the_valid_range(tmp_path: Path) -> None:
    predictor = Predictor(mf.write_model(tmp_path / 'sky.onnx', far=('sky',),
                                         valid_range=(2.0, 20.0)))
    direct, flipped = predictor.predict(blank()), predictor.predict(blank(), flip=True)
    assert direct.depth is not None and flipped.depth is not None
    # the segmentation is not mirrored: sky stays in its columns, +inf in both
    np.testing.assert_array_equal(np.isposinf(flipped.depth), np.isposinf(direct.depth))
    np.testing.assert_array_equal(np.isneginf(flipped.depth), np.isneginf(direct.depth))
    assert np.isposinf(direct.depth).any() and np.isneginf(direct.depth).any()


def test_flip_without_depth_or_confidence_runs_once(predictor: Predictor) -> None:
    assert not predictor.flips(('segmentation', 'intervals'))
    flipped = predictor.predict(blank(), heads=['segmentation'], flip=True)
    np.testing.assert_array_equal(flipped.segmentation, mf.expected_segmentation())


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


COLUMN_BASE = 180  # red = COLUMN_BASE + column: the echo model's metres stay inside 1-40 m


def column_image(height: int, width: int) -> np.ndarray:
    """Red encodes the column, so the echo model shows which columns it saw."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = COLUMN_BASE + np.arange(width, dtype=np.uint8)[None, :]
    return image


def seen_columns(depth: np.ndarray) -> np.ndarray:
    """The echo model's depth (normalised red) back to the column it came from."""
    return (depth * 0.229 + 0.485) * 255 - COLUMN_BASE


def test_an_image_of_another_aspect_is_centre_cropped_not_stretched(tmp_path: Path) -> None:
    # The tiny network is 32x24 (4:3). A 64x24 image (8:3) is cut to its centred
    # 32x24 window (columns 16..47), never squashed into 32x24 whole.
    predictor = Predictor(mf.write_model(tmp_path / 'echo.onnx', echo=True))
    prediction = predictor.predict(column_image(24, 64))
    assert prediction.region == Region(top=0, left=16, height=24, width=32)
    assert prediction.depth is not None
    np.testing.assert_allclose(seen_columns(prediction.depth),
                               np.broadcast_to(16 + np.arange(32), (24, 32)), atol=0.01)


def test_a_tall_image_is_cropped_top_and_bottom(predictor: Predictor) -> None:
    assert predictor.predict(blank((100, 64, 3))).region == Region(26, 0, 48, 64)
    assert predictor.predict(blank()).region == Region(0, 0, 48, 64)


def test_the_training_frame_aspect_decides_the_crop(tmp_path: Path) -> None:
    # Trained on 64x24 frames squeezed into the 32x24 input: a 128x48 image has that
    # aspect and is used whole, with the same anisotropic resize as in training.
    predictor = Predictor(mf.write_model(tmp_path / 'wide.onnx', frame=(64, 24)))
    assert predictor.predict(blank((48, 128, 3))).region == Region(0, 0, 48, 128)


def test_focal_correction_uses_the_cropped_width(tmp_path: Path) -> None:
    # The 64-wide crop of a 128x48 image resizes by 0.5: fx 60 -> 30, the training focal.
    predictor = Predictor(mf.write_model(tmp_path / 'tiny.onnx'))
    depth = predictor.predict(blank((48, 128, 3)), heads=['depth'], focal_px=60.0).depth
    np.testing.assert_allclose(depth, mf.expected_depth(), rtol=1e-6)


def test_rep117_beyond_the_valid_range_is_infinite(tmp_path: Path) -> None:
    # expected depth runs from about 27 m (top row) to 1.4 m (bottom row)
    predictor = Predictor(mf.write_model(tmp_path / 'ranged.onnx', valid_range=(2.0, 20.0)))
    depth = predictor.predict(blank(), heads=['depth']).depth
    expected = mf.expected_depth()
    assert depth is not None
    np.testing.assert_array_equal(np.isposinf(depth), expected >= 20.0)
    np.testing.assert_array_equal(np.isneginf(depth), expected <= 2.0)
    inside = (expected > 2.0) & (expected < 20.0)
    assert inside.any() and np.isposinf(depth).any() and np.isneginf(depth).any()
    np.testing.assert_allclose(depth[inside], expected[inside], rtol=1e-6)


def test_rep117_far_classes_are_positive_infinity_in_depth(tmp_path: Path) -> None:
    predictor = Predictor(mf.write_model(tmp_path / 'sky.onnx', far=('sky',)))
    prediction = predictor.predict(blank(), heads=['depth'])  # segmentation is run for it
    sky = mf.expected_segmentation() == mf.CLASS_NAMES.index('sky')
    assert prediction.depth is not None and sky.any()
    assert np.isposinf(prediction.depth[sky]).all()
    np.testing.assert_allclose(prediction.depth[~sky], mf.expected_depth()[~sky], rtol=1e-6)


def test_rep117_infinities_survive_focal_correction(tmp_path: Path) -> None:
    predictor = Predictor(mf.write_model(tmp_path / 'sky.onnx', far=('sky',)))
    depth = predictor.predict(blank(), heads=['depth'], focal_px=3 * mf.FOCAL_PX).depth
    assert depth is not None and np.isposinf(depth).any() and not np.isnan(depth).any()


def test_the_coding_range_is_the_default_valid_range(predictor: Predictor) -> None:
    assert predictor.card.depth_range == (mf.CODING.d_min, mf.CODING.d_max)


@pytest.mark.parametrize('shape', [IMAGE_SHAPE, (24, 32, 3), (100, 70, 3)])
def test_a_bgr_image_is_resized_then_swapped_to_the_same_picture(predictor: Predictor,
                                                                shape: tuple[int, int, int]
                                                                ) -> None:
    rgb = np.random.default_rng(7).integers(0, 256, shape, np.uint8)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    np.testing.assert_array_equal(predictor.network_image(bgr, bgr=True),
                                  predictor.network_image(rgb))


def test_ground_contact_puts_what_stands_on_the_road_at_the_road_depth(tmp_path: Path) -> None:
    path = mf.write_model(tmp_path / 'standing.onnx', standing=True)
    predictor = Predictor(path)
    plain = predictor.predict(blank(), heads=['depth'])
    prediction = predictor.predict(blank(), heads=['depth'], ground_contact=True)
    # segmentation is run for it
    labels = mf.expected_segmentation(standing=True)
    car = labels == mf.CLASS_NAMES.index('car')
    foot = mf.HEIGHT - mf.GROUND_ROWS  # the first road row under the car band
    assert prediction.depth is not None and plain.depth is not None and car.any()
    np.testing.assert_array_equal(prediction.segmentation, labels)
    np.testing.assert_allclose(prediction.depth[car],
                               np.broadcast_to(mf.expected_depth()[foot], car.shape)[car])
    np.testing.assert_array_equal(prediction.depth[~car], plain.depth[~car])
    assert not np.allclose(prediction.depth[car], plain.depth[car])


def test_ground_contact_needs_the_segmentation_in_decode(tmp_path: Path) -> None:
    predictor = Predictor(mf.write_model(tmp_path / 'standing.onnx', standing=True))
    assert predictor.heads_to_run(['depth']) == ('depth',)
    heads = predictor.heads_to_run(['depth'], ground_contact=True)
    assert heads == ('depth', 'segmentation')
    raw = predictor.infer([predictor.preprocess(blank())], predictor.outputs_for(heads))[0][0]
    moved = predictor.decode(raw, heads, ground_contact=True).depth
    kept = predictor.decode(raw, ('depth',), ground_contact=True).depth  # no labels: as it is
    assert moved is not None and kept is not None and not np.array_equal(moved, kept)
    np.testing.assert_allclose(kept, mf.expected_depth(), rtol=1e-6)


@pytest.mark.parametrize('card_args, reason', [
    ({'heads': ('depth',)}, 'needs a segmentation head'),
    ({'num_classes': 4}, 'needs a ground class'),
])
def test_ground_contact_is_refused_for_a_model_that_cannot_say_what_stands(
        tmp_path: Path, card_args: dict[str, object], reason: str) -> None:
    path = mf.write_model(tmp_path / 'model.onnx', **card_args)
    predictor = Predictor(path)
    with pytest.raises(ValueError, match=reason) as error:
        predictor.ground_contact_classes
    assert str(path) in str(error.value)
