"""A depth image straight to a serialized ``sensor_msgs/PointCloud2``, in one pass.

The same cloud as ``points_to_cloud(depth_to_points(depth, camera), ...)``
(:mod:`.clouds`: depth_image_proc's layout and float32 arithmetic, NaN
points where invalid in an organized cloud, valid points only otherwise),
but every point record (x y z, rgb, label, confidence, zero padding) is
written once, by a numba kernel, into the message's own CDR bytes
(:mod:`.cdr`), after OpenCV has packed the colours into words and turned the
classes to drop into a mask. An unorganized cloud takes one more pass that
only counts.
The kernels accept what ``points_to_cloud`` accepts and give the same bytes
(a test compares them over every combination of fields, sizes and settings).

The kernels compile on first use (about a second each) and are cached on
disk (``cache=True``); :func:`warm_up` compiles them ahead of the first frame.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache
from typing import Any

import cv2
import numba
import numpy as np

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.cdr import Field, serialized_cloud
from mtdepth_ros.conversions.clouds import (
    CONFIDENCE_FIELD,
    LABEL_FIELD,
    RGB_FIELD,
    XYZ_FIELDS,
    XYZ_POINT_STEP,
    XYZRGB_POINT_STEP,
    CloudError,
)

WORD = 4  # bytes per float32 / uint32 word of a point record
RECORD_WORDS = XYZRGB_POINT_STEP // WORD  # x y z pad rgb label confidence pad
XYZ_WORDS = XYZ_POINT_STEP // WORD  # x y z pad
RGB_MASK = np.uint32(0xFFFFFF)  # r g b in the low three bytes, the top one zero
FEW_CLASSES = 4  # dropped classes tested by comparison; more by a table (_keep_mask)


# The organized kernels write one fixed record width each (8 words, or 4 for x y z
# alone) into flat rows, and read every channel as a plain (rows, cols) array: the
# colour already packed into one word per pixel (by OpenCV) and the class test
# already a keep mask (a comparison per dropped class), one SIMD pass each (_channels). With nothing
# gathered and the record's width a constant, LLVM vectorizes the whole loop:
# 640x192 with every field in 0.09 ms, the time of a copy of its 3.9 MB, against
# 0.34 ms for the kernel before (a 3-byte colour gather, a class-table lookup per
# point and a run-time record width; bench/bench_clouds.py). Absent channels are
# zero-strided arrays of zeros (their own, slower, compilation), decimation is a
# contiguous copy of the decimated channels, and the keep test combines booleans
# without branching on per-pixel values.

@numba.njit(cache=True, nogil=True, boundscheck=False)
def _organized_records(out: Any, depth: Any, offset_u: Any, offset_v: Any, ifx: np.float32,
                       ify: np.float32, rgb: Any, labels: Any, confidence: Any, keep: Any,
                       max_depth: np.float32, min_confidence: np.float32
                       ) -> int:  # pragma: no cover (numba)
    """Write every point's 8-word record into ``out`` (rows, cols * 8) uint32, NaN x y z
    where a point is not kept; the number kept.

    A point stays where its x, y, z are finite, it is at most ``max_depth``
    deep, at least ``min_confidence`` confident and ``keep`` (its class is kept).
    ``rgb`` holds packed colour words (:func:`_rgb_words`).
    """
    floats = out.view(np.float32)
    any_confidence = not min_confidence > 0  # no threshold: NaN confidence is kept too
    nan = np.float32(np.nan)
    kept_count = 0
    for i in range(depth.shape[0]):
        offset_y = offset_v[i]
        z_row, rgb_row, label_row = depth[i], rgb[i], labels[i]
        confidence_row, keep_row = confidence[i], keep[i]
        float_row, int_row = floats[i], out[i]
        for j in range(depth.shape[1]):
            z = z_row[j]
            x = offset_u[j] * z * ifx  # depth_image_proc's float32 order
            y = offset_y * z * ify
            kept = (np.isfinite(x) & np.isfinite(y) & (z > 0) & (z <= max_depth)
                    & ((confidence_row[j] >= min_confidence) | any_confidence)
                    & keep_row[j])
            kept_count += int(kept)
            at = RECORD_WORDS * j
            float_row[at] = x if kept else nan
            float_row[at + 1] = y if kept else nan
            float_row[at + 2] = z if kept else nan
            int_row[at + 3] = 0
            int_row[at + 4] = rgb_row[j] & RGB_MASK
            int_row[at + 5] = label_row[j]
            float_row[at + 6] = confidence_row[j]
            int_row[at + 7] = 0
    return kept_count


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _organized_xyz(out: Any, depth: Any, offset_u: Any, offset_v: Any, ifx: np.float32,
                   ify: np.float32, max_depth: np.float32) -> int:  # pragma: no cover (numba)
    """:func:`_organized_records` for a cloud of x y z only: 4-word records."""
    floats = out.view(np.float32)
    nan = np.float32(np.nan)
    kept_count = 0
    for i in range(depth.shape[0]):
        offset_y = offset_v[i]
        z_row, float_row, int_row = depth[i], floats[i], out[i]
        for j in range(depth.shape[1]):
            z = z_row[j]
            x = offset_u[j] * z * ifx
            y = offset_y * z * ify
            kept = np.isfinite(x) & np.isfinite(y) & (z > 0) & (z <= max_depth)
            kept_count += int(kept)
            at = XYZ_WORDS * j
            float_row[at] = x if kept else nan
            float_row[at + 1] = y if kept else nan
            float_row[at + 2] = z if kept else nan
            int_row[at + 3] = 0
    return kept_count


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _unorganized(out: Any, depth: Any, offset_u: Any, offset_v: Any, ifx: np.float32,
                 ify: np.float32, rgb: Any, labels: Any, confidence: Any, drop: Any,
                 max_depth: np.float32, min_confidence: np.float32
                 ) -> int:  # pragma: no cover (numba)
    """Write the kept points' records one after another into ``out`` (N, words) uint32;
    the number kept. An ``out`` of no rows only counts.

    The keep test is :func:`_organized_records`'s, but this loop, which skips
    points, does not vectorize: it reads the colour bytes (``rgb`` (rows, cols, 3))
    and looks the class up in ``drop`` (a table over every label value) itself,
    where packing and masking first cost more than they saved (1216x352: 1.2 ms
    this way, 1.5-2.0 ms with :func:`_channels`). Written out again rather than shared
    with the organized kernel on purpose: as ``inline='always'`` helpers the
    shared parts made this loop 15-20 % slower; a test holds every kernel to the
    message builders.
    """
    floats = out.view(np.float32)
    any_confidence = not min_confidence > 0
    write = out.shape[0] > 0
    extra = out.shape[1] > XYZ_WORDS
    index = 0
    for i in range(depth.shape[0]):
        offset_y = offset_v[i]
        z_row, rgb_row, label_row, confidence_row = depth[i], rgb[i], labels[i], confidence[i]
        for j in range(depth.shape[1]):
            z = z_row[j]
            x = offset_u[j] * z * ifx
            y = offset_y * z * ify
            kept = (np.isfinite(x) & np.isfinite(y) & (z > 0) & (z <= max_depth)
                    & ((confidence_row[j] >= min_confidence) | any_confidence)
                    & ~drop[label_row[j]])
            if not kept:
                continue
            if write:
                floats[index, 0] = x
                floats[index, 1] = y
                floats[index, 2] = z
                out[index, 3] = 0
                if extra:
                    out[index, 4] = (np.uint32(rgb_row[j, 0]) << np.uint32(16)
                                     | np.uint32(rgb_row[j, 1]) << np.uint32(8)
                                     | np.uint32(rgb_row[j, 2]))
                    out[index, 5] = label_row[j]
                    floats[index, 6] = confidence_row[j]
                    out[index, 7] = 0
            index += 1
    return index


@lru_cache(maxsize=8)
def cloud_fields(rgb: bool, labels: bool, confidence: bool) -> tuple[tuple[Field, ...], int]:
    """The PointCloud2 fields and point_step for the channels present (clouds.py's layout)."""
    extras = [f for f, present in ((RGB_FIELD, rgb), (LABEL_FIELD, labels),
                                   (CONFIDENCE_FIELD, confidence)) if present]
    fields = tuple(Field(f.name, f.offset, f.datatype) for f in (*XYZ_FIELDS, *extras))
    return fields, XYZRGB_POINT_STEP if extras else XYZ_POINT_STEP


def cloud_bytes(depth: np.ndarray, camera: PinholeCamera, header: Any,
                rgb: np.ndarray | None = None, labels: np.ndarray | None = None,
                confidence: np.ndarray | None = None, organized: bool = True,
                decimation: int = 1, max_depth: float = 0.0, min_confidence: float = 0.0,
                drop_ids: Collection[int] = ()) -> bytes:
    """The serialized cloud of ``depth`` (H, W) float32 metres seen by ``camera`` (same size).

    rgb (H, W, 3) uint8, labels (H, W) uint8/uint16, confidence (H, W) float32 give the
    extra fields. A point is kept where its x, y, z are finite, its depth is at most
    ``max_depth`` (0: no limit), its confidence at least ``min_confidence`` (0: any;
    without a confidence channel there is nothing to test) and its label not in
    ``drop_ids``.
    """
    depth = _checked(depth, camera, rgb, labels, confidence, decimation)
    fields, point_step = cloud_fields(rgb is not None, labels is not None, confidence is not None)
    step = int(decimation)
    offset_u = np.arange(0, depth.shape[1], step, dtype=np.float32) - np.float32(camera.cx)
    offset_v = np.arange(0, depth.shape[0], step, dtype=np.float32) - np.float32(camera.cy)
    rows, cols = offset_v.size, offset_u.size  # the decimated size
    geometry = (np.ascontiguousarray(depth[::step, ::step]), offset_u, offset_v,
                np.float32(1.0 / camera.fx), np.float32(1.0 / camera.fy))
    limit = np.float32(max_depth if max_depth > 0 else np.inf)
    threshold = np.float32(min_confidence if confidence is not None else 0.0)
    words = point_step // WORD
    if organized:
        data, payload, dense = serialized_cloud(header, rows, cols, fields, point_step)
        flat_rows = payload.view(np.uint32).reshape(rows, cols * words)
        if words == XYZ_WORDS:
            kept = _organized_xyz(flat_rows, *geometry, limit)
        else:
            channels = _channels(rgb, labels, confidence, drop_ids, step, (rows, cols))
            kept = _organized_records(flat_rows, *geometry, *channels, limit, threshold)
        dense[0] = 1 if kept == rows * cols else 0
        return data
    channels = _skipping_channels(rgb, labels, confidence, drop_ids, step, (rows, cols))
    args = (*geometry, *channels, limit, threshold)
    count = _unorganized(np.zeros((0, words), np.uint32), *args)
    data, payload, dense = serialized_cloud(header, 1, count, fields, point_step)
    _unorganized(payload.view(np.uint32).reshape(count, words), *args)
    dense[0] = 1
    return data


def _channels(rgb: np.ndarray | None, labels: np.ndarray | None,
              confidence: np.ndarray | None, drop_ids: Collection[int], step: int,
              shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The kernels' per-pixel channels at the decimated ``shape``: packed colour words,
    labels, confidence (zero-strided zeros where absent) and the class keep mask."""
    if labels is None:
        label_view = np.broadcast_to(np.zeros((), np.uint8), shape)
    else:
        label_view = np.ascontiguousarray(labels[::step, ::step])
    return (_rgb_words(rgb, step, shape), label_view,
            _channel(confidence, np.float32, shape, step),
            _keep_mask(label_view if labels is not None else None, drop_ids, shape))


def _skipping_channels(rgb: np.ndarray | None, labels: np.ndarray | None,
                       confidence: np.ndarray | None, drop_ids: Collection[int], step: int,
                       shape: tuple[int, int]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_unorganized`'s channels: decimated views of the colour bytes, labels and
    confidence (zero-strided zeros where absent) and the table of dropped label values."""
    label_type = np.uint8 if labels is None else labels.dtype
    drop = np.zeros(np.iinfo(label_type).max + 1, np.bool_)  # over every value a label takes
    if labels is not None:
        drop[[i for i in drop_ids if 0 <= i < drop.size]] = True
    return (_channel(rgb, np.uint8, (*shape, 3), step), _channel(labels, label_type, shape, step),
            _channel(confidence, np.float32, shape, step), drop)


def _rgb_words(rgb: np.ndarray | None, step: int, shape: tuple[int, int]) -> np.ndarray:
    """(rows, cols) uint32: each pixel's colour as depth_image_proc packs it
    (r << 16 | g << 8 | b) in the low three bytes; the top byte (OpenCV's alpha) is
    masked off by the kernels. Little-endian hosts (BGRA bytes read as one word)."""
    if rgb is None or 0 in shape:
        return np.broadcast_to(np.zeros((), np.uint32), shape)
    bgra = cv2.cvtColor(np.ascontiguousarray(rgb[::step, ::step]), cv2.COLOR_RGB2BGRA)
    return bgra.view(np.uint32).reshape(shape)


def _keep_mask(labels: np.ndarray | None, drop_ids: Collection[int],
               shape: tuple[int, int]) -> np.ndarray:
    """(rows, cols) bool: True where the point's class is kept (``labels`` already
    decimated; all True without labels or classes to drop).

    A comparison per dropped class up to :data:`FEW_CLASSES` (8 us each at 640x192),
    a table lookup beyond (50 us with OpenCV's LUT, more with numpy's).
    """
    if labels is None:
        return np.ones(shape, np.bool_)
    ids = sorted({int(i) for i in drop_ids if 0 <= i <= np.iinfo(labels.dtype).max})
    if not ids:
        return np.ones(shape, np.bool_)
    if len(ids) <= FEW_CLASSES:
        keep = labels != ids[0]
        for class_id in ids[1:]:
            keep &= labels != class_id
        return keep
    table = np.ones(np.iinfo(labels.dtype).max + 1, np.bool_)  # every value a label takes
    table[ids] = False
    return table[labels]


def _channel(values: np.ndarray | None, dtype: Any, shape: tuple[int, ...], step: int
             ) -> np.ndarray:
    """The decimated channel as a contiguous ``dtype`` array, or zeros (one element, zero
    strides)."""
    if values is None:
        return np.broadcast_to(np.zeros((), dtype), shape)
    return np.ascontiguousarray(np.asarray(values, dtype)[::step, ::step])


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels for the usual channel combinations.

    numba compiles one version per combination of array types (an absent channel and
    uint16 labels each make their own; decimated channels are contiguous copies, so
    decimation does not): these are every channel and none, organized or not. Others
    compile on first use.
    """
    camera = PinholeCamera(width=2, height=2, fx=1.0, fy=1.0, cx=0.5, cy=0.5)
    depth = np.ones((2, 2), np.float32)
    for organized in (True, False):
        cloud_bytes(depth, camera, _Header(), np.zeros((2, 2, 3), np.uint8),
                    np.zeros((2, 2), np.uint8), np.ones((2, 2), np.float32), organized,
                    drop_ids=(0,))
        cloud_bytes(depth, camera, _Header(), organized=organized)


class _Stamp:
    sec = 0
    nanosec = 0


class _Header:
    stamp = _Stamp()
    frame_id = ''


def _checked(depth: np.ndarray, camera: PinholeCamera, rgb: np.ndarray | None,
             labels: np.ndarray | None, confidence: np.ndarray | None,
             decimation: int) -> np.ndarray:
    depth = np.asarray(depth)
    if depth.ndim != 2 or depth.dtype != np.float32:
        raise CloudError(f'depth must be (H, W) float32 metres, got {depth.dtype}{depth.shape}')
    if (depth.shape[1], depth.shape[0]) != (camera.width, camera.height):
        raise CloudError(f'depth is {depth.shape[1]}x{depth.shape[0]} but the camera is '
                         f'{camera.width}x{camera.height}; scale the camera first')
    if int(decimation) < 1:
        raise CloudError(f'decimation must be >= 1, got {decimation}')
    for name, values, trailing in (('rgb', rgb, (3,)), ('labels', labels, ()),
                                   ('confidence', confidence, ())):
        if values is not None and values.shape != depth.shape + trailing:
            raise CloudError(f'{name} must have shape {depth.shape + trailing}, got {values.shape}')
    if rgb is not None and rgb.dtype != np.uint8:
        raise CloudError(f'rgb must be uint8, got {rgb.dtype}')
    if labels is not None and labels.dtype not in (np.uint8, np.uint16):
        raise CloudError(f'labels must be uint8 or uint16, got {labels.dtype}')
    return np.ascontiguousarray(depth)
