"""Split hygiene: the shipped KITTI lists, NYU's held-out validation, and fit's refusal of a
training split that shares a drive or scene with the test split."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_data_trees import kitti_tree, nyu_tree

from training.data.errors import DataError
from training.data.kitti import KittiDataset
from training.data.kitti_files import read_split_file, shipped_split, shipped_splits
from training.datamodule import MultiTaskDataModule

SHIPPED = {'eigen_test': 697, 'eigen_benchmark_test': 652, 'eigen_zhou_train': 39810,
           'eigen_zhou_val': 4424, 'benchmark_val': 6060}


def drives(name: str) -> set[str]:
    path = shipped_split(name)
    assert path is not None
    return {frame.drive for frame in read_split_file(path)}


def test_shipped_kitti_lists_have_their_published_sizes_and_a_named_source() -> None:
    assert shipped_splits() == sorted(SHIPPED)
    for name, frames in SHIPPED.items():
        path = shipped_split(name)
        assert path is not None and len(read_split_file(path)) == frames
    readme = (Path(shipped_split('eigen_test') or '').parent / 'README.md').read_text()
    assert 'nianticlabs/monodepth2' in readme and 'b676244e5a1ca55564eb5d16ab521a48f823af31' in readme


def test_eigen_zhou_shares_no_drive_with_the_eigen_test_split() -> None:
    assert drives('eigen_benchmark_test') <= drives('eigen_test')
    assert not drives('eigen_zhou_train') & drives('eigen_test')
    assert not drives('eigen_zhou_val') & drives('eigen_test')
    assert drives('benchmark_val') & drives('eigen_test')  # why the check below exists


def test_a_shipped_list_is_found_by_name(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        KittiDataset(tmp_path, 'eigen_test')  # its frames are not in this folder
    assert str(shipped_split('eigen_test')) in str(error.value)


def module(root: Path, **splits: str) -> MultiTaskDataModule:
    return MultiTaskDataModule('kitti', str(root), num_workers=0, **splits,  # type: ignore[arg-type]
                               train_args={'depth': 'annotated_or_velodyne'},
                               test_args={'depth': 'annotated_or_velodyne'})


def test_fit_refuses_a_training_split_sharing_a_drive_with_the_test_split() -> None:
    module(kitti_tree(), train_split='train', val_split='val', test_split='test').setup('fit')
    with pytest.raises(ValueError, match=r"shares 1 drive\(s\) or scene\(s\) with test split 'test'"):
        module(kitti_tree(), train_split='test', val_split='val', test_split='test').setup('fit')


def test_nyu_validation_scenes_are_not_test_scenes() -> None:
    data = MultiTaskDataModule('nyu', str(nyu_tree()), num_workers=0, train_split='train',
                               val_split='val', test_split='test')
    data.setup('fit')  # the official split separates scenes: no refusal
    with pytest.raises(ValueError, match='scene'):
        MultiTaskDataModule('nyu', str(nyu_tree()), num_workers=0, train_split='all',
                            val_split='val', test_split='test').setup('fit')
