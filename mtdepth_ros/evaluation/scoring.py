"""Scoring a stream of frames: accumulators, per-frame rows, plot data and skip reasons.

The same :class:`Scorer` serves offline replay (predictions from the
Predictor) and live replay (predictions the node published), so both modes
report identical numbers for identical predictions.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtdepth_ros.conversions.geometry import Region
from mtdepth_ros.evaluation.bag_reader import Frame
from mtdepth_ros.evaluation.class_errors import (
    GROUND_TRUTH_SOURCE,
    MODEL_SOURCE,
    ClassDepthErrors,
)
from mtdepth_ros.evaluation.metrics import (
    ALL_DEPTH_METRICS,
    ALL_RANGE,
    DELTA_BASE,
    DepthAccumulator,
    SegmentationAccumulator,
)
from mtdepth_ros.evaluation.protocols import Protocol, prepare_depth, prepare_labels

DISTANCE_BINS = 40  # error-vs-distance plot resolution
DISTANCE_TERMS = ('abs_err', 'abs_rel', 'sq_err', 'delta1')  # summed per distance bin
DISTANCE_KEYS = ('mae', 'abs_rel', 'rmse', 'd1')  # the metric each term gives
HISTOGRAM_BINS = 101  # signed relative error (pred - gt) / gt
HISTOGRAM_LIMIT = 1.0  # +-100 %; beyond goes into the end bins
DEFAULT_OUTDOOR_STEP_M = 10.0  # range tables every 10 m outdoors ...
DEFAULT_INDOOR_STEP_M = 1.0  # ... and every 1 m indoors
INDOOR_LIMIT_M = 20.0  # a depth coding that ends below this is "indoor"


def default_range_edges(d_max: float) -> tuple[float, ...]:
    """Range table edges for a model whose depth ends at ``d_max`` metres."""
    step = DEFAULT_INDOOR_STEP_M if d_max <= INDOOR_LIMIT_M else DEFAULT_OUTDOOR_STEP_M
    top = math.ceil(d_max / step) * step
    return tuple(float(x) for x in np.arange(0.0, top + step / 2, step))


@dataclass
class FrameResult:
    """One frame's row of the per-frame CSV."""

    index: int
    stamp_s: float
    status: str = 'scored'  # 'scored', 'no ground truth', 'skipped: <reason>'
    depth: dict[str, float] = field(default_factory=dict)  # 'all' range metrics
    depth_pixels: int = 0
    missing_pixels: int = 0
    median_scale: float = math.nan
    segmentation: dict[str, float] = field(default_factory=dict)  # miou, pixel_accuracy
    timing: dict[str, float] = field(default_factory=dict)  # inference_s, latency_s, ...
    notes: list[str] = field(default_factory=list)


@dataclass
class Aligned:
    """What the panel and plot code needs of one scored frame."""

    frame: Frame
    depth_pred: np.ndarray | None = None  # (H, W) on the ground-truth grid, after the protocol
    depth_gt: np.ndarray | None = None
    depth_mask: np.ndarray | None = None
    labels_pred: np.ndarray | None = None
    labels_gt: np.ndarray | None = None


class Scorer:
    """Accumulates every number the report shows."""

    def __init__(self, protocol: Protocol, range_edges: Sequence[float], plot_max_m: float,
                 num_classes: int = 0, ignore_index: int = 255,
                 score_segmentation: bool = True, near_limit: float | None = None) -> None:
        self.protocol = protocol
        # the model's near limit (its card's, before focal correction): -inf scores as it
        self.near_limit = near_limit
        self.depth = DepthAccumulator(range_edges, keys=ALL_DEPTH_METRICS)
        self.distance_edges = np.linspace(0.0, plot_max_m, DISTANCE_BINS + 1)
        # per distance bin: pixels, then the sums of DISTANCE_TERMS
        self.distance_sums = np.zeros((DISTANCE_BINS, 1 + len(DISTANCE_TERMS)), np.float64)
        self.histogram_edges = np.linspace(-HISTOGRAM_LIMIT, HISTOGRAM_LIMIT, HISTOGRAM_BINS + 1)
        self.histogram = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        self.segmentation = SegmentationAccumulator(num_classes, ignore_index) \
            if num_classes and score_segmentation else None
        self.class_errors = ClassDepthErrors(num_classes) if num_classes else None
        self.ignore_index = ignore_index
        self.rows: list[FrameResult] = []
        self.skipped: Counter[str] = Counter()  # reason -> frames not scored at all
        self.segmentation_errors: Counter[str] = Counter()
        self.median_scales: list[float] = []

    def skip(self, frame_index: int, stamp_s: float, reason: str) -> None:
        """A frame that could not be scored at all (no prediction, decode failure, ...)."""
        self.skipped[reason] += 1
        self.rows.append(FrameResult(index=frame_index, stamp_s=stamp_s,
                                     status=f'skipped: {reason}'))

    def add(self, frame: Frame, depth: np.ndarray | None, labels: np.ndarray | None,
            timing: dict[str, float] | None = None, region: Region | None = None,
            depth_scale: float = 1.0) -> tuple[FrameResult, Aligned]:
        """Score one frame's prediction (depth metres / class ids at any resolution).

        ``region``: the part of the frame's image the maps cover (the
        Prediction's; None = all of it). Ground truth is taken to be on the
        image's pixel grid; where its size differs, a region cannot be placed
        and that ground truth is not scored (a note says so). ``depth_scale``: the
        focal correction the depth carries (:attr:`Prediction.depth_scale`), which
        moves the near limit with it.
        """
        row = FrameResult(index=frame.index, stamp_s=frame.stamp_s, timing=dict(timing or {}),
                          notes=list(frame.notes))
        aligned = Aligned(frame=frame)
        if depth is not None and frame.depth is not None and \
                self._placeable(region, frame, frame.depth, row):
            scored = self._add_depth(depth, frame.depth, row, aligned, region, depth_scale)
            self._add_class_errors(frame, labels, aligned, region, scored)
        if labels is not None and frame.labels is not None and self.segmentation is not None \
                and self._placeable(region, frame, frame.labels, row):
            self._add_labels(labels, frame.labels, row, aligned, region)
        if not row.depth and not row.segmentation:
            row.status = 'no ground truth'
        self.rows.append(row)
        return row, aligned

    @staticmethod
    def _placeable(region: Region | None, frame: Frame, truth: np.ndarray,
                   row: FrameResult) -> bool:
        if region is None or truth.shape[:2] == frame.rgb.shape[:2]:
            return True
        row.notes.append(f'ground truth of {truth.shape[0]}x{truth.shape[1]} is not on the '
                         f'{frame.rgb.shape[0]}x{frame.rgb.shape[1]} image grid that the '
                         f'prediction region {region} refers to: not scored')
        return False

    def _add_depth(self, pred: np.ndarray, gt: np.ndarray, row: FrameResult,
                   aligned: Aligned, region: Region | None, depth_scale: float) -> np.ndarray:
        """Score one frame's depth; the mask of the pixels scored (on the aligned grid)."""
        near = None if self.near_limit is None else self.near_limit * depth_scale
        prepared = prepare_depth(pred, gt, self.protocol, region, near)
        frame_metrics = self.depth.update(prepared.pred, prepared.gt, prepared.mask)
        scored = prepared.mask & np.isfinite(prepared.pred) & (prepared.pred > 0)
        g = prepared.gt[scored].astype(np.float64)
        p = prepared.pred[scored].astype(np.float64)
        self._add_distance(p, g)
        relative = np.clip((p - g) / g, -HISTOGRAM_LIMIT, HISTOGRAM_LIMIT)
        self.histogram += np.histogram(relative, bins=self.histogram_edges)[0]
        row.depth = frame_metrics[ALL_RANGE]
        row.depth_pixels = int(scored.sum())
        row.missing_pixels = int(prepared.mask.sum() - scored.sum())
        if self.protocol.median_scaling:
            row.median_scale = prepared.scale
            self.median_scales.append(prepared.scale)
        if row.depth_pixels == 0:
            row.depth = {}
            row.notes.append('no depth pixel passes the protocol (crop, cap)')
        aligned.depth_pred, aligned.depth_gt = prepared.pred, prepared.gt
        aligned.depth_mask = prepared.mask
        return scored

    def _add_class_errors(self, frame: Frame, labels: np.ndarray | None, aligned: Aligned,
                          region: Region | None, scored: np.ndarray) -> None:
        """Depth error by class: the ground truth's labels where they share the card's classes
        and the depth's grid, else the model's own segmentation (class_errors module)."""
        if self.class_errors is None or aligned.depth_pred is None:
            return
        assert frame.depth is not None and aligned.depth_gt is not None
        grid = frame.depth.shape[:2]
        truth = frame.labels if self.segmentation is not None and frame.labels is not None \
            and frame.labels.shape[:2] == grid else None
        if truth is None and labels is None:
            return
        blank = np.full(grid, self.ignore_index, np.uint8)
        predicted, reference = prepare_labels(labels if labels is not None else blank,
                                              truth if truth is not None else blank,
                                              self.protocol, region, self.ignore_index)
        classes, source = ((reference, GROUND_TRUTH_SOURCE) if truth is not None
                           else (predicted, MODEL_SOURCE))
        if classes.shape != aligned.depth_gt.shape:  # a grid the depth protocol cut otherwise
            return
        self.class_errors.update(aligned.depth_pred[scored], aligned.depth_gt[scored],
                                 classes[scored], source)

    def _add_distance(self, p: np.ndarray, g: np.ndarray) -> None:
        """Pooled error sums per fine ground-truth distance bin (beyond the last: dropped)."""
        top = self.distance_edges[-1]
        index = np.minimum((g / top * DISTANCE_BINS).astype(np.intp), DISTANCE_BINS)
        err = p - g
        weights = (np.ones_like(g), np.abs(err), np.abs(err) / g, err ** 2,
                   np.maximum(p / g, g / p) < DELTA_BASE)
        for column, values in enumerate(weights):
            self.distance_sums[:, column] += np.bincount(
                index, weights=values, minlength=DISTANCE_BINS + 1)[:DISTANCE_BINS]

    def _add_labels(self, pred: np.ndarray, gt: np.ndarray, row: FrameResult,
                    aligned: Aligned, region: Region | None) -> None:
        assert self.segmentation is not None
        pred_aligned, gt_aligned = prepare_labels(pred, gt, self.protocol, region,
                                                  self.segmentation.ignore_index)
        try:
            result = self.segmentation.update(pred_aligned, gt_aligned)
        except ValueError as error:
            self.segmentation_errors[str(error)] += 1
            row.notes.append(f'labels not scored: {error}')
            return
        row.segmentation = {'miou': result['miou'], 'pixel_accuracy': result['pixel_accuracy']}
        aligned.labels_pred, aligned.labels_gt = pred_aligned, gt_aligned

    @property
    def frames_with_depth(self) -> int:
        return sum(1 for row in self.rows if row.depth)

    @property
    def frames_with_labels(self) -> int:
        return sum(1 for row in self.rows if row.segmentation)

    def depth_summary(self, class_names: Sequence[str] = ()) -> dict[str, Any]:
        """The depth figures; with the card's ``class_names``, also the error per class."""
        acc = self.depth
        headline = acc.result(self.protocol.averaging)
        summary: dict[str, Any] = {
            'averaging': self.protocol.averaging,
            'headline_metrics': list(self.protocol.metrics),
            'headline': {k: headline[ALL_RANGE][k] for k in self.protocol.metrics},
            'per_image': acc.per_image(),
            'pooled': acc.pooled(),
            'pixels': acc.pixel_counts(),
            'frames_per_range': dict(zip(acc.ranges, acc.image_counts.tolist())),
            'frames_scored': self.frames_with_depth,
            'ground_truth_pixels': acc.gt_pixels,
            'missing_prediction_pixels': acc.missing,
        }
        if self.median_scales:
            scales = np.asarray(self.median_scales)
            summary['median_scale'] = {'median': float(np.median(scales)),
                                       'std_over_median': float(np.std(scales / np.median(scales)))}
        if self.class_errors is not None and self.class_errors.sources and class_names:
            summary['per_class'] = self.class_errors.result(class_names)
        return summary

    def segmentation_summary(self, class_names: Sequence[str]) -> dict[str, Any] | None:
        if self.segmentation is None:
            return None
        result = self.segmentation.result()
        names = list(class_names) or [str(i) for i in range(self.segmentation.num_classes)]
        return {
            'miou': result['miou'],
            'pixel_accuracy': result['pixel_accuracy'],
            'per_class_iou': dict(zip(names, result['per_class_iou'])),
            'frames_scored': self.frames_with_labels,
            'pixels': int(self.segmentation.confusion.sum()),
            'errors': dict(self.segmentation_errors),
        }

    def distance_curve(self) -> dict[str, list[float]]:
        """Pooled error per fine ground-truth distance bin, for the error-vs-distance plot."""
        edges = self.distance_edges
        count = self.distance_sums[:, 0]
        with np.errstate(invalid='ignore', divide='ignore'):
            means = self.distance_sums[:, 1:] / count[:, None]  # NaN for empty bins
        curve: dict[str, list[float]] = {
            'centre_m': ((edges[:-1] + edges[1:]) / 2).tolist(), 'pixels': count.tolist()}
        for column, term in enumerate(DISTANCE_TERMS):
            values = np.sqrt(means[:, column]) if term == 'sq_err' else means[:, column]
            curve[DISTANCE_KEYS[column]] = values.tolist()
        return curve
