"""Depth image + pinhole camera -> ``sensor_msgs/PointCloud2``, no rclpy.

Follows depth_image_proc (``point_cloud_xyz`` / ``point_cloud_xyzrgb``) so RViz,
PCL and downstream nodes read our cloud as they read that one:

- back-projection as its ``convertDepth``: in float32,
  x = (u - cx) * z * (1 / fx), y = (v - cy) * z * (1 / fy), with cx, cy, fx, fy
  from P (``PinholeCamera.from_camera_info``);
- layout as ``PointCloud2Modifier.setPointCloud2FieldsByString("xyz", "rgb")``:
  x, y, z float32 at 0, 4, 8 (4 bytes padding), ``rgb`` float32 at 16 whose bits
  are 0x00RRGGBB (little-endian bytes b, g, r, 0), point_step 32. Our ``label``
  (uint32 at 20, as PCL's ``PointXYZRGBL``) and ``confidence`` (float32 at 24)
  live in that struct's padding, so point_step stays 32. A cloud with no
  rgb/label/confidence is the 16-byte ``xyz`` layout of ``point_cloud_xyz``.

Organized clouds are H x W with NaN x, y, z where a point is invalid or not
kept; unorganized clouds are 1 x N with only the valid, kept points.
Decimation is ``points_to_cloud(..., decimation=s)``: every s-th row and
column of all inputs, points keeping their full-resolution coordinates.
"""

from __future__ import annotations

import array
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.images import copy_header, new_message


class CloudError(ValueError):
    """Inputs that cannot make a point cloud (mismatched shapes, ...); the text says why."""


# sensor_msgs/PointField datatype constants
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)
_POINTFIELD_DTYPES = {
    INT8: 'i1', UINT8: 'u1', INT16: 'i2', UINT16: 'u2',
    INT32: 'i4', UINT32: 'u4', FLOAT32: 'f4', FLOAT64: 'f8',
}


@dataclass(frozen=True)
class _Field:
    name: str
    offset: int  # bytes into the point
    datatype: int  # PointField constant


XYZ_FIELDS = (_Field('x', 0, FLOAT32), _Field('y', 4, FLOAT32), _Field('z', 8, FLOAT32))
RGB_FIELD = _Field('rgb', 16, FLOAT32)
LABEL_FIELD = _Field('label', 20, UINT32)
CONFIDENCE_FIELD = _Field('confidence', 24, FLOAT32)
XYZ_POINT_STEP = 16  # point_cloud_xyz: x y z + 4 bytes padding
XYZRGB_POINT_STEP = 32  # point_cloud_xyzrgb: x y z pad rgb + 12 bytes padding (ours: label, confidence)
_FLOAT_BYTES = 4
_RGB_SHIFTS = (16, 8, 0)  # r, g, b bit positions in the packed 0x00RRGGBB value
_RGB_MASK = 0x00FFFFFF  # alpha byte zero


def depth_to_points(depth: np.ndarray, camera: PinholeCamera) -> np.ndarray:
    """Back-project a depth image (H, W) metres; returns (H, W, 3) float32 x, y, z.

    Invalid depth (NaN, inf, <= 0) gives NaN x, y, z. The arithmetic is
    depth_image_proc's, in the same float32 order, so the values match it bit for bit.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise CloudError(f'depth must be (H, W), got shape {depth.shape}')
    if not np.issubdtype(depth.dtype, np.floating):
        raise CloudError(
            f'depth must be float metres, got {depth.dtype} (convert 16UC1 millimetres first)')
    height, width = depth.shape
    if (width, height) != (camera.width, camera.height):
        raise CloudError(
            f'depth is {width}x{height} but the camera is {camera.width}x{camera.height}; '
            'scale the camera first (PinholeCamera.scaled)')
    z = depth.astype(np.float32, copy=False)
    valid = np.isfinite(z) & (z > 0)
    z = np.where(valid, z, np.float32(np.nan))  # (H, W) float32
    # depth_image_proc: float center_x = cx; float constant_x = 1.0 / fx (in double)
    offset_u = np.arange(width, dtype=np.float32) - np.float32(camera.cx)  # (W,)
    offset_v = np.arange(height, dtype=np.float32) - np.float32(camera.cy)  # (H,)
    constant_x = np.float32(1.0 / camera.fx)
    constant_y = np.float32(1.0 / camera.fy)
    points = np.empty((height, width, 3), dtype=np.float32)
    np.multiply(offset_u[None, :] * z, constant_x, out=points[:, :, 0])
    np.multiply(offset_v[:, None] * z, constant_y, out=points[:, :, 1])
    points[:, :, 2] = z
    return points


def points_to_cloud(points: np.ndarray, header: Any, rgb: np.ndarray | None = None,
                    labels: np.ndarray | None = None, confidence: np.ndarray | None = None,
                    organized: bool = True, keep: np.ndarray | None = None,
                    decimation: int = 1) -> Any:
    """A ``sensor_msgs/PointCloud2`` from (H, W, 3) points and optional per-pixel fields.

    rgb: (H, W, 3) uint8 RGB; labels: (H, W) non-negative integers; confidence:
    (H, W) float; keep: (H, W) bool, False drops a point (max range, low
    confidence). A point is valid where x, y, z are finite and ``keep`` is True.
    """
    from sensor_msgs.msg import PointCloud2  # message class only; no rclpy

    inputs = _check_inputs(points, rgb, labels, confidence, keep, decimation)
    points, rgb, labels, confidence, keep = inputs
    height, width = points.shape[:2]
    # (H, W) bool; per coordinate because a reduction over the short last axis is 10x slower
    valid = np.isfinite(points[:, :, 0]) & np.isfinite(points[:, :, 1]) & np.isfinite(points[:, :, 2])
    if keep is not None:
        valid &= keep
    fields = _fields(rgb, labels, confidence)
    point_step = XYZ_POINT_STEP if len(fields) == len(XYZ_FIELDS) else XYZRGB_POINT_STEP
    if organized:
        count, select = height * width, None
    else:
        # indices, not the mask: np.take beats boolean indexing ~5x on scattered masks
        select = np.flatnonzero(valid)
        count = int(select.size)
    data = _zeroed_bytes(count * point_step)
    words = np.frombuffer(data, dtype='<f4').reshape(count, point_step // _FLOAT_BYTES)

    def column(values: np.ndarray) -> np.ndarray:  # (H, W[, C]) -> (count[, C])
        flat = values.reshape(height * width, *values.shape[2:])
        return flat if select is None else np.take(flat, select, axis=0)

    words[:, 0:3] = column(points)
    if organized:
        # scatter only the invalid rows: cheaper than a masked write over all of them
        words[np.flatnonzero(~valid), 0:3] = np.nan
    if rgb is not None:
        words.view('<u4')[:, _word(RGB_FIELD)] = column(_pack_rgb(rgb))
    if labels is not None:
        words.view('<u4')[:, _word(LABEL_FIELD)] = column(labels)
    if confidence is not None:
        words[:, _word(CONFIDENCE_FIELD)] = column(confidence)

    msg = new_message(PointCloud2)
    msg.header = copy_header(header)
    msg.height, msg.width = (height, width) if organized else (1, count)
    msg.fields = [_point_field(f) for f in fields]
    msg.is_bigendian = False
    msg.point_step = point_step
    msg.row_step = msg.width * point_step
    msg.is_dense = bool(valid.all()) if organized else True
    msg.data = data
    return msg


def cloud_to_points(msg: Any) -> dict[str, np.ndarray]:
    """Every field of a ``PointCloud2`` (rclpy or rosbags) as arrays shaped (height, width).

    ``rgb``/``rgba`` come back unpacked as (height, width, 3) uint8 RGB; fields
    with count > 1 get a trailing axis. The inverse of :func:`points_to_cloud`
    for tests and evaluation.
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.point_step)
    row_step = int(msg.row_step)
    raw = np.asarray(memoryview(msg.data).cast('B')) if not isinstance(msg.data, np.ndarray) \
        else msg.data.reshape(-1).view(np.uint8)
    if raw.size < row_step * height or row_step < width * step:
        raise CloudError(
            f'cloud data has {raw.size} bytes; expected row_step x height = '
            f'{row_step} x {height} with row_step >= width x point_step = {width} x {step}')
    order = '>' if msg.is_bigendian else '<'
    names, formats, offsets = [], [], []
    for field in msg.fields:
        code = _POINTFIELD_DTYPES.get(int(field.datatype))
        if code is None:
            raise CloudError(f"field '{field.name}' has unknown datatype {field.datatype}")
        names.append(field.name)
        formats.append((order + code, (int(field.count),)) if field.count > 1 else order + code)
        offsets.append(int(field.offset))
    dtype = np.dtype({'names': names, 'formats': formats, 'offsets': offsets, 'itemsize': step})
    rows = raw[:row_step * height].reshape(height, row_step)[:, :width * step]
    records = np.ascontiguousarray(rows).view(dtype).reshape(height, width)
    out: dict[str, np.ndarray] = {}
    for name in names:
        values = records[name]
        if name in ('rgb', 'rgba'):
            out[name] = _unpack_rgb(values.view(order + 'u4'))
        else:
            out[name] = values.astype(values.dtype.newbyteorder('='))
    return out


def _check_inputs(points: np.ndarray, rgb: np.ndarray | None, labels: np.ndarray | None,
                  confidence: np.ndarray | None, keep: np.ndarray | None, decimation: int
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None,
                             np.ndarray | None, np.ndarray | None]:
    points = np.asarray(points)
    if points.ndim != 3 or points.shape[2] != 3:
        raise CloudError(f'points must be (H, W, 3), got shape {points.shape}')
    if int(decimation) < 1:
        raise CloudError(f'decimation must be >= 1, got {decimation}')
    step = int(decimation)
    size = points.shape[:2]
    checked: list[np.ndarray | None] = []
    for name, values, trailing in (('rgb', rgb, (3,)), ('labels', labels, ()),
                                   ('confidence', confidence, ()), ('keep', keep, ())):
        if values is None:
            checked.append(None)
            continue
        values = np.asarray(values)
        if values.shape != size + trailing:
            raise CloudError(
                f'{name} must have shape {size + trailing} to match the points, got {values.shape}')
        checked.append(values[::step, ::step])
    rgb, labels, confidence, keep = checked
    if rgb is not None and rgb.dtype != np.uint8:
        raise CloudError(f'rgb must be uint8, got {rgb.dtype}')
    if labels is not None:
        if not np.issubdtype(labels.dtype, np.integer):
            raise CloudError(f'labels must be integers, got {labels.dtype}')
        if labels.size and labels.min() < 0:
            raise CloudError('labels must be non-negative')
    if keep is not None and keep.dtype != np.bool_:
        raise CloudError(f'keep must be a bool mask, got {keep.dtype}')
    return points[::step, ::step].astype(np.float32, copy=False), rgb, labels, confidence, keep


def _fields(rgb: np.ndarray | None, labels: np.ndarray | None,
            confidence: np.ndarray | None) -> list[_Field]:
    extras = [(RGB_FIELD, rgb), (LABEL_FIELD, labels), (CONFIDENCE_FIELD, confidence)]
    return [*XYZ_FIELDS, *(field for field, values in extras if values is not None)]


def _word(field: _Field) -> int:
    return field.offset // _FLOAT_BYTES


def _pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint32 0x00RRGGBB (alpha 0, as depth_image_proc leaves it)."""
    # BGRA bytes read as a little-endian uint32 are 0xAARRGGBB; OpenCV does the shuffle
    bgra = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGRA)  # (H, W, 4) uint8
    packed = bgra.view('<u4')[:, :, 0]  # (H, W)
    packed &= _RGB_MASK
    return packed


def _unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """(...) uint32 0x00RRGGBB -> (..., 3) uint8 RGB."""
    return np.stack([(packed >> shift) & 0xFF for shift in _RGB_SHIFTS], axis=-1).astype(np.uint8)


def _zeroed_bytes(size: int) -> array.array:
    """A zero-filled ``array.array('B')`` the message keeps without another copy."""
    return array.array('B', bytes(1)) * size


def _point_field(field: _Field) -> Any:
    from sensor_msgs.msg import PointField

    return PointField(name=field.name, offset=field.offset, datatype=field.datatype, count=1)
