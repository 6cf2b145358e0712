"""The synthetic car's sensor rig, laid out like KITTI's (Geiger et al., IJRR 2013).

Camera 0 is the rectified reference camera; the colour camera 2 (the one the
generator renders) sits 6 cm to its left, the Velodyne 8 cm above and 27 cm
behind camera 2. Everything is rectified already: R_rect is the identity.
Camera 2 has KITTI's size and intrinsics and sits about 1.65 m over the road;
each drive mounts the rig a little differently (``Mount``: height, pitch,
roll, and a bounce while driving).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtdepth_ros.conversions.geometry import resize_intrinsics
from training.data.kitti_files import KittiCalibration

COLOUR_OFFSET_M = 0.06  # camera 2 left of camera 0: P_rect_02[0, 3] = fx * 0.06 (KITTI: 0.062)
STEREO_BASELINE_M = 0.54  # camera 0 to camera 1, as on KITTI's rig
VELODYNE_IN_CAMERA = np.array([0.0, -0.08, -0.27])  # Velodyne origin in camera 2's frame
# Velodyne axes (x forward, y left, z up) -> camera axes (x right, y down, z forward).
VELODYNE_TO_CAMERA_ROTATION = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
VELODYNE_TO_CAMERA0_TRANSLATION = VELODYNE_IN_CAMERA - np.array([COLOUR_OFFSET_M, 0.0, 0.0])

CAMERA_HEIGHT_M = 1.65  # KITTI's colour cameras are about 1.65 m above the road
FRAME_RATE_HZ = 10.0
KITTI_WIDTH, KITTI_HEIGHT = 1242, 375
# P_rect_02 of the KITTI raw drives of 2011_09_26 (calib_cam_to_cam.txt).
KITTI_FX = KITTI_FY = 721.5377
KITTI_CX, KITTI_CY = 609.5593, 172.854
# Camera mount, per drive, uniform within these bounds around KITTI's; plus a bounce per frame.
MOUNT_HEIGHT_JITTER_M = 0.08
MOUNT_PITCH_DEG = 1.0
MOUNT_ROLL_DEG = 0.5
PITCH_BOUNCE_DEG = 0.3


def calibration(intrinsics: np.ndarray, width: int, height: int) -> KittiCalibration:
    """The rig's calibration for camera 2 rendered with ``intrinsics`` at ``width`` x ``height``."""
    p_rect = np.hstack([intrinsics, [[intrinsics[0, 0] * COLOUR_OFFSET_M], [0.0], [0.0]]])
    velo_to_cam = np.hstack([VELODYNE_TO_CAMERA_ROTATION, VELODYNE_TO_CAMERA0_TRANSLATION[:, None]])
    return KittiCalibration(p_rect, np.eye(3), velo_to_cam, (width, height))


def kitti_intrinsics(width: int = KITTI_WIDTH, height: int = KITTI_HEIGHT) -> np.ndarray:
    """(3, 3) K of KITTI's left colour camera, scaled to ``width`` x ``height``."""
    kitti = np.array([[KITTI_FX, 0.0, KITTI_CX], [0.0, KITTI_FY, KITTI_CY], [0.0, 0.0, 1.0]])
    return resize_intrinsics(kitti, (KITTI_HEIGHT, KITTI_WIDTH), (height, width))


@dataclass(frozen=True)
class Mount:
    """How a drive's camera sits: height over the road, pitch (+ looks up) and roll, and
    the body's pitch bounce while driving (amplitude, angular frequency, phase)."""

    height: float = CAMERA_HEIGHT_M
    pitch: float = 0.0  # radians
    roll: float = 0.0
    bounce: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def random(cls, rng: np.random.Generator) -> Mount:
        return cls(CAMERA_HEIGHT_M + rng.uniform(-MOUNT_HEIGHT_JITTER_M, MOUNT_HEIGHT_JITTER_M),
                   float(np.deg2rad(rng.uniform(-MOUNT_PITCH_DEG, MOUNT_PITCH_DEG))),
                   float(np.deg2rad(rng.uniform(-MOUNT_ROLL_DEG, MOUNT_ROLL_DEG))),
                   (float(np.deg2rad(rng.uniform(0.0, PITCH_BOUNCE_DEG))),
                    float(rng.uniform(2.0, 9.0)), float(rng.uniform(0.0, 2 * np.pi))))

    def pitch_at(self, t: float) -> float:
        amplitude, omega, phase = self.bounce
        return self.pitch + amplitude * float(np.sin(omega * t + phase))

    def rotation(self, t: float) -> np.ndarray:
        """(3, 3) camera -> vehicle rotation at time ``t``: pitch about x, then roll about z."""
        pitch, roll = self.pitch_at(t), self.roll
        cp, sp, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
        about_x = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
        about_z = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
        return about_x @ about_z
