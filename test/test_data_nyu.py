"""NyuDataset on a generated labelled set: splits, class maps, depth kinds, border, scene types, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from test_data_trees import NYU_SIZE, copy_tree, nyu_tree

from mtdepth_ros.conversions.labels import IGNORE_INDEX
from training.data.classes import NYU13_CLASSES, NYU40_CLASSES, NYU_SCENE_TYPES
from training.data.errors import DataError
from training.data.nyu import NyuDataset
from training.data.nyu_files import hold_out_validation, write_splits
from training.data.synth.room import NYU_IDS


def _raw(frame: int) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(nyu_tree() / 'nyu_depth_v2_labeled.mat', 'r') as file:
        return file['labels'][frame].T, file['rawDepths'][frame].T


def test_splits_follow_splits_mat() -> None:
    splits = {name: NyuDataset(nyu_tree(), name).indices.tolist()
              for name in ('train', 'val', 'trainval', 'test')}
    assert splits['test'] == [1, 3]
    assert splits['trainval'] == [0, 2]  # the official training frames
    assert sorted(splits['train'] + splits['val']) == [0, 2] and len(splits['val']) == 1


def test_validation_holds_out_whole_scenes_with_a_fixed_seed() -> None:
    scenes = [f'room_{i // 5}' for i in range(100)]  # 20 scenes of 5 frames
    train = np.arange(0, 100, 2)  # official training frames: 2 or 3 of each scene
    kept, val = hold_out_validation(train, scenes)
    assert 5 <= len(val) < 5 + 3  # scenes drawn until they hold 10 % of the 50 frames
    assert sorted(np.concatenate([kept, val]).tolist()) == train.tolist()
    held = {scenes[i] for i in val}
    assert held.isdisjoint({scenes[i] for i in kept})  # no scene on both sides
    again = hold_out_validation(train, scenes)
    assert again[1].tolist() == val.tolist()  # fixed, not drawn anew per run
    assert len(hold_out_validation(train, None)[1]) == 5  # frames, 10 % of 50


def test_labels_go_through_the_40_and_13_class_maps() -> None:
    raw, _ = _raw(0)
    wall = raw == NYU_IDS['wall']
    assert wall.any()
    labels40 = NyuDataset(nyu_tree(), 'trainval', mask_border=False)[0]['labels'].numpy()
    labels13 = NyuDataset(nyu_tree(), 'trainval', num_classes=13, mask_border=False)[0]['labels'].numpy()
    assert (labels40[wall] == NYU40_CLASSES.index('wall')).all()
    assert (labels13[wall] == NYU13_CLASSES.index('wall')).all()
    assert (labels40[raw == 0] == IGNORE_INDEX).all()


def test_raw_depth_keeps_the_kinect_holes_as_invalid() -> None:
    _, raw_depth = _raw(0)
    batch = NyuDataset(nyu_tree(), 'trainval', depth='raw', mask_border=False)[0]
    assert np.array_equal(batch['depth_valid'][0].numpy(), raw_depth > 0)
    filled = NyuDataset(nyu_tree(), 'trainval', mask_border=False)[0]
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
    scale_y = NYU_SIZE[1] / 480
    assert np.isclose(k[1, 2], scale_y * (253.736166 + 0.5) - 0.5, rtol=1e-6)  # pixel centres


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


def _scene_types(root: Path) -> list[str]:
    """The sceneTypes strings as written, read back with h5py alone."""
    with h5py.File(root / 'nyu_depth_v2_labeled.mat', 'r') as file:
        return [''.join(map(chr, file[ref][()].ravel())) for ref in file['sceneTypes'][()].ravel()]


def _set_scene_type(root: Path, frame: int, name: str) -> None:
    """Point frame's sceneTypes entry at a new MATLAB char array holding ``name``."""
    with h5py.File(root / 'nyu_depth_v2_labeled.mat', 'r+') as file:
        chars = file['#refs#'].create_dataset(
            f'edited_scene_{frame}', data=np.frombuffer(name.encode('utf-16-le'), np.uint16)[:, None])
        chars.attrs['MATLAB_class'] = np.bytes_('char')
        file['sceneTypes'][0, frame] = chars.ref


def test_samples_carry_the_scene_type_the_writer_wrote() -> None:
    written = _scene_types(nyu_tree())
    assert written and all(name in NYU_SCENE_TYPES for name in written)  # the generator's names are NYU's
    data = NyuDataset(nyu_tree(), 'all')
    scenes = [data[i]['scene'] for i in range(len(data))]
    assert all(scene.dtype == torch.int64 and scene.shape == () for scene in scenes)
    assert [int(scene) for scene in scenes] == [NYU_SCENE_TYPES.index(name) for name in written]
    test = NyuDataset(nyu_tree(), 'test')  # a split's sample carries its own frame's scene
    assert [int(test[i]['scene']) for i in range(len(test))] == [
        NYU_SCENE_TYPES.index(written[frame]) for frame in test.indices]
    batch = torch.utils.data.default_collate([data[0], data[1]])
    assert batch['scene'].shape == (2,) and batch['scene'].dtype == torch.int64


def test_unknown_scene_type_is_ignored_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = copy_tree(nyu_tree(), tmp_path / 'nyu')
    _set_scene_type(root, 0, 'spaceship')
    _set_scene_type(root, 1, 'exercise_room')  # the correct spelling of the dataset's 'excercise_room'
    with caplog.at_level(logging.WARNING, logger='training.data.nyu'):
        data = NyuDataset(root, 'all')
    assert int(data[0]['scene']) == IGNORE_INDEX
    assert int(data[1]['scene']) == NYU_SCENE_TYPES.index('excercise_room')
    assert int(data[2]['scene']) == NYU_SCENE_TYPES.index(_scene_types(root)[2])
    assert "1 of 4 frames have a scene type outside NYU's 27 ('spaceship')" in caplog.text


def test_file_without_scene_types_gives_unknown_scenes(tmp_path: Path) -> None:
    root = copy_tree(nyu_tree(), tmp_path / 'nyu')
    with h5py.File(root / 'nyu_depth_v2_labeled.mat', 'r+') as file:
        del file['sceneTypes']
    data = NyuDataset(root, 'all')
    assert all(int(data[i]['scene']) == IGNORE_INDEX for i in range(len(data)))
