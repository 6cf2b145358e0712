"""CompressedImage <-> numpy: JPEG and PNG as image_transport writes them, and bad payloads."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mtdepth_ros.conversions.compressed import compressed_to_rgb, rgb_to_compressed
from mtdepth_ros.conversions.images import ImageError


def picture() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 255, (12, 17, 3), dtype=np.uint8)  # odd width on purpose


def test_png_round_trip_is_exact() -> None:
    msg = rgb_to_compressed(picture(), 'png')
    assert msg.format == 'rgb8; png compressed bgr8'
    np.testing.assert_array_equal(compressed_to_rgb(msg), picture())


def test_jpeg_round_trip_is_close_and_in_rgb_order() -> None:
    flat = np.zeros((16, 16, 3), np.uint8)
    flat[..., 0] = 200  # red
    decoded = compressed_to_rgb(rgb_to_compressed(flat, 'jpeg'))
    assert decoded.shape == (16, 16, 3) and decoded.dtype == np.uint8
    assert abs(int(decoded[..., 0].mean()) - 200) <= 3 and decoded[..., 2].mean() < 5


@pytest.mark.parametrize('kind', ['jpeg', 'png'])
def test_the_payload_decides_when_the_format_field_is_bare(kind: str) -> None:
    msg = rgb_to_compressed(picture(), kind)
    bare = SimpleNamespace(format='', data=np.asarray(msg.data, np.uint8))
    assert compressed_to_rgb(bare).shape == (12, 17, 3)


@pytest.mark.parametrize(('kind', 'cut', 'message'), [
    ('jpeg', 40, 'truncated'), ('png', 12, 'truncated'), ('jpeg', -1, 'empty payload')])
def test_truncated_and_empty_payloads_are_refused(kind: str, cut: int, message: str) -> None:
    data = bytes(rgb_to_compressed(picture(), kind).data)
    msg = SimpleNamespace(format=f'rgb8; {kind} compressed bgr8',
                          data=b'' if cut < 0 else data[:len(data) - cut])
    with pytest.raises(ImageError, match=message):
        compressed_to_rgb(msg)


def test_garbage_with_an_end_marker_cannot_be_decoded() -> None:
    msg = SimpleNamespace(format='jpeg', data=b'\xff\xd8' + bytes(100) + b'\xff\xd9')
    with pytest.raises(ImageError, match='cannot be decoded'):
        compressed_to_rgb(msg)


def test_an_unknown_format_is_named() -> None:
    msg = SimpleNamespace(format='rgb8; theora', data=b'\x00\x01\x02')
    with pytest.raises(ImageError, match="'rgb8; theora' is neither JPEG nor PNG"):
        compressed_to_rgb(msg)
