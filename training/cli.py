"""``python -m training fit|validate --config training/configs/<recipe>.yaml [--resume]``.

A LightningCLI over :class:`MultiTaskModule` and :class:`MultiTaskDataModule`;
every Trainer option works from the config or the command line (DDP:
``trainer.strategy: ddp``, ``trainer.devices``, ``trainer.num_nodes``; mixed
precision: ``trainer.precision: 16-mixed`` or ``bf16-mixed``).

What this adds to a plain LightningCLI:

- ``checkpoint.*`` (a ModelCheckpoint): every ``every_n_train_steps`` steps
  and at each validation into ``<trainer.default_root_dir>/checkpoints/``,
  with ``last.ckpt``; ``best_checkpoint.*`` keeps the best by ``val/silog``.
  Writes are atomic (:class:`AtomicCheckpointIO`).
- ``--resume``: continue from that run's ``last.ckpt`` (a kill loses at most
  one checkpoint interval); ``--resume PATH`` from a given checkpoint. A run
  already at ``trainer.max_steps`` returns at once (raise ``max_steps`` to
  train on).
- TensorBoard and CSV loggers under the run directory unless the config
  names others; the resolved config is saved as ``config.yaml`` beside the
  checkpoints and inside every checkpoint (the exporter puts it in the card).
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.plugins.io import CheckpointIO

from training.checkpoints import (
    CONFIG_NAME,
    AtomicCheckpointIO,
    checkpoint_dir,
    last_checkpoint,
    load_checkpoint,
)
from training.datamodule import MultiTaskDataModule
from training.module import MultiTaskModule

RESUME_FLAG = '--resume'
DEFAULT_ROOT = 'runs/default'
CHECKPOINT_EVERY_N_STEPS = 200
MONITOR = 'val/silog'
CSV_FLUSH_STEPS = 50  # Lightning's default logging interval
THROUGHPUT_WARMUP = 3  # steps not counted in the throughput median


class ImagesPerSecond(Callback):
    """Logs training throughput (``perf/images_per_s``, all ranks) and prints its median.

    Measured from one training step's end to the next, so data loading counts;
    the first ``warmup`` steps (allocator, worker start-up) and the step after
    each validation are not counted.
    """

    def __init__(self, warmup: int = THROUGHPUT_WARMUP) -> None:
        self.warmup = warmup
        self.rates: list[float] = []
        self._last: float | None = None

    def on_train_batch_end(self, trainer: Trainer, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        now = time.perf_counter()
        if self._last is not None:
            images = int(batch['image'].shape[0]) * trainer.world_size
            rate = images / max(now - self._last, 1e-9)
            pl_module.log('perf/images_per_s', rate, on_step=True, on_epoch=False,
                          batch_size=images)
            self.warmup -= 1
            if self.warmup < 0:
                self.rates.append(rate)
        self._last = now

    def on_validation_end(self, trainer: Trainer, pl_module: Any) -> None:
        self._last = None

    def on_train_end(self, trainer: Trainer, pl_module: Any) -> None:
        if self.rates and trainer.is_global_zero:
            print(f'training throughput: {statistics.median(self.rates):.2f} images/s '
                  f'(median of {len(self.rates)} steps, {trainer.world_size} process(es))')


class RunConfigCallback(SaveConfigCallback):
    """Saves the resolved config beside the checkpoints too (log dir: Lightning's default)."""

    def save_config(self, trainer: Trainer, pl_module: Any, stage: str) -> None:
        directory = checkpoint_dir(trainer.default_root_dir)
        directory.mkdir(parents=True, exist_ok=True)
        self.parser.save(self.config, str(directory / CONFIG_NAME), skip_none=False,
                         overwrite=True, multifile=False)


class TrainingCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, 'checkpoint')
        parser.set_defaults({
            'checkpoint.save_last': True,
            'checkpoint.every_n_train_steps': CHECKPOINT_EVERY_N_STEPS,
            'checkpoint.save_top_k': 1,  # no monitor: keep the newest periodic one
            'checkpoint.filename': 'step{step:07d}',
            'checkpoint.auto_insert_metric_name': False,
        })
        parser.add_lightning_class_args(ModelCheckpoint, 'best_checkpoint')
        parser.set_defaults({
            'best_checkpoint.monitor': MONITOR, 'best_checkpoint.mode': 'min',
            'best_checkpoint.save_top_k': 1, 'best_checkpoint.filename': 'best',
            'best_checkpoint.enable_version_counter': False,
        })
        parser.add_lightning_class_args(ImagesPerSecond, 'throughput')
        for key in ('checkpoint', 'best_checkpoint'):
            parser.link_arguments('trainer.default_root_dir', f'{key}.dirpath',
                                  compute_fn=lambda root: str(checkpoint_dir(root or DEFAULT_ROOT)))

    def fit(self, model: Any, datamodule: Any = None, ckpt_path: str | None = None,
            **kwargs: Any) -> None:
        """``Trainer.fit``, except that resuming a run already at ``trainer.max_steps``
        returns at once: there is nothing to train, and a checkpoint written before a
        change to the optimizer's parameter groups would not even load."""
        path = last_checkpoint(self.trainer.default_root_dir) if ckpt_path == 'last' \
            else ckpt_path
        steps = self.trainer.max_steps
        if path and steps > 0 and load_checkpoint(path, mmap=True)['global_step'] >= steps:
            print(f'{path}: already at max_steps {steps}; nothing to train', file=sys.stderr)
            return
        self.trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, **kwargs)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer_config = self._get(self.config_init, 'trainer', default={})
        root = trainer_config.get('default_root_dir') or DEFAULT_ROOT
        if trainer_config.get('logger') in (None, True):
            # The CSV log is written out every logging interval, so a killed run's
            # log reaches (nearly) the step it died at.
            every = trainer_config.get('log_every_n_steps') or CSV_FLUSH_STEPS
            kwargs['logger'] = [TensorBoardLogger(root, name='tensorboard'),
                                CSVLogger(root, name='csv', flush_logs_every_n_steps=every)]
        plugins = trainer_config.get('plugins') or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            kwargs['plugins'] = [*plugins, AtomicCheckpointIO()]
        return super().instantiate_trainer(**kwargs)

    def after_instantiate_classes(self) -> None:
        # The resolved config, as plain YAML types, goes into every checkpoint.
        parser = self._parser(self.subcommand)
        config = self.config.get(str(self.subcommand), self.config)
        sources = config.get('config') or []
        recipe = Path(str(sources[-1])).stem if sources else self.model.hparams['net']
        self.model.run_config = {'recipe': recipe,
                                 **yaml.safe_load(parser.dump(config, skip_none=False))}


def translate_resume(argv: list[str]) -> list[str]:
    """``--resume`` -> ``--ckpt_path last``; ``--resume PATH`` -> ``--ckpt_path PATH``."""
    result: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == RESUME_FLAG:
            following = argv[index + 1] if index + 1 < len(argv) else ''
            if following and not following.startswith('-'):
                if not Path(following).is_file():
                    raise SystemExit(f'--resume {following}: no such checkpoint file')
                result += ['--ckpt_path', following]
                index += 2
                continue
            result += ['--ckpt_path', 'last']
        elif arg.startswith(RESUME_FLAG + '='):
            result += ['--ckpt_path', arg.split('=', 1)[1]]
        else:
            result.append(arg)
        index += 1
    return result


def make_cli(argv: list[str]) -> TrainingCLI:
    # `python -m training` passes its own argv on; LightningCLI would warn that
    # sys.argv holds arguments too.
    warnings.filterwarnings('ignore', message="LightningCLI's args parameter")
    return TrainingCLI(
        MultiTaskModule, MultiTaskDataModule, args=translate_resume(argv),
        save_config_callback=RunConfigCallback, save_config_kwargs={'overwrite': True},
        parser_kwargs={'parser_mode': 'yaml'}, auto_configure_optimizers=False,
        trainer_defaults={'default_root_dir': DEFAULT_ROOT})


def fit_main(argv: list[str]) -> int:
    """``python -m training fit ARGUMENTS``."""
    make_cli(['fit', *argv])
    return 0


def validate_main(argv: list[str]) -> int:
    """``python -m training validate ARGUMENTS``."""
    make_cli(['validate', *argv])
    return 0
