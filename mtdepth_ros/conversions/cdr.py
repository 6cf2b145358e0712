"""Serialized ROS messages written directly: CDR bytes for Image, PointCloud2 and CameraInfo.

A big message (a 13.7 MB cloud, a 1.7 MB depth image) built as a message
object and then serialized is written three times over; here its CDR bytes
(XCDR1, little endian, what rmw_fastrtps and rosbag2 use) are laid out once:
the small prefix (header, sizes, encoding or fields) is packed by
:class:`CdrWriter`, and the caller fills the payload in place through a
numpy view, in one pass. ``rclpy``'s ``Publisher.publish`` and rosbag2
writers take such ``bytes`` as they are. A test decodes every output with
``rclpy.serialization.deserialize_message`` and compares it field by field
with the message the message builders make.

The bytes object is allocated uninitialised with CPython's
``PyBytes_FromStringAndSize(NULL, n)`` and filled before anything else holds
a reference to it, as CPython's own constructors do: no zero fill and no
copy. Padding bytes are written as zeros.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

ENCAPSULATION = b'\x00\x01\x00\x00'  # CDR little endian, no options
_STAMP = struct.Struct('<iI')  # builtin_interfaces/Time: sec, nanosec
_STAMP_AT = len(ENCAPSULATION)  # every message here starts with its header's stamp
_ALIGN_DOUBLE = 8

_new_bytes = ctypes.pythonapi.PyBytes_FromStringAndSize
_new_bytes.restype = ctypes.py_object
_new_bytes.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
_bytes_address = ctypes.pythonapi.PyBytes_AsString
_bytes_address.restype = ctypes.c_void_p
_bytes_address.argtypes = [ctypes.py_object]


def fresh_bytes(size: int) -> tuple[bytes, np.ndarray]:
    """An uninitialised ``bytes`` of ``size`` and a writable (size,) uint8 view of it.

    Fill the view completely before the bytes object is used anywhere.
    """
    data = _new_bytes(None, size)
    memory = (ctypes.c_uint8 * size).from_address(_bytes_address(data))
    memory.owner = data  # type: ignore[attr-defined]  # the view keeps the bytes alive
    # a ctypes array is a writable buffer (numpy's stubs do not say so): 3x faster than
    # np.ctypeslib.as_array, which goes through __array_interface__
    return data, np.frombuffer(memory, np.uint8)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Field:
    """A PointCloud2 field: name, byte offset in the point, PointField datatype, count."""

    name: str
    offset: int
    datatype: int
    count: int = 1


class CdrWriter:
    """Packs the prefix of a message: primitives aligned as CDR aligns them."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0  # bytes after the encapsulation header

    def _align(self, alignment: int) -> None:
        pad = -self.size % alignment
        if pad:
            self.parts.append(bytes(pad))
            self.size += pad

    def _put(self, data: bytes, alignment: int) -> None:
        self._align(alignment)
        self.parts.append(data)
        self.size += len(data)

    def uint32(self, value: int) -> None:
        self._put(struct.pack('<I', value), 4)

    def uint8(self, value: int) -> None:
        self._put(struct.pack('<B', value), 1)

    def string(self, text: str) -> None:
        encoded = text.encode() + b'\0'
        self.uint32(len(encoded))
        self._put(encoded, 1)

    def doubles(self, values: Sequence[float], with_length: bool) -> None:
        if with_length:
            self.uint32(len(values))
        if values:
            self._put(struct.pack(f'<{len(values)}d', *values), _ALIGN_DOUBLE)

    def header(self, frame_id: str) -> None:
        """A std_msgs/Header with a zero stamp: :func:`stamped` writes the real one."""
        self._put(bytes(_STAMP.size), 4)
        self.string(frame_id)

    def prefix(self, payload: int) -> bytes:
        """The bytes so far, then the length of a uint8 sequence of ``payload`` bytes."""
        self.uint32(payload)
        return ENCAPSULATION + b''.join(self.parts)


def stamped(prefix: bytes, header: Any, payload: int, trailer: int = 0
            ) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A message of ``prefix`` (stamp patched in from ``header``), ``payload`` bytes and
    ``trailer`` bytes; returns (bytes, payload view, trailer view) for the caller to fill."""
    data, view = fresh_bytes(len(prefix) + payload + trailer)
    start = len(prefix)
    ctypes.memmove(view.ctypes.data, prefix, start)
    _STAMP.pack_into(view.data, _STAMP_AT, int(header.stamp.sec), int(header.stamp.nanosec))
    return data, view[start:start + payload], view[start + payload:]


def stamp_of(data: bytes) -> tuple[int, int]:
    """(sec, nanosec) of a serialized message that starts with a ``std_msgs/Header``."""
    sec, nanosec = _STAMP.unpack_from(data, _STAMP_AT)
    return sec, nanosec


# Prefixes depend on the frame id, the size and the layout, not on the frame: kept.
@lru_cache(maxsize=256)
def image_prefix(frame_id: str, height: int, width: int, encoding: str, step: int) -> bytes:
    writer = CdrWriter()
    writer.header(frame_id)
    writer.uint32(height)
    writer.uint32(width)
    writer.string(encoding)
    writer.uint8(0)  # is_bigendian
    writer.uint32(step)
    return writer.prefix(step * height)


@lru_cache(maxsize=256)
def cloud_prefix(frame_id: str, height: int, width: int, fields: tuple[Field, ...],
                 point_step: int) -> bytes:
    writer = CdrWriter()
    writer.header(frame_id)
    writer.uint32(height)
    writer.uint32(width)
    writer.uint32(len(fields))
    for field in fields:
        writer.string(field.name)
        writer.uint32(field.offset)
        writer.uint8(field.datatype)
        writer.uint32(field.count)
    writer.uint8(0)  # is_bigendian
    writer.uint32(point_step)
    writer.uint32(width * point_step)  # row_step
    return writer.prefix(height * width * point_step)


def serialized_image(header: Any, height: int, width: int, encoding: str, step: int
                     ) -> tuple[bytes, np.ndarray]:
    """A ``sensor_msgs/Image`` (little endian) and a view of its ``step x height`` data bytes."""
    prefix = image_prefix(str(header.frame_id), height, width, encoding, step)
    data, payload, _ = stamped(prefix, header, step * height)
    return data, payload


def image_bytes(array: np.ndarray, encoding: str, header: Any) -> bytes:
    """A serialized ``sensor_msgs/Image`` of a C-ordered (H, W[, C]) array: one copy."""
    height, width = array.shape[:2]
    data, payload = serialized_image(header, height, width, encoding,
                                     array.nbytes // height if height else 0)
    np.copyto(payload, np.ascontiguousarray(array).reshape(-1).view(np.uint8))
    return data


def serialized_cloud(header: Any, height: int, width: int, fields: Sequence[Field],
                     point_step: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A ``sensor_msgs/PointCloud2`` (little endian); views of its point bytes and of the
    one ``is_dense`` byte that follows them."""
    prefix = cloud_prefix(str(header.frame_id), height, width, tuple(fields), point_step)
    return stamped(prefix, header, height * width * point_step, trailer=1)


def camera_info_bytes(header: Any, width: int, height: int, distortion_model: str,
                      d: Sequence[float], k: Sequence[float], r: Sequence[float],
                      p: Sequence[float]) -> bytes:
    """A serialized ``sensor_msgs/CameraInfo``: binning 0 (none), an empty region of interest."""
    prefix = camera_info_prefix(str(header.frame_id), width, height, distortion_model,
                                tuple(d), tuple(k), tuple(r), tuple(p))
    return stamped(prefix, header, 0)[0]


@lru_cache(maxsize=64)
def camera_info_prefix(frame_id: str, width: int, height: int, distortion_model: str,
                       d: tuple[float, ...], k: tuple[float, ...], r: tuple[float, ...],
                       p: tuple[float, ...]) -> bytes:
    """The whole CameraInfo but its stamp (it has no uint8 sequence to follow)."""
    writer = CdrWriter()
    writer.header(frame_id)
    writer.uint32(height)
    writer.uint32(width)
    writer.string(distortion_model)
    writer.doubles(d, with_length=True)
    for matrix in (k, r, p):
        writer.doubles(matrix, with_length=False)
    for value in (0, 0, 0, 0, 0, 0):  # binning_x, binning_y, roi x, y, height, width
        writer.uint32(value)
    writer.uint8(0)  # roi.do_rectify
    return ENCAPSULATION + b''.join(writer.parts)
