"""Depth and segmentation metrics in numpy, per frame and accumulated over many frames.

Depth metrics (``pred`` and ``gt`` in metres; ``e = ln(pred) - ln(gt)``):

======== ================================================ =========
key      definition                                       unit
======== ================================================ =========
silog    ``100 * sqrt(mean(e^2) - mean(e)^2)``            log(m)*100 (KITTI benchmark)
abs_rel  ``mean(|pred - gt| / gt)``                       fraction
sq_rel   ``mean((pred - gt)^2 / gt)`` (Eigen et al.)      m
rmse     ``sqrt(mean((pred - gt)^2))``                    m
rmse_log ``sqrt(mean(e^2))``                              ln(m)
log10    ``mean(|log10(pred) - log10(gt)|)``              log10(m)
mae      ``mean(|pred - gt|)``                            m
d1 d2 d3 ``mean(max(pred/gt, gt/pred) < 1.25^k)``         fraction
======== ================================================ =========

and, for the KITTI depth prediction benchmark (``BENCHMARK_METRICS``):
``sq_err_rel = mean(((pred - gt) / gt)^2)`` (fraction; the devkit's "squared
relative"), ``irmse = sqrt(mean((1/pred - 1/gt)^2))`` and ``imae`` in 1/km.

A pixel is scored where ``gt`` is finite and > 0 (0, NaN and negative depth
are "no measurement"), ``mask`` (if given) is true, and ``pred`` is finite and
> 0. Pixels with ground truth but no usable prediction are not scored and are
counted as ``missing`` by the accumulator; the benchmark protocols
(:mod:`mtdepth_ros.evaluation.protocols`) decide beforehand what a missing prediction
becomes (clamped to the range, or filled as the KITTI devkit does).

Every depth metric is a function of a few per-pixel sums (:data:`SUM_TERMS`),
so sums pooled over frames give exactly the metric of one big frame made of
all their pixels. Published benchmarks instead average per-image metrics;
:class:`DepthAccumulator` keeps both. Segmentation metrics come from one
confusion matrix accumulated over all frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mtdepth_ros.conversions.labels import IGNORE_INDEX

DEPTH_METRICS = ('silog', 'abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10', 'mae', 'd1', 'd2', 'd3')
BENCHMARK_METRICS = ('sq_err_rel', 'irmse', 'imae')
ALL_DEPTH_METRICS = DEPTH_METRICS + BENCHMARK_METRICS
SEGMENTATION_METRICS = ('miou', 'per_class_iou', 'pixel_accuracy')

DELTA_BASE = 1.25  # threshold accuracy: max(pred/gt, gt/pred) < 1.25^k
SILOG_SCALE = 100.0  # the KITTI benchmark reports SILog in log(m) * 100
INVERSE_KM = 1000.0  # 1/m -> 1/km for iRMSE and iMAE
ALL_RANGE = 'all'  # the key of the whole-image entry in per-range results
# A frame whose AbsRel is this many times the median frame's (and above OUTLIER_FLOOR) is
# one no model can score: a per-image mean is then largely that frame's (a generated
# validation frame with its camera inside a tree crown once carried 0.09 of a 0.24 mean;
# docs/training.md). See outlier_frames.
OUTLIER_FACTOR = 10.0
OUTLIER_FLOOR = 1.0

# Per-pixel terms whose sums determine every depth metric (see metrics_from_sums).
SUM_TERMS = ('count', 'log_err', 'log_err_sq', 'abs_rel', 'sq_rel', 'sq_err', 'abs_err',
             'abs_log10', 'sq_err_rel', 'inv_err_sq', 'inv_abs_err', 'delta1', 'delta2', 'delta3')
_TERM = {name: i for i, name in enumerate(SUM_TERMS)}


def valid_depth(depth: np.ndarray) -> np.ndarray:
    """Where a depth map holds a measurement: finite and > 0."""
    depth = np.asarray(depth)
    with np.errstate(invalid='ignore'):
        return np.isfinite(depth) & (depth > 0)


def _check_pair(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f'prediction shape {pred.shape} does not match ground truth {gt.shape}')
    if mask is not None and mask.shape != gt.shape:
        raise ValueError(f'mask shape {mask.shape} does not match ground truth {gt.shape}')


def _scored(pred: np.ndarray, gt: np.ndarray,
            mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(gt has a measurement inside the mask, and pred is usable there) as two bool maps."""
    has_gt = valid_depth(gt)
    if mask is not None:
        has_gt &= np.asarray(mask, dtype=bool)
    return has_gt, has_gt & valid_depth(pred)


def pixel_terms(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(len(SUM_TERMS), N) float64 per-pixel terms for N valid (pred, gt) pairs."""
    p = np.asarray(pred, dtype=np.float64).ravel()
    g = np.asarray(gt, dtype=np.float64).ravel()
    terms = np.empty((len(SUM_TERMS), p.size), dtype=np.float64)
    ratio = p / g
    err = p - g
    log_err = terms[_TERM['log_err']]
    np.log(ratio, out=log_err)  # ln(pred) - ln(gt) with one logarithm
    terms[_TERM['count']] = 1.0
    np.square(log_err, out=terms[_TERM['log_err_sq']])
    # |log10(pred) - log10(gt)| = |ln(pred / gt)| / ln(10)
    np.divide(np.abs(log_err), math.log(10.0), out=terms[_TERM['abs_log10']])
    np.abs(ratio - 1.0, out=terms[_TERM['abs_rel']])
    np.square(terms[_TERM['abs_rel']], out=terms[_TERM['sq_err_rel']])
    np.square(err, out=terms[_TERM['sq_err']])
    np.divide(terms[_TERM['sq_err']], g, out=terms[_TERM['sq_rel']])
    np.abs(err, out=terms[_TERM['abs_err']])
    # 1/pred - 1/gt = (gt - pred) / (pred gt), in 1/km
    inv_abs = terms[_TERM['inv_abs_err']]
    np.divide(terms[_TERM['abs_err']], p * g, out=inv_abs)
    inv_abs *= INVERSE_KM
    np.square(inv_abs, out=terms[_TERM['inv_err_sq']])
    thresh = np.maximum(ratio, 1.0 / ratio)
    for k in (1, 2, 3):
        terms[_TERM[f'delta{k}']] = thresh < DELTA_BASE ** k
    return terms


def _select(pred: np.ndarray, gt: np.ndarray,
            mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
    """(scored pred values, scored gt values, ground-truth pixels in the mask)."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    _check_pair(pred, gt, mask)
    has_gt, scored = _scored(pred, gt, mask)
    return (pred[scored].astype(np.float64), gt[scored].astype(np.float64),
            int(np.count_nonzero(has_gt)))


def depth_sums(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(len(SUM_TERMS),) float64 sums of the per-pixel terms over the scored pixels."""
    p, g, _ = _select(pred, gt, mask)
    return pixel_terms(p, g).sum(axis=1)


def metrics_from_sums(sums: np.ndarray,
                      keys: Sequence[str] = DEPTH_METRICS) -> dict[str, float]:
    """Depth metrics from summed per-pixel terms; NaN for every metric when nothing was scored."""
    unknown = set(keys) - set(ALL_DEPTH_METRICS)
    if unknown:
        raise ValueError(f'unknown depth metrics {sorted(unknown)}; known: {ALL_DEPTH_METRICS}')
    s = dict(zip(SUM_TERMS, np.asarray(sums, dtype=np.float64).tolist()))
    n = s['count']
    if n <= 0:
        return {key: math.nan for key in keys}
    mean = {name: value / n for name, value in s.items()}
    # Rounding can make a zero variance slightly negative.
    variance = max(mean['log_err_sq'] - mean['log_err'] ** 2, 0.0)
    values = {
        'silog': SILOG_SCALE * math.sqrt(variance),
        'abs_rel': mean['abs_rel'],
        'sq_rel': mean['sq_rel'],
        'rmse': math.sqrt(mean['sq_err']),
        'rmse_log': math.sqrt(mean['log_err_sq']),
        'log10': mean['abs_log10'],
        'mae': mean['abs_err'],
        'd1': mean['delta1'],
        'd2': mean['delta2'],
        'd3': mean['delta3'],
        'sq_err_rel': mean['sq_err_rel'],
        'irmse': math.sqrt(mean['inv_err_sq']),
        'imae': mean['inv_abs_err'],
    }
    return {key: values[key] for key in keys}


def depth_metrics(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None,
                  keys: Sequence[str] = DEPTH_METRICS) -> dict[str, float]:
    """Depth metrics of one frame (``DEPTH_METRICS`` by default; see the module docstring).

    ``pred`` and ``gt`` are (H, W) metres; NaN for every metric when no pixel is scored.
    """
    return metrics_from_sums(depth_sums(pred, gt, mask), keys)


def range_labels(edges: Sequence[float]) -> list[str]:
    """Readable names of the depth ranges [edges[i], edges[i+1]), e.g. '10-20 m', '80+ m'."""
    def fmt(x: float) -> str:
        return f'{x:g}'
    return [f'{fmt(lo)}+ m' if math.isinf(hi) else f'{fmt(lo)}-{fmt(hi)} m'
            for lo, hi in zip(edges[:-1], edges[1:])]


def _check_edges(edges: Sequence[float]) -> np.ndarray:
    array = np.asarray(edges, dtype=np.float64)
    if array.ndim != 1 or array.size < 2 or np.any(np.diff(array) <= 0) or np.isnan(array).any():
        raise ValueError(f'depth range edges must be >= 2 increasing numbers, got {list(edges)}')
    return array


def depth_sums_by_range(pred: np.ndarray, gt: np.ndarray, edges: Sequence[float] = (),
                        mask: np.ndarray | None = None) -> np.ndarray:
    """(1 + len(edges) - 1, len(SUM_TERMS)) sums: row 0 all pixels, then one row per range.

    A pixel belongs to the range of its ground-truth depth, [edges[i], edges[i+1]);
    pixels outside every range still count in row 0.
    """
    p, g, _ = _select(pred, gt, mask)
    return _range_sums(p, g, edges)


def _range_sums(p: np.ndarray, g: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """depth_sums_by_range of already selected (scored) values."""
    terms = pixel_terms(p, g)  # (T, N)
    n_ranges = max(len(edges) - 1, 0)
    sums = np.zeros((1 + n_ranges, len(SUM_TERMS)), dtype=np.float64)
    sums[0] = terms.sum(axis=1)
    if n_ranges:
        bounds = _check_edges(edges)
        # Row 1 + i for range i; out-of-range pixels go to a spill row that is dropped.
        index = np.searchsorted(bounds, g, side='right')  # 0 below, n_ranges + 1 above
        index = np.where((index >= 1) & (index <= n_ranges), index, n_ranges + 1)
        for t in range(len(SUM_TERMS)):
            sums[1:, t] = np.bincount(index, weights=terms[t], minlength=n_ranges + 2)[1:-1]
    return sums


def depth_metrics_by_range(pred: np.ndarray, gt: np.ndarray, edges: Sequence[float] = (),
                           mask: np.ndarray | None = None,
                           keys: Sequence[str] = DEPTH_METRICS) -> dict[str, dict[str, float]]:
    """``{'all': metrics, '0-10 m': metrics, ...}`` for one frame; ranges by ground-truth depth."""
    sums = depth_sums_by_range(pred, gt, edges, mask)
    names = [ALL_RANGE] + (range_labels(edges) if len(edges) > 1 else [])
    return {name: metrics_from_sums(row, keys) for name, row in zip(names, sums)}


class DepthAccumulator:
    """Depth metrics over many frames, overall and per ground-truth depth range.

    It accumulates two things:

    - ``pooled``: the per-pixel sums of every frame added up, so the result is
      exactly that of one frame holding all pixels (every metric here allows it).
    - ``per_image``: the sum of each frame's metrics and the number of frames
      that had scored pixels, per range; their ratio is the per-image average
      that KITTI and NYU publications report. A frame with no scored pixel in a
      range does not count for that range.

    It also counts ``frames``, ``empty_frames`` (no scored pixel at all) and
    ``missing`` pixels (ground truth present, prediction not usable).
    """

    def __init__(self, edges: Sequence[float] = (), keys: Sequence[str] = DEPTH_METRICS) -> None:
        if len(edges):
            _check_edges(edges)
        self.edges = tuple(float(e) for e in edges)
        self.keys = tuple(keys)
        self.ranges = [ALL_RANGE] + (range_labels(self.edges) if self.edges else [])
        self.sums = np.zeros((len(self.ranges), len(SUM_TERMS)), dtype=np.float64)
        self.image_totals = np.zeros((len(self.ranges), len(self.keys)), dtype=np.float64)
        self.image_counts = np.zeros(len(self.ranges), dtype=np.int64)
        self.frames = 0
        self.empty_frames = 0
        self.missing = 0
        self.gt_pixels = 0

    def update(self, pred: np.ndarray, gt: np.ndarray,
               mask: np.ndarray | None = None) -> dict[str, dict[str, float]]:
        """Add one frame; return its own metrics per range (NaN where nothing was scored)."""
        p, g, gt_pixels = _select(pred, gt, mask)
        sums = _range_sums(p, g, self.edges)
        frame = {name: metrics_from_sums(row, self.keys) for name, row in zip(self.ranges, sums)}
        self.sums += sums
        for r, name in enumerate(self.ranges):
            if sums[r, _TERM['count']] > 0:
                self.image_totals[r] += [frame[name][key] for key in self.keys]
                self.image_counts[r] += 1
        self.frames += 1
        self.empty_frames += int(sums[0, _TERM['count']] == 0)
        self.gt_pixels += gt_pixels
        self.missing += gt_pixels - p.size
        return frame

    def pooled(self) -> dict[str, dict[str, float]]:
        """Metrics of all scored pixels of all frames taken together, per range."""
        return {name: metrics_from_sums(row, self.keys) for name, row in zip(self.ranges, self.sums)}

    def per_image(self) -> dict[str, dict[str, float]]:
        """The mean over frames of each frame's metrics, per range (NaN for an empty range)."""
        result = {}
        for r, name in enumerate(self.ranges):
            count = self.image_counts[r]
            means = self.image_totals[r] / count if count else np.full(len(self.keys), np.nan)
            result[name] = dict(zip(self.keys, means.tolist()))
        return result

    def pixel_counts(self) -> dict[str, int]:
        """Scored pixels per range."""
        return {name: int(row[_TERM['count']]) for name, row in zip(self.ranges, self.sums)}

    def result(self, averaging: str = 'image') -> dict[str, dict[str, float]]:
        """``per_image()`` for averaging='image', ``pooled()`` for 'pixel'."""
        if averaging == 'image':
            return self.per_image()
        if averaging == 'pixel':
            return self.pooled()
        raise ValueError(f"averaging must be 'image' or 'pixel', got {averaging!r}")


def outlier_frames(abs_rel: Sequence[float], factor: float = OUTLIER_FACTOR,
                   floor: float = OUTLIER_FLOOR) -> list[int]:
    """Indices of the frames whose AbsRel is over ``factor`` times the median frame's and
    over ``floor``: frames no model can score (NaN frames, with nothing scored, skipped)."""
    values = np.asarray(abs_rel, dtype=np.float64)
    scored = np.isfinite(values)
    if scored.sum() < 3:
        return []
    limit = max(factor * float(np.median(values[scored])), floor)
    return np.flatnonzero(scored & (values > limit)).tolist()


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """(num_classes, num_classes) int64 pixel counts; rows ground truth, columns prediction.

    Pixels whose ground truth is ``ignore_index`` are left out. A class id
    outside [0, num_classes) elsewhere is an error: the model and the labels
    do not share one class list.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    _check_pair(pred, gt, None)
    if num_classes < 1:
        raise ValueError(f'num_classes must be >= 1, got {num_classes}')
    keep = gt != ignore_index
    g = gt[keep].astype(np.int64)
    p = pred[keep].astype(np.int64)
    for name, ids in (('ground truth', g), ('prediction', p)):
        bad = (ids < 0) | (ids >= num_classes)
        if bad.any():
            raise ValueError(
                f'{name} has class ids {sorted(set(ids[bad].tolist()))[:10]} outside '
                f'[0, {num_classes}) (ignore index {ignore_index})')
    counts = np.bincount(g * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def metrics_from_confusion(matrix: np.ndarray) -> dict[str, Any]:
    """mIoU, per-class IoU and pixel accuracy of a confusion matrix.

    A class's IoU is NaN when it appears in neither ground truth nor
    prediction; mIoU is the mean over the other classes ("classes present").
    A class only predicted (never in ground truth) has IoU 0 and counts.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - tp
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = np.where(union > 0, tp / union, np.nan)
    total = matrix.sum()
    present = ~np.isnan(iou)
    return {
        'miou': float(iou[present].mean()) if present.any() else math.nan,
        'per_class_iou': iou.tolist(),
        'pixel_accuracy': float(tp.sum() / total) if total > 0 else math.nan,
    }


def segmentation_metrics(pred: np.ndarray, gt: np.ndarray, num_classes: int,
                         ignore_index: int = IGNORE_INDEX) -> dict[str, Any]:
    """``{'miou', 'per_class_iou' (list, NaN = absent), 'pixel_accuracy'}`` of one frame."""
    return metrics_from_confusion(confusion_matrix(pred, gt, num_classes, ignore_index))


class SegmentationAccumulator:
    """One confusion matrix over all frames (the standard: per-image mIoU averages read lower)."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.frames = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> dict[str, Any]:
        """Add one frame; return its own metrics."""
        matrix = confusion_matrix(pred, gt, self.num_classes, self.ignore_index)
        self.confusion += matrix
        self.frames += 1
        return metrics_from_confusion(matrix)

    def result(self) -> dict[str, Any]:
        return metrics_from_confusion(self.confusion)
