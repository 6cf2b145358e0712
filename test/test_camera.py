"""PinholeCamera: intrinsics from P as image_geometry reads them, scaling, round trips."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from mtdepth_ros.conversions.camera import CameraInfoError, PinholeCamera

# K and P differ on purpose: a rectified camera's P is what the images obey.
K = [700.0, 0.0, 600.0, 0.0, 710.0, 170.0, 0.0, 0.0, 1.0]
P = [721.5, 0.0, 609.6, 44.9, 0.0, 722.5, 172.9, 0.2, 0.0, 0.0, 1.0, 0.0]


def camera_info(k: list[float] = K, p: list[float] = P, width: int = 1242,
                height: int = 375) -> CameraInfo:
    msg = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    msg.k, msg.p = k, p
    return msg


def test_intrinsics_come_from_p() -> None:
    camera = PinholeCamera.from_camera_info(camera_info())
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (721.5, 722.5, 609.6, 172.9)
    assert (camera.tx, camera.ty) == (44.9, 0.2)
    assert (camera.width, camera.height) == (1242, 375)


def test_k_is_used_when_p_is_all_zero() -> None:
    camera = PinholeCamera.from_camera_info(camera_info(p=[0.0] * 12))
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (700.0, 710.0, 600.0, 170.0)


def test_uncalibrated_camera_info_is_refused() -> None:
    with pytest.raises(CameraInfoError, match='neither P nor K'):
        PinholeCamera.from_camera_info(camera_info(k=[0.0] * 9, p=[0.0] * 12))


def test_zero_focal_length_is_refused() -> None:
    p = list(P)
    p[5] = 0.0
    with pytest.raises(CameraInfoError, match='focal lengths must be positive'):
        PinholeCamera.from_camera_info(camera_info(p=p))


def test_zero_size_is_refused() -> None:
    with pytest.raises(CameraInfoError, match='camera size must be positive, got 0x375'):
        PinholeCamera.from_camera_info(camera_info(width=0))


def test_non_finite_intrinsics_are_refused() -> None:
    with pytest.raises(CameraInfoError, match='not finite'):
        PinholeCamera(width=4, height=3, fx=1.0, fy=1.0, cx=float('nan'), cy=1.0)


def test_wrong_matrix_length_is_refused() -> None:
    msg = SimpleNamespace(k=K, p=P[:9], width=4, height=3, binning_x=0, binning_y=0,
                          roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0))
    with pytest.raises(CameraInfoError, match='P has 9 values, expected 12'):
        PinholeCamera.from_camera_info(msg)


def test_binning_divides_focal_length_centre_and_size() -> None:
    msg = camera_info(width=1240, height=376)
    msg.binning_x, msg.binning_y = 2, 4
    camera = PinholeCamera.from_camera_info(msg)
    assert (camera.width, camera.height) == (620, 94)
    assert camera.fx == pytest.approx(721.5 / 2) and camera.cx == pytest.approx(609.6 / 2)
    assert camera.fy == pytest.approx(722.5 / 4) and camera.cy == pytest.approx(172.9 / 4)


def test_roi_shifts_centre_and_sets_size() -> None:
    msg = camera_info()
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = 100, 50, 640, 200
    camera = PinholeCamera.from_camera_info(msg)
    assert (camera.width, camera.height) == (640, 200)
    assert camera.cx == pytest.approx(509.6) and camera.cy == pytest.approx(122.9)
    assert camera.fx == 721.5


def test_rosbags_style_message() -> None:
    msg = SimpleNamespace(
        k=np.array(K), p=np.array(P), width=1242, height=375, binning_x=0, binning_y=0,
        roi=SimpleNamespace(x_offset=0, y_offset=0, width=0, height=0))
    assert PinholeCamera.from_camera_info(msg) == PinholeCamera.from_camera_info(camera_info())


def test_to_camera_info_round_trip() -> None:
    camera = PinholeCamera.from_camera_info(camera_info())
    assert PinholeCamera.from_camera_info(camera.to_camera_info()) == camera


def test_to_camera_info_describes_a_rectified_camera() -> None:
    msg = PinholeCamera(width=8, height=6, fx=5.0, fy=6.0, cx=3.5, cy=2.5).to_camera_info()
    assert msg.distortion_model == 'plumb_bob' and list(msg.d) == [0.0] * 5
    np.testing.assert_array_equal(msg.r, np.eye(3).reshape(-1))
    np.testing.assert_array_equal(msg.k, [5, 0, 3.5, 0, 6, 2.5, 0, 0, 1])
    np.testing.assert_array_equal(msg.p, [5, 0, 3.5, 0, 0, 6, 2.5, 0, 0, 0, 1, 0])
    assert (msg.width, msg.height) == (8, 6)


def test_to_camera_info_copies_header() -> None:
    header = Header(frame_id='camera_optical_frame')
    header.stamp.sec = 7
    msg = PinholeCamera(width=8, height=6, fx=5.0, fy=6.0, cx=3.5, cy=2.5).to_camera_info(header)
    assert msg.header == header and msg.header is not header


def test_scaled_moves_pixel_centres_as_cv2_resize() -> None:
    camera = PinholeCamera.from_camera_info(camera_info())
    small = camera.scaled(621, 125)
    scale_x, scale_y = 621 / 1242, 125 / 375
    assert (small.width, small.height) == (621, 125)
    assert small.fx == pytest.approx(721.5 * scale_x) and small.tx == pytest.approx(44.9 * scale_x)
    assert small.cx == pytest.approx(scale_x * (609.6 + 0.5) - 0.5)
    assert small.fy == pytest.approx(722.5 * scale_y)
    assert small.cy == pytest.approx(scale_y * (172.9 + 0.5) - 0.5)


def test_scaled_to_own_size_is_identity() -> None:
    camera = PinholeCamera.from_camera_info(camera_info())
    assert camera.scaled(1242, 375) == camera


def test_scaled_to_zero_is_refused() -> None:
    with pytest.raises(CameraInfoError, match='cannot scale the camera to 0x10'):
        PinholeCamera(width=8, height=6, fx=5.0, fy=6.0, cx=3.5, cy=2.5).scaled(0, 10)


def test_matrix_is_k() -> None:
    camera = PinholeCamera(width=8, height=6, fx=5.0, fy=6.0, cx=3.5, cy=2.5)
    np.testing.assert_array_equal(camera.matrix, [[5, 0, 3.5], [0, 6, 2.5], [0, 0, 1]])


def test_camera_is_frozen() -> None:
    camera = PinholeCamera(width=8, height=6, fx=5.0, fy=6.0, cx=3.5, cy=2.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        camera.fx = 1.0  # type: ignore[misc]
