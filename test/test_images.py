"""sensor_msgs/Image <-> numpy: round trips, padding, byte order, colour, errors."""

from __future__ import annotations

import array
from types import SimpleNamespace

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from mtdepth_ros.conversions.images import (
    SUPPORTED_ENCODINGS,
    ImageError,
    array_to_image,
    image_to_array,
    image_to_rgb,
    image_to_rgb_or_bgr,
)

HEIGHT, WIDTH = 3, 4
# encoding -> (dtype, channels) as the test expects them, written out independently
LAYOUTS = {
    'rgb8': (np.uint8, 3), 'bgr8': (np.uint8, 3), 'rgba8': (np.uint8, 4),
    'bgra8': (np.uint8, 4), 'mono8': (np.uint8, 1), 'mono16': (np.uint16, 1),
    '8UC1': (np.uint8, 1), '8UC3': (np.uint8, 3), '16UC1': (np.uint16, 1),
    '32FC1': (np.float32, 1), 'uyvy': (np.uint8, 2), 'yuv422': (np.uint8, 2),
    'yuyv': (np.uint8, 2), 'yuv422_yuy2': (np.uint8, 2), 'bayer_rggb8': (np.uint8, 1),
    'bayer_bggr8': (np.uint8, 1), 'bayer_gbrg8': (np.uint8, 1), 'bayer_grbg8': (np.uint8, 1),
}


def pixels(encoding: str, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    dtype, channels = LAYOUTS[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    values = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    if dtype == np.uint16:
        return (values * 1000 + 7).astype(np.uint16)  # both bytes differ
    if dtype == np.float32:
        return (values / 7 - 1).astype(np.float32)
    return (values * 11 % 256).astype(np.uint8)


def raw_message(encoding: str, array_in: np.ndarray, padding: int = 0,
                big_endian: bool = False, data_type: type = bytes) -> SimpleNamespace:
    """A hand-built message, as a camera driver or rosbags would hand it over."""
    stored = array_in.astype(array_in.dtype.newbyteorder('>' if big_endian else '<'))
    height, width = array_in.shape[:2]
    rows = stored.reshape(height, -1).view(np.uint8)
    padded = np.pad(rows, ((0, 0), (0, padding)), constant_values=0xEE)
    data = padded.reshape(-1)
    return SimpleNamespace(
        height=height, width=width, encoding=encoding, is_bigendian=int(big_endian),
        step=rows.shape[1] + padding, data=data.tobytes() if data_type is bytes else data)


def test_supported_encodings_are_the_documented_ones() -> None:
    assert SUPPORTED_ENCODINGS == set(LAYOUTS)


@pytest.mark.parametrize('encoding', sorted(LAYOUTS))
def test_round_trip(encoding: str) -> None:
    original = pixels(encoding)
    msg = array_to_image(original, encoding)
    result = image_to_array(msg)
    assert result.dtype == original.dtype
    np.testing.assert_array_equal(result, original)


@pytest.mark.parametrize('encoding', sorted(LAYOUTS))
def test_array_to_image_sets_size_step_and_byte_order(encoding: str) -> None:
    dtype, channels = LAYOUTS[encoding]
    msg = array_to_image(pixels(encoding), encoding)
    assert (msg.height, msg.width, msg.encoding) == (HEIGHT, WIDTH, encoding)
    assert msg.step == WIDTH * channels * np.dtype(dtype).itemsize
    assert len(msg.data) == msg.step * HEIGHT
    assert msg.is_bigendian == (np.little_endian is False)


def test_array_to_image_fills_data_as_array_array() -> None:
    msg = array_to_image(pixels('rgb8'), 'rgb8')
    assert isinstance(msg.data, array.array) and msg.data.typecode == 'B'


def test_array_to_image_accepts_trailing_channel_axis_for_mono() -> None:
    mono = pixels('mono8')
    msg = array_to_image(mono[:, :, None], 'mono8')
    np.testing.assert_array_equal(image_to_array(msg), mono)


def test_array_to_image_accepts_non_contiguous_array() -> None:
    rgb = pixels('rgb8', width=8)[:, ::2]
    np.testing.assert_array_equal(image_to_array(array_to_image(rgb, 'rgb8')), rgb)


def test_array_to_image_copies_header() -> None:
    header = Header(frame_id='camera_optical_frame')
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = array_to_image(pixels('mono8'), 'mono8', header)
    assert msg.header == header
    assert msg.header is not header


def test_image_to_array_is_a_view_of_rclpy_message_data() -> None:
    msg = array_to_image(pixels('rgb8'), 'rgb8')
    assert np.shares_memory(image_to_array(msg), np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize('encoding', ['rgb8', 'mono16', '32FC1', 'yuyv'])
def test_padded_rows(encoding: str) -> None:
    original = pixels(encoding)
    msg = raw_message(encoding, original, padding=6)
    np.testing.assert_array_equal(image_to_array(msg), original)


@pytest.mark.parametrize('encoding', ['mono16', '16UC1', '32FC1'])
def test_big_endian_data_is_swapped_to_native(encoding: str) -> None:
    original = pixels(encoding)
    result = image_to_array(raw_message(encoding, original, big_endian=True))
    assert result.dtype.isnative
    np.testing.assert_array_equal(result, original)


def test_big_endian_flag_is_ignored_for_bytes() -> None:
    original = pixels('rgb8')
    np.testing.assert_array_equal(
        image_to_array(raw_message('rgb8', original, big_endian=True)), original)


def test_list_data_is_read() -> None:
    original = pixels('mono8')
    msg = raw_message('mono8', original)
    msg.data = list(msg.data)
    np.testing.assert_array_equal(image_to_array(msg), original)


def test_message_survives_rclpy_serialization() -> None:
    from rclpy.serialization import deserialize_message, serialize_message

    original = pixels('32FC1')
    sent = array_to_image(original, '32FC1')
    received = deserialize_message(serialize_message(sent), Image)
    np.testing.assert_array_equal(image_to_array(received), original)


def test_rosbags_style_numpy_data() -> None:
    original = pixels('bgr8')
    msg = raw_message('bgr8', original, padding=2, data_type=np.ndarray)
    np.testing.assert_array_equal(image_to_array(msg), original)


def test_real_rosbags_message() -> None:
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.LATEST)
    image_type = store.types['sensor_msgs/msg/Image']
    original = pixels('mono16')
    sent = array_to_image(original, 'mono16')
    fields = {name: getattr(sent, name)
              for name in ('height', 'width', 'encoding', 'is_bigendian', 'step')}
    message = image_type(header=store.types['std_msgs/msg/Header'](
        stamp=store.types['builtin_interfaces/msg/Time'](sec=1, nanosec=2), frame_id='cam'),
        data=np.frombuffer(sent.data, np.uint8), **fields)
    decoded = store.deserialize_cdr(store.serialize_cdr(message, image_type.__msgtype__),
                                    image_type.__msgtype__)
    np.testing.assert_array_equal(image_to_array(decoded), original)


# --- image_to_rgb --------------------------------------------------------------------


def test_rgb8_to_rgb_is_unchanged() -> None:
    rgb = pixels('rgb8')
    result = image_to_rgb(array_to_image(rgb, 'rgb8'))
    assert result.dtype == np.uint8 and result.flags.c_contiguous
    np.testing.assert_array_equal(result, rgb)


@pytest.mark.parametrize('encoding', ['bgr8', '8UC3'])
def test_bgr_to_rgb_reverses_channels(encoding: str) -> None:
    bgr = pixels(encoding)
    np.testing.assert_array_equal(image_to_rgb(array_to_image(bgr, encoding)), bgr[:, :, ::-1])


@pytest.mark.parametrize('encoding', sorted(LAYOUTS))
def test_rgb_or_bgr_leaves_only_bgr_unswapped(encoding: str) -> None:
    msg = array_to_image(pixels(encoding), encoding)
    image, bgr = image_to_rgb_or_bgr(msg)
    assert bgr == (encoding in ('bgr8', '8UC3')) and image.shape == (HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(image[:, :, ::-1] if bgr else image, image_to_rgb(msg))


def test_rgba8_to_rgb_drops_alpha() -> None:
    rgba = pixels('rgba8')
    np.testing.assert_array_equal(image_to_rgb(array_to_image(rgba, 'rgba8')), rgba[:, :, :3])


def test_bgra8_to_rgb_reverses_and_drops_alpha() -> None:
    bgra = pixels('bgra8')
    np.testing.assert_array_equal(
        image_to_rgb(array_to_image(bgra, 'bgra8')), bgra[:, :, 2::-1])


@pytest.mark.parametrize('encoding', ['mono8', '8UC1'])
def test_mono8_to_rgb_repeats_grey(encoding: str) -> None:
    grey = pixels(encoding)
    np.testing.assert_array_equal(
        image_to_rgb(array_to_image(grey, encoding)), np.repeat(grey[:, :, None], 3, axis=2))


@pytest.mark.parametrize('encoding', ['mono16', '16UC1'])
def test_mono16_to_rgb_keeps_top_byte(encoding: str) -> None:
    grey = np.array([[0, 255, 256, 65535]], dtype=np.uint16)
    result = image_to_rgb(array_to_image(grey, encoding))
    np.testing.assert_array_equal(result[0, :, 0], [0, 0, 1, 255])


def test_float_to_rgb_reads_unit_intensity_and_nan_black() -> None:
    values = np.array([[0.0, 0.5, 1.0, 2.0, -1.0, np.nan]], dtype=np.float32)
    result = image_to_rgb(array_to_image(values, '32FC1'))
    np.testing.assert_array_equal(result[0, :, 1], [0, 127, 255, 255, 0, 0])


def bt601_video_range_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Per-pixel BT.601 limited-range YUV -> RGB, the conversion OpenCV documents."""
    c, d, e = y - 16.0, u - 128.0, v - 128.0
    rgb = np.stack([1.164 * c + 1.596 * e, 1.164 * c - 0.392 * d - 0.813 * e,
                    1.164 * c + 2.017 * d], axis=-1)
    return np.clip(np.rint(rgb), 0, 255)


# A known pattern: per pixel pair one chroma (U, V); lumas vary per pixel.
LUMA = np.array([[16, 60, 120, 180, 235, 100]], dtype=np.uint8)  # (1, 6)
CHROMA_U = np.array([[128, 60, 200]], dtype=np.uint8)  # (1, 3) one per pixel pair
CHROMA_V = np.array([[128, 220, 90]], dtype=np.uint8)


def packed_yuv(order: str) -> np.ndarray:
    """(1, 6, 2) uint8 in UYVY or YUYV byte order from the known pattern."""
    u = np.repeat(CHROMA_U, 2, axis=1)
    v = np.repeat(CHROMA_V, 2, axis=1)
    chroma = np.where(np.arange(6) % 2 == 0, u, v)  # U on even pixels, V on odd ones
    pairs = (chroma, LUMA) if order == 'uyvy' else (LUMA, chroma)
    return np.stack(pairs, axis=-1)


@pytest.mark.parametrize('encoding,order', [
    ('uyvy', 'uyvy'), ('yuv422', 'uyvy'), ('yuyv', 'yuyv'), ('yuv422_yuy2', 'yuyv')])
def test_yuv422_to_rgb_matches_bt601(encoding: str, order: str) -> None:
    expected = bt601_video_range_rgb(
        LUMA.astype(float), np.repeat(CHROMA_U, 2, axis=1).astype(float),
        np.repeat(CHROMA_V, 2, axis=1).astype(float))
    result = image_to_rgb(array_to_image(packed_yuv(order), encoding))
    np.testing.assert_allclose(result, expected, atol=2)


def test_yuv422_padded_rows_match_unpadded() -> None:
    packed = np.repeat(packed_yuv('uyvy'), 2, axis=0)
    plain = image_to_rgb(raw_message('uyvy', packed))
    padded = image_to_rgb(raw_message('uyvy', packed, padding=4))
    np.testing.assert_array_equal(padded, plain)


BAYER_COLOUR = {'r': 200, 'g': 100, 'b': 50}


@pytest.mark.parametrize('encoding', ['bayer_rggb8', 'bayer_bggr8', 'bayer_gbrg8', 'bayer_grbg8'])
def test_bayer_of_a_flat_colour_demosaics_to_that_colour(encoding: str) -> None:
    pattern = encoding.removeprefix('bayer_').removesuffix('8')  # e.g. 'rggb': 2x2 tile, row-major
    tile = np.array([BAYER_COLOUR[c] for c in pattern], np.uint8).reshape(2, 2)
    mosaic = np.tile(tile, (4, 4))  # (8, 8)
    result = image_to_rgb(array_to_image(mosaic, encoding))
    np.testing.assert_array_equal(result[2:-2, 2:-2], np.broadcast_to([200, 100, 50], (4, 4, 3)))


@pytest.mark.parametrize('encoding', sorted(LAYOUTS))
def test_every_encoding_converts_to_rgb(encoding: str) -> None:
    result = image_to_rgb(array_to_image(pixels(encoding), encoding))
    assert result.shape == (HEIGHT, WIDTH, 3) and result.dtype == np.uint8


# --- errors ---------------------------------------------------------------------------


def test_unknown_encoding_is_named() -> None:
    msg = raw_message('rgb8', pixels('rgb8'))
    msg.encoding = 'nv12'
    with pytest.raises(ImageError, match="unsupported image encoding 'nv12'"):
        image_to_array(msg)


def test_zero_size_is_refused() -> None:
    msg = SimpleNamespace(height=0, width=4, encoding='mono8', is_bigendian=0, step=4, data=b'')
    with pytest.raises(ImageError, match='zero size'):
        image_to_array(msg)


def test_step_smaller_than_row_is_refused() -> None:
    msg = raw_message('rgb8', pixels('rgb8'))
    msg.step = WIDTH * 3 - 1
    with pytest.raises(ImageError, match='step 11 is smaller than one row'):
        image_to_array(msg)


def test_short_data_is_refused() -> None:
    msg = raw_message('mono16', pixels('mono16'))
    msg.data = msg.data[:-1]
    with pytest.raises(ImageError, match='data has 23 bytes; step x height = 8 x 3 = 24'):
        image_to_array(msg)


def test_long_data_is_refused() -> None:
    msg = raw_message('mono8', pixels('mono8'))
    msg.data = msg.data + b'\0'
    with pytest.raises(ImageError, match='data has 13 bytes'):
        image_to_array(msg)


def test_odd_width_yuv422_is_refused() -> None:
    msg = SimpleNamespace(height=1, width=3, encoding='yuyv', is_bigendian=0, step=6,
                          data=bytes(6))
    with pytest.raises(ImageError, match='width 3 is odd'):
        image_to_array(msg)


def test_array_with_wrong_dtype_is_refused() -> None:
    with pytest.raises(ImageError, match='32FC1 needs float32 pixels, got float64'):
        array_to_image(np.zeros((2, 2)), '32FC1')


def test_array_with_wrong_channels_is_refused() -> None:
    with pytest.raises(ImageError, match=r'rgb8 needs a \(H, W, 3\) array, got shape \(2, 2, 4\)'):
        array_to_image(np.zeros((2, 2, 4), np.uint8), 'rgb8')


def test_array_with_unknown_encoding_is_refused() -> None:
    with pytest.raises(ImageError, match="unsupported image encoding 'rgb9'"):
        array_to_image(np.zeros((2, 2, 3), np.uint8), 'rgb9')


def test_image_error_is_a_value_error() -> None:
    assert issubclass(ImageError, ValueError)


def test_rclpy_message_class_round_trip_keeps_type() -> None:
    assert isinstance(array_to_image(pixels('mono8'), 'mono8'), Image)
