"""Benchmark protocols: which pixels count and what a prediction becomes before scoring.

Published depth numbers differ by exactly these choices, so each protocol is a
named, frozen set of them, and the report writes every choice down
(:meth:`Protocol.describe`). Sources (read, not copied):

- KITTI Eigen split: Garg crop fractions and ``1e-3 < gt < 80`` from
  monodepth2 ``evaluate_depth.py``; clamping of predictions and non-finite
  values (NaN -> min, inf -> max), the Eigen crop fractions and the KB crop
  from BTS / AdaBins ``evaluate.py``; per-image averaging in all of them.
- KITTI depth prediction benchmark: the devkit's ``cpp/evaluate_depth.cpp``
  (valid where gt > 0, no crop, no cap, metrics per image then averaged) and
  ``io_depth.h`` ``DepthImage::interpolateBackground`` (missing prediction
  pixels are filled before scoring, see :func:`devkit_fill`).
- NYU v2: Eigen crop rows 45:471, columns 41:601 of the 480x640 image,
  ``1e-3 < gt < 10`` (BTS, AdaBins).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtdepth_ros.conversions.geometry import (
    KB_CROP_SIZE,
    Region,
    kb_crop_region,
    resize_depth_bilinear,
    resize_labels,
)
from mtdepth_ros.conversions.labels import IGNORE_INDEX
from mtdepth_ros.evaluation.metrics import ALL_DEPTH_METRICS, DEPTH_METRICS

# Crop boxes as (top, bottom, left, right) fractions of the ground-truth frame,
# each bound truncated to an integer pixel index as the reference code does.
GARG_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
EIGEN_CROP_KITTI = (0.3324324, 0.91351351, 0.0359477, 0.96405229)
# NYU's Eigen crop is given in pixels of the 480x640 frame; other sizes scale it.
NYU_EIGEN_CROP_PX = (45, 471, 41, 601)
NYU_FRAME = (480, 640)
CROPS = ('none', 'garg', 'eigen', 'nyu_eigen')

GT_FRAMES = ('full', 'kb_crop')
# What part of the input image the model sees (BTS's do_kb_crop: its KB crop); the
# prediction then carries that region, and scoring places it there.
INPUT_CROPS = ('none', 'kb_crop')
# A KITTI depth PNG holds metres * 256 in 16 bits: the far and near ends a submission can write.
PNG_DEPTH_STEP = 1.0 / 256.0
PNG_DEPTH_MAX = 65535.0 / 256.0

# What happens to prediction pixels that are NaN, infinite or <= 0.
MISSING_POLICIES = ('clamp', 'devkit_fill', 'ignore')
AVERAGING = ('image', 'pixel')

KITTI_RANGES = (0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0)
NYU_RANGES = tuple(float(d) for d in range(11))
KITTI_BENCHMARK_METRICS = ('silog', 'sq_err_rel', 'abs_rel', 'irmse', 'imae', 'mae', 'rmse',
                           'rmse_log')


@dataclass(frozen=True)
class Protocol:
    """One set of evaluation choices; see :data:`PROTOCOLS` for the named ones."""

    name: str
    min_depth: float = 0.0  # ground truth counts where min_depth < gt (< max_depth)
    max_depth: float | None = None  # None: no cap
    crop: str = 'none'  # one of CROPS
    gt_frame: str = 'full'  # crop fractions apply to the full gt frame or its KB crop
    input_crop: str = 'none'  # one of INPUT_CROPS: the model sees the whole image or its KB crop
    missing: str = 'ignore'  # one of MISSING_POLICIES
    averaging: str = 'image'  # headline numbers: mean of per-image metrics, or pooled pixels
    median_scaling: bool = False  # per image: pred *= median(gt) / median(pred)
    flip_tta: bool = False  # average the prediction of the image and of its mirror
    metrics: tuple[str, ...] = DEPTH_METRICS  # the headline set, in table order
    range_edges: tuple[float, ...] = ()  # per-range tables by gt depth; () = overall only
    expected_frames: int | None = None  # frames of the official set, for the report
    reference: str = ''

    def __post_init__(self) -> None:
        checks = (('crop', self.crop, CROPS), ('gt_frame', self.gt_frame, GT_FRAMES),
                  ('input_crop', self.input_crop, INPUT_CROPS),
                  ('missing', self.missing, MISSING_POLICIES),
                  ('averaging', self.averaging, AVERAGING))
        for field, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f'protocol {self.name}: {field} must be one of {allowed}, '
                                 f'got {value!r}')
        unknown = set(self.metrics) - set(ALL_DEPTH_METRICS)
        if unknown:
            raise ValueError(f'protocol {self.name}: unknown metrics {sorted(unknown)}')
        if self.missing == 'clamp' and self.max_depth is None:
            raise ValueError(f'protocol {self.name}: clamping needs a max_depth')
        if self.max_depth is not None and self.max_depth <= self.min_depth:
            raise ValueError(f'protocol {self.name}: need min_depth < max_depth')

    def with_options(self, **changes: Any) -> Protocol:
        """A copy with some choices changed (e.g. ``crop='eigen'``, ``median_scaling=True``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> list[str]:
        """One line per choice, for the report."""
        cap = f'{self.min_depth:g} m < gt < {self.max_depth:g} m' if self.max_depth else \
            f'gt > {self.min_depth:g} m (no cap)'
        missing = {
            'clamp': f'clamped to [{self.min_depth:g}, {self.max_depth or 0:g}] m; '
                     'NaN -> min, +inf -> max, -inf -> min (BTS)',
            'devkit_fill': '+inf -> 65535/256 m and -inf -> 1/256 m (as a 16-bit KITTI PNG holds '
                           'them); missing pixels (NaN, <= 0) filled as the KITTI devkit does: '
                           'row holes take the nearer-to-camera of their two neighbours, '
                           'edges the nearest valid value',
            'ignore': 'pixels without a finite positive prediction (NaN, +-inf) are not scored; '
                      'counted as missing',
        }[self.missing]
        lines = [
            f'protocol: {self.name}' + (f' ({self.reference})' if self.reference else ''),
            f'valid ground truth: {cap}',
            f'crop: {self.crop}, applied to the '
            + ('full-resolution ground truth' if self.gt_frame == 'full'
               else f'{KB_CROP_SIZE[0]}x{KB_CROP_SIZE[1]} KB crop of the ground truth'),
            'model input: ' + ('the whole image' if self.input_crop == 'none' else
                               f'the {KB_CROP_SIZE[0]}x{KB_CROP_SIZE[1]} KB crop of the image '
                               '(BTS do_kb_crop); scored in that window of the frame'),
            f'predictions: {missing}',
            'averaging: ' + ('mean of per-image metrics' if self.averaging == 'image'
                             else 'all pixels pooled'),
            f'median scaling: {"per image" if self.median_scaling else "off"}',
            'flip test-time augmentation: '
            + ('on (depth and confidence: mean of both passes in the network\'s output '
               'coding; intervals, segmentation and far classes: unflipped pass only)'
               if self.flip_tta else 'off'),
            'segmentation: one confusion matrix over all frames, ignore label excluded, '
            'mIoU over classes present in ground truth or prediction',
        ]
        if self.expected_frames:
            lines.append(f'official set: {self.expected_frames} frames')
        return lines


PROTOCOLS: dict[str, Protocol] = {
    'raw': Protocol(
        name='raw', reference='every pixel with a measurement, no crop or cap'),
    'kitti_eigen': Protocol(
        name='kitti_eigen', min_depth=1e-3, max_depth=80.0, crop='garg', missing='clamp',
        range_edges=KITTI_RANGES, expected_frames=652,
        reference='Eigen split, 652 of 697 test frames with annotated ground truth; '
                  'monodepth2/BTS/AdaBins'),
    'kitti_benchmark': Protocol(
        name='kitti_benchmark', min_depth=0.0, max_depth=None, crop='none',
        missing='devkit_fill', metrics=KITTI_BENCHMARK_METRICS, range_edges=KITTI_RANGES,
        expected_frames=1000,
        reference='KITTI depth prediction devkit, val_selection_cropped at 1216x352; '
                  'the website shows SILog x100, sqErrorRel and absErrorRel in percent, '
                  'iRMSE in 1/km'),
    'nyu_eigen': Protocol(
        name='nyu_eigen', min_depth=1e-3, max_depth=10.0, crop='nyu_eigen', missing='clamp',
        range_edges=NYU_RANGES, expected_frames=654,
        reference='NYU Depth v2 official test set; BTS/AdaBins'),
}


def get_protocol(name: str, **changes: Any) -> Protocol:
    """A named protocol, optionally with some choices changed."""
    if name not in PROTOCOLS:
        raise ValueError(f'unknown protocol {name!r}; known: {sorted(PROTOCOLS)}')
    return PROTOCOLS[name].with_options(**changes) if changes else PROTOCOLS[name]


def crop_box(shape: tuple[int, int], crop: str) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixel bounds of ``crop`` in a frame of ``shape``."""
    height, width = shape
    if crop == 'none':
        return 0, height, 0, width
    if crop in ('garg', 'eigen'):
        top, bottom, left, right = GARG_CROP if crop == 'garg' else EIGEN_CROP_KITTI
        return int(top * height), int(bottom * height), int(left * width), int(right * width)
    if crop == 'nyu_eigen':
        (t, b, l, r), (h0, w0) = NYU_EIGEN_CROP_PX, NYU_FRAME
        return (round(t * height / h0), round(b * height / h0),
                round(l * width / w0), round(r * width / w0))
    raise ValueError(f'crop must be one of {CROPS}, got {crop!r}')


def crop_mask(shape: tuple[int, int], crop: str) -> np.ndarray:
    """(H, W) bool, true inside the crop."""
    top, bottom, left, right = crop_box(shape, crop)
    mask = np.zeros(shape, dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def _fill_along_rows(depth: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill invalid pixels of each row from its valid ones: holes between two valid
    pixels take the smaller (nearer) of the two, holes at an end take the nearest."""
    height, width = depth.shape
    columns = np.arange(width)
    prev = np.maximum.accumulate(np.where(valid, columns, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(valid, columns, width)[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(height)[:, None]
    left = depth[rows, np.clip(prev, 0, width - 1)]
    right = depth[rows, np.clip(nxt, 0, width - 1)]
    has_left, has_right = prev >= 0, nxt < width
    fill = np.where(has_left & has_right, np.minimum(left, right),
                    np.where(has_left, left, right))
    filled = np.where(valid, depth, np.where(has_left | has_right, fill, np.nan))
    return filled.astype(np.float32), valid | has_left | has_right


def devkit_fill(depth: np.ndarray) -> np.ndarray:
    """Fill missing prediction pixels (NaN, inf, <= 0) as the KITTI depth devkit does.

    ``DepthImage::interpolateBackground``: along each row, a run of missing
    pixels between two valid ones takes the smaller depth of the two (the
    background assumption), runs at the row ends copy the nearest valid
    value; rows with no valid pixel then copy the nearest filled row above or
    below. (The devkit leaves a missing row between two filled rows unfilled
    and scores it as -1 m; here it takes the nearer of its neighbours.)
    A map with no valid pixel at all stays all NaN.
    """
    depth = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    filled, valid = _fill_along_rows(depth, valid)
    filled, _ = _fill_along_rows(filled.T, valid.T)
    return filled.T.copy()


def clamp_prediction(depth: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """Clamp to [min_depth, max_depth]; NaN -> min_depth, +inf -> max_depth (BTS)."""
    depth = np.asarray(depth, dtype=np.float32)
    return np.clip(np.nan_to_num(depth, nan=min_depth, posinf=max_depth, neginf=min_depth),
                   min_depth, max_depth).astype(np.float32)


def median_scale(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    """Scale ``pred`` by median(gt) / median(pred) over ``mask`` and usable predictions."""
    usable = mask & np.isfinite(pred) & (pred > 0)
    if not usable.any():
        return pred, 1.0
    ratio = float(np.median(gt[usable]) / np.median(pred[usable]))
    return (pred * ratio).astype(np.float32), ratio


@dataclass
class Prepared:
    """A prediction and ground truth aligned on one frame, with the pixels to score."""

    pred: np.ndarray  # (H, W) float32 metres
    gt: np.ndarray  # (H, W) float32 metres
    mask: np.ndarray  # (H, W) bool: valid ground truth inside the crop
    scale: float = 1.0  # the median-scaling ratio (1 when off)


def input_region(image_size: tuple[int, int], input_crop: str) -> Region | None:
    """The part of an image of ``image_size`` the model is run on (None = all of it)."""
    if input_crop == 'kb_crop':
        return kb_crop_region(image_size)
    if input_crop != 'none':
        raise ValueError(f'input_crop must be one of {INPUT_CROPS}, got {input_crop!r}')
    return None


def align_to_ground_truth(pred: np.ndarray, gt: np.ndarray, region: Region | None = None,
                          gt_frame: str = 'full') -> tuple[np.ndarray, np.ndarray]:
    """Bring ``pred`` onto the ground truth's pixel grid; return (pred, gt).

    ``region`` is the part of the ground-truth frame the prediction covers, in
    that frame's pixels (a :class:`~mtdepth_ros.inference.predictor.Prediction`'s
    ``region``; None = all of it). The prediction is resized bilinearly over
    valid pixels onto that window (:func:`~mtdepth_ros.conversions.geometry.resize_depth_bilinear`)
    and the rest of the frame has no prediction (NaN). Nothing is inferred
    from the prediction's shape: a 352x1216 prediction of a whole 375x1242
    frame covers the whole frame. ``gt_frame='kb_crop'`` then cuts both to
    the ground truth's KITTI benchmark crop (a ground truth of the crop's size
    is taken to be that crop already).
    """
    gt = np.asarray(gt, dtype=np.float32)
    pred = np.asarray(pred, dtype=np.float32)
    frame = gt.shape[:2]
    if region is None:
        pred = resize_depth_bilinear(pred, frame)
    else:
        pred = region.paste(resize_depth_bilinear(pred, region.size), frame)
    if gt_frame == 'kb_crop' and frame != KB_CROP_SIZE:
        crop = kb_crop_region(frame)
        return crop.of(pred), crop.of(gt)
    return pred, gt


def saturate_infinite(depth: np.ndarray, far: float, near: float) -> np.ndarray:
    """REP 117's +inf (beyond the model's range) -> ``far``, -inf (nearer than it) -> ``near``."""
    return np.where(np.isposinf(depth), far, np.where(np.isneginf(depth), near, depth)
                    ).astype(np.float32)


def prepare_depth(pred: np.ndarray, gt: np.ndarray, protocol: Protocol,
                  region: Region | None = None, near_limit: float | None = None) -> Prepared:
    """Apply ``protocol`` to one frame: align, mask, median-scale, treat missing pixels.

    ``pred`` is (h, w) metres at any resolution covering ``region`` of the
    ground-truth frame (None = all of it; :func:`align_to_ground_truth`), with
    REP 117 values: NaN = no prediction, +inf beyond the model's range, -inf
    nearer than it. ``gt`` is (H, W) metres with 0 or NaN where there is no
    measurement. What the missing-pixel policy does with the infinities:
    ``clamp`` takes +inf to the cap and -inf to the minimum (NaN too, as BTS);
    ``devkit_fill`` first writes them as a 16-bit KITTI PNG would hold them
    (+inf -> 65535 / 256 m, -inf -> 1 / 256 m), then fills NaN as the devkit
    does; ``ignore`` scores only finite positive predictions, so an infinity
    counts as a missing pixel (with no cap there is no number to score it as).

    ``near_limit``: the near end of the model's depth range (its card's). Where
    given, -inf is scored as that depth before any of the above: the model said
    "nearer than this", and this is the nearest depth it can state (what it
    would have written without REP 117). Without it, -inf goes to the policy.
    """
    pred, gt = align_to_ground_truth(pred, gt, region, protocol.gt_frame)
    if near_limit is not None:
        pred = np.where(np.isneginf(pred), np.float32(near_limit), pred)
    with np.errstate(invalid='ignore'):
        mask = np.isfinite(gt) & (gt > protocol.min_depth)
        if protocol.max_depth is not None:
            mask &= gt < protocol.max_depth
    mask &= crop_mask(gt.shape[:2], protocol.crop)
    if protocol.missing == 'devkit_fill':
        pred = devkit_fill(saturate_infinite(pred, PNG_DEPTH_MAX, PNG_DEPTH_STEP))
    scale = 1.0
    if protocol.median_scaling:
        pred, scale = median_scale(pred, gt, mask)
    if protocol.missing == 'clamp':
        assert protocol.max_depth is not None  # checked in Protocol.__post_init__
        pred = clamp_prediction(pred, protocol.min_depth, protocol.max_depth)
    return Prepared(pred=pred, gt=gt, mask=mask, scale=scale)


def prepare_labels(pred: np.ndarray, gt: np.ndarray, protocol: Protocol,
                   region: Region | None = None, ignore_index: int = IGNORE_INDEX
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Class ids aligned to the ground truth grid (nearest neighbour), (pred, gt).

    ``region`` as for depth: the labels are resized onto that window of the
    ground-truth frame, and ground truth outside it becomes ``ignore_index``
    (nothing predicted there, nothing scored). Segmentation uses no depth crop;
    only ``gt_frame='kb_crop'`` cuts both to the KB crop.
    """
    gt, pred = np.asarray(gt), np.asarray(pred)
    frame = gt.shape[:2]
    if region is None:
        pred = resize_labels(pred, frame)
    else:
        pred = region.paste(resize_labels(pred, region.size), frame, fill=ignore_index)
        gt = region.paste(region.of(gt), frame, fill=ignore_index)
    if protocol.gt_frame == 'kb_crop' and frame != KB_CROP_SIZE:
        crop = kb_crop_region(frame)
        return crop.of(pred), crop.of(gt)
    return pred, gt


def protocol_names() -> Sequence[str]:
    return tuple(PROTOCOLS)
