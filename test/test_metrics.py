"""Metric values worked out by hand on tiny arrays, and accumulation over frames."""

import math

import numpy as np
import pytest

from mtdepth_ros.evaluation.metrics import (
    ALL_DEPTH_METRICS,
    DEPTH_METRICS,
    DepthAccumulator,
    SegmentationAccumulator,
    confusion_matrix,
    depth_metrics,
    depth_metrics_by_range,
    range_labels,
    segmentation_metrics,
)

LN2 = math.log(2)
NAN = float('nan')

# Two scored pixels (gt 2 -> pred 1, gt 4 -> pred 8) and three without a
# measurement (0, NaN and negative depth), whose predictions must not count.
GT = np.array([[2.0, 4.0, 0.0], [NAN, -1.0, 0.0]], dtype=np.float32)
PRED = np.array([[1.0, 8.0, 3.0], [3.0, 3.0, 100.0]], dtype=np.float32)


def test_depth_metrics_by_hand():
    m = depth_metrics(PRED, GT)
    assert list(m) == list(DEPTH_METRICS)
    # e = ln(pred) - ln(gt) = (-ln 2, +ln 2): mean 0, mean square ln(2)^2.
    assert m['silog'] == pytest.approx(100 * LN2)
    assert m['abs_rel'] == pytest.approx((1 / 2 + 4 / 4) / 2)
    assert m['sq_rel'] == pytest.approx((1 / 2 + 16 / 4) / 2)
    assert m['rmse'] == pytest.approx(math.sqrt((1 + 16) / 2))
    assert m['rmse_log'] == pytest.approx(LN2)
    assert m['log10'] == pytest.approx(math.log10(2))
    assert m['mae'] == pytest.approx((1 + 4) / 2)
    # Both ratios are 2: above 1.25, 1.5625 and 1.953125.
    assert (m['d1'], m['d2'], m['d3']) == (0.0, 0.0, 0.0)


def test_silog_ignores_a_global_scale():
    gt = np.array([2.0, 5.0, 9.0])
    pred = np.array([2.2, 4.0, 11.0])
    assert depth_metrics(3 * pred, gt)['silog'] == pytest.approx(depth_metrics(pred, gt)['silog'])
    assert depth_metrics(gt * 1.7, gt)['silog'] == pytest.approx(0.0, abs=1e-6)


def test_delta_thresholds_by_hand():
    gt = np.full(4, 10.0)
    pred = np.array([12.0, 15.0, 19.0, 25.0])  # ratios 1.2, 1.5, 1.9, 2.5
    m = depth_metrics(pred, gt)
    assert (m['d1'], m['d2'], m['d3']) == (0.25, 0.5, 0.75)


def test_benchmark_metrics_by_hand():
    m = depth_metrics(PRED, GT, keys=ALL_DEPTH_METRICS)
    assert m['sq_err_rel'] == pytest.approx(((1 / 2) ** 2 + (4 / 4) ** 2) / 2)
    # 1/pred - 1/gt = 0.5 /m and -0.125 /m = 500 and -125 /km.
    assert m['irmse'] == pytest.approx(math.sqrt((500 ** 2 + 125 ** 2) / 2))
    assert m['imae'] == pytest.approx((500 + 125) / 2)


def test_mask_limits_the_scored_pixels():
    mask = np.array([[True, False, True], [True, True, True]])
    m = depth_metrics(PRED, GT, mask)
    assert m['mae'] == pytest.approx(1.0)  # only gt 2 -> pred 1
    assert m['rmse_log'] == pytest.approx(LN2)


def test_unusable_prediction_is_not_scored_but_counted_missing():
    pred = PRED.copy()
    pred[0, 1] = np.nan  # the gt-4 pixel loses its prediction
    assert depth_metrics(pred, GT)['mae'] == pytest.approx(1.0)
    acc = DepthAccumulator()
    acc.update(pred, GT)
    assert (acc.gt_pixels, acc.missing) == (2, 1)
    pred[0, 1] = 0.0
    assert depth_metrics(pred, GT)['mae'] == pytest.approx(1.0)


def test_nothing_scored_gives_nan():
    m = depth_metrics(PRED, np.zeros_like(GT))
    assert all(math.isnan(v) for v in m.values())


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r'\(2, 3\).*\(3, 2\)'):
        depth_metrics(PRED, GT.reshape(3, 2))


def test_unknown_metric_key_is_refused():
    with pytest.raises(ValueError, match='unknown depth metrics'):
        depth_metrics(PRED, GT, keys=('rmse', 'accuracy'))


def test_metrics_per_depth_range():
    gt = np.array([2.0, 4.0, 12.0, 30.0])
    pred = np.array([1.0, 8.0, 13.0, 30.0])
    result = depth_metrics_by_range(pred, gt, edges=(0, 10, 20))
    assert list(result) == ['all', '0-10 m', '10-20 m']
    assert result['0-10 m']['mae'] == pytest.approx(2.5)
    assert result['10-20 m']['mae'] == pytest.approx(1.0)
    # 30 m lies beyond the last edge: in 'all' only.
    assert result['all']['mae'] == pytest.approx((1 + 4 + 1 + 0) / 4)


def test_range_labels_with_open_end():
    assert range_labels([0, 10, 20, math.inf]) == ['0-10 m', '10-20 m', '20+ m']
    assert range_labels([0, 0.5, 1]) == ['0-0.5 m', '0.5-1 m']


def test_bad_range_edges_are_refused():
    with pytest.raises(ValueError, match='increasing'):
        DepthAccumulator(edges=(0, 10, 5))


def _frames(seed=0, count=3):
    rng = np.random.default_rng(seed)
    for i in range(count):
        gt = rng.uniform(1, 60, (6, 5 + i)).astype(np.float32)
        gt[rng.random(gt.shape) < 0.3] = 0  # sparse, like LiDAR
        pred = gt * rng.uniform(0.7, 1.4, gt.shape).astype(np.float32)
        yield pred, gt


def test_pooled_accumulation_equals_one_big_frame():
    acc = DepthAccumulator(edges=(0, 20, 40, 60), keys=ALL_DEPTH_METRICS)
    frames = list(_frames())
    for pred, gt in frames:
        acc.update(pred, gt)
    big_pred = np.concatenate([p.ravel() for p, _ in frames])
    big_gt = np.concatenate([g.ravel() for _, g in frames])
    expected = depth_metrics_by_range(big_pred, big_gt, (0, 20, 40, 60), keys=ALL_DEPTH_METRICS)
    pooled = acc.pooled()
    for name in expected:
        for key in ALL_DEPTH_METRICS:
            assert pooled[name][key] == pytest.approx(expected[name][key], rel=1e-9), (name, key)


def test_per_image_accumulation_is_the_mean_of_frame_metrics():
    acc = DepthAccumulator()
    frames = list(_frames())
    per_frame = [acc.update(pred, gt)['all'] for pred, gt in frames]
    for key in DEPTH_METRICS:
        assert acc.per_image()['all'][key] == pytest.approx(np.mean([f[key] for f in per_frame]))
    # Per-image RMSE is not the pooled RMSE: the two averagings differ.
    assert acc.per_image()['all']['rmse'] != pytest.approx(acc.pooled()['all']['rmse'])


def test_frame_without_ground_truth_does_not_count_per_image():
    acc = DepthAccumulator()
    acc.update(PRED, GT)
    acc.update(PRED, np.zeros_like(GT))
    assert (acc.frames, acc.empty_frames) == (2, 1)
    assert acc.per_image()['all']['mae'] == pytest.approx(2.5)


# Segmentation: classes 0..2, 255 ignored.
SEG_PRED = np.array([[0, 1], [1, 2]], dtype=np.uint8)
SEG_GT = np.array([[0, 1], [2, 255]], dtype=np.uint8)


def test_confusion_matrix_rows_are_ground_truth():
    expected = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(confusion_matrix(SEG_PRED, SEG_GT, 3), expected)


def test_segmentation_metrics_by_hand():
    m = segmentation_metrics(SEG_PRED, SEG_GT, 3)
    # IoU: class 0 = 1/1, class 1 = 1/(1 + 2 - 1), class 2 = 0/1.
    assert m['per_class_iou'] == pytest.approx([1.0, 0.5, 0.0])
    assert m['miou'] == pytest.approx(0.5)
    assert m['pixel_accuracy'] == pytest.approx(2 / 3)


def test_miou_averages_classes_present_only():
    m = segmentation_metrics(SEG_PRED, SEG_GT, 5)
    assert math.isnan(m['per_class_iou'][3]) and math.isnan(m['per_class_iou'][4])
    assert m['miou'] == pytest.approx(0.5)


def test_class_id_outside_the_list_is_refused():
    with pytest.raises(ValueError, match=r'prediction has class ids \[2\] outside \[0, 2\)'):
        segmentation_metrics(SEG_PRED, np.zeros_like(SEG_GT), 2)


def test_segmentation_accumulates_one_confusion_matrix():
    acc = SegmentationAccumulator(3)
    second_pred, second_gt = np.array([[2, 2]]), np.array([[2, 0]])
    acc.update(SEG_PRED, SEG_GT)
    acc.update(second_pred, second_gt)
    big = segmentation_metrics(
        np.concatenate([SEG_PRED.ravel(), second_pred.ravel()]),
        np.concatenate([SEG_GT.ravel(), second_gt.ravel()]), 3)
    assert acc.result()['miou'] == pytest.approx(big['miou'])
    assert acc.result()['per_class_iou'] == pytest.approx(big['per_class_iou'])
    assert acc.frames == 2
