"""A depth image straight to a serialized ``sensor_msgs/PointCloud2``, in one pass.

The same cloud as ``points_to_cloud(depth_to_points(depth, camera), ...)``
(:mod:`.clouds`: depth_image_proc's layout and float32 arithmetic, NaN
points where invalid in an organized cloud, valid points only otherwise),
but every point record (x y z, rgb, label, confidence, zero padding) is
written once, by a numba kernel, into the message's own CDR bytes
(:mod:`.cdr`). An unorganized cloud takes one more pass that only counts.
The kernel accepts what ``points_to_cloud`` accepts and gives the same bytes
(a test compares them over every combination of fields, sizes and settings).

The kernel compiles on first use (about a second) and is cached on disk
(``cache=True``); :func:`warm_up` compiles it ahead of the first frame.
"""

from __future__ import annotations

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
_NO_LABELS = np.zeros((0, 0), np.uint8)
_NO_RGB = np.zeros((0, 0, 3), np.uint8)
_NO_CONFIDENCE = np.zeros((0, 0), np.float32)
_NO_DROP = np.zeros(0, np.bool_)
_NO_BYTES = np.zeros(0, np.uint8)


@numba.njit(cache=True, nogil=True)
def _points(out: Any, words: int, organized: bool, depth: Any, step: int, cx: np.float32,
            cy: np.float32, ifx: np.float32, ify: np.float32, rgb: Any, labels: Any,
            confidence: Any, max_depth: np.float32, min_confidence: np.float32,
            drop: Any) -> int:  # pragma: no cover (numba)
    """Write the point records into ``out`` (uint8 bytes); the number of points kept.

    ``words == 0`` only counts. A point stays where it is finite, at most
    ``max_depth`` deep, at least ``min_confidence`` confident and of a class
    ``drop`` keeps; the checks do not branch on per-pixel values, which
    change unpredictably from pixel to pixel. (Written out in one loop: an
    inlined helper made numba's code four times slower.)
    """
    floats = out.view(np.float32)
    ints = out.view(np.uint32)
    nan = np.float32(np.nan)
    zero = np.uint32(0)
    check_labels = drop.size > 0 and labels.size > 0
    check_confidence = min_confidence > 0 and confidence.size > 0
    has_rgb, has_labels, has_confidence = rgb.size > 0, labels.size > 0, confidence.size > 0
    extra = words > 4  # rgb, label and confidence words after x y z
    index = 0
    kept_count = 0
    for v in range(0, depth.shape[0], step):
        offset_v = np.float32(v) - cy
        for u in range(0, depth.shape[1], step):
            z = depth[v, u]
            x = (np.float32(u) - cx) * z * ifx
            y = offset_v * z * ify
            kept = np.isfinite(x) and np.isfinite(y) and z > 0 and z <= max_depth
            if check_confidence:
                kept = kept and confidence[v, u] >= min_confidence
            if check_labels:
                kept = kept and not drop[labels[v, u]]
            kept_count += 1 if kept else 0
            if words == 0 or (not organized and not kept):
                continue
            if not kept:
                x = nan
                y = nan
                z = nan
            base = index * words
            floats[base] = x
            floats[base + 1] = y
            floats[base + 2] = z
            ints[base + 3] = zero
            if extra:
                colour = zero
                if has_rgb:
                    colour = (np.uint32(rgb[v, u, 0]) << np.uint32(16)
                              | np.uint32(rgb[v, u, 1]) << np.uint32(8) | np.uint32(rgb[v, u, 2]))
                ints[base + 4] = colour
                ints[base + 5] = np.uint32(labels[v, u]) if has_labels else zero
                if has_confidence:
                    floats[base + 6] = confidence[v, u]
                else:
                    ints[base + 6] = zero
                ints[base + 7] = zero
            index += 1
    return kept_count


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
    rows, cols = len(range(0, depth.shape[0], step)), len(range(0, depth.shape[1], step))
    drop = _NO_DROP
    if drop_ids and labels is not None:  # a lookup table over every value the labels can take
        drop = np.zeros(np.iinfo(labels.dtype).max + 1, np.bool_)
        drop[[i for i in drop_ids if i < drop.size]] = True
    args = (depth, step, np.float32(camera.cx), np.float32(camera.cy),
            np.float32(1.0 / camera.fx), np.float32(1.0 / camera.fy))
    extras = (_NO_RGB if rgb is None else np.ascontiguousarray(rgb),
              _NO_LABELS if labels is None else np.ascontiguousarray(labels),
              _NO_CONFIDENCE if confidence is None else np.ascontiguousarray(confidence,
                                                                             np.float32),
              np.float32(max_depth if max_depth > 0 else np.inf), np.float32(min_confidence),
              drop)
    if organized:
        height, width = rows, cols
    else:
        height, width = 1, _points(_NO_BYTES, 0, organized, *args, *extras)  # count only
    data, payload, dense = serialized_cloud(header, height, width, fields, point_step)
    kept = _points(payload, point_step // WORD, organized, *args, *extras)
    dense[0] = 1 if (not organized or kept == rows * cols) else 0
    return data


def warm_up() -> None:
    """Compile (or load from the cache) the kernels for every channel combination."""
    camera = PinholeCamera(width=2, height=2, fx=1.0, fy=1.0, cx=0.5, cy=0.5)
    depth = np.ones((2, 2), np.float32)
    for labels in (np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint16)):
        for organized in (True, False):
            cloud_bytes(depth, camera, _Header(), np.zeros((2, 2, 3), np.uint8), labels,
                        np.ones((2, 2), np.float32), organized, drop_ids=(0,))
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
