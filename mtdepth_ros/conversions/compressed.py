"""sensor_msgs/CompressedImage <-> numpy: JPEG and PNG, as image_transport's
``compressed`` plugin writes them, decoded and encoded by OpenCV.

The ``format`` field is ``"<encoding>; jpeg compressed <encoding>"`` (or
``png``) from image_transport, or a bare ``jpeg`` / ``png`` from some drivers;
the payload's own magic bytes decide when the field says neither. A payload
that is empty, truncated (no JPEG end-of-image marker, no PNG IEND chunk) or
that OpenCV cannot decode raises :class:`~mtdepth_ros.conversions.images.ImageError`:
libjpeg would otherwise hand back a truncated frame with its bottom filled grey.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from mtdepth_ros.conversions.images import (
    ImageError,
    bytes_to_message_array,
    copy_header,
    image_to_rgb,
    image_to_rgb_or_bgr,
    new_message,
)

JPEG_START = b'\xff\xd8'
JPEG_END = b'\xff\xd9'
PNG_START = b'\x89PNG\r\n\x1a\n'
PNG_END = b'IEND\xaeB`\x82'  # the IEND chunk type and its CRC: the last 8 bytes of a PNG
COMPRESSED_FORMATS = ('jpeg', 'png')
DEFAULT_JPEG_QUALITY = 90
# The decoder writes RGB itself where OpenCV can (IMREAD_COLOR_RGB, OpenCV 4.10 on): no
# second pass over the frame; before that, BGR then a swap.
_DECODE_FLAG = getattr(cv2, 'IMREAD_COLOR_RGB', cv2.IMREAD_COLOR)


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """A JPEG or PNG ``CompressedImage`` as (H, W, 3) uint8 RGB (grey is expanded)."""
    data = _payload(msg.data)  # (N,) uint8
    kind = compression_of(str(msg.format), data)
    raw = data.tobytes()
    if kind == 'jpeg' and not raw.rstrip(b'\0').endswith(JPEG_END):
        raise ImageError(f'JPEG payload of {data.size} bytes is truncated (no end-of-image marker)')
    if kind == 'png' and not raw.endswith(PNG_END):
        raise ImageError(f'PNG payload of {data.size} bytes is truncated (no IEND chunk)')
    pixels = cv2.imdecode(data, _DECODE_FLAG)  # (H, W, 3) uint8, or None
    if pixels is None:
        raise ImageError(f'{kind.upper()} payload of {data.size} bytes cannot be decoded')
    return pixels if _DECODE_FLAG != cv2.IMREAD_COLOR else cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def message_to_rgb(msg: Any) -> np.ndarray:
    """An ``Image`` or a ``CompressedImage`` (it has a ``format`` field) as (H, W, 3) uint8 RGB."""
    return compressed_to_rgb(msg) if hasattr(msg, 'format') else image_to_rgb(msg)


def message_to_rgb_or_bgr(msg: Any) -> tuple[np.ndarray, bool]:
    """:func:`message_to_rgb`'s pixels, raw bgr8 images left in BGR order (then True):
    :func:`~mtdepth_ros.conversions.images.image_to_rgb_or_bgr`."""
    return (compressed_to_rgb(msg), False) if hasattr(msg, 'format') else image_to_rgb_or_bgr(msg)


def rgb_to_compressed(rgb: np.ndarray, kind: str = 'jpeg', header: Any = None,
                      quality: int = DEFAULT_JPEG_QUALITY) -> Any:
    """(H, W, 3) uint8 RGB -> a ``sensor_msgs/CompressedImage`` as image_transport writes it."""
    from sensor_msgs.msg import CompressedImage  # message class only; no rclpy

    if kind not in COMPRESSED_FORMATS:
        raise ValueError(f'compression must be one of {COMPRESSED_FORMATS}, got {kind!r}')
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if kind == 'jpeg' else []
    ok, encoded = cv2.imencode('.jpg' if kind == 'jpeg' else '.png',
                               cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ImageError(f'OpenCV could not encode a {rgb.shape} image as {kind}')
    msg = new_message(CompressedImage)
    if header is not None:
        msg.header = copy_header(header)
    msg.format = f'rgb8; {kind} compressed bgr8'
    msg.data = bytes_to_message_array(encoded.reshape(-1))
    return msg


def compression_of(format_field: str, data: np.ndarray) -> str:
    """'jpeg' or 'png': from the format field, else from the payload's magic bytes."""
    text = format_field.lower()
    if 'png' in text:
        return 'png'
    if 'jpeg' in text or 'jpg' in text:
        return 'jpeg'
    head = data[:len(PNG_START)].tobytes()
    if head.startswith(PNG_START):
        return 'png'
    if head.startswith(JPEG_START):
        return 'jpeg'
    raise ImageError(f"compressed format '{format_field}' is neither JPEG nor PNG "
                     f'(supported: {", ".join(COMPRESSED_FORMATS)})')


def _payload(data: Any) -> np.ndarray:
    if isinstance(data, np.ndarray):
        flat = data.reshape(-1).view(np.uint8)
    else:
        try:
            flat = np.frombuffer(data, dtype=np.uint8)
        except TypeError:  # a list of ints
            flat = np.asarray(data, dtype=np.uint8)
    if flat.size == 0:
        raise ImageError('compressed image has an empty payload')
    return flat
