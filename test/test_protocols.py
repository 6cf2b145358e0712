"""Benchmark protocols: crops, caps, missing predictions, median scaling.

Flip TTA is the predictor's ``flip`` (test_predictor.py)."""

import math

import numpy as np
import pytest

from mtdepth_ros.conversions.geometry import Region, kb_crop_region, resize_depth_bilinear
from mtdepth_ros.conversions.labels import IGNORE_INDEX
from mtdepth_ros.evaluation.metrics import DepthAccumulator, depth_metrics
from mtdepth_ros.evaluation.protocols import (
    KB_CROP_SIZE,
    PNG_DEPTH_MAX,
    PNG_DEPTH_STEP,
    clamp_prediction,
    crop_box,
    crop_mask,
    devkit_fill,
    get_protocol,
    input_region,
    prepare_depth,
    prepare_labels,
)

NAN = np.nan
KITTI_SHAPE = (375, 1242)


def test_garg_crop_bounds_are_truncated_fractions():
    # 0.40810811 * 375 = 153.04, 0.99189189 * 375 = 371.96,
    # 0.03594771 * 1242 = 44.65, 0.96405229 * 1242 = 1197.35.
    assert crop_box(KITTI_SHAPE, 'garg') == (153, 371, 44, 1197)


def test_kitti_eigen_crop_bounds():
    # 0.3324324 * 375 = 124.66, 0.91351351 * 375 = 342.57.
    assert crop_box(KITTI_SHAPE, 'eigen') == (124, 342, 44, 1197)


def test_nyu_eigen_crop_is_exact_at_480x640_and_scales():
    assert crop_box((480, 640), 'nyu_eigen') == (45, 471, 41, 601)
    assert crop_box((960, 1280), 'nyu_eigen') == (90, 942, 82, 1202)
    mask = crop_mask((480, 640), 'nyu_eigen')
    assert mask.sum() == (471 - 45) * (601 - 41)
    assert mask[45, 41] and not mask[44, 41] and not mask[45, 601]


def test_clamp_maps_non_finite_to_the_range_ends():
    pred = np.array([NAN, np.inf, -np.inf, 100.0, 0.0, 5.0])
    np.testing.assert_allclose(clamp_prediction(pred, 1e-3, 80.0),
                               [1e-3, 80.0, 1e-3, 80.0, 1e-3, 5.0], rtol=1e-6)


def test_kitti_eigen_masks_crop_and_cap():
    gt = np.full(KITTI_SHAPE, 10.0, dtype=np.float32)
    gt[200, 600] = 85.0  # beyond the 80 m cap
    gt[201, 600] = 0.0  # no measurement
    prepared = prepare_depth(np.full(KITTI_SHAPE, 12.0), gt, get_protocol('kitti_eigen'))
    expected = crop_mask(KITTI_SHAPE, 'garg')
    expected[200, 600] = expected[201, 600] = False
    np.testing.assert_array_equal(prepared.mask, expected)


def test_kitti_eigen_clamps_predictions_to_the_cap():
    gt = np.full((4, 4), 50.0, dtype=np.float32)
    pred = np.full((4, 4), 200.0, dtype=np.float32)
    pred[0, 0] = NAN
    protocol = get_protocol('kitti_eigen', crop='none')
    prepared = prepare_depth(pred, gt, protocol)
    assert prepared.pred[1, 1] == 80.0 and prepared.pred[0, 0] == pytest.approx(1e-3)


def _kitti_scene() -> np.ndarray:
    """A 375x1242 ground truth with structure everywhere (any misplacement shows)."""
    rows, cols = np.mgrid[0:KITTI_SHAPE[0], 0:KITTI_SHAPE[1]].astype(np.float32)
    return 2.0 + 0.1 * rows + 0.03 * cols  # 2 .. 76.7 m


def _abs_rel(pred, gt, protocol, region=None):
    prepared = prepare_depth(pred, gt, protocol, region)
    return depth_metrics(prepared.pred, prepared.gt, prepared.mask)['abs_rel']


def test_perfect_352x1216_prediction_of_a_whole_frame_scores_zero():
    # The shape alone says nothing: this prediction covers the whole 375x1242 frame.
    gt = _kitti_scene()
    pred = resize_depth_bilinear(gt, KB_CROP_SIZE)
    # Area-averaging down and bilinear up reproduce a linear scene exactly inside the
    # frame (float rounding: 1e-8 here); only the outermost pixels, outside the Garg
    # crop, are clamped by the resize.
    assert _abs_rel(pred, gt, get_protocol('kitti_eigen')) < 1e-7
    assert _abs_rel(pred, gt, get_protocol('raw')) < 1e-5
    # Pasted into the KB crop by its shape (as before), the same prediction scored 0.0198.
    assert _abs_rel(pred, gt, get_protocol('kitti_eigen'), kb_crop_region(KITTI_SHAPE)) > 0.01
    pasted = prepare_depth(pred, gt, get_protocol('raw'))
    assert not np.isnan(pasted.pred).any()  # nothing left without a prediction


def test_kb_crop_prediction_is_scored_in_its_region():
    gt = _kitti_scene()
    region = kb_crop_region(KITTI_SHAPE)
    pred = region.of(gt).copy()  # a perfect prediction of the crop only
    prepared = prepare_depth(pred, gt, get_protocol('raw'), region)
    assert np.isnan(prepared.pred[region.top - 1, region.left])
    np.testing.assert_array_equal(prepared.pred[region.top:, region.left:region.right], pred)
    assert _abs_rel(pred, gt, get_protocol('kitti_eigen'), region) == 0.0
    assert _abs_rel(pred, gt, get_protocol('raw', gt_frame='kb_crop'), region) == 0.0
    # Left to the shape (as before), this crop prediction would be stretched over the frame:
    assert _abs_rel(pred, gt, get_protocol('kitti_eigen')) > 0.01


def test_region_of_a_prediction_inside_the_input_crop_is_composed():
    crop = kb_crop_region(KITTI_SHAPE)
    inner = Region(2, 3, 100, 200).within(crop)
    assert (inner.top, inner.left, inner.size) == (crop.top + 2, crop.left + 3, (100, 200))
    assert input_region(KITTI_SHAPE, 'kb_crop') == crop and input_region(KITTI_SHAPE, 'none') is None


def test_labels_outside_the_region_are_not_scored():
    gt = np.arange(16, dtype=np.uint8).reshape(4, 4)
    region = Region(1, 1, 2, 2)
    pred, truth = prepare_labels(np.full((1, 1), 7, np.uint8), gt, get_protocol('raw'), region)
    assert (pred[1:3, 1:3] == 7).all() and (truth[1:3, 1:3] == gt[1:3, 1:3]).all()
    outside = np.ones((4, 4), bool)
    outside[1:3, 1:3] = False
    assert (truth[outside] == IGNORE_INDEX).all()


@pytest.mark.parametrize(('missing', 'far', 'near'), [
    ('clamp', 80.0, 1e-3),  # +inf -> the cap, -inf -> the minimum
    ('devkit_fill', PNG_DEPTH_MAX, PNG_DEPTH_STEP),  # as a 16-bit KITTI PNG holds them
])
def test_rep117_infinities_are_far_and_near(missing, far, near):
    gt = np.full((1, 3), 20.0, dtype=np.float32)
    pred = np.array([[np.inf, -np.inf, 20.0]], dtype=np.float32)
    protocol = get_protocol('kitti_eigen', crop='none', missing=missing)
    prepared = prepare_depth(pred, gt, protocol)
    np.testing.assert_allclose(prepared.pred[0], [far, near, 20.0], rtol=1e-6)


@pytest.mark.parametrize('missing', ['clamp', 'devkit_fill', 'ignore'])
def test_nearer_than_range_scores_as_the_models_near_limit_when_given(missing):
    """With the card's near limit, -inf is that depth under every policy; NaN and +inf are
    left to the policy as before."""
    gt = np.full((1, 4), 1.5, dtype=np.float32)
    pred = np.array([[-np.inf, np.inf, np.nan, 1.5]], dtype=np.float32)
    protocol = get_protocol('kitti_eigen', crop='none', missing=missing)
    with_limit = prepare_depth(pred, gt, protocol, near_limit=2.0)
    without = prepare_depth(pred, gt, protocol)
    assert with_limit.pred[0, 0] == np.float32(2.0) and without.pred[0, 0] != np.float32(2.0)
    np.testing.assert_array_equal(with_limit.pred[0, 1:], without.pred[0, 1:])


def test_rep117_sky_scored_at_the_cap_after_resizing_to_the_ground_truth():
    gt = np.full((8, 8), 70.0, dtype=np.float32)
    pred = np.full((4, 4), np.inf, dtype=np.float32)  # a network-size map, all beyond range
    prepared = prepare_depth(pred, gt, get_protocol('kitti_eigen', crop='none'))
    assert (prepared.pred == 80.0).all()  # far, not the minimum a NaN would become


def test_rep117_infinities_are_missing_when_ignored():
    gt = np.full((1, 3), 20.0, dtype=np.float32)
    pred = np.array([[np.inf, -np.inf, 20.0]], dtype=np.float32)
    accumulator = DepthAccumulator()
    prepared = prepare_depth(pred, gt, get_protocol('raw'))
    accumulator.update(prepared.pred, prepared.gt, prepared.mask)
    assert accumulator.missing == 2 and accumulator.per_image()['all']['abs_rel'] == 0.0


def test_gt_frame_kb_crop_cuts_ground_truth_first():
    gt = np.zeros(KITTI_SHAPE, dtype=np.float32)
    prepared = prepare_depth(np.ones((88, 304)), gt, get_protocol('raw', gt_frame='kb_crop'))
    assert prepared.gt.shape == KB_CROP_SIZE == prepared.pred.shape


def test_devkit_fill_rows_take_the_nearer_neighbour_and_copy_at_ends():
    row = np.array([[NAN, 5.0, NAN, 0.0, 3.0, NAN]], dtype=np.float32)
    np.testing.assert_array_equal(devkit_fill(row), [[5, 5, 3, 3, 3, 3]])


def test_devkit_fill_copies_whole_missing_rows_from_neighbours():
    depth = np.array([[NAN, NAN], [4.0, 2.0], [NAN, NAN], [6.0, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(devkit_fill(depth), [[4, 2], [4, 2], [4, 1], [6, 1]])


def test_devkit_fill_of_nothing_stays_missing():
    assert np.isnan(devkit_fill(np.full((2, 3), NAN))).all()


def test_kitti_benchmark_scores_every_gt_pixel_after_filling():
    gt = np.array([[2.0, 4.0, 8.0]], dtype=np.float32)
    pred = np.array([[2.0, NAN, 8.0]], dtype=np.float32)
    prepared = prepare_depth(pred, gt, get_protocol('kitti_benchmark'))
    assert prepared.pred[0, 1] == 2.0 and prepared.mask.all()


def test_median_scaling_recovers_a_scaled_prediction():
    gt = np.linspace(2, 30, 24, dtype=np.float32).reshape(4, 6)
    prepared = prepare_depth(gt / 3, gt, get_protocol('raw', median_scaling=True))
    assert prepared.scale == pytest.approx(3.0)
    assert depth_metrics(prepared.pred, prepared.gt, prepared.mask)['abs_rel'] == \
        pytest.approx(0.0, abs=1e-6)


def test_prepare_labels_resizes_by_nearest_neighbour():
    pred = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    aligned, gt = prepare_labels(pred, np.zeros((4, 4), np.uint8), get_protocol('raw'))
    np.testing.assert_array_equal(aligned[:2, :2], 1)
    assert set(np.unique(aligned)) == {1, 2, 3, 4}


def test_protocol_describes_its_choices():
    text = '\n'.join(get_protocol('kitti_eigen', crop='eigen', median_scaling=True).describe())
    assert '0.001 m < gt < 80 m' in text and 'crop: eigen' in text
    assert 'median scaling: per image' in text and '652' in text


def test_unknown_protocol_and_bad_choice_are_refused():
    with pytest.raises(ValueError, match='unknown protocol'):
        get_protocol('kitti_eigne')
    with pytest.raises(ValueError, match='crop must be one of'):
        get_protocol('kitti_eigen', crop='garg_crop')
    with pytest.raises(ValueError, match='clamping needs a max_depth'):
        get_protocol('raw', missing='clamp')
    assert math.isclose(get_protocol('nyu_eigen').max_depth or 0, 10.0)
