"""Everything the writers need from one rendered road frame, in dataset terms.

Seeds: the street of drive ``d`` comes from ``(seed, d)``, the camera noise,
exposure and LiDAR noise of global frame ``i`` from ``(seed, i)``; so any
frame can be rendered alone, in any process, with the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from training.data.lidar import points_to_depth_map
from training.data.synth import road
from training.data.synth.lidar_sim import camera_axes_to_velodyne
from training.data.synth.rig import VELODYNE_IN_CAMERA, calibration, kitti_intrinsics

SCENE_STREAM, FRAME_STREAM = 1, 2  # keep the scene and frame random streams apart
# Annotated ground truth keeps a LiDAR point where it agrees with what the
# camera sees (KITTI used a stereo consistency check); the raw projection keeps all.
CONSISTENCY_RELATIVE = 0.05
CONSISTENCY_ABSOLUTE_M = 0.1


@dataclass
class RoadSample:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    dense_depth: np.ndarray  # (H, W) float32 metres, 0 = sky
    label_ids: np.ndarray  # (H, W) uint8 Cityscapes label ids
    velodyne: np.ndarray  # (N, 4) float32 x y z reflectance, Velodyne frame
    velodyne_raw: np.ndarray  # (H, W) float32 metres: every projected point, 0 = none
    groundtruth: np.ndarray  # (H, W) float32 metres: consistent points only, 0 = none
    intrinsics: np.ndarray  # (3, 3)


@lru_cache(maxsize=4)
def road_drive(seed: int, drive: int, frames: int) -> road.RoadDrive:
    return road.make_drive(np.random.default_rng([seed, SCENE_STREAM, drive]), frames)


def road_sample(seed: int, drive: int, frames: int, frame: int, global_index: int, width: int,
                height: int, intrinsics: np.ndarray | None = None) -> RoadSample:
    """Render frame ``frame`` of drive ``drive`` (of ``frames`` frames) at ``width`` x ``height``.

    ``intrinsics`` default to KITTI's, scaled to the size.
    """
    if intrinsics is None:
        intrinsics = kitti_intrinsics(width, height)
    rng = np.random.default_rng([seed, FRAME_STREAM, global_index])
    rendered = road.render_frame(road_drive(seed, drive, frames), frame, width, height, intrinsics,
                                 rng, VELODYNE_IN_CAMERA)
    points = camera_axes_to_velodyne(rendered.scan.points)
    velodyne = np.concatenate([points, rendered.scan.reflectance[:, None]], axis=1).astype(np.float32)
    raw = points_to_depth_map(velodyne, calibration(intrinsics, width, height).velo_to_image(),
                              width, height)
    dense = rendered.depth
    consistent = np.abs(raw - dense) <= CONSISTENCY_RELATIVE * dense + CONSISTENCY_ABSOLUTE_M
    groundtruth = np.where((raw > 0) & (dense > 0) & consistent, raw, 0.0).astype(np.float32)
    return RoadSample(rendered.image, dense, rendered.label_ids, velodyne, raw, groundtruth, intrinsics)
