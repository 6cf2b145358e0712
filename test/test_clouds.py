"""Depth -> points -> PointCloud2: depth_image_proc's math and layout, fields, masks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, PointCloud2, PointField
from std_msgs.msg import Header

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.clouds import (
    CloudError,
    cloud_to_points,
    depth_to_points,
    points_to_cloud,
)

HEIGHT, WIDTH = 4, 5


def camera_info() -> CameraInfo:
    """A 5x4 camera whose K differs from P, so using K would fail the tests."""
    msg = CameraInfo(width=WIDTH, height=HEIGHT)
    msg.k = [9.0, 0.0, 1.0, 0.0, 9.0, 1.0, 0.0, 0.0, 1.0]
    msg.p = [4.5, 0.0, 2.25, 0.0, 0.0, 3.75, 1.6, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def depth_image() -> np.ndarray:
    """(4, 5) float32 metres with NaN, inf, zero and negative pixels."""
    depth = np.linspace(0.5, 40.0, HEIGHT * WIDTH, dtype=np.float32).reshape(HEIGHT, WIDTH)
    depth[0, 1], depth[1, 2], depth[2, 3], depth[3, 0] = np.nan, 0.0, -1.0, np.inf
    return depth


def header() -> Header:
    msg = Header(frame_id='camera_optical_frame')
    msg.stamp.sec, msg.stamp.nanosec = 3, 400
    return msg


def reference_points(depth: np.ndarray, info: CameraInfo) -> np.ndarray:
    """PinholeCameraModel's back-projection, one pixel at a time, in double precision."""
    fx, cx, fy, cy = info.p[0], info.p[2], info.p[5], info.p[6]
    out = np.full(depth.shape + (3,), np.nan)
    for v in range(depth.shape[0]):
        for u in range(depth.shape[1]):
            z = float(depth[v, u])
            if np.isfinite(z) and z > 0:
                out[v, u] = ((u - cx) * z / fx, (v - cy) * z / fy, z)
    return out


def points() -> np.ndarray:
    return depth_to_points(depth_image(), PinholeCamera.from_camera_info(camera_info()))


def test_points_match_pinhole_camera_model_math() -> None:
    result = depth_to_points(depth_image(), PinholeCamera.from_camera_info(camera_info()))
    assert result.shape == (HEIGHT, WIDTH, 3) and result.dtype == np.float32
    np.testing.assert_allclose(
        result, reference_points(depth_image(), camera_info()), rtol=1e-6, atol=1e-6)


def test_points_match_depth_image_proc_float32_arithmetic_exactly() -> None:
    camera = PinholeCamera.from_camera_info(camera_info())
    depth = depth_image()
    center_x, center_y = np.float32(camera.cx), np.float32(camera.cy)
    constant_x, constant_y = np.float32(1.0 / camera.fx), np.float32(1.0 / camera.fy)
    result = depth_to_points(depth, camera)
    for v in range(HEIGHT):
        for u in range(WIDTH):
            z = depth[v, u]
            if np.isfinite(z) and z > 0:
                x = (np.float32(u) - center_x) * z * constant_x
                y = (np.float32(v) - center_y) * z * constant_y
                assert tuple(result[v, u]) == (x, y, z)


def test_invalid_depth_gives_nan_points() -> None:
    result = points()
    for v, u in [(0, 1), (1, 2), (2, 3), (3, 0)]:
        assert np.isnan(result[v, u]).all()
    assert np.isfinite(result).all(axis=2).sum() == HEIGHT * WIDTH - 4


def test_depth_camera_size_mismatch_is_refused() -> None:
    camera = PinholeCamera.from_camera_info(camera_info()).scaled(10, 8)
    with pytest.raises(CloudError, match='depth is 5x4 but the camera is 10x8'):
        depth_to_points(depth_image(), camera)


def test_depth_must_be_two_dimensional() -> None:
    with pytest.raises(CloudError, match=r'depth must be \(H, W\)'):
        depth_to_points(np.ones((4, 5, 1)), PinholeCamera.from_camera_info(camera_info()))


def layout(cloud: PointCloud2) -> list[tuple[str, int, int, int]]:
    return [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields]


def test_xyz_layout_is_point_cloud_xyz() -> None:
    cloud = points_to_cloud(points(), header())
    assert layout(cloud) == [('x', 0, PointField.FLOAT32, 1), ('y', 4, PointField.FLOAT32, 1),
                             ('z', 8, PointField.FLOAT32, 1)]
    assert cloud.point_step == 16 and not cloud.is_bigendian


def test_full_layout_is_point_cloud_xyzrgb_plus_label_and_confidence() -> None:
    cloud = points_to_cloud(points(), header(), rgb=np.zeros((HEIGHT, WIDTH, 3), np.uint8),
                            labels=np.zeros((HEIGHT, WIDTH), np.uint8),
                            confidence=np.zeros((HEIGHT, WIDTH), np.float32))
    assert layout(cloud) == [
        ('x', 0, PointField.FLOAT32, 1), ('y', 4, PointField.FLOAT32, 1),
        ('z', 8, PointField.FLOAT32, 1), ('rgb', 16, PointField.FLOAT32, 1),
        ('label', 20, PointField.UINT32, 1), ('confidence', 24, PointField.FLOAT32, 1)]
    assert cloud.point_step == 32


def test_rgb_only_keeps_point_step_32() -> None:
    cloud = points_to_cloud(points(), header(), rgb=np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    assert [f.name for f in cloud.fields] == ['x', 'y', 'z', 'rgb'] and cloud.point_step == 32


def test_organized_cloud_keeps_every_pixel_with_nan_for_invalid() -> None:
    cloud = points_to_cloud(points(), header())
    assert (cloud.height, cloud.width) == (HEIGHT, WIDTH)
    assert cloud.row_step == WIDTH * 16 and len(cloud.data) == HEIGHT * cloud.row_step
    assert cloud.is_dense is False
    read = cloud_to_points(cloud)
    np.testing.assert_array_equal(np.stack([read['x'], read['y'], read['z']], -1), points())


def test_organized_cloud_without_invalid_points_is_dense() -> None:
    finite = np.nan_to_num(points(), nan=1.0, posinf=1.0)
    assert points_to_cloud(finite, header()).is_dense is True


def test_unorganized_cloud_has_only_valid_points_in_row_major_order() -> None:
    cloud = points_to_cloud(points(), header(), organized=False)
    valid = np.isfinite(points()).all(axis=2)
    assert (cloud.height, cloud.width) == (1, int(valid.sum()))
    assert cloud.is_dense is True and cloud.row_step == cloud.width * 16
    read = cloud_to_points(cloud)
    np.testing.assert_array_equal(np.stack([read['x'], read['y'], read['z']], -1)[0],
                                  points()[valid])


def test_keep_mask_turns_points_nan_in_organized_cloud() -> None:
    keep = np.ones((HEIGHT, WIDTH), bool)
    keep[2, 1] = False
    read = cloud_to_points(points_to_cloud(points(), header(), keep=keep))
    assert np.isnan(read['z'][2, 1])
    assert np.isfinite(read['z']).sum() == HEIGHT * WIDTH - 5


def test_keep_mask_drops_points_from_unorganized_cloud() -> None:
    keep = np.ones((HEIGHT, WIDTH), bool)
    keep[2, 1] = keep[0, 0] = False
    cloud = points_to_cloud(points(), header(), organized=False, keep=keep)
    assert cloud.width == HEIGHT * WIDTH - 4 - 2


def test_rgb_packs_as_depth_image_proc_bytes() -> None:
    rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    rgb[0, 0] = (10, 20, 30)
    cloud = points_to_cloud(points(), header(), rgb=rgb)
    # PointCloud2Iterator on a little-endian cloud: b at rgb+0, g at +1, r at +2
    assert bytes(cloud.data[16:20]) == bytes([30, 20, 10, 0])


def test_rgb_round_trip() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    read = cloud_to_points(points_to_cloud(points(), header(), rgb=rgb))
    np.testing.assert_array_equal(read['rgb'], rgb)


def test_labels_and_confidence_round_trip() -> None:
    labels = np.arange(HEIGHT * WIDTH, dtype=np.uint16).reshape(HEIGHT, WIDTH) * 300
    confidence = np.linspace(0, 1, HEIGHT * WIDTH, dtype=np.float32).reshape(HEIGHT, WIDTH)
    read = cloud_to_points(points_to_cloud(points(), header(), labels=labels,
                                           confidence=confidence))
    np.testing.assert_array_equal(read['label'], labels)
    np.testing.assert_array_equal(read['confidence'], confidence)


def test_unorganized_fields_follow_their_points() -> None:
    labels = np.arange(HEIGHT * WIDTH, dtype=np.uint8).reshape(HEIGHT, WIDTH)
    read = cloud_to_points(points_to_cloud(points(), header(), labels=labels, organized=False))
    np.testing.assert_array_equal(read['label'][0], labels[np.isfinite(points()).all(axis=2)])


def test_decimation_takes_every_nth_pixel_at_full_resolution_coordinates() -> None:
    labels = np.arange(HEIGHT * WIDTH, dtype=np.uint8).reshape(HEIGHT, WIDTH)
    cloud = points_to_cloud(points(), header(), labels=labels, decimation=2)
    assert (cloud.height, cloud.width) == (2, 3)
    read = cloud_to_points(cloud)
    np.testing.assert_array_equal(read['z'], points()[::2, ::2, 2])
    np.testing.assert_array_equal(read['label'], labels[::2, ::2])


def test_header_is_copied() -> None:
    cloud = points_to_cloud(points(), header())
    assert cloud.header == header()


def test_mismatched_field_shape_is_refused() -> None:
    with pytest.raises(CloudError, match=r'labels must have shape \(4, 5\)'):
        points_to_cloud(points(), header(), labels=np.zeros((4, 4), np.uint8))


def test_points_must_be_h_w_3() -> None:
    with pytest.raises(CloudError, match=r'points must be \(H, W, 3\)'):
        points_to_cloud(np.zeros((4, 5)), header())


def test_rgb_must_be_uint8() -> None:
    with pytest.raises(CloudError, match='rgb must be uint8'):
        points_to_cloud(points(), header(), rgb=np.zeros((HEIGHT, WIDTH, 3)))


def test_negative_labels_are_refused() -> None:
    with pytest.raises(CloudError, match='labels must be non-negative'):
        points_to_cloud(points(), header(), labels=-np.ones((HEIGHT, WIDTH), np.int32))


def test_keep_must_be_bool() -> None:
    with pytest.raises(CloudError, match='keep must be a bool mask'):
        points_to_cloud(points(), header(), keep=np.ones((HEIGHT, WIDTH), np.uint8))


def test_empty_unorganized_cloud() -> None:
    cloud = points_to_cloud(np.full((2, 2, 3), np.nan, np.float32), header(), organized=False)
    assert (cloud.height, cloud.width, len(cloud.data)) == (1, 0, 0)


def test_reader_handles_big_endian_numpy_data() -> None:
    """A hand-built big-endian cloud as rosbags hands it over (data is a uint8 ndarray)."""
    record = np.dtype({'names': ['x', 'intensity'], 'formats': ['>f4', '>u2'],
                       'offsets': [0, 4], 'itemsize': 8})
    values = np.zeros(3, record)
    values['x'], values['intensity'] = [1.5, -2.0, 3.25], [1, 500, 65535]
    msg = SimpleNamespace(
        height=1, width=3, point_step=8, row_step=24, is_bigendian=True,
        fields=[SimpleNamespace(name='x', offset=0, datatype=7, count=1),
                SimpleNamespace(name='intensity', offset=4, datatype=4, count=1)],
        data=values.view(np.uint8))
    read = cloud_to_points(msg)
    np.testing.assert_array_equal(read['x'][0], [1.5, -2.0, 3.25])
    np.testing.assert_array_equal(read['intensity'][0], [1, 500, 65535])


def test_reader_refuses_short_data() -> None:
    cloud = points_to_cloud(points(), header())
    cloud.height = HEIGHT + 1
    with pytest.raises(CloudError, match='cloud data has 320 bytes'):
        cloud_to_points(cloud)


def test_cloud_survives_rclpy_serialization() -> None:
    from rclpy.serialization import deserialize_message, serialize_message

    labels = np.arange(HEIGHT * WIDTH, dtype=np.uint8).reshape(HEIGHT, WIDTH)
    sent = points_to_cloud(points(), header(), labels=labels)
    read = cloud_to_points(deserialize_message(serialize_message(sent), PointCloud2))
    np.testing.assert_array_equal(read['z'], points()[:, :, 2])
    np.testing.assert_array_equal(read['label'], labels)


def test_integer_depth_is_refused() -> None:
    with pytest.raises(CloudError, match='depth must be float metres, got uint16'):
        depth_to_points(np.ones((HEIGHT, WIDTH), np.uint16),
                        PinholeCamera.from_camera_info(camera_info()))
