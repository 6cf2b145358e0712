"""Pinhole intrinsics from and to ``sensor_msgs/CameraInfo``, no rclpy.

The intrinsics are read from the projection matrix P, as image_geometry's
``PinholeCameraModel`` does (fx = P[0,0], fy = P[1,1], cx = P[0,2],
cy = P[1,2]): P describes the rectified image, which is what a network and
depth_image_proc work on. Binning and region of interest are applied the way
``PinholeCameraModel.fromCameraInfo`` applies them. Where a driver leaves P
all zero (uncalibrated), K is used instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mtdepth_ros.conversions.cdr import camera_info_bytes
from mtdepth_ros.conversions.geometry import Region, scale_coordinate
from mtdepth_ros.conversions.images import copy_header

DISTORTION_MODEL = 'plumb_bob'
PLUMB_BOB_COEFFICIENTS = 5
_NO_DISTORTION = (0.0,) * PLUMB_BOB_COEFFICIENTS
_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)  # R of a rectified camera
_P_SIZE = 12  # 3x4 row-major
_K_SIZE = 9  # 3x3 row-major
# Row-major indices into K and P
_K_FX, _K_CX, _K_FY, _K_CY = 0, 2, 4, 5
_P_FX, _P_CX, _P_TX, _P_FY, _P_CY, _P_TY = 0, 2, 3, 5, 6, 7


class CameraInfoError(ValueError):
    """Camera info that gives no usable pinhole model; the text says why."""


@dataclass(frozen=True)
class PinholeCamera:
    """A rectified pinhole camera at one image resolution (pixels)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    tx: float = 0.0  # P[0,3] = -fx * baseline (non-zero for the right camera of a stereo pair)
    ty: float = 0.0  # P[1,3]

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise CameraInfoError(f'camera size must be positive, got {self.width}x{self.height}')
        values = {name: getattr(self, name) for name in ('fx', 'fy', 'cx', 'cy', 'tx', 'ty')}
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        if bad:
            raise CameraInfoError(f'camera intrinsics {bad} are not finite: {values}')
        if self.fx <= 0 or self.fy <= 0:
            raise CameraInfoError(
                f'focal lengths must be positive, got fx={self.fx}, fy={self.fy} '
                '(is the camera calibrated?)')

    @classmethod
    def from_camera_info(cls, msg: Any) -> PinholeCamera:
        """The camera a ``CameraInfo`` (rclpy or rosbags message) describes.

        The size is that of the images the camera sends: the ROI's (when set)
        divided by the binning.
        """
        p = _matrix(msg.p, _P_SIZE, 'P')
        k = _matrix(msg.k, _K_SIZE, 'K')
        if any(p):
            fx, fy, cx, cy = p[_P_FX], p[_P_FY], p[_P_CX], p[_P_CY]
            tx, ty = p[_P_TX], p[_P_TY]
        elif any(k):
            fx, fy, cx, cy = k[_K_FX], k[_K_FY], k[_K_CX], k[_K_CY]
            tx = ty = 0.0
        else:
            raise CameraInfoError('camera_info has neither P nor K set (all zeros): uncalibrated')
        bin_x, bin_y = max(1, int(msg.binning_x)), max(1, int(msg.binning_y))
        roi = msg.roi
        full_roi = (roi.x_offset == 0 and roi.y_offset == 0 and roi.width == 0
                    and roi.height == 0)  # all zero = the full image (sensor_msgs/RegionOfInterest)
        roi_x, roi_y = (0, 0) if full_roi else (int(roi.x_offset), int(roi.y_offset))
        raw_width, raw_height = (
            (int(msg.width), int(msg.height)) if full_roi else (int(roi.width), int(roi.height)))
        try:
            return cls(
                width=raw_width // bin_x, height=raw_height // bin_y,
                fx=fx / bin_x, fy=fy / bin_y,
                cx=(cx - roi_x) / bin_x, cy=(cy - roi_y) / bin_y,
                tx=tx / bin_x, ty=ty / bin_y)
        except CameraInfoError as error:
            raise CameraInfoError(f'camera_info: {error}') from None

    @property
    def matrix(self) -> np.ndarray:
        """K, (3, 3) float64."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def to_camera_info(self, header: Any = None) -> Any:
        """A ``CameraInfo`` for rectified images from this camera (no distortion, R = I)."""
        from sensor_msgs.msg import CameraInfo  # message class only; no rclpy

        msg = CameraInfo()
        if header is not None:
            msg.header = copy_header(header)
        msg.width = self.width
        msg.height = self.height
        msg.distortion_model = DISTORTION_MODEL
        msg.d = [0.0] * PLUMB_BOB_COEFFICIENTS
        msg.k = self.matrix.reshape(-1)
        msg.r = np.eye(3).reshape(-1)
        projection = np.zeros((3, 4))
        projection[:, :3] = self.matrix
        projection[0, 3], projection[1, 3] = self.tx, self.ty
        msg.p = projection.reshape(-1)
        return msg

    def to_camera_info_bytes(self, header: Any) -> bytes:
        """:meth:`to_camera_info` serialized (CDR), without building the message.

        K and P are tuples of Python floats (the same doubles as the message's arrays):
        no numpy on this per-frame path, and the prefix cache hashes them cheaply.
        """
        fx, fy, cx, cy = float(self.fx), float(self.fy), float(self.cx), float(self.cy)
        k = (fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0)
        p = (fx, 0.0, cx, float(self.tx), 0.0, fy, cy, float(self.ty), 0.0, 0.0, 1.0, 0.0)
        return camera_info_bytes(header, self.width, self.height, DISTORTION_MODEL,
                                 _NO_DISTORTION, k, _IDENTITY, p)

    def scaled(self, width: int, height: int) -> PinholeCamera:
        """This camera for the image resized to ``width`` x ``height``.

        Focal lengths scale by the size ratio; the principal point moves as
        ``cv2.resize`` moves pixel centres (``cx' = s (cx + 0.5) - 0.5``,
        :mod:`~mtdepth_ros.conversions.geometry`).
        """
        if width <= 0 or height <= 0:
            raise CameraInfoError(f'cannot scale the camera to {width}x{height}')
        scale_x, scale_y = width / self.width, height / self.height
        return replace(
            self, width=int(width), height=int(height),
            fx=self.fx * scale_x, cx=scale_coordinate(self.cx, scale_x), tx=self.tx * scale_x,
            fy=self.fy * scale_y, cy=scale_coordinate(self.cy, scale_y), ty=self.ty * scale_y)

    def cropped(self, region: Region) -> PinholeCamera:
        """This camera for the ``region`` of its image (the principal point shifts)."""
        if region.bottom > self.height or region.right > self.width:
            raise CameraInfoError(f'{region} is not inside the {self.width}x{self.height} image')
        return replace(self, width=region.width, height=region.height,
                       cx=self.cx - region.left, cy=self.cy - region.top)

def _matrix(values: Sequence[float], size: int, name: str) -> list[float]:
    flat = [float(v) for v in values]
    if len(flat) != size:
        raise CameraInfoError(f'camera_info {name} has {len(flat)} values, expected {size}')
    return flat
