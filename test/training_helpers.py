"""Shared fixtures of the training tests: a tiny generated KITTI tree and a tiny recipe.

Built once per test session (cached under pytest's base temp directory), so
test_training_loop.py, test_export.py and test_layout_graft.py share them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
TREE_SIZE = (80, 256)  # (height, width) of the generated frames
TREE_FRAMES, FRAMES_PER_DRIVE = 18, 6  # three drives: train, test, val (4 annotated each)
DONE = '.complete'


def kitti_tree(base: Path) -> Path:
    """A generated KITTI tree with train and val splits (made by `python -m training synth`)."""
    out = base / 'kitti_tiny'
    if not (out / DONE).exists():
        from training.data.synth.cli import main as synth

        code = synth(['--format', 'kitti', '--out', str(out), '--frames', str(TREE_FRAMES),
                      '--frames-per-drive', str(FRAMES_PER_DRIVE), '--seed', '0',
                      '--height', str(TREE_SIZE[0]), '--width', str(TREE_SIZE[1]),
                      '--workers', '1'])
        assert code in (0, None)
        (out / DONE).touch()
    return out


def tiny_recipe(path: Path, data_root: Path, run_dir: Path, **overrides: Any) -> Path:
    """A recipe YAML for the tiny default network on the generated tree."""
    config: dict[str, Any] = {
        'seed_everything': 0,
        'trainer': {'default_root_dir': str(run_dir), 'max_steps': 4, 'val_check_interval': 4,
                    'check_val_every_n_epoch': None, 'log_every_n_steps': 1,
                    'accelerator': 'cpu', 'devices': 1, 'enable_model_summary': False,
                    'enable_progress_bar': False, 'num_sanity_val_steps': 0},
        'checkpoint': {'every_n_train_steps': 2},
        'model': {'net': 'default', 'net_args': {'decoder_width': 16, 'head_width': 8,
                                                 'encoder_args': {'width_mult': 0.25}}},
        'data': {'dataset': 'kitti', 'root': str(data_root),
                 'train_args': {'crop': [64, 128], 'flip': True}, 'val_args': {},
                 'batch_size': 2, 'val_batch_size': 2, 'num_workers': 0},
    }
    for dotted, value in overrides.items():
        section = config
        *parents, key = dotted.split('.')
        for name in parents:
            section = section.setdefault(name, {})
        section[key] = value
    path.write_text(yaml.safe_dump(config))
    return path


def two_step_checkpoint(base: Path, temp_root: Path, name: str) -> Path:
    """best.ckpt of a two-step tiny-recipe run (recipe ``name``) on the generated tree."""
    from training import cli
    from training.checkpoints import checkpoint_dir

    recipe = tiny_recipe(base / f'{name}.yaml', kitti_tree(temp_root), base / 'run',
                         **{'trainer.max_steps': 2, 'trainer.val_check_interval': 2})
    assert cli.fit_main(['--config', str(recipe)]) == 0
    return checkpoint_dir(base / 'run') / 'best.ckpt'


def training_env() -> dict[str, str]:
    """Environment of a `python -m training` subprocess run from the repository."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(REPO), env.get('PYTHONPATH', '')])
    return env


PYTHON = sys.executable
