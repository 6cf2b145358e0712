"""KITTI loaders on a generated tree: depth sources, labels, intrinsics, errors that name the file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from test_data_trees import KITTI_SIZE, copy_tree, kitti_tree

from mtdepth_ros.conversions.geometry import kb_crop_region
from training.data.errors import DataError
from training.data.io import read_depth_png
from training.data.kitti import KittiDataset, KittiSelection
from training.data.lidar import points_to_depth_map

GT = Path('depth/train/2000_01_01_drive_0001_sync/proj_depth/groundtruth/image_02/0000000001.png')
IMAGE = Path('raw/2000_01_01/2000_01_01_drive_0001_sync/image_02/data/0000000001.png')


def test_train_split_reads_annotated_depth_in_metres() -> None:
    data = KittiDataset(kitti_tree(), 'train')
    batch = data[0]
    expected = read_depth_png(kitti_tree() / GT)
    assert np.array_equal(batch['depth'][0].numpy(), expected)
    assert batch['image'].shape == (3, KITTI_SIZE[1], KITTI_SIZE[0])


def test_annotated_depth_is_never_mixed_with_scans_unless_asked() -> None:
    with pytest.raises(DataError, match='2 of 2 listed annotated depth files'):
        KittiDataset(kitti_tree(), 'test')  # 2 of the 3 test frames have no annotation
    only = KittiDataset(kitti_tree(), 'test', skip_unannotated=True)
    assert len(only) == 1 and only.depth_paths[0].suffix == '.png'
    mixed = KittiDataset(kitti_tree(), 'test', depth='annotated_or_velodyne')
    assert [p.suffix if p else None for p in mixed.depth_paths] == ['.bin', '.png', '.bin']
    assert bool(mixed[0]['has_depth']) and mixed[0]['depth_valid'].any()


def _one_point_scan(x: float, y: float, z: float) -> tuple[np.ndarray, np.ndarray]:
    """A Velodyne scan of one point and a rig whose camera sits 0.25 m behind the scanner."""
    k = np.array([[100.0, 0.0, 20.0], [0.0, 100.0, 10.0], [0.0, 0.0, 1.0]])
    velo_to_cam = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.25]])
    return np.array([[x, y, z, 1.0]], np.float32), k @ velo_to_cam


def test_scan_projection_follows_monodepth2_or_pixel_centres() -> None:
    # The point 9.75 m ahead of the scanner is 10 m ahead of the camera, 0.314 m left and
    # 0.127 m up: u = 20 - 100 * 0.314 / 10 = 16.86, v = 10 - 1.27 = 8.73.
    points, velo_to_image = _one_point_scan(9.75, 0.314, 0.127)
    centre = points_to_depth_map(points, velo_to_image, 40, 20, 'centre')
    assert np.argwhere(centre > 0).tolist() == [[9, 17]] and centre[9, 17] == pytest.approx(10.0)
    # monodepth2 (the Eigen ground truth): round, then one pixel up and left; Velodyne x.
    published = points_to_depth_map(points, velo_to_image, 40, 20, 'monodepth2')
    assert np.argwhere(published > 0).tolist() == [[8, 16]]
    assert published[8, 16] == pytest.approx(9.75)


def test_test_frames_are_projected_with_monodepth2s_rule_by_default() -> None:
    data = KittiDataset(kitti_tree(), 'test', depth='velodyne')
    centre = KittiDataset(kitti_tree(), 'test', depth='velodyne', projection='centre')
    shifted, exact = data.read(0).depth, centre.read(0).depth
    assert data.projection == 'monodepth2' and shifted is not None and exact is not None
    assert (shifted > 0).any() and not np.array_equal(shifted > 0, exact > 0)


def test_labels_are_cityscapes_train_ids() -> None:
    labels = KittiDataset(kitti_tree(), 'train')[0]['labels']
    assert set(labels.unique().tolist()) <= set(range(19)) | {255}
    assert not bool(KittiDataset(kitti_tree(), 'train', labels='none')[0]['has_labels'])


def test_intrinsics_follow_a_crop_inside_the_lidar_band() -> None:
    torch.manual_seed(0)
    data = KittiDataset(kitti_tree(), 'train', crop=(24, 48))
    k_full = data.calibrations[('2000_01_01', 'image_02')].intrinsics
    region = kb_crop_region(KITTI_SIZE[::-1])
    top, left = region.top, region.left
    image = cv2.imread(str(kitti_tree() / IMAGE))[..., ::-1]
    for _ in range(4):
        batch = data[0]
        k = batch['intrinsics'].numpy().astype(np.float64)
        x, y = k_full[0, 2] - k[0, 2], k_full[1, 2] - k[1, 2]  # the crop's offset, from K alone
        assert y >= top - 1e-4 and x >= left - 1e-4
        window = image[int(round(y)):int(round(y)) + 24, int(round(x)):int(round(x)) + 48]
        pixels = batch['image'].permute(1, 2, 0).numpy() * data.std.view(1, 1, 3).numpy() \
            + data.mean.view(1, 1, 3).numpy()
        assert np.allclose(pixels * 255, window, atol=0.01)


def test_dense_depth_of_a_synthetic_tree() -> None:
    batch = KittiDataset(kitti_tree(), 'train', depth='dense')[0]
    assert batch['depth_valid'].float().mean() > 0.5


def test_val_selection_is_the_bottom_centre_crop_with_its_intrinsics() -> None:
    data = KittiSelection(kitti_tree())
    region = kb_crop_region(KITTI_SIZE[::-1])
    top, left, height, width = region.top, region.left, region.height, region.width
    batch = data[0]
    assert batch['image'].shape == (3, height, width)
    full = KittiDataset(kitti_tree(), 'val')
    k = full.calibrations[('2000_01_01', 'image_02')].intrinsics
    assert np.allclose(batch['intrinsics'].numpy()[:2, 2], [k[0, 2] - left, k[1, 2] - top], atol=1e-4)


def test_split_naming_absent_frames_says_how_many_and_which(tmp_path: Path) -> None:
    split = tmp_path / 'split.txt'
    lines = [f'2000_01_01/2000_01_01_drive_0001_sync {i} l' for i in range(1, 10)]
    split.write_text('\n'.join(lines) + '\n')
    with pytest.raises(DataError, match=r'7 of 9 listed images are missing: .*0000000003\.png') as error:
        KittiDataset(kitti_tree(), str(split))
    assert '(and 2 more)' in str(error.value) and str(split) in str(error.value)


def test_malformed_split_line_names_its_number(tmp_path: Path) -> None:
    split = tmp_path / 'split.txt'
    split.write_text('2000_01_01/2000_01_01_drive_0001_sync 1 l\nnot a frame\n')
    with pytest.raises(DataError, match='line 2'):
        KittiDataset(kitti_tree(), str(split))


def test_8_bit_depth_png_is_refused_with_the_reason(tmp_path: Path) -> None:
    root = copy_tree(kitti_tree(), tmp_path / 'kitti')
    cv2.imwrite(str(root / GT), np.zeros((KITTI_SIZE[1], KITTI_SIZE[0]), np.uint8))
    with pytest.raises(DataError, match='expected a 16-bit PNG .* got 8-bit') as error:
        KittiDataset(root, 'train')[0]
    assert str(root / GT) in str(error.value)


def test_truncated_image_is_refused_with_the_path(tmp_path: Path) -> None:
    root = copy_tree(kitti_tree(), tmp_path / 'kitti')
    data = (root / IMAGE).read_bytes()
    (root / IMAGE).write_bytes(data[:len(data) // 2])
    with pytest.raises(DataError, match='cannot be decoded') as error:
        KittiDataset(root, 'train')[0]
    assert str(root / IMAGE) in str(error.value)


def test_truncated_velodyne_scan_is_refused(tmp_path: Path) -> None:
    root = copy_tree(kitti_tree(), tmp_path / 'kitti')
    scan = root / 'raw/2000_01_01/2000_01_01_drive_0002_sync/velodyne_points/data/0000000000.bin'
    scan.write_bytes(scan.read_bytes()[:-6])
    with pytest.raises(DataError, match='not a whole number of points'):
        KittiDataset(root, 'test', depth='velodyne')[0]


def test_missing_calibration_is_named(tmp_path: Path) -> None:
    root = copy_tree(kitti_tree(), tmp_path / 'kitti')
    (root / 'raw/2000_01_01/calib_velo_to_cam.txt').unlink()
    with pytest.raises(DataError, match='calib_velo_to_cam.txt: calibration file not found'):
        KittiDataset(root, 'train')
