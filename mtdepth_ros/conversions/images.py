"""sensor_msgs/Image <-> numpy, with no rclpy and no per-pixel Python.

Input messages are duck-typed: anything with ``height``, ``width``,
``encoding``, ``is_bigendian``, ``step`` and ``data`` works, so an rclpy
``sensor_msgs.msg.Image`` (``data`` is ``array.array('B')``), a message that
``rosbags`` deserialised (``data`` is a uint8 ndarray) and a plain object
holding ``bytes`` all convert the same way.

Encodings are the ``sensor_msgs/image_encodings`` names. The YUV 4:2:2 names
follow that header: ``uyvy`` (deprecated alias ``yuv422``) and ``yuyv``
(deprecated alias ``yuv422_yuy2``) are packed 2 bytes per pixel. 8-bit Bayer
frames are demosaiced by OpenCV (bilinear) in :func:`image_to_rgb`.
"""

from __future__ import annotations

import sys
from array import array as ByteArray
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


class ImageError(ValueError):
    """An image message (or array) that cannot be converted; the text says why."""


@dataclass(frozen=True)
class _Format:
    dtype: np.dtype
    channels: int  # elements per pixel in the array layout


_U8 = np.dtype(np.uint8)
_U16 = np.dtype(np.uint16)
_F32 = np.dtype(np.float32)

# encoding -> element type and channels of its native array layout
_FORMATS: dict[str, _Format] = {
    'rgb8': _Format(_U8, 3),
    'bgr8': _Format(_U8, 3),
    'rgba8': _Format(_U8, 4),
    'bgra8': _Format(_U8, 4),
    'mono8': _Format(_U8, 1),
    'mono16': _Format(_U16, 1),
    '8UC1': _Format(_U8, 1),
    '8UC3': _Format(_U8, 3),
    '16UC1': _Format(_U16, 1),
    '32FC1': _Format(_F32, 1),
    # YUV 4:2:2: two bytes per pixel, chroma shared by each pixel pair
    'uyvy': _Format(_U8, 2),
    'yuv422': _Format(_U8, 2),
    'yuyv': _Format(_U8, 2),
    'yuv422_yuy2': _Format(_U8, 2),
    # raw colour-filter-array frames (GMSL/industrial cameras), one byte per pixel
    'bayer_rggb8': _Format(_U8, 1),
    'bayer_bggr8': _Format(_U8, 1),
    'bayer_gbrg8': _Format(_U8, 1),
    'bayer_grbg8': _Format(_U8, 1),
}
SUPPORTED_ENCODINGS: frozenset[str] = frozenset(_FORMATS)
_YUV422 = frozenset({'uyvy', 'yuv422', 'yuyv', 'yuv422_yuy2'})

# encoding -> cv2.cvtColor code to RGB; encodings absent here need no colour conversion
_TO_RGB: dict[str, int] = {
    'bgr8': cv2.COLOR_BGR2RGB,
    '8UC3': cv2.COLOR_BGR2RGB,  # generic 3-channel: OpenCV's (and cv_bridge's) BGR order
    'rgba8': cv2.COLOR_RGBA2RGB,
    'bgra8': cv2.COLOR_BGRA2RGB,
    'mono8': cv2.COLOR_GRAY2RGB,
    '8UC1': cv2.COLOR_GRAY2RGB,
    'mono16': cv2.COLOR_GRAY2RGB,
    '16UC1': cv2.COLOR_GRAY2RGB,
    '32FC1': cv2.COLOR_GRAY2RGB,
    'uyvy': cv2.COLOR_YUV2RGB_UYVY,
    'yuv422': cv2.COLOR_YUV2RGB_UYVY,
    'yuyv': cv2.COLOR_YUV2RGB_YUYV,
    'yuv422_yuy2': cv2.COLOR_YUV2RGB_YUYV,
    # OpenCV names a Bayer pattern by the second row's first two pixels, so
    # ROS's rggb is OpenCV's BG (the mapping cv_bridge uses)
    'bayer_rggb8': cv2.COLOR_BayerBG2RGB,
    'bayer_bggr8': cv2.COLOR_BayerRG2RGB,
    'bayer_gbrg8': cv2.COLOR_BayerGR2RGB,
    'bayer_grbg8': cv2.COLOR_BayerGB2RGB,
}
# 3-channel 8-bit encodings in BGR order: a channel swap away from RGB
_BGR_ENCODINGS = frozenset(e for e, code in _TO_RGB.items() if code == cv2.COLOR_BGR2RGB)
_U16_TO_U8_SHIFT = 8  # 16-bit intensities keep their top byte: 65535 -> 255
MM_PER_M = 1000.0
DEPTH_FLOAT_ENCODINGS = ('32FC1',)  # metres (REP 118)
DEPTH_MM_ENCODINGS = ('16UC1', 'mono16')  # millimetres, 0 = no measurement (REP 118)
LABEL_ENCODINGS = ('mono8', '8UC1', 'mono16', '16UC1')
_FLOAT_WHITE = 255.0  # float images are intensities in [0, 1] (OpenCV's convention)
_NATIVE_BIG_ENDIAN = sys.byteorder == 'big'


def image_to_array(msg: Any) -> np.ndarray:
    """The pixels of an image message in their native layout.

    Returns (H, W) for one channel, (H, W, C) otherwise ((H, W, 2) uint8 for
    YUV 4:2:2), in native byte order. A view of ``msg.data`` (no copy) unless
    the data is big-endian multi-byte and has to be swapped; padded rows give a
    strided view. The view is read-only when ``msg.data`` is ``bytes``.
    """
    height, width, step, fmt = _check_message(msg)
    buffer = _as_bytes(msg.data)
    row_bytes = width * fmt.channels * fmt.dtype.itemsize
    rows = buffer.reshape(height, step)[:, :row_bytes]  # (H, row_bytes) uint8
    stored = fmt.dtype.newbyteorder('>' if msg.is_bigendian else '<')
    pixels = rows.view(stored).reshape(_shape(height, width, fmt))
    if not stored.isnative:
        pixels = pixels.astype(fmt.dtype)  # byte swap into native order (copies)
    return pixels


def image_to_rgb(msg: Any) -> np.ndarray:
    """Any supported image as (H, W, 3) uint8 RGB, ready for the network.

    mono16/16UC1 keep their top 8 bits; 32FC1 is read as intensity in [0, 1]
    (NaN black); 8UC3 is taken as BGR, OpenCV's order.
    """
    pixels = image_to_array(msg)
    encoding = msg.encoding
    if pixels.dtype == _U16:
        pixels = (pixels >> _U16_TO_U8_SHIFT).astype(np.uint8)
    elif pixels.dtype == _F32:
        scaled = np.nan_to_num(pixels, nan=0.0, posinf=1.0, neginf=0.0) * _FLOAT_WHITE
        pixels = np.clip(scaled, 0, 255).astype(np.uint8)
    code = _TO_RGB.get(encoding)
    if code is None:  # already RGB
        return np.ascontiguousarray(pixels)
    return cv2.cvtColor(pixels, code)


def image_to_rgb_or_bgr(msg: Any) -> tuple[np.ndarray, bool]:
    """(H, W, 3) uint8 pixels of any supported image, and whether they are in BGR order.

    bgr8 and 8UC3 images come as they are (a view: nothing is copied), every
    other encoding as :func:`image_to_rgb` gives it: for a consumer that
    shrinks the image first and swaps the channels of fewer pixels after.
    """
    if msg.encoding in _BGR_ENCODINGS:
        return image_to_array(msg), True
    return image_to_rgb(msg), False


def array_to_image(array: np.ndarray, encoding: str, header: Any = None) -> Any:
    """A ``sensor_msgs/Image`` holding ``array`` (copied) with ``encoding``.

    ``array`` must have the encoding's element type and channel count:
    (H, W) or (H, W, 1) for one channel, (H, W, C) otherwise. The header's
    stamp and frame id are copied when given.
    """
    from sensor_msgs.msg import Image  # message class only; no rclpy

    fmt = _format(encoding)
    pixels = _check_array(np.asarray(array), encoding, fmt)
    height, width = pixels.shape[:2]
    msg = new_message(Image)
    if header is not None:
        msg.header = copy_header(header)
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = int(_NATIVE_BIG_ENDIAN)
    msg.step = width * fmt.channels * fmt.dtype.itemsize
    msg.data = bytes_to_message_array(pixels)
    return msg


def depth_from_message(msg: Any) -> np.ndarray:
    """A depth image message -> (H, W) float32 metres, NaN where nothing was measured.

    32FC1 is metres (NaN, inf and <= 0 mean no measurement); 16UC1 (and mono16)
    is millimetres with 0 for no measurement, as REP 118 says.
    """
    if msg.encoding in DEPTH_FLOAT_ENCODINGS:
        depth = image_to_array(msg).astype(np.float32, copy=True)
    elif msg.encoding in DEPTH_MM_ENCODINGS:
        depth = image_to_array(msg).astype(np.float32) / np.float32(MM_PER_M)
    else:
        raise ValueError(f"depth encoding '{msg.encoding}' is not one of "
                         f'{DEPTH_FLOAT_ENCODINGS + DEPTH_MM_ENCODINGS}')
    depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
    return depth


def labels_from_message(msg: Any) -> np.ndarray:
    """A label image message (mono8/8UC1, or 16-bit) -> (H, W) class ids."""
    if msg.encoding not in LABEL_ENCODINGS:
        raise ValueError(f"label encoding '{msg.encoding}' is not one of {LABEL_ENCODINGS}")
    return np.array(image_to_array(msg))


def new_message(message_class: Any) -> Any:
    """An empty message whose ``data`` setter keeps an ``array.array('B')`` without copying.

    Since Jazzy, generated messages skip field checks by default, and that
    path copies every assigned sequence into a new ``array.array``; the
    checked path (``check_fields=True``) keeps an ``array.array`` as it is.
    Humble's messages have no such switch and always keep it.
    """
    try:
        return message_class(check_fields=True)
    except AssertionError:  # a distribution without check_fields
        return message_class()


def bytes_to_message_array(values: np.ndarray) -> ByteArray:
    """The bytes of ``values`` as the ``array.array('B')`` a message's ``data`` holds.

    One copy through the buffer protocol: the generated ``data`` setter stores
    an ``array.array`` as it is, while ``bytes`` or a list would be copied
    again (and checked element by element when ROS_PYTHON_CHECK_FIELDS=1).
    """
    out = ByteArray('B')
    out.frombytes(np.ascontiguousarray(values).reshape(-1).view(np.uint8).data)
    return out


def copy_header(header: Any) -> Any:
    """A new ``std_msgs/Header`` with the stamp and frame id of ``header`` (any message's)."""
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    stamp = Time(sec=int(header.stamp.sec), nanosec=int(header.stamp.nanosec))
    return Header(stamp=stamp, frame_id=str(header.frame_id))


def _format(encoding: str) -> _Format:
    fmt = _FORMATS.get(encoding)
    if fmt is None:
        raise ImageError(
            f"unsupported image encoding '{encoding}'; supported: "
            f"{', '.join(sorted(SUPPORTED_ENCODINGS))}")
    return fmt


def _shape(height: int, width: int, fmt: _Format) -> tuple[int, ...]:
    return (height, width) if fmt.channels == 1 else (height, width, fmt.channels)


def _check_message(msg: Any) -> tuple[int, int, int, _Format]:
    fmt = _format(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageError(f'{msg.encoding} image has zero size: {width}x{height}')
    if msg.encoding in _YUV422 and width % 2:
        raise ImageError(
            f'{msg.encoding} image width {width} is odd; YUV 4:2:2 pairs pixels, '
            'so the width must be even')
    row_bytes = width * fmt.channels * fmt.dtype.itemsize
    if step < row_bytes:
        raise ImageError(
            f'{msg.encoding} image step {step} is smaller than one row '
            f'({width} px x {fmt.channels * fmt.dtype.itemsize} bytes = {row_bytes})')
    size = len(msg.data) * getattr(msg.data, 'itemsize', 1)
    if size != step * height:
        raise ImageError(
            f'{msg.encoding} image data has {size} bytes; step x height = '
            f'{step} x {height} = {step * height}')
    return height, width, step, fmt


def _as_bytes(data: Any) -> np.ndarray:
    """``msg.data`` as a flat uint8 array, without copying where it is a buffer."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:  # a list of ints, built by hand: copied
        return np.asarray(data, dtype=np.uint8)


def _check_array(pixels: np.ndarray, encoding: str, fmt: _Format) -> np.ndarray:
    if pixels.ndim == 3 and pixels.shape[2] == 1 and fmt.channels == 1:
        pixels = pixels[:, :, 0]
    expected = _shape(1, 1, fmt)
    if pixels.ndim != len(expected) or pixels.shape[2:] != expected[2:]:
        layout = '(H, W)' if fmt.channels == 1 else f'(H, W, {fmt.channels})'
        raise ImageError(f'{encoding} needs a {layout} array, got shape {pixels.shape}')
    if pixels.dtype.newbyteorder('=') != fmt.dtype:
        raise ImageError(f'{encoding} needs {fmt.dtype} pixels, got {pixels.dtype}')
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ImageError(f'{encoding} array has zero size: shape {pixels.shape}')
    if encoding in _YUV422 and pixels.shape[1] % 2:
        raise ImageError(f'{encoding} width {pixels.shape[1]} is odd; YUV 4:2:2 needs it even')
    return pixels.astype(fmt.dtype, copy=False)  # native byte order
