"""False colour for labels, depth, intervals and confidence."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mtdepth_ros.conversions.colorize import (
    colormap_lut,
    confidence_to_color,
    depth_to_color,
    intervals_to_color,
    labels_to_color,
)

PALETTE = [(128, 64, 128), (244, 35, 232), (70, 70, 70)]
BLACK = [0, 0, 0]


def test_labels_take_palette_colours() -> None:
    result = labels_to_color(np.array([[0, 1, 2]], np.uint8), PALETTE)
    assert result.shape == (1, 3, 3) and result.dtype == np.uint8
    np.testing.assert_array_equal(result[0], PALETTE)


def test_ignore_and_out_of_range_labels_are_black() -> None:
    result = labels_to_color(np.array([[255, 3, -1]], np.int32), PALETTE)
    np.testing.assert_array_equal(result[0], [BLACK] * 3)


def test_labels_accept_uint16() -> None:
    result = labels_to_color(np.array([[2, 1000]], np.uint16), PALETTE)
    np.testing.assert_array_equal(result[0], [PALETTE[2], BLACK])


def test_float_labels_are_refused() -> None:
    with pytest.raises(ValueError, match='labels must be integers'):
        labels_to_color(np.zeros((1, 1)), PALETTE)


def test_depth_without_an_estimate_is_black() -> None:
    result = depth_to_color(np.array([[np.nan, 0.0, -2.0]], np.float32), 1.0, 80.0)
    np.testing.assert_array_equal(result[0], [BLACK] * 3)


def test_rep117_infinities_take_the_colours_of_the_range_ends() -> None:
    result = depth_to_color(np.array([[np.inf, 80.0, -np.inf, 1.0]], np.float32), 1.0, 80.0)[0]
    np.testing.assert_array_equal(result[0], result[1])  # beyond range: the far colour
    np.testing.assert_array_equal(result[2], result[3])  # nearer than range: the near colour


def test_near_depth_is_red_far_depth_is_blue() -> None:
    near, far = depth_to_color(np.array([[1.0, 80.0]], np.float32), 1.0, 80.0)[0]
    assert near[0] > near[2] and far[2] > far[0]


def test_depth_colour_is_log_spaced() -> None:
    # 2 m and 4 m sit at 1/3 and 2/3 of the way from 1 m to 8 m in log depth
    result = depth_to_color(np.array([[2.0, 4.0]], np.float32), 1.0, 8.0)[0]
    lut = colormap_lut(cv2.COLORMAP_TURBO)
    np.testing.assert_array_equal(result, [lut[170], lut[85]])


def test_depth_outside_range_is_clipped() -> None:
    result = depth_to_color(np.array([[0.1, 1.0, 200.0, 80.0]], np.float32), 1.0, 80.0)[0]
    np.testing.assert_array_equal(result[0], result[1])
    np.testing.assert_array_equal(result[2], result[3])


def test_bad_depth_range_is_refused() -> None:
    with pytest.raises(ValueError, match='need 0 < d_min < d_max'):
        depth_to_color(np.ones((1, 1)), 5.0, 5.0)


def test_intervals_share_the_depth_scale() -> None:
    result = intervals_to_color(np.array([[0, 3]], np.uint8), num_intervals=4)[0]
    reference = depth_to_color(np.array([[1.0, 100.0]], np.float32), 1.0, 100.0)[0]
    np.testing.assert_array_equal(result, reference)


def test_ignored_intervals_are_black() -> None:
    result = intervals_to_color(np.array([[255, 4]], np.uint8), num_intervals=4)
    np.testing.assert_array_equal(result[0], [BLACK, BLACK])


def test_confidence_low_and_high_differ_and_nan_is_black() -> None:
    result = confidence_to_color(np.array([[0.0, 1.0, np.nan]], np.float32))[0]
    assert not np.array_equal(result[0], result[1])
    np.testing.assert_array_equal(result[2], BLACK)


def test_colormap_lut_is_rgb() -> None:
    lut = colormap_lut(cv2.COLORMAP_TURBO)  # starts dark blue-violet and ends dark red
    assert lut.shape == (256, 3)
    assert lut[0, 2] > lut[0, 0] and lut[255, 0] > lut[255, 2]


def test_any_label_shape_works() -> None:
    labels = np.array([[[0, 1]], [[2, 7]]], np.int64)  # (2, 1, 2)
    result = labels_to_color(labels, PALETTE)
    assert result.shape == (2, 1, 2, 3)
    np.testing.assert_array_equal(result[1, 0], [PALETTE[2], BLACK])


def test_empty_labels_give_empty_image() -> None:
    assert labels_to_color(np.zeros((0, 4), np.uint8), PALETTE).shape == (0, 4, 3)


def _expected(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """The colour of every label by a plain gather: black past the palette."""
    table = np.zeros((int(labels.max()) + 1 if labels.size else 1, 3), np.uint8)
    table[:min(len(palette), len(table))] = palette[:len(table)]
    return table[labels]


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16])
@pytest.mark.parametrize('shape', [(1, 1), (1, 3), (2, 5), (3, 7), (192, 640), (7, 1243)])
def test_every_size_matches_a_plain_gather(dtype: type, shape: tuple[int, int]) -> None:
    # the kernel writes four pixels as three words and the rest byte by byte
    rng = np.random.default_rng(shape[0] * 10000 + shape[1])
    palette = rng.integers(0, 256, (40, 3)).astype(np.uint8)
    labels = rng.integers(0, 48, shape).astype(dtype)  # some past the palette: black
    np.testing.assert_array_equal(labels_to_color(labels, palette), _expected(labels, palette))


@pytest.mark.parametrize('offset', [0, 1, 2, 3])
def test_out_at_any_alignment_and_a_window_out_get_every_byte(offset: int) -> None:
    rng = np.random.default_rng(offset)
    palette = rng.integers(0, 256, (19, 3)).astype(np.uint8)
    labels = rng.integers(0, 19, (5, 9)).astype(np.uint8)
    buffer = np.zeros(5 * 9 * 3 + 8, np.uint8)
    out = buffer[offset:offset + 5 * 9 * 3].reshape(5, 9, 3)  # a message payload at any offset
    assert labels_to_color(labels, palette, out=out) is out
    np.testing.assert_array_equal(out, _expected(labels, palette))
    assert not buffer[:offset].any() and not buffer[offset + 5 * 9 * 3:].any()
    wide = np.zeros((5, 18, 3), np.uint8)
    labels_to_color(labels, palette, out=wide[:, :9])  # a window of a wider image
    np.testing.assert_array_equal(wide[:, :9], _expected(labels, palette))
    assert not wide[:, 9:].any()


def test_a_palette_longer_than_the_label_type_is_cut_to_it() -> None:
    palette = np.random.default_rng(3).integers(0, 256, (300, 3)).astype(np.uint8)
    labels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(labels_to_color(labels, palette), palette[:256][labels])
