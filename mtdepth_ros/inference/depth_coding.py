"""Depth coding shared by the training labels and the node's decoding.

Normalised log depth (MultiDepth, Liebel & Koerner, eq. 2)::

    d_log = ln(d - d_min + 1) / ln(d_max - d_min + 1)

maps [d_min, d_max] metres onto [0, 1]. Depth intervals are ``num_intervals``
classes, uniform in normalised log space between the interval clip planes
(``clip_min``, ``clip_max`` in metres; by default the coding range itself).

Invalid depth is 0 (KITTI-style inputs) or non-finite; encoded values of
invalid pixels are NaN and their interval label is ``IGNORE_INDEX``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from mtdepth_ros.conversions.labels import IGNORE_INDEX


@dataclass(frozen=True)
class DepthCoding:
    """Normalised log depth and interval classes for one depth range."""

    d_min: float = 2.0
    d_max: float = 125.0
    num_intervals: int = 32
    clip_min: float | None = None  # interval clip planes in metres; None = d_min
    clip_max: float | None = None  # None = d_max

    def __post_init__(self) -> None:
        # Resolve the clip planes so that equal codings compare equal.
        lo = self.d_min if self.clip_min is None else self.clip_min
        hi = self.d_max if self.clip_max is None else self.clip_max
        object.__setattr__(self, 'clip_min', float(lo))
        object.__setattr__(self, 'clip_max', float(hi))
        if not (math.isfinite(self.d_min) and math.isfinite(self.d_max)):
            raise ValueError(f'depth range must be finite, got [{self.d_min}, {self.d_max}]')
        if not 0 < self.d_min < self.d_max:
            raise ValueError(f'need 0 < d_min < d_max, got d_min={self.d_min}, d_max={self.d_max}')
        if not 1 <= self.num_intervals <= IGNORE_INDEX:
            raise ValueError(f'num_intervals must be in [1, {IGNORE_INDEX}], got {self.num_intervals}')
        lo, hi = self.interval_range
        if not self.d_min <= lo < hi <= self.d_max:
            raise ValueError(
                f'interval clip planes [{lo}, {hi}] must lie inside [{self.d_min}, {self.d_max}] '
                'and be increasing')

    @property
    def interval_range(self) -> tuple[float, float]:
        assert self.clip_min is not None and self.clip_max is not None  # set in __post_init__
        return self.clip_min, self.clip_max

    @property
    def _log_span(self) -> float:
        return math.log(self.d_max - self.d_min + 1.0)

    def encode(self, depth: np.ndarray) -> np.ndarray:
        """Metres -> normalised log depth in [0, 1]; invalid (<= 0 or non-finite) -> NaN.

        Valid depth outside [d_min, d_max] is clipped to the range first.
        """
        depth = np.asarray(depth, dtype=np.float32)
        valid = np.isfinite(depth) & (depth > 0)
        clipped = np.clip(np.where(valid, depth, self.d_min), self.d_min, self.d_max)
        coded = np.log(clipped - self.d_min + 1.0) / self._log_span
        return np.where(valid, coded, np.nan).astype(np.float32)

    def decode(self, coded: np.ndarray) -> np.ndarray:
        """Normalised log depth -> metres, the exact inverse of :meth:`encode` on [0, 1].

        Values outside [0, 1] are clipped (a regression head can overshoot);
        NaN stays NaN.
        """
        depth = np.clip(np.asarray(coded, dtype=np.float32), 0.0, 1.0)  # a new array
        flat = depth.reshape(-1)  # a view: OpenCV takes 1-D and 2-D arrays
        # In place, in float32. OpenCV's exp is within 2 ulp of numpy's and six times
        # faster on this project's AVX2 machine (0.05 vs 0.34 ms a 640x192 frame).
        np.multiply(flat, self._log_span, out=flat)
        cv2.exp(flat, flat)
        flat += self.d_min
        flat -= 1.0
        return depth

    def _coded_interval_range(self) -> tuple[float, float]:
        lo, hi = self.interval_range
        coded = self.encode(np.array([lo, hi], dtype=np.float32))
        return float(coded[0]), float(coded[1])

    def coded_bin_edges(self) -> np.ndarray:
        """(num_intervals + 1,) interval edges in normalised log space."""
        lo, hi = self._coded_interval_range()
        return np.linspace(lo, hi, self.num_intervals + 1, dtype=np.float64)

    def bin_edges(self) -> np.ndarray:
        """(num_intervals + 1,) interval edges in metres."""
        return self.decode(self.coded_bin_edges()).astype(np.float64)

    def bin_centres(self) -> np.ndarray:
        """(num_intervals,) metres at the centre of each interval in normalised log space."""
        edges = self.coded_bin_edges()
        return self.decode((edges[:-1] + edges[1:]) / 2).astype(np.float64)

    def depth_to_intervals(self, depth: np.ndarray) -> np.ndarray:
        """Metres -> uint8 interval labels; invalid pixels -> IGNORE_INDEX.

        Depth beyond the clip planes falls into the first or last interval.
        """
        coded = self.encode(depth)
        lo, hi = self._coded_interval_range()
        scaled = (np.nan_to_num(coded, nan=lo) - lo) / (hi - lo) * self.num_intervals
        labels = np.clip(np.floor(scaled), 0, self.num_intervals - 1).astype(np.uint8)
        labels[np.isnan(coded)] = IGNORE_INDEX
        return labels

    def intervals_to_depth(self, labels: np.ndarray) -> np.ndarray:
        """Interval labels -> metres at the bin centres; IGNORE_INDEX or out of range -> NaN."""
        labels = np.asarray(labels)
        centres = np.append(self.bin_centres(), np.nan).astype(np.float32)
        valid = (labels >= 0) & (labels < self.num_intervals)
        return centres[np.where(valid, labels, self.num_intervals).astype(np.intp)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DepthCoding:
        known = {'d_min', 'd_max', 'num_intervals', 'clip_min', 'clip_max'}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f'unknown depth coding keys: {sorted(unknown)}')
        return cls(**values)


MULTIDEPTH_KITTI = DepthCoding(d_min=2.0, d_max=125.0, num_intervals=32)
