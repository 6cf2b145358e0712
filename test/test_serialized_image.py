"""Serialized Images read in place give exactly what rclpy's deserialization gives."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from mtdepth_ros.conversions.images import array_to_image, image_to_array, image_to_rgb
from mtdepth_ros.conversions.serialized_image import (
    SerializedImage,
    SerializedImageError,
    read_image,
)

FIELDS = ('height', 'width', 'encoding', 'is_bigendian', 'step')


def message(frame_id: str, encoding: str, height: int, width: int, pad: int = 0,
            sec: int = 1_700_000_000) -> Image:
    rng = np.random.default_rng(height * 31 + width)
    channels = {'mono8': 1, 'rgb8': 3, 'bgra8': 4, '16UC1': 2, '32FC1': 4}[encoding]
    msg = Image(header=Header(frame_id=frame_id), height=height, width=width,
                encoding=encoding, is_bigendian=0, step=width * channels + pad)
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, 123_456_789
    msg.data = rng.integers(0, 256, msg.step * height, np.uint8).tobytes()
    return msg


def assert_same(read: SerializedImage, expected: Image) -> None:
    assert read.header == expected.header
    for name in FIELDS:
        assert getattr(read, name) == getattr(expected, name), name
    assert read.data.tobytes() == bytes(expected.data)


# frame ids of every length modulo 4 move every later field's alignment
@pytest.mark.parametrize('frame_id', ['', 'c', 'ca', 'cam', 'camera_optical_frame'])
@pytest.mark.parametrize(('encoding', 'height', 'width', 'pad'), [
    ('rgb8', 5, 7, 0), ('mono8', 3, 9, 3), ('bgra8', 2, 2, 0), ('16UC1', 4, 3, 2),
    ('32FC1', 1, 1, 0), ('rgb8', 0, 0, 0)])
def test_read_in_place_equals_rclpy(frame_id: str, encoding: str, height: int, width: int,
                                    pad: int) -> None:
    expected = message(frame_id, encoding, height, width, pad)
    data = serialize_message(expected)
    assert_same(read_image(data), deserialize_message(data, Image))


def test_pixels_are_a_view_of_the_bytes_and_convert_as_a_message_does() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (6, 10, 3), np.uint8)
    expected = array_to_image(rgb, 'bgr8', Header(frame_id='cam'))
    data = serialize_message(expected)
    read = read_image(data)
    assert not read.data.flags.writeable and read.data.base is not None  # no copy
    assert np.array_equal(image_to_array(read), image_to_array(expected))
    assert np.array_equal(image_to_rgb(read), image_to_rgb(expected))


def test_negative_stamps_and_big_endian_cdr() -> None:
    expected = message('cam', 'mono8', 2, 3, sec=-5)
    little = serialize_message(expected)
    assert read_image(little).header.stamp.sec == -5
    # The same message in big-endian CDR: every uint32/int32 swapped, bytes unchanged.
    big = bytearray(little)
    big[1] = 0
    for at in (4, 8, 12, 20, 24, 28, 40, 44):  # stamp, lengths, sizes, step: 'cam' moves none
        big[at:at + 4] = struct.pack('>I', struct.unpack_from('<I', little, at)[0])
    assert_same(read_image(bytes(big)), expected)


@pytest.mark.parametrize('cut', range(0, 80, 3))
def test_every_truncation_is_a_clear_error(cut: int) -> None:
    data = serialize_message(message('cam', 'rgb8', 4, 5))
    with pytest.raises(SerializedImageError, match='too short|truncated at'):
        read_image(data[:cut])


@pytest.mark.parametrize(('change', 'text'), [
    (lambda d: b'\x01\x07' + d[2:], 'unknown CDR representation 0107'),
    (lambda d: d[:19] + b'x' + d[20:], 'header.frame_id at byte 16 is not NUL-terminated'),
    (lambda d: d[:33] + b'\xff' + d[34:], 'encoding at byte 32 is not UTF-8'),
    (lambda d: d[:44] + struct.pack('<I', 1 << 31) + d[48:], 'truncated at data'),
])
def test_bytes_that_are_not_an_image_are_named(change: object, text: str) -> None:
    data = serialize_message(message('cam', 'rgb8', 4, 5))  # frame_id 'cam': 4 bytes with NUL
    with pytest.raises(SerializedImageError, match=text):
        read_image(change(data))  # type: ignore[operator]
