"""Paper claims at CPU scale on generated scenes, several seeds per variant, resumable.

    python -m training.reproduce [STUDY ...] [--seeds 0 1 2] [--jobs 2]      # run / resume
    python -m training.reproduce [STUDY ...] --report                        # the tables

Studies (``STUDIES``):

- ``multidepth``: MultiDepth's Table 1 (Liebel & Koerner): regression alone vs
  regression + interval classification with learned uncertainty weighting;
  then equal and fixed (1 : 0.1) weights, queued after every seed of the first
  two. CPU-sized MultiDepth of ``multidepth_synth.yaml`` on generated
  KITTI-format road scenes.
- ``semantic_booster``: Jiao et al.'s main claim: depth trained with the
  semantic branch supervised (focal loss on 40 classes) vs the same network
  with the depth loss alone (its semantic branch then learns only what the
  lateral sharing units pass back from the depth loss). CPU-sized network of
  ``semantic_booster_synth.yaml`` on generated NYU-format rooms.

Every run is an ordinary ``python -m training fit`` in its own process
(``<out>/<study>/<variant>/seed<N>``), the same number of steps for every
variant. A run that was interrupted resumes from its ``last.ckpt``; a finished
one (``finished.json``) is skipped, so the same command picks up whatever is
unfinished. Two invocations may run side by side: each run is claimed by a
lock file that holds its process id.

``--report`` trains nothing. For each variant it scores every finished run's
final checkpoint (no selection on any split) on the study's test split with
the protocol code of ``python -m training test``, prints mean +- standard
deviation over seeds beside the constant predictor (the training set's
geometric mean depth, scored the same way), the validation curve (mean SILog
per validation step, to see whether it is flat) and a verdict: the paper's
direction holds beyond the noise when Welch's t-test over the seeds gives
p < 0.05.
"""

from __future__ import annotations

import os

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')  # as `python -m training` does

import argparse  # noqa: E402
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from training.checkpoints import LAST, checkpoint_dir
from training.data.synth.cli import main as synth_main

CONFIGS = Path(__file__).parent / 'configs'
DEFAULT_OUT = Path('runs/reproduce')
DEFAULT_SEEDS = (0, 1, 2)
VALIDATIONS = 6  # per run, evenly spaced
FINISHED = 'finished.json'
LOCK = 'running.pid'
FIXED_WEIGHTS = '{depth: 1.0, intervals: 0.1}'


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    overrides: tuple[str, ...] = ()
    queued_last: bool = False  # "if time allows": after every seed of the others


@dataclass(frozen=True)
class Study:
    name: str
    claim: str
    recipe: Path
    data: Path
    synth: tuple[str, ...]  # `python -m training synth` arguments that make `data`
    steps: int
    protocol: str  # the `training test` protocol of the report
    baseline: str  # the variant the paper improves on
    variants: tuple[Variant, ...]


STUDIES = {study.name: study for study in (
    Study('multidepth', 'interval classification with learned uncertainty weighting improves '
          'depth regression (MultiDepth, Table 1)',
          CONFIGS / 'multidepth_synth.yaml', Path('data/synth_kitti_small'),
          ('--format', 'kitti', '--frames', '300', '--width', '416', '--height', '128'),
          steps=1000, protocol='kitti_eigen', baseline='regression',
          variants=(
              Variant('regression', 'regression only',
                      ('--model.net_args.tasks', '[depth]', '--model.loss.heads', '[depth]',
                       '--model.loss.weighting', 'equal')),
              Variant('learned', 'regression + intervals, learned (uncertainty) weights',
                      ('--model.loss.weighting', 'uncertainty')),
              Variant('equal', 'regression + intervals, equal weights',
                      ('--model.loss.weighting', 'equal'), queued_last=True),
              Variant('fixed', 'regression + intervals, fixed weights 1 : 0.1',
                      ('--model.loss.weighting', 'fixed', '--model.loss.weights', FIXED_WEIGHTS),
                      queued_last=True))),
    Study('semantic_booster', 'supervising the semantic branch improves depth (Jiao et al.)',
          CONFIGS / 'semantic_booster_synth.yaml', Path('data/synth_nyu_small'),
          ('--format', 'nyu', '--frames', '600', '--width', '320', '--height', '240'),
          steps=800, protocol='nyu_eigen', baseline='depth_only',
          variants=(
              Variant('depth_only', 'depth loss only (semantic branch unsupervised)',
                      ('--model.loss.heads', '[depth]')),
              Variant('with_semantics', 'depth + semantic loss (the paper)'))),
)}


@dataclass(frozen=True)
class Run:
    study: Study
    variant: Variant
    seed: int
    directory: Path

    @property
    def finished(self) -> bool:
        return (self.directory / FINISHED).is_file()

    def argv(self) -> list[str]:
        steps = self.study.steps
        interval = max(steps // VALIDATIONS, 1)
        argv = ['fit', '--config', str(self.study.recipe), '--seed_everything', str(self.seed),
                '--data.root', str(self.study.data),
                '--trainer.default_root_dir', str(self.directory),
                '--trainer.max_steps', str(steps), '--trainer.val_check_interval', str(interval),
                '--checkpoint.every_n_train_steps', str(interval),
                '--trainer.enable_progress_bar', 'false', *self.variant.overrides]
        if (checkpoint_dir(self.directory) / LAST).is_file():
            argv.append('--resume')
        return argv


def plan(studies: list[Study], seeds: list[int], out: Path) -> list[Run]:
    """Every run, in the order they are started: study by study (every seed of one study's
    main variants before the next study), the 'if time allows' variants last."""
    def runs(last: bool) -> list[Run]:
        return [Run(study, variant, seed, out / study.name / variant.name / f'seed{seed}')
                for study in studies for seed in seeds for variant in study.variants
                if variant.queued_last == last]
    return runs(False) + runs(True)


def ensure_data(study: Study) -> None:
    if study.data.exists():
        return
    print(f'generating {study.data} ...', flush=True)
    if synth_main([*study.synth, '--out', str(study.data), '--seed', '0']):
        raise SystemExit(f'synth for {study.name} failed')


def claim(run: Run) -> bool:
    """Take the run's lock (its process id in a file); False when a live process holds it."""
    run.directory.mkdir(parents=True, exist_ok=True)
    lock = run.directory / LOCK
    for _ in range(2):
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if _alive(lock):
                return False
            lock.unlink(missing_ok=True)  # left by a killed process
            continue
        with os.fdopen(descriptor, 'w') as stream:
            stream.write(str(os.getpid()))
        return True
    return False


def _alive(lock: Path) -> bool:
    try:
        os.kill(int(lock.read_text() or '0'), 0)
    except (ValueError, ProcessLookupError, FileNotFoundError):
        return False
    except PermissionError:
        return True
    return True


def execute(run: Run) -> str:
    if run.finished or not claim(run):
        return f'{run.directory}: skipped (finished or running elsewhere)'
    try:
        argv = run.argv()
        log = run.directory / 'train.log'
        print(f'start {run.directory}: python -m training {" ".join(argv)}', flush=True)
        env = {**os.environ, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1')}
        with open(log, 'a') as stream:
            code = subprocess.call([sys.executable, '-m', 'training', *argv], stdout=stream,
                                   stderr=subprocess.STDOUT, env=env)
        if code != 0:
            return f'{run.directory}: exit code {code} (see {log}; run again to resume)'
        (run.directory / FINISHED).write_text(json.dumps({'steps': run.study.steps,
                                                          'argv': argv}) + '\n')
        return f'{run.directory}: finished'
    finally:
        (run.directory / LOCK).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('studies', nargs='*', metavar='STUDY',
                        help=f'studies to run or report (default: all of {list(STUDIES)})')
    parser.add_argument('--seeds', type=int, nargs='+', default=list(DEFAULT_SEEDS))
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT, help='run directories')
    parser.add_argument('--jobs', type=int, default=1, help='runs trained side by side')
    parser.add_argument('--report', action='store_true',
                        help='train nothing: print the tables of the finished runs')
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    unknown = sorted(set(args.studies) - set(STUDIES))
    if unknown:
        parser.error(f'unknown studies {unknown}: choose from {list(STUDIES)}')
    studies = [STUDIES[name] for name in (args.studies or STUDIES)]
    runs = plan(studies, args.seeds, args.out)
    if args.report:
        from training.reproduce_report import report
        print(report(studies, runs))
        return 0
    for study in studies:
        ensure_data(study)
    with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        for message in pool.map(execute, runs):
            print(message, flush=True)
    unfinished = [run for run in runs if not run.finished]
    print(f'{len(runs) - len(unfinished)} of {len(runs)} runs finished')
    return 1 if unfinished else 0


if __name__ == '__main__':
    sys.exit(main())
