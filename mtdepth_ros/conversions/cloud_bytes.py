"""A depth image straight to a serialized ``sensor_msgs/PointCloud2``, in one pass.

The same cloud as ``points_to_cloud(depth_to_points(depth, camera), ...)``
(:mod:`.clouds`: depth_image_proc's layout and float32 arithmetic, NaN
points where invalid in an organized cloud, valid points only otherwise),
but every point record (x y z, rgb, label, confidence, zero padding) is
written once, by a numba kernel, into the message's own CDR bytes
(:mod:`.cdr`). An unorganized cloud takes one more pass that only counts.
The kernels accept what ``points_to_cloud`` accepts and give the same bytes
(a test compares them over every combination of fields, sizes and settings).

The kernels compile on first use (about a second each) and are cached on
disk (``cache=True``); :func:`warm_up` compiles them ahead of the first frame.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from typing import Any

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


# Two kernels, organized and unorganized, each one loop over rows of (H, W)
# views: the channels are always arrays (an absent one is a zero-strided
# array of zeros, so the bytes it writes are the zero the field would hold and
# its reads hit one cached element), decimation is a strided view, and the
# only branch on a setting is whether the record has the extra words. Per-row
# views and a (rows, cols, words) output let numba index without
# multiplications; measured, this runs in half the time of one flat kernel
# with a branch per optional channel (bench/bench_clouds.py).

@numba.njit(cache=True, nogil=True, boundscheck=False)
def _organized(out: Any, depth: Any, offset_u: Any, offset_v: Any, ifx: np.float32,
               ify: np.float32, rgb: Any, labels: Any, confidence: Any, max_depth: np.float32,
               min_confidence: np.float32, drop: Any) -> int:  # pragma: no cover (numba)
    """Write every point record into ``out`` (rows, cols, words) uint32, NaN x y z where
    a point is not kept; the number kept.

    A point stays where its x, y, z are finite, it is at most ``max_depth``
    deep, at least ``min_confidence`` confident and of a class ``drop`` keeps.
    The test combines booleans without branching on per-pixel values, which
    change unpredictably from pixel to pixel.
    """
    floats = out.view(np.float32)
    any_confidence = not min_confidence > 0  # no threshold: NaN confidence is kept too
    extra = out.shape[2] > 4  # rgb, label and confidence words after x y z and padding
    nan = np.float32(np.nan)
    kept_count = 0
    for i in range(depth.shape[0]):
        offset_y = offset_v[i]
        z_row, rgb_row, label_row, confidence_row = depth[i], rgb[i], labels[i], confidence[i]
        float_row, int_row = floats[i], out[i]
        for j in range(depth.shape[1]):
            z = z_row[j]
            x = offset_u[j] * z * ifx  # depth_image_proc's float32 order
            y = offset_y * z * ify
            kept = (np.isfinite(x) & np.isfinite(y) & (z > 0) & (z <= max_depth)
                    & ((confidence_row[j] >= min_confidence) | any_confidence)
                    & ~drop[label_row[j]])
            kept_count += int(kept)
            float_row[j, 0] = x if kept else nan
            float_row[j, 1] = y if kept else nan
            float_row[j, 2] = z if kept else nan
            int_row[j, 3] = 0
            if extra:
                int_row[j, 4] = (np.uint32(rgb_row[j, 0]) << np.uint32(16)
                                 | np.uint32(rgb_row[j, 1]) << np.uint32(8)
                                 | np.uint32(rgb_row[j, 2]))
                int_row[j, 5] = label_row[j]
                float_row[j, 6] = confidence_row[j]
                int_row[j, 7] = 0
    return kept_count


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _unorganized(out: Any, depth: Any, offset_u: Any, offset_v: Any, ifx: np.float32,
                 ify: np.float32, rgb: Any, labels: Any, confidence: Any, max_depth: np.float32,
                 min_confidence: np.float32, drop: Any) -> int:  # pragma: no cover (numba)
    """Write the kept points' records one after another into ``out`` (N, words) uint32;
    the number kept. An ``out`` of no rows only counts. The keep test and the extra
    words are :func:`_organized`'s, written out again on purpose (a test holds both
    kernels to the message builders): as ``inline='always'`` helpers shared by both
    they left the organized kernel as fast and made this one 15-20 % slower
    (1216x352, measured with the machine otherwise idle)."""
    floats = out.view(np.float32)
    any_confidence = not min_confidence > 0
    write = out.shape[0] > 0
    extra = out.shape[1] > 4
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


def cloud_fields(rgb: bool, labels: bool, confidence: bool) -> tuple[list[Field], int]:
    """The PointCloud2 fields and point_step for the channels present (clouds.py's layout)."""
    extras = [f for f, present in ((RGB_FIELD, rgb), (LABEL_FIELD, labels),
                                   (CONFIDENCE_FIELD, confidence)) if present]
    fields = [Field(f.name, f.offset, f.datatype) for f in (*XYZ_FIELDS, *extras)]
    return fields, XYZRGB_POINT_STEP if extras else XYZ_POINT_STEP


def cloud_bytes(depth: np.ndarray, camera: PinholeCamera, header: Any,
                rgb: np.ndarray | None = None, labels: np.ndarray | None = None,
                confidence: np.ndarray | None = None, organized: bool = True,
                decimation: int = 1, max_depth: float = 0.0, min_confidence: float = 0.0,
                drop_ids: Collection[int] = ()) -> bytes:
    """The serialized cloud of ``depth`` (H, W) float32 metres seen by ``camera`` (same size).

    rgb (H, W, 3) uint8, labels (H, W) uint8/uint16, confidence (H, W) float32 give the
    extra fields. A point is kept where its x, y, z are finite, its depth is at most
    ``max_depth`` (0: no limit), its confidence at least ``min_confidence`` (0: any)
    and its label not in ``drop_ids``.
    """
    depth = _checked(depth, camera, rgb, labels, confidence, decimation)
    fields, point_step = cloud_fields(rgb is not None, labels is not None, confidence is not None)
    step = int(decimation)
    label_type = np.uint8 if labels is None else labels.dtype
    drop = np.zeros(np.iinfo(label_type).max + 1, np.bool_)  # over every value a label takes
    if labels is not None:
        drop[[i for i in drop_ids if 0 <= i < drop.size]] = True
    offset_u = np.arange(0, depth.shape[1], step, dtype=np.float32) - np.float32(camera.cx)
    offset_v = np.arange(0, depth.shape[0], step, dtype=np.float32) - np.float32(camera.cy)
    rows, cols = offset_v.size, offset_u.size  # the decimated size
    args = (depth[::step, ::step], offset_u, offset_v, np.float32(1.0 / camera.fx),
            np.float32(1.0 / camera.fy),
            _channel(rgb, np.uint8, (rows, cols, 3), step),
            _channel(labels, label_type, (rows, cols), step),
            _channel(confidence, np.float32, (rows, cols), step),
            np.float32(max_depth if max_depth > 0 else np.inf), np.float32(min_confidence), drop)
    words = point_step // WORD
    if organized:
        data, payload, dense = serialized_cloud(header, rows, cols, fields, point_step)
        kept = _organized(payload.view(np.uint32).reshape(rows, cols, words), *args)
        dense[0] = 1 if kept == rows * cols else 0
        return data
    count = _unorganized(np.zeros((0, words), np.uint32), *args)
    data, payload, dense = serialized_cloud(header, 1, count, fields, point_step)
    _unorganized(payload.view(np.uint32).reshape(count, words), *args)
    dense[0] = 1
    return data


def _channel(values: np.ndarray | None, dtype: Any, shape: tuple[int, ...], step: int
             ) -> np.ndarray:
    """The decimated view of an optional channel as ``dtype``, or zeros (one element, zero
    strides)."""
    if values is None:
        return np.broadcast_to(np.zeros((), dtype), shape)
    return np.ascontiguousarray(values, dtype)[::step, ::step]


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels for the usual channel combinations.

    numba compiles one version per combination of array types (an absent channel, uint16
    labels and decimation each make their own): these are every channel and none, each
    organized or not, with and without decimation. Others compile on first use.
    """
    camera = PinholeCamera(width=2, height=2, fx=1.0, fy=1.0, cx=0.5, cy=0.5)
    depth = np.ones((2, 2), np.float32)
    for organized, decimation in itertools.product((True, False), (1, 2)):
        cloud_bytes(depth, camera, _Header(), np.zeros((2, 2, 3), np.uint8),
                    np.zeros((2, 2), np.uint8), np.ones((2, 2), np.float32), organized,
                    decimation, drop_ids=(0,))
        cloud_bytes(depth, camera, _Header(), organized=organized, decimation=decimation)


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
