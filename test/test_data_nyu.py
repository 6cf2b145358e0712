"""NyuDataset on a generated labelled set: splits, class maps, depth kinds, border, errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from mtdepth_ros.depth_coding import IGNORE_INDEX
from training.data.classes import NYU13_CLASSES, NYU40_CLASSES
from training.data.errors import DataError
from training.data.nyu import NyuDataset
from training.data.nyu_files import write_splits
from training.data.synth.room import NYU_IDS

from test_data_trees import NYU_SIZE, copy_tree, nyu_tree


def _raw(frame: int) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(nyu_tree() / 'nyu_depth_v2_labeled.mat', 'r') as file:
        return file['labels'][frame].T, file['rawDepths'][frame].T


def test_splits_follow_splits_mat() -> None:
    assert len(NyuDataset(nyu_tree(), 'train')) + len(NyuDataset(nyu_tree(), 'test')) == 4
    assert NyuDataset(nyu_tree(), 'test').indices.tolist() == [1, 3]


def test_labels_go_through_the_40_and_13_class_maps() -> None:
    raw, _ = _raw(0)
    wall = raw == NYU_IDS['wall']
    assert wall.any()
    labels40 = NyuDataset(nyu_tree(), 'train', mask_border=False)[0]['labels'].numpy()
    labels13 = NyuDataset(nyu_tree(), 'train', num_classes=13, mask_border=False)[0]['labels'].numpy()
    assert (labels40[wall] == NYU40_CLASSES.index('wall')).all()
    assert (labels13[wall] == NYU13_CLASSES.index('wall')).all()
    assert (labels40[raw == 0] == IGNORE_INDEX).all()


def test_raw_depth_keeps_the_kinect_holes_as_invalid() -> None:
    _, raw_depth = _raw(0)
    batch = NyuDataset(nyu_tree(), 'train', depth='raw', mask_border=False)[0]
    assert np.array_equal(batch['depth_valid'][0].numpy(), raw_depth > 0)
    filled = NyuDataset(nyu_tree(), 'train', mask_border=False)[0]
    assert filled['depth_valid'].float().mean() > batch['depth_valid'].float().mean()


def test_border_outside_the_projection_mask_is_invalid() -> None:
    batch = NyuDataset(nyu_tree(), 'train')[0]
    top, bottom, left, right = NyuDataset.projection_mask(NYU_SIZE[1], NYU_SIZE[0])
    assert not batch['depth_valid'][0, :top].any() and not batch['depth_valid'][0, :, right:].any()
    assert (batch['labels'][:top] == IGNORE_INDEX).all()
    assert batch['depth_valid'][0, top:bottom, left:right].all()


def test_kinect_intrinsics_scale_with_the_image() -> None:
    k = NyuDataset(nyu_tree(), 'train')[0]['intrinsics'].numpy()
    assert np.isclose(k[0, 0], 518.857901 * NYU_SIZE[0] / 640, rtol=1e-6)
    assert np.isclose(k[1, 2], 253.736166 * NYU_SIZE[1] / 480, rtol=1e-6)


def test_image_stack_in_the_wrong_order_is_explained(tmp_path: Path) -> None:
    root = copy_tree(nyu_tree(), tmp_path / 'nyu')
    with h5py.File(root / 'nyu_depth_v2_labeled.mat', 'r+') as file:
        images = file['images'][()]
        del file['images']
        file['images'] = np.transpose(images, (0, 1, 3, 2))  # (N, 3, H, W): not MATLAB's order
    with pytest.raises(DataError, match=r'expected \(N, 3, W, H\)'):
        NyuDataset(root, 'train')


def test_split_naming_absent_frames_is_refused(tmp_path: Path) -> None:
    root = copy_tree(nyu_tree(), tmp_path / 'nyu')
    write_splits(root / 'splits.mat', np.array([0, 9, 10]), np.array([1]))
    with pytest.raises(DataError, match=r'2 of 3 trainNdxs are outside 1\.\.4 .*\[10, 11\]'):
        NyuDataset(root, 'train')


def test_missing_class_map_says_where_to_look(tmp_path: Path) -> None:
    root = copy_tree(nyu_tree(), tmp_path / 'nyu')
    (root / 'classMapping40.mat').unlink()
    with pytest.raises(DataError, match='classMapping40.mat: 894 -> 40 class map .* not found'):
        NyuDataset(root, 'train')
    assert len(NyuDataset(root, 'train', num_classes=0)) > 0
