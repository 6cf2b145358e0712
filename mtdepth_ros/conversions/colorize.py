"""False-colour images (H, W, 3) uint8 RGB for label, depth and confidence panels.

Depth is coloured on log depth with OpenCV's TURBO colormap, near red and far
blue: log spacing matches the network's normalised log depth coding and the
interval classes (uniform in log depth), so equal colour steps are equal
ratios of distance. REP 117's +inf (beyond range) takes the far end's colour
and -inf (nearer than range) the near end's; pixels without an estimate
(NaN, 0 or negative finite depth, ignore labels) are black.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import cv2
import numba
import numpy as np

from mtdepth_ros.conversions.labels import IGNORE_INDEX

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


def labels_to_color(labels: np.ndarray, palette: Sequence[Sequence[int]] | np.ndarray,
                    out: np.ndarray | None = None) -> np.ndarray:
    """Class ids (H, W) -> (H, W, 3) uint8 RGB from ``palette`` (K, 3) RGB.

    Ids outside [0, K) (the ignore id 255 among them) are black. ``out``: an
    (H, W, 3) uint8 array to write into (a message's payload, say).
    """
    colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)  # (K, 3)
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f'labels must be integers, got {labels.dtype}')
    return _lookup(colours, labels, out)


def depth_to_color(depth: np.ndarray, d_min: float, d_max: float) -> np.ndarray:
    """Metric depth (H, W) -> (H, W, 3) uint8 RGB, TURBO on log depth; near red, far blue.

    Depth is clipped to [d_min, d_max], +inf to d_max and -inf to d_min (REP 117);
    NaN and finite depth <= 0 are black.
    """
    if not 0 < d_min < d_max:
        raise ValueError(f'need 0 < d_min < d_max, got d_min={d_min}, d_max={d_max}')
    depth = np.asarray(depth, dtype=np.float32)
    valid = (depth > 0) | np.isneginf(depth)  # (H, W) bool; NaN compares false
    log_depth = cv2.log(np.clip(depth, np.float32(d_min), np.float32(d_max)))  # float32
    # index = 255 * (ln d_max - ln d) / (ln d_max - ln d_min): 255 near, 0 far
    scale = (LUT_SIZE - 1) / math.log(d_max / d_min)
    index = cv2.convertScaleAbs(log_depth, alpha=-scale, beta=scale * math.log(d_max))
    return _colour(index, valid, DEPTH_COLORMAP)


def intervals_to_color(intervals: np.ndarray, num_intervals: int,
                       out: np.ndarray | None = None) -> np.ndarray:
    """Interval indices (H, W) -> (H, W, 3) uint8 RGB on the same scale as :func:`depth_to_color`.

    Intervals are uniform in log depth, so interval i gets the colour of its
    depth; ``IGNORE_INDEX`` and out-of-range indices are black.
    """
    if not 1 <= num_intervals <= IGNORE_INDEX:
        raise ValueError(f'num_intervals must be in [1, {IGNORE_INDEX}], got {num_intervals}')
    return _lookup(_interval_colours(num_intervals), np.asarray(intervals), out)


@lru_cache(maxsize=None)
def _interval_colours(num_intervals: int) -> np.ndarray:
    """(num_intervals, 3) uint8 RGB: interval -> the colour of its depth."""
    span = max(num_intervals - 1, 1)
    ramp = np.rint((1.0 - np.arange(num_intervals) / span) * (LUT_SIZE - 1)).astype(np.intp)
    colours = colormap_lut(DEPTH_COLORMAP)[ramp]
    colours.setflags(write=False)
    return colours


def confidence_to_color(confidence: np.ndarray) -> np.ndarray:
    """Confidence (H, W) in [0, 1] -> (H, W, 3) uint8 RGB (VIRIDIS: dark low, yellow high).

    NaN is black.
    """
    confidence = np.asarray(confidence, dtype=np.float32)
    valid = np.isfinite(confidence)
    index = cv2.convertScaleAbs(np.clip(confidence, 0.0, 1.0), alpha=LUT_SIZE - 1)
    return _colour(index, valid, CONFIDENCE_COLORMAP)


def _colour(index: np.ndarray, valid: np.ndarray, colormap: int) -> np.ndarray:
    """Colormap entries (H, W) uint8 -> (H, W, 3) RGB, black where not ``valid``."""
    # invalid pixels point one past the colormap, at the table's black entry
    index = np.where(valid, index, np.uint16(LUT_SIZE))  # (H, W) uint16 in [0, 256]
    return _unpack(np.take(_packed_colormap(colormap), index))


def _lookup(colours: np.ndarray, index: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``colours`` (K, 3) uint8 RGB at ``index`` (H, W) ints; outside [0, K) black.

    uint8 and uint16 indices (every label map the node makes) go through a
    numba kernel in one pass over a table with an entry for every value;
    other integer types are range-checked and gathered as packed 4-byte words
    (3x faster than gathering byte triples with numpy), unpacked by OpenCV.
    """
    if index.dtype in (np.uint8, np.uint16):
        # every value of the type has an entry (black past the colours): one pass, no test
        table = _word_table(colours.tobytes(), int(np.iinfo(index.dtype).max) + 1)
        out = np.empty((*index.shape, 3), dtype=np.uint8) if out is None else out
        direct = out.flags.c_contiguous and out.ctypes.data % WORD_BYTES == 0
        target = out if direct else np.empty(out.shape, np.uint8)
        flat = target.reshape(-1)
        whole = index.size // PIXELS_PER_WORDS * PIXELS_PER_WORDS * 3  # bytes of whole groups
        _gather_words(np.ascontiguousarray(index).reshape(-1), table,
                      flat[:whole].view(np.uint32), flat[whole:])
        if not direct:
            np.copyto(out, target)
        return out
    index = np.where((index >= 0) & (index < len(colours)), index, len(colours))
    return _unpack(np.take(_pack_table(colours, len(colours) + 1), index), out)


WORD_BYTES = 4
PIXELS_PER_WORDS = 4  # four RGB pixels fill three 4-byte words


@lru_cache(maxsize=64)
def _word_table(colours: bytes, size: int) -> np.ndarray:
    """(size,) uint32: the colours (RGB bytes) packed, then black."""
    return _pack_table(np.frombuffer(colours, np.uint8).reshape(-1, 3)[:size], size)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _gather_words(index: np.ndarray, table: np.ndarray, words: np.ndarray,
                  tail: np.ndarray) -> None:  # pragma: no cover (numba)
    """RGB bytes of ``table[index]`` (packed words, R in the low byte), four pixels as
    three words (2.5x faster than storing each byte, measured at 640x192), the last
    ``len(index) % 4`` pixels' bytes into ``tail``. Little-endian hosts, as the cloud's
    kernels (cloud_bytes.py)."""
    groups = index.size // 4
    for k in range(groups):
        a, b = table[index[4 * k]], table[index[4 * k + 1]]
        c, d = table[index[4 * k + 2]], table[index[4 * k + 3]]
        words[3 * k] = a | (b << np.uint32(24))
        words[3 * k + 1] = (b >> np.uint32(8)) | (c << np.uint32(16))
        words[3 * k + 2] = (c >> np.uint32(16)) | (d << np.uint32(8))
    for i in range(groups * 4, index.size):
        entry, at = table[index[i]], 3 * (i - groups * 4)
        tail[at] = entry & np.uint32(255)
        tail[at + 1] = (entry >> np.uint32(8)) & np.uint32(255)
        tail[at + 2] = (entry >> np.uint32(16)) & np.uint32(255)


@lru_cache(maxsize=None)
def _packed_colormap(colormap: int) -> np.ndarray:
    """(257,) uint32: the colormap's RGB as packed words, then black."""
    return _pack_table(colormap_lut(colormap), LUT_SIZE + 1)


def _pack_table(colours: np.ndarray, size: int) -> np.ndarray:
    """``colours`` (K, 3) RGB as (size,) uint32 words (RGBA bytes), black past K."""
    table = np.zeros((size, 4), dtype=np.uint8)
    table[:len(colours), :3] = colours
    packed = table.view(np.uint32).reshape(-1)
    packed.setflags(write=False)
    return packed


def _unpack(packed: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Packed RGBA words (any shape) -> (..., 3) uint8 RGB, into ``out`` when given."""
    if out is None:
        out = np.empty((*packed.shape, 3), dtype=np.uint8)
    if packed.size:
        rgba = packed.view(np.uint8).reshape(1, -1, 4)  # one row: any input shape works
        cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB, dst=out.reshape(1, -1, 3))
    return out


def warm_up() -> None:
    """Compile (or load from numba's cache) the label kernel for uint8 and uint16 maps."""
    for dtype in (np.uint8, np.uint16):
        labels_to_color(np.zeros((1, 1), dtype), ((0, 0, 0),))
