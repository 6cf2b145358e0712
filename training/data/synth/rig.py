"""The synthetic car's sensor rig, laid out like KITTI's (Geiger et al., IJRR 2013).

Camera 0 is the rectified reference camera; the colour camera 2 (the one the
generator renders) sits 6 cm to its left, the Velodyne 8 cm above and 27 cm
behind camera 2. Everything is rectified already: R_rect is the identity.
"""

from __future__ import annotations

import numpy as np

from training.data.kitti_files import KittiCalibration

COLOUR_OFFSET_M = 0.06  # camera 2 left of camera 0: P_rect_02[0, 3] = fx * 0.06 (KITTI: 0.062)
STEREO_BASELINE_M = 0.54  # camera 0 to camera 1, as on KITTI's rig
VELODYNE_IN_CAMERA = np.array([0.0, -0.08, -0.27])  # Velodyne origin in camera 2's frame
# Velodyne axes (x forward, y left, z up) -> camera axes (x right, y down, z forward).
VELODYNE_TO_CAMERA_ROTATION = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
VELODYNE_TO_CAMERA0_TRANSLATION = VELODYNE_IN_CAMERA - np.array([COLOUR_OFFSET_M, 0.0, 0.0])


def calibration(intrinsics: np.ndarray, width: int, height: int) -> KittiCalibration:
    """The rig's calibration for camera 2 rendered with ``intrinsics`` at ``width`` x ``height``."""
    p_rect = np.hstack([intrinsics, [[intrinsics[0, 0] * COLOUR_OFFSET_M], [0.0], [0.0]]])
    velo_to_cam = np.hstack([VELODYNE_TO_CAMERA_ROTATION, VELODYNE_TO_CAMERA0_TRANSLATION[:, None]])
    return KittiCalibration(p_rect, np.eye(3), velo_to_cam, (width, height))
