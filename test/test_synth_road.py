"""The road scene generator: its own geometry, determinism and LiDAR sampling."""

from __future__ import annotations

import numpy as np
import pytest

from training.data.classes import CITYSCAPES_LABEL_IDS
from training.data.lidar import points_to_depth_map, read_velodyne
from training.data.io import read_depth_png
from training.data.kitti_files import FrameId, KittiCalibration
from training.data.synth import road
from training.data.synth.rig import VELODYNE_IN_CAMERA
from training.data.synth.samples import road_sample

from test_data_trees import KITTI_SIZE, kitti_tree


def _frame(seed: int, width: int = 320, height: int = 97) -> road.RoadFrame:
    drive = road.make_drive(np.random.default_rng(seed), frames=5)
    return road.render_frame(drive, 2, width, height, road.kitti_intrinsics(width, height),
                             np.random.default_rng(seed + 1), VELODYNE_IN_CAMERA)


def test_road_depth_is_the_ground_plane_from_the_intrinsics() -> None:
    frame = _frame(3)
    k = frame.intrinsics
    v, u = np.nonzero(frame.label_ids == CITYSCAPES_LABEL_IDS['road'])
    assert len(v) > 1000
    expected = road.CAMERA_HEIGHT_M * k[1, 1] / (v - k[1, 2])
    assert np.allclose(frame.depth[v, u], expected, rtol=1e-4)


def test_sky_has_no_depth_and_everything_else_has() -> None:
    frame = _frame(4)
    sky = frame.label_ids == CITYSCAPES_LABEL_IDS['sky']
    assert sky.any() and (frame.depth[sky] == 0).all() and (frame.depth[~sky] > 0).all()


def test_same_seed_same_frame_other_seed_other_frame() -> None:
    first = road_sample(5, 0, 4, 1, 1, 96, 29)
    again = road_sample(5, 0, 4, 1, 1, 96, 29)
    other = road_sample(6, 0, 4, 1, 1, 96, 29)
    for name in ('image', 'dense_depth', 'label_ids', 'velodyne', 'groundtruth'):
        assert np.array_equal(getattr(first, name), getattr(again, name)), name
    assert not np.array_equal(first.image, other.image)


@pytest.mark.slow
def test_lidar_covers_a_kitti_like_share_of_pixels_below_the_horizon() -> None:
    sample = road_sample(1, 0, 4, 0, 0, road.KITTI_WIDTH, road.KITTI_HEIGHT)
    share = (sample.groundtruth > 0).mean()
    assert 0.04 < share < 0.15
    rows = np.nonzero((sample.velodyne_raw > 0).any(axis=1))[0]
    assert rows.min() > road.KITTI_HEIGHT // 4  # the top rows look above the highest beam (+2 deg)


def test_ground_truth_agrees_with_the_dense_depth_it_came_from() -> None:
    sample = road_sample(2, 0, 4, 0, 0, 200, 60)
    kept = sample.groundtruth > 0
    assert kept.any()
    error = np.abs(sample.groundtruth[kept] - sample.dense_depth[kept]) / sample.dense_depth[kept]
    assert error.max() <= 0.05 + 0.1 / sample.dense_depth[kept].min()


def test_velodyne_scan_projects_onto_the_written_raw_depth() -> None:
    root = kitti_tree()
    frame = FrameId('2000_01_01', '2000_01_01_drive_0001_sync', 1)
    calib = KittiCalibration.read(root / 'raw' / frame.date)
    projected = points_to_depth_map(read_velodyne(frame.velodyne(root / 'raw')), calib.velo_to_image(),
                                    *KITTI_SIZE)
    written = read_depth_png(frame.depth(root / 'depth', 'train', 'velodyne_raw'))
    assert np.array_equal(projected > 0, written > 0)
    assert np.abs(projected - written).max() <= 0.5 / 256 + 1e-6
