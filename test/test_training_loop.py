"""The training loop: fit through the CLI, checkpoints, kill-and-resume, freezing, targets."""

from __future__ import annotations

import csv
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lightning import Trainer
from torch import nn
from training_helpers import PYTHON, REPO, kitti_tree, tiny_recipe, training_env

from mtdepth_ros.conversions.labels import IGNORE_INDEX
from mtdepth_ros.evaluation.metrics import outlier_frames
from training import cli
from training.checkpoints import (
    CONFIG_NAME,
    EXTRA_KEY,
    LAST,
    atomic_save,
    checkpoint_dir,
    load_checkpoint,
)
from training.datamodule import MultiTaskDataModule
from training.lineage import INIT_FROM_DATA, training_data
from training.module import MultiTaskModule
from training.nets import get_spec, list_models

TINY_NET = {'decoder_width': 16, 'head_width': 8, 'encoder_args': {'width_mult': 0.25}}
KILL_AFTER_STEP = 4  # SIGKILL once a checkpoint at least this far has been written
RESUME_INTERVAL = 2  # checkpoint every N steps in the kill test
RESUME_MAX_STEPS = 24  # long enough that the kill always lands mid-run


@pytest.fixture(scope='module')
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kitti_tree(tmp_path_factory.getbasetemp())


@pytest.fixture(scope='module')
def fitted(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory after `fit` of the tiny recipe (4 steps, one validation)."""
    base = tmp_path_factory.mktemp('fit')
    recipe = tiny_recipe(base / 'tiny.yaml', tree, base / 'run')
    assert cli.fit_main(['--config', str(recipe)]) == 0
    return base / 'run'


def test_fit_writes_last_and_best_checkpoints_and_the_config_beside_them(fitted: Path) -> None:
    directory = checkpoint_dir(fitted)
    assert {LAST, 'best.ckpt', CONFIG_NAME} <= {p.name for p in directory.iterdir()}
    assert not list(directory.glob('.*.tmp')), 'no temporary files left behind'


def test_checkpoint_loads_weights_only_with_what_export_needs(fitted: Path) -> None:
    checkpoint = torch.load(checkpoint_dir(fitted) / LAST, weights_only=True)
    assert checkpoint['global_step'] == 4
    extra = checkpoint[EXTRA_KEY]
    assert extra['config']['recipe'] == 'tiny'
    assert extra['config']['model']['net'] == 'default'
    assert extra['data']['focal_length_px'] > 0
    assert len(extra['data']['classes']['names']) == 19
    # The best checkpoint is written right after a validation, so it carries its metrics.
    best = torch.load(checkpoint_dir(fitted) / 'best.ckpt', weights_only=True)[EXTRA_KEY]
    assert np.isfinite(best['metrics']['silog'])


def test_logs_go_to_tensorboard_and_csv_with_validation_metrics(fitted: Path) -> None:
    assert list((fitted / 'tensorboard').rglob('events.out.tfevents.*'))
    (metrics,) = list((fitted / 'csv').rglob('metrics.csv'))
    header = metrics.read_text().splitlines()[0].split(',')
    assert {'train/total', 'val/silog', 'val/miou', 'perf/images_per_s'} <= set(header)


def last_step(run: Path) -> int:
    path = checkpoint_dir(run) / LAST
    try:
        return int(torch.load(path, weights_only=True)['global_step'])
    except Exception:  # not written yet (or, impossibly with atomic writes, half written)
        return -1


def logged_steps(run: Path) -> list[list[int]]:
    """Training steps logged by each run version (CSV logger), in order."""
    versions = sorted((run / 'csv').glob('version_*'), key=lambda p: int(p.name.split('_')[1]))
    steps = []
    for version in versions:
        with open(version / 'metrics.csv') as stream:
            steps.append([int(row['step']) for row in csv.DictReader(stream)
                          if row.get('train/total')])
    return steps


@pytest.mark.slow
def test_kill_and_resume_continues_the_step_counter(tree: Path, tmp_path: Path) -> None:
    run = tmp_path / 'run'
    recipe = tiny_recipe(tmp_path / 'kill.yaml', tree, run, **{
        'trainer.max_steps': RESUME_MAX_STEPS, 'trainer.val_check_interval': RESUME_MAX_STEPS,
        'checkpoint.every_n_train_steps': RESUME_INTERVAL,
        'data.train_args': {'crop': [32, 64], 'flip': True}})
    command = [PYTHON, '-m', 'training', 'fit', '--config', str(recipe)]
    process = subprocess.Popen(command, cwd=REPO, env=training_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while last_step(run) < KILL_AFTER_STEP and process.poll() is None:
            assert time.monotonic() < deadline, 'no checkpoint written in time'
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    saved = last_step(run)
    assert process.returncode == -signal.SIGKILL, 'the run finished before it could be killed'
    assert saved >= KILL_AFTER_STEP
    done = max(logged_steps(run)[0]) + 1  # steps finished before the kill (CSV flushed each step)
    assert done - saved <= RESUME_INTERVAL, 'lost more than one checkpoint interval'

    resumed = subprocess.run([*command, '--resume'], cwd=REPO, env=training_env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    second = logged_steps(run)[-1]
    assert second[0] == saved, 'the resumed run starts at the checkpoint step'
    assert second[-1] == RESUME_MAX_STEPS - 1
    assert last_step(run) == RESUME_MAX_STEPS


def test_resuming_a_run_at_max_steps_returns_at_once(fitted: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    last = checkpoint_dir(fitted) / LAST
    before = last.read_bytes()
    # An optimizer state that would not load: the checkpoint must not even be resumed.
    finished = load_checkpoint(last)
    finished['optimizer_states'] = [{'state': {}, 'param_groups': []}]
    atomic_save(finished, last)
    changed = last.read_bytes()
    recipe = fitted.parent / 'tiny.yaml'
    try:
        assert cli.fit_main(['--config', str(recipe), '--resume']) == 0
        assert f'{last}: already at max_steps 4; nothing to train' in capsys.readouterr().err
        assert last.read_bytes() == changed  # nothing trained, nothing written
    finally:
        last.write_bytes(before)


def test_resume_flag_becomes_ckpt_path(tmp_path: Path) -> None:
    checkpoint = tmp_path / 'x.ckpt'
    checkpoint.touch()
    assert cli.translate_resume(['fit', '--resume']) == ['fit', '--ckpt_path', 'last']
    assert cli.translate_resume(['fit', '--resume', str(checkpoint), '--config', 'a.yaml']) == [
        'fit', '--ckpt_path', str(checkpoint), '--config', 'a.yaml']
    with pytest.raises(SystemExit, match='no such checkpoint'):
        cli.translate_resume(['fit', '--resume', str(tmp_path / 'missing.ckpt')])


def test_atomic_save_leaves_the_old_checkpoint_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / 'last.ckpt'
    atomic_save({'state_dict': {'w': torch.ones(2)}}, path)
    with pytest.raises(Exception):
        atomic_save({'state_dict': {'bad': lambda: None}}, path)  # cannot be pickled
    assert torch.equal(load_checkpoint(path)['state_dict']['w'], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ['last.ckpt']


def test_mapped_checkpoint_reads_the_same_and_refuses_the_same(tmp_path: Path) -> None:
    path = tmp_path / 'last.ckpt'
    atomic_save({'state_dict': {'w': torch.arange(4.0)}, 'global_step': 7}, path)
    mapped = load_checkpoint(path, mmap=True)
    assert mapped['global_step'] == 7
    assert torch.equal(mapped['state_dict']['w'], torch.arange(4.0))
    mapped['state_dict']['w'] += 1  # private pages: the file is not written through
    assert torch.equal(load_checkpoint(path)['state_dict']['w'], torch.arange(4.0))
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.raises(ValueError, match='not a loadable checkpoint'):
        load_checkpoint(path, mmap=True)


def test_checkpoint_with_pickled_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / 'evil.ckpt'
    torch.save({'state_dict': {}, 'payload': nn.Linear(1, 1)}, path)  # a module = pickled code
    with pytest.raises(ValueError, match='weights_only'):
        load_checkpoint(path)


def random_data(**kwargs: Any) -> MultiTaskDataModule:
    return MultiTaskDataModule(dataset='random', root='', batch_size=2, num_workers=0,
                               train_args={'frames': 8, 'size': (64, 64)},
                               val_args={'frames': 2, 'size': (64, 64)}, **kwargs)


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_frozen_prefixes_keep_weights_and_batchnorm_statistics(tmp_path: Path) -> None:
    module = MultiTaskModule('default', net_args=TINY_NET, freeze=['encoder.'], lr=1e-2)
    before = snapshot(module.net)
    trainer = Trainer(max_steps=3, accelerator='cpu', logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, limit_val_batches=0, default_root_dir=tmp_path,
                      enable_model_summary=False)
    trainer.fit(module, datamodule=random_data())
    after = snapshot(module.net)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(not k.startswith('encoder.') for k in changed)
    assert any(k.startswith('decoder.') for k in changed)


def test_freeze_prefix_matching_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match='matches no parameter'):
        MultiTaskModule('default', net_args=TINY_NET, freeze=['encodr.'])


STAGES = [(name, stage) for name in list_models() for stage in get_spec(name).stages]


@pytest.mark.parametrize('name, stage', STAGES)
def test_stage_freezes_exactly_its_prefixes(name: str, stage: str) -> None:
    spec = get_spec(name)
    module = MultiTaskModule(name, net_args=dict(spec.tiny), stage=stage)
    prefixes = spec.stages[stage].freeze
    for parameter_name, parameter in module.net.named_parameters():
        assert parameter.requires_grad != parameter_name.startswith(prefixes), parameter_name


def test_init_from_loads_another_runs_network_weights(fitted: Path) -> None:
    module = MultiTaskModule('default', net_args=TINY_NET,
                             init_from=str(checkpoint_dir(fitted) / LAST))
    parent = load_checkpoint(checkpoint_dir(fitted) / LAST)
    saved = parent['state_dict']
    for key, value in module.net.state_dict().items():
        assert torch.equal(value, saved[f'net.{key}']), key
    # The parent's data is recorded in this run's checkpoints (the parent may be deleted).
    lineage = training_data(parent[EXTRA_KEY])
    assert lineage
    checkpoint: dict[str, Any] = {}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint[EXTRA_KEY][INIT_FROM_DATA] == lineage


def test_targets_come_from_metric_depth_with_the_recipe_coding() -> None:
    module = MultiTaskModule('default', net_args=TINY_NET,
                             depth_coding={'d_min': 2.0, 'd_max': 125.0, 'num_intervals': 32})
    depth = torch.tensor([[[[0.0, 2.0, 125.0, 400.0]]]])
    batch = module.with_targets({'depth': depth})
    np.testing.assert_allclose(batch['depth_log'].numpy().ravel(), [0.0, 0.0, 1.0, 1.0], atol=1e-6)
    assert batch['intervals'].ravel().tolist() == [IGNORE_INDEX, 0, 31, 31]
    assert batch['depth_valid'].ravel().tolist() == [False, True, True, True]


def test_beyond_range_depth_is_supervised_at_the_far_end_of_the_coding() -> None:
    # Augment.far_classes marks the unmeasured sky +inf; the recipe's coding decides its target.
    module = MultiTaskModule('default', net_args=TINY_NET,
                             depth_coding={'d_min': 2.0, 'd_max': 125.0, 'num_intervals': 32})
    batch = module.with_targets({'depth': torch.tensor([[[[np.inf, 0.0, 5.0]]]])})
    assert batch['depth'].ravel().tolist() == [125.0, 0.0, 5.0]
    assert batch['intervals'].ravel().tolist() == [31, IGNORE_INDEX, batch['intervals'].ravel()[2]]
    np.testing.assert_allclose(batch['depth_log'].numpy().ravel()[0], 1.0)


def test_batch_without_any_supervision_gives_a_zero_loss_on_every_parameter() -> None:
    # Not None: under DDP every rank must run its backward pass (the gradient all-reduce).
    module = MultiTaskModule('default', net_args=TINY_NET, loss={'weighting': 'uncertainty'})
    data = random_data()
    data.setup('fit')
    batch = torch.utils.data.default_collate([data.train_set[i] for i in range(2)])
    batch['has_depth'] = torch.zeros(2, dtype=torch.bool)
    batch['has_labels'] = torch.zeros(2, dtype=torch.bool)
    loss = module.training_step(batch, 0)
    assert loss.item() == 0.0
    loss.backward()
    trainable = [p for p in module.parameters() if p.requires_grad]
    assert all(p.grad is not None and not p.grad.any() for p in trainable)


def test_learned_task_weights_get_no_weight_decay() -> None:
    module = MultiTaskModule('default', net_args=TINY_NET, weight_decay=1e-4,
                             loss={'weighting': 'uncertainty'})
    network, weights = module.parameter_groups()
    assert network['weight_decay'] == 1e-4 and weights['weight_decay'] == 0.0
    assert {id(p) for p in weights['params']} == {id(p) for p in module.loss.parameters()}
    assert len(network['params']) + len(weights['params']) == len(list(module.parameters()))


def test_a_zero_started_branch_gets_no_weight_decay() -> None:
    # Adam would turn the decay alone into full steps towards 0 while the branch's zero
    # output layer keeps the loss gradient from its other layers
    module = MultiTaskModule('default', net_args={**TINY_NET, 'segmentation_cue_width': 4},
                             weight_decay=1e-4, loss={'weighting': 'uncertainty'})
    network, weights, branch = module.parameter_groups()
    assert network['weight_decay'] == 1e-4 and branch['weight_decay'] == 0.0
    assert {id(p) for p in branch['params']} == \
        {id(p) for p in module.net.segmentation_cue.parameters()}
    assert sum(len(g['params']) for g in (network, weights, branch)) == \
        len(list(module.parameters()))


def test_validation_predicts_whole_images_of_any_size() -> None:
    module = MultiTaskModule('default', net_args=TINY_NET).eval()
    with torch.no_grad():
        outputs = module.predict_full(torch.randn(1, 3, 70, 250))  # not multiples of 32
    assert all(value.shape[-2:] == (70, 250) for value in outputs.values())


def test_mixed_precision_trains_a_step(tmp_path: Path) -> None:
    # bf16-mixed is the mixed precision a CPU has; GPUs use 16-mixed the same way.
    module = MultiTaskModule('default', net_args=TINY_NET)
    trainer = Trainer(max_steps=1, accelerator='cpu', precision='bf16-mixed', logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=0,
                      default_root_dir=tmp_path, enable_model_summary=False)
    trainer.fit(module, datamodule=random_data())
    assert trainer.global_step == 1


def validation_metrics(run: Path) -> dict[str, float]:
    """The val/* values a `validate` run logged to its CSV."""
    rows = list(csv.DictReader(open(next((run / 'csv').glob('version_*/metrics.csv')))))
    return {key: float(value) for row in rows for key, value in row.items()
            if key.startswith('val/') and not key.startswith('val/loss') and value}


@pytest.mark.slow
def test_two_process_ddp_validation_equals_one_process_on_an_odd_frame_count(
        fitted: Path, tmp_path: Path) -> None:
    # 3 validation frames on 2 processes: a padding sampler would score one of them twice.
    checkpoints = fitted / 'checkpoints'
    base = [PYTHON, '-m', 'training', 'validate', '--config', str(checkpoints / CONFIG_NAME),
            '--ckpt_path', str(checkpoints / LAST), '--data.val_limit', '3',
            '--data.val_batch_size', '1', '--trainer.accelerator', 'cpu']
    results = {}
    for name, extra in (('one', ['--trainer.devices', '1']),
                        ('ddp', ['--trainer.devices', '2', '--trainer.strategy', 'ddp'])):
        run = tmp_path / name
        done = subprocess.run([*base, *extra, '--trainer.default_root_dir', str(run)], cwd=REPO,
                              env=training_env(), capture_output=True, text=True, timeout=400)
        assert done.returncode == 0, done.stderr[-3000:]
        results[name] = validation_metrics(run)
    assert {'val/silog', 'val/abs_rel', 'val/miou'} <= set(results['one'])
    assert results['ddp'] == pytest.approx(results['one'], rel=1e-6)


def test_validation_scores_with_the_recipes_protocol() -> None:
    # kitti_eigen: the Garg crop, the 80 m cap, predictions clamped to it (as `training test`).
    module = MultiTaskModule('default', net_args=TINY_NET, val_protocol='kitti_eigen')
    module.on_validation_epoch_start()
    gt = torch.full((1, 1, 375, 1242), 10.0)
    module._score_depth(torch.full_like(gt, 200.0), gt, np.array([True]))
    result = module._depth_acc.result('image')['all']
    assert result['abs_rel'] == pytest.approx((80.0 - 10.0) / 10.0)
    assert module._depth_acc.gt_pixels == (371 - 153) * (1197 - 44)  # inside the Garg crop
    plain = MultiTaskModule('default', net_args=TINY_NET)  # no protocol: the depth range only
    assert plain.val_protocol.crop == 'none' and plain.val_protocol.max_depth == 80.0


def test_a_validation_frame_far_off_the_rest_is_named(caplog: pytest.LogCaptureFixture) -> None:
    assert outlier_frames([0.1, 0.12, 0.09, 17.0, float('nan')]) == [3]
    assert outlier_frames([0.5, 0.6, 4.0]) == []  # under the floor: an untrained model
    assert outlier_frames([0.1, 30.0]) == []  # too few frames to have a median
    module = MultiTaskModule('default', net_args=TINY_NET)
    module.on_validation_epoch_start()
    truth = torch.full((4, 1, 4, 6), 10.0)
    predicted = truth.clone()
    predicted[2] = 0.1 * predicted[2] + 150.0  # frame 2: AbsRel 14
    predicted[0] *= 1.1
    predicted[1] *= 0.95
    predicted[3] *= 1.05
    module._score_depth(predicted, truth, np.ones(4, bool))
    with caplog.at_level('WARNING', logger='training.module'):
        module.on_validation_epoch_end()
    assert '2 (14.10)' in caplog.text
