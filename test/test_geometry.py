"""The geometry module: intrinsics follow cv2.resize's real sampling grid; crops, labels, depth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.geometry import (
    KB_CROP_SIZE,
    Region,
    bottom_centre_region,
    crop_intrinsics,
    flip_intrinsics,
    kb_crop_region,
    resize_depth_bilinear,
    resize_depth_nearest,
    resize_depth_sparse,
    resize_image,
    resize_intrinsics,
    resize_labels,
    scale_coordinate,
)

NAN = np.nan
K = np.array([[100.0, 0.0, 30.0], [0.0, 90.0, 20.0], [0.0, 0.0, 1.0]])


def coordinate_ramps(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose pixel (v, u) holds u and v: a resize shows where it sampled."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    return u, v


@pytest.mark.parametrize(('old', 'new'), [((375, 1242), (192, 640)), ((192, 640), (375, 1242)),
                                          ((40, 64), (40, 96)), ((480, 640), (240, 320))])
def test_resized_intrinsics_project_where_cv2_resize_samples(old, new) -> None:
    # A 3D point projects to (u, v) in the original image and (u', v') in the
    # resized one. cv2.resize's value at (u', v') of a coordinate ramp is the source
    # coordinate it sampled there: it must be (u, v).
    u_ramp, v_ramp = coordinate_ramps(*old)
    interpolation = cv2.INTER_LINEAR
    u_resized = cv2.resize(u_ramp, (new[1], new[0]), interpolation=interpolation)
    v_resized = cv2.resize(v_ramp, (new[1], new[0]), interpolation=interpolation)
    k_new = resize_intrinsics(K, old, new)
    rng = np.random.default_rng(0)
    for _ in range(20):
        # integer target pixels away from the border (cv2 clamps there)
        u2, v2 = int(rng.integers(2, new[1] - 2)), int(rng.integers(2, new[0] - 2))
        x, y = (u2 - k_new[0, 2]) / k_new[0, 0], (v2 - k_new[1, 2]) / k_new[1, 1]
        u, v = K[0, 0] * x + K[0, 2], K[1, 1] * y + K[1, 2]
        assert u_resized[v2, u2] == pytest.approx(u, abs=1e-3)
        assert v_resized[v2, u2] == pytest.approx(v, abs=1e-3)


def test_the_ros_rule_would_be_off_by_half_a_pixel_minus_half_the_scale() -> None:
    # image_proc's cx' = s cx, against the grid cv2.resize samples with.
    scale = 640 / 1242
    assert scale_coordinate(609.6, scale) - 609.6 * scale == pytest.approx((scale - 1) / 2)
    assert (scale - 1) / 2 == pytest.approx(-0.2423, abs=1e-4)  # the 0.24 px of 1242 -> 640


def test_camera_scaled_uses_the_same_rule() -> None:
    camera = PinholeCamera(width=64, height=40, fx=100.0, fy=90.0, cx=30.0, cy=20.0)
    small = camera.scaled(32, 20)
    np.testing.assert_allclose(small.matrix, resize_intrinsics(K, (40, 64), (20, 32)))
    assert camera.scaled(64, 40) == camera


def test_camera_cropped_shifts_the_principal_point() -> None:
    camera = PinholeCamera(width=64, height=40, fx=100.0, fy=90.0, cx=30.0, cy=20.0)
    window = camera.cropped(Region(top=5, left=8, height=30, width=50))
    assert (window.width, window.height, window.cx, window.cy) == (50, 30, 22.0, 15.0)
    np.testing.assert_allclose(window.matrix, crop_intrinsics(K, 5, 8))


def test_crop_and_flip_intrinsics() -> None:
    np.testing.assert_allclose(crop_intrinsics(K, 5, 8)[:2, 2], [22.0, 15.0])
    assert flip_intrinsics(K, 64)[0, 2] == 64 - 1 - 30.0


def test_labels_upsample_to_the_nearest_source_centre() -> None:
    # INTER_NEAREST floors (u' * w / W) and shifts labels right/down by up to half a
    # source pixel; INTER_NEAREST_EXACT takes the source pixel whose centre is nearest.
    labels = np.arange(4, dtype=np.uint8).reshape(1, 4)
    wide = resize_labels(labels, (1, 10))
    u_ramp, _ = coordinate_ramps(1, 4)
    source_u = cv2.resize(u_ramp, (10, 1), interpolation=cv2.INTER_LINEAR)[0]
    # the source pixel whose centre is nearest to where cv2.resize samples (ties either way)
    assert np.abs(wide[0] - np.clip(source_u, 0, 3)).max() <= 0.5 + 1e-6
    assert cv2.resize(labels, (10, 1), interpolation=cv2.INTER_NEAREST)[0].tolist() != \
        wide[0].tolist()  # the shifted rule this replaces
    odd = resize_labels(np.arange(640, dtype=np.uint16)[None], (1, 1242))[0]
    centres = (np.arange(1242) + 0.5) * 640 / 1242 - 0.5
    assert np.abs(odd - centres).max() <= 0.5 + 1e-9


def test_nearest_depth_keeps_values_and_their_place() -> None:
    depth = np.array([[1.0, 2.0], [3.0, NAN]], dtype=np.float32)
    big = resize_depth_nearest(depth, (4, 4))
    np.testing.assert_array_equal(big[:2, :2], 1.0)
    assert np.isnan(big[2:, 2:]).all() and set(np.unique(big[~np.isnan(big)])) == {1.0, 2.0, 3.0}


@pytest.mark.parametrize('size', [(4, 6), (2, 2)])
def test_nearest_depth_writes_into_a_given_array(size: tuple[int, int]) -> None:
    depth = np.array([[1.0, 2.0], [3.0, NAN]], dtype=np.float32)
    buffer = np.full(size[0] * size[1] * 4 + 4, 7, np.uint8)  # a payload after a 4-byte prefix
    out = buffer[4:].view(np.float32).reshape(size)
    written = resize_depth_nearest(depth, size, out=out)
    assert written is out and (buffer[:4] == 7).all()
    np.testing.assert_array_equal(out, resize_depth_nearest(depth, size))


def test_bilinear_depth_does_not_spread_missing_values() -> None:
    depth = np.array([[2.0, NAN], [2.0, 2.0]], dtype=np.float32)
    resized = resize_depth_bilinear(depth, (4, 4))
    # The corner that samples only the missing pixel stays missing; its
    # neighbours average the valid pixels only, so nothing else becomes NaN.
    expected = np.full((4, 4), 2.0)
    expected[0, 3] = NAN
    np.testing.assert_allclose(resized, expected)
    assert np.isnan(resize_depth_bilinear(np.full((2, 2), NAN), (4, 4))).all()


def test_bilinear_depth_keeps_rep117_infinities_in_place() -> None:
    # The top row is beyond the range (sky), a pixel nearer than it: neither is averaged.
    depth = np.array([[np.inf, np.inf], [5.0, -np.inf]], dtype=np.float32)
    resized = resize_depth_bilinear(depth, (4, 4))
    assert np.isposinf(resized[:2]).all() and np.isneginf(resized[2:, 2:]).all()
    np.testing.assert_allclose(resized[2:, :2], 5.0)


def test_shrinking_sparse_depth_keeps_every_point_and_the_nearest() -> None:
    depth = np.zeros((8, 8), np.float32)
    depth[0, 0], depth[1, 1], depth[5, 6] = 7.0, 3.0, 9.0
    small = resize_depth_sparse(depth, (4, 4))
    assert small[0, 0] == 3.0 and small[2, 3] == 9.0 and (small > 0).sum() == 2


def test_resize_image_area_when_shrinking_linear_when_enlarging() -> None:
    image = (np.arange(16, dtype=np.uint8) * 10).reshape(4, 4)
    np.testing.assert_array_equal(resize_image(image, (2, 2)),
                                  cv2.resize(image, (2, 2), interpolation=cv2.INTER_AREA))
    np.testing.assert_array_equal(resize_image(image, (8, 8)),
                                  cv2.resize(image, (8, 8), interpolation=cv2.INTER_LINEAR))
    assert resize_image(image, (4, 4)) is image


def test_kb_crop_is_bottom_centre_of_every_kitti_frame() -> None:
    for frame in [(375, 1242), (370, 1224), (374, 1238), (376, 1241)]:
        region = kb_crop_region(frame)
        assert region.size == KB_CROP_SIZE
        assert (region.top, region.left) == (frame[0] - 352, (frame[1] - 1216) // 2)


def test_kb_crop_of_a_smaller_generated_frame_keeps_kittis_fractions() -> None:
    region = kb_crop_region((188, 621))
    assert region.size == (176, 608) and region.bottom == 188 and region.left == 6


def test_region_views_and_paste() -> None:
    frame = np.arange(30, dtype=np.float32).reshape(5, 6)
    region = bottom_centre_region((5, 6), (2, 4))
    assert region == Region(3, 1, 2, 4)
    np.testing.assert_array_equal(region.of(frame), frame[3:5, 1:5])
    pasted = region.paste(region.of(frame), (5, 6))
    np.testing.assert_array_equal(pasted[3:5, 1:5], frame[3:5, 1:5])
    assert np.isnan(pasted[:3]).all()
    with pytest.raises(ValueError, match='does not fit'):
        Region(4, 0, 2, 2).of(frame)
    with pytest.raises(ValueError, match='top, left >= 0'):
        Region(-1, 0, 2, 2)


SHRINKS = [((373, 1242), (192, 640)), ((375, 1242), (192, 640)), ((352, 1216), (192, 640)),
           ((576, 1920), (192, 640)), ((301, 997), (97, 211)), ((375, 1242), (96, 320))]


@pytest.mark.parametrize(('source', 'size'), SHRINKS)
def test_a_large_shrink_samples_the_grid_resize_intrinsics_assumes(source: tuple[int, int],
                                                                   size: tuple[int, int]) -> None:
    # a coordinate ramp, shrunk, reads back the coordinate each output pixel centre maps to
    # (away from the borders, where the blocks end and OpenCV repeats the edge)
    (height, width), (out_h, out_w) = source, size
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    for ramp, length, out, axis in ((u, width, out_w, 1), (v, height, out_h, 0)):
        expected = (np.arange(out) + 0.5) * length / out - 0.5
        block = round(length / out)
        inside = (expected >= block) & (expected < length - length % block - block)
        assert inside.sum() > 0.9 * out
        read = resize_image(ramp, size)[0] if axis == 1 else resize_image(ramp, size)[:, 0]
        np.testing.assert_allclose(read[inside], expected[inside], atol=2e-3)


@pytest.mark.parametrize(('source', 'size'), SHRINKS)
def test_a_large_shrink_is_within_a_few_levels_of_area_averaging(source: tuple[int, int],
                                                                  size: tuple[int, int]) -> None:
    noise = np.random.default_rng(source[1]).integers(0, 256, (*source, 3)).astype(np.uint8)
    image = cv2.GaussianBlur(noise, (0, 0), 2.0)  # detail at the scale of a camera frame
    area = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA).astype(int)
    ours = resize_image(image, size)
    assert ours.shape == (*size, 3) and ours.dtype == np.uint8
    assert np.abs(ours - area).mean() < 2.5 and np.abs(ours - area).max() <= 16


def test_a_small_shrink_is_opencvs_area_resize() -> None:
    image = np.random.default_rng(0).integers(0, 256, (193, 640, 3)).astype(np.uint8)
    for size in ((192, 640), (150, 500)):  # below 1.5x: area averaging as it is
        np.testing.assert_array_equal(
            resize_image(image, size), cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA))
