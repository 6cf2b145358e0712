"""Validation on the frames as read (``native_depth``): the protocol's numbers, as `training test` gives them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import DataLoader
from training_helpers import tiny_recipe

from training import cli
from training.benchmark import run_test
from training.checkpoints import EXTRA_KEY, checkpoint_dir, load_checkpoint
from training.data.base import DEPTH_NATIVE, NATIVE_REGION, Augment, collate
from training.data.kitti import KittiDataset
from training.data.synth.cli import main as synth

SIZE = (128, 256)  # generated frames; validation halves them exactly (64 x 128, input multiple 32)
HALF = [64, 128]


@pytest.fixture(scope='module')
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp('native') / 'kitti'
    assert synth(['--format', 'kitti', '--out', str(out), '--frames', '18',
                  '--frames-per-drive', '6', '--seed', '3', '--height', str(SIZE[0]),
                  '--width', str(SIZE[1]), '--workers', '1']) in (0, None)
    return out


def test_batches_carry_the_ground_truth_as_read_beside_the_resized_one(tree: Path) -> None:
    data = KittiDataset(tree, 'val', resize=HALF, native_depth=True, depth='annotated')
    batch = next(iter(DataLoader(data, batch_size=2, collate_fn=collate)))
    assert tuple(batch['depth'].shape) == (2, 1, *HALF)
    assert isinstance(batch[DEPTH_NATIVE], list) and len(batch[DEPTH_NATIVE]) == 2
    for index, native in enumerate(batch[DEPTH_NATIVE]):
        read = data.read(index).depth
        assert read is not None and native.shape == SIZE
        np.testing.assert_array_equal(native, np.where(read > 0, read, 0))
    assert batch[NATIVE_REGION] == [(0, 0, *SIZE)] * 2


def test_the_native_region_is_what_a_bottom_crop_keeps(tree: Path) -> None:
    data = KittiDataset(tree, 'val', bottom_crop=(96, 256), resize=[64, 128], native_depth=True)
    sample = data[0]
    assert sample[NATIVE_REGION] == (32, 0, 96, 256)  # bottom rows, centred
    assert sample[DEPTH_NATIVE].shape == SIZE


def test_a_batch_of_mixed_sources_lists_none_where_a_frame_has_no_native_truth(
        tree: Path) -> None:
    native = KittiDataset(tree, 'val', resize=HALF, native_depth=True)
    resized = KittiDataset(tree, 'val', resize=HALF)
    batch = collate([native[0], resized[1]])
    assert batch[DEPTH_NATIVE][0].shape == SIZE and batch[DEPTH_NATIVE][1] is None
    assert batch[NATIVE_REGION] == [(0, 0, *SIZE), None]
    assert tuple(batch['depth'].shape) == (2, 1, *HALF)
    assert DEPTH_NATIVE not in collate([resized[0], resized[1]])


@pytest.mark.parametrize('args', [{'crop': (32, 64)}, {'flip': True}])
def test_native_depth_refuses_random_crops_and_flips(args: dict) -> None:
    with pytest.raises(ValueError, match='native_depth scores predictions on the frames as read'):
        Augment(native_depth=True, **args)


def test_validation_equals_the_test_command_on_the_same_frames(tree: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(tmp_path / 'recipe.yaml', tree, tmp_path / 'run', **{
        'model.val_protocol': 'kitti_eigen',
        'data.val_args': {'resize': HALF, 'native_depth': True, 'depth': 'annotated'},
        'trainer.max_steps': 2, 'trainer.val_check_interval': 2})
    assert cli.fit_main(['--config', str(recipe)]) == 0
    # best.ckpt is written after the validation it was chosen by, which it records.
    checkpoint = checkpoint_dir(tmp_path / 'run') / 'best.ckpt'
    validated = load_checkpoint(checkpoint)[EXTRA_KEY]['metrics']
    report = run_test(checkpoint, 'kitti_eigen', tmp_path / 'test', split='val', recipe=recipe,
                      panels=0, focal_correction=False)
    tested = report.metrics['depth']['per_image']['all']
    assert report.metrics['frames']['depth_scored'] == 4
    for key in ('abs_rel', 'rmse', 'silog', 'd1'):
        assert validated[key] == pytest.approx(tested[key], rel=1e-4, abs=1e-6), key
