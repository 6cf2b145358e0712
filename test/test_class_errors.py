"""Depth error per class: pooled sums by class, and which labels the scorer counts by."""

import math

import numpy as np
import pytest

from mtdepth_ros.evaluation.bag_reader import Frame
from mtdepth_ros.evaluation.class_errors import SOURCES, ClassDepthErrors
from mtdepth_ros.evaluation.protocols import get_protocol
from mtdepth_ros.evaluation.scoring import Scorer


def test_each_class_pools_its_own_pixels() -> None:
    errors = ClassDepthErrors(3)
    gt = np.array([10.0, 10.0, 20.0, 5.0])
    pred = np.array([12.0, 8.0, 20.0, 10.0])
    errors.update(pred, gt, np.array([0, 0, 1, 255]), SOURCES[0])  # 255: ignored
    result = errors.result(['road', 'car', 'sky'])
    assert result['source'] == 'ground truth labels'
    assert list(result['classes']) == ['road', 'car']  # most pixels first, none for sky
    road = result['classes']['road']
    assert road['pixels'] == 2 and road['abs_rel'] == pytest.approx(0.2)
    assert road['d1'] == pytest.approx(0.5)  # 10 / 8 = 1.25 is not below 1.25
    assert road['rmse'] == pytest.approx(2.0)
    assert road['log_ratio'] == pytest.approx((math.log(1.2) + math.log(0.8)) / 2)
    assert road['gt_mean_m'] == pytest.approx(10.0) and road['pred_mean_m'] == pytest.approx(10.0)
    assert road['abs_rel_share'] == pytest.approx(1.0)  # the car's pixel has no error
    assert result['classes']['car'] == {'pixels': 1, 'abs_rel': 0.0, 'd1': 1.0, 'rmse': 0.0,
                                        'log_ratio': 0.0, 'abs_rel_share': 0.0,
                                        'gt_mean_m': 20.0, 'pred_mean_m': 20.0}


def test_the_shares_say_which_class_carries_the_error() -> None:
    errors = ClassDepthErrors(2)
    # road: 9 pixels 20 % off; building: 1 pixel 100 % off, the larger AbsRel but the
    # smaller part of the pooled error (1.8 of 2.8)
    gt = np.full(10, 10.0)
    pred = np.array([12.0] * 9 + [20.0])
    errors.update(pred, gt, np.array([0] * 9 + [1]), SOURCES[0])
    classes = errors.result(['road', 'building'])['classes']
    assert classes['building']['abs_rel'] > classes['road']['abs_rel']
    assert classes['road']['abs_rel_share'] == pytest.approx(1.8 / 2.8)
    assert classes['building']['abs_rel_share'] == pytest.approx(1.0 / 2.8)
    assert classes['building']['pred_mean_m'] == pytest.approx(20.0)


def test_the_log_ratio_says_too_far_or_too_near() -> None:
    errors = ClassDepthErrors(2)
    gt = np.full(4, 10.0)
    errors.update(np.array([20.0, 20.0, 5.0, 5.0]), gt, np.array([0, 0, 1, 1]), SOURCES[1])
    classes = errors.result(['building', 'fence'])['classes']
    assert classes['building']['log_ratio'] > 0 > classes['fence']['log_ratio']
    assert classes['building']['abs_rel'] == pytest.approx(1.0)
    assert classes['fence']['abs_rel'] == pytest.approx(0.5)


def test_bad_source_and_names_are_refused() -> None:
    errors = ClassDepthErrors(2)
    with pytest.raises(ValueError, match='source'):
        errors.update(np.ones(1), np.ones(1), np.zeros(1, int), 'guess')
    with pytest.raises(ValueError, match='class names'):
        errors.result(['road'])


def frame(labels: np.ndarray | None) -> Frame:
    depth = np.array([[10.0, 10.0, 20.0, np.nan]], np.float32)
    return Frame(index=0, stamp_ns=0, log_time_ns=0, frame_id='cam',
                 rgb=np.zeros((1, 4, 3), np.uint8), depth=depth, labels=labels)


def test_the_scorer_counts_by_ground_truth_labels_when_the_classes_match() -> None:
    scorer = Scorer(get_protocol('raw'), (0, 80), plot_max_m=80.0, num_classes=2)
    predicted = np.array([[1, 1, 1, 1]], np.uint8)  # the model calls every pixel class 1
    scorer.add(frame(np.array([[0, 0, 1, 1]], np.uint8)), np.full((1, 4), 15.0, np.float32),
               predicted)
    result = scorer.depth_summary(['road', 'car'])['per_class']
    assert result['source'] == 'ground truth labels'
    assert result['classes']['road']['pixels'] == 2 and result['classes']['car']['pixels'] == 1
    assert result['classes']['road']['abs_rel'] == pytest.approx(0.5)


@pytest.mark.parametrize('score_segmentation', [True, False])
def test_without_usable_labels_the_models_own_segmentation_counts(
        score_segmentation: bool) -> None:
    scorer = Scorer(get_protocol('raw'), (0, 80), plot_max_m=80.0, num_classes=2,
                    score_segmentation=score_segmentation)
    truth = np.array([[0, 0, 1, 1]], np.uint8) if not score_segmentation else None
    scorer.add(frame(truth), np.full((1, 4), 15.0, np.float32), np.array([[1, 0, 1, 0]], np.uint8))
    result = scorer.depth_summary(['road', 'car'])['per_class']
    assert result['source'] == "the model's segmentation"  # labels of other classes: not used
    assert result['classes']['car']['pixels'] == 2 and result['classes']['road']['pixels'] == 1


def test_no_classes_no_table() -> None:
    scorer = Scorer(get_protocol('raw'), (0, 80), plot_max_m=80.0)
    scorer.add(frame(None), np.full((1, 4), 15.0, np.float32), None)
    assert 'per_class' not in scorer.depth_summary(['road'])
