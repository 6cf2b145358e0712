"""False-colour images (H, W, 3) uint8 RGB for label, depth and confidence panels.

Depth is coloured on log depth with OpenCV's TURBO colormap, near red and far
blue: log spacing matches the network's normalised log depth coding and the
interval classes (uniform in log depth), so equal colour steps are equal
ratios of distance. Invalid pixels (NaN, <= 0, ignore labels) are black.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np

from mtdepth_ros.depth_coding import IGNORE_INDEX

BLACK = (0, 0, 0)
LUT_SIZE = 256  # entries of an OpenCV colormap
DEPTH_COLORMAP = cv2.COLORMAP_TURBO
CONFIDENCE_COLORMAP = cv2.COLORMAP_VIRIDIS


@lru_cache(maxsize=None)
def colormap_lut(colormap: int) -> np.ndarray:
    """An OpenCV colormap as a (256, 3) uint8 RGB lookup table."""
    ramp = np.arange(LUT_SIZE, dtype=np.uint8).reshape(1, LUT_SIZE)
    bgr = cv2.applyColorMap(ramp, colormap)  # (1, 256, 3) uint8 BGR
    lut = np.ascontiguousarray(bgr[0, :, ::-1])
    lut.setflags(write=False)
    return lut


def labels_to_color(labels: np.ndarray, palette: Sequence[Sequence[int]] | np.ndarray
                    ) -> np.ndarray:
    """Class ids (H, W) -> (H, W, 3) uint8 RGB from ``palette`` (K, 3) RGB.

    Ids outside [0, K) (the ignore id 255 among them) are black.
    """
    colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)  # (K, 3)
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f'labels must be integers, got {labels.dtype}')
    lut = np.zeros((len(colours) + 1, 3), dtype=np.uint8)  # last row: black for out of range
    lut[:len(colours)] = colours
    outside = len(colours)
    index = np.where((labels >= 0) & (labels < len(colours)), labels, outside)
    return np.take(lut, index, axis=0)


def depth_to_color(depth: np.ndarray, d_min: float, d_max: float) -> np.ndarray:
    """Metric depth (H, W) -> (H, W, 3) uint8 RGB, TURBO on log depth; near red, far blue.

    Depth is clipped to [d_min, d_max]; NaN, inf and <= 0 are black.
    """
    if not 0 < d_min < d_max:
        raise ValueError(f'need 0 < d_min < d_max, got d_min={d_min}, d_max={d_max}')
    depth = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    safe = np.clip(np.where(valid, depth, d_max), d_min, d_max)
    near_is_one = 1.0 - np.log(safe / d_min) / np.log(d_max / d_min)  # 1 near, 0 far
    return _apply(near_is_one, valid, DEPTH_COLORMAP)


def intervals_to_color(intervals: np.ndarray, num_intervals: int) -> np.ndarray:
    """Interval indices (H, W) -> (H, W, 3) uint8 RGB on the same scale as :func:`depth_to_color`.

    Intervals are uniform in log depth, so interval i gets the colour of its
    depth; ``IGNORE_INDEX`` and out-of-range indices are black.
    """
    if num_intervals < 1:
        raise ValueError(f'num_intervals must be >= 1, got {num_intervals}')
    intervals = np.asarray(intervals)
    valid = (intervals >= 0) & (intervals < num_intervals) & (intervals != IGNORE_INDEX)
    span = max(num_intervals - 1, 1)
    near_is_one = 1.0 - intervals.astype(np.float32) / span
    return _apply(near_is_one, valid, DEPTH_COLORMAP)


def confidence_to_color(confidence: np.ndarray) -> np.ndarray:
    """Confidence (H, W) in [0, 1] -> (H, W, 3) uint8 RGB (VIRIDIS: dark low, yellow high).

    NaN is black.
    """
    confidence = np.asarray(confidence, dtype=np.float32)
    valid = np.isfinite(confidence)
    return _apply(np.where(valid, confidence, 0.0), valid, CONFIDENCE_COLORMAP)


def _apply(unit: np.ndarray, valid: np.ndarray, colormap: int) -> np.ndarray:
    """Values in [0, 1] (H, W) -> colormap RGB, black where not ``valid``."""
    index = np.clip(np.rint(unit * (LUT_SIZE - 1)), 0, LUT_SIZE - 1).astype(np.uint8)
    colour = np.take(colormap_lut(colormap), index, axis=0)  # (H, W, 3) uint8
    colour[~valid] = BLACK
    return colour
