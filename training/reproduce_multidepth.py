"""The shape of MultiDepth's Table 1 at CPU scale: does interval classification help regression?

    python -m training.reproduce_multidepth [--data DIR] [--steps N] [--out DIR]

On generated KITTI-format scenes (made with ``python -m training synth`` if
``--data`` does not exist yet), trains the CPU-sized MultiDepth of
``training/configs/multidepth_synth.yaml`` four times with the same seed,
data and number of steps:

1. regression alone (depth head only),
2. regression + interval classification, equal weights (1 : 1),
3. regression + intervals, fixed weights (1 : 0.1, ours: both terms start at
   similar size, MSE ~0.3 vs cross-entropy ~3.5),
4. regression + intervals, learned uncertainty weights (the authors' code form),

and prints the validation SILog (full validation frames, the project's
metrics) of each, as a Markdown table, with a constant prediction for
reference (its SILog is the spread of the ground truth's log depth: any
constant scores the same). Each run is an ordinary ``python -m training fit``
whose directory is under ``--out``.
"""

from __future__ import annotations

import os

# As `python -m training` does: passive OpenMP threads on a shared CPU (set before torch loads).
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import argparse  # noqa: E402
import csv
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from mtdepth_ros.evaluation.metrics import DepthAccumulator
from training import cli
from training.data.kitti import KittiDataset
from training.data.synth.cli import main as synth_main

RECIPE = Path(__file__).parent / 'configs' / 'multidepth_synth.yaml'
DEFAULT_DATA = Path('data/synth_kitti_small')
DEFAULT_OUT = Path('runs/reproduce_multidepth')
FRAMES, WIDTH, HEIGHT = 300, 416, 128  # 6 drives of 50: 4 train, 1 test, 1 validation
DEFAULT_STEPS = 1000  # about 40 minutes for the four runs on 2 shared CPU cores
VALIDATIONS = 4  # validations per run, evenly spaced
FIXED_WEIGHTS = {'depth': 1.0, 'intervals': 0.1}
REPORTED = ('silog', 'abs_rel', 'rmse', 'd1', 'interval_accuracy')


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    overrides: tuple[str, ...]


VARIANTS = (
    Variant('regression', 'regression only',
            ('--model.net_args.tasks', '[depth]', '--model.loss.heads', '[depth]',
             '--model.loss.weighting', 'equal')),
    Variant('equal', 'regression + intervals, equal weights',
            ('--model.loss.weighting', 'equal')),
    Variant('fixed', 'regression + intervals, fixed weights 1 : 0.1',
            ('--model.loss.weighting', 'fixed', '--model.loss.weights',
             '{depth: %s, intervals: %s}' % (FIXED_WEIGHTS['depth'], FIXED_WEIGHTS['intervals']))),
    Variant('learned', 'regression + intervals, learned (uncertainty) weights',
            ('--model.loss.weighting', 'uncertainty')),
)


def ensure_data(root: Path, seed: int) -> None:
    if (root / 'splits' / 'val_files.txt').is_file():
        return
    print(f'generating {FRAMES} KITTI-format frames into {root} ...', flush=True)
    code = synth_main(['synth', '--format', 'kitti', '--out', str(root), '--frames', str(FRAMES),
                       '--width', str(WIDTH), '--height', str(HEIGHT), '--seed', str(seed)])
    if code:
        raise SystemExit(f'synth failed with exit code {code}')


def run_variant(variant: Variant, data: Path, out: Path, steps: int, seed: int) -> Path:
    run_dir = out / variant.name
    if run_dir.exists():  # a fresh run: same steps and seed for every variant
        shutil.rmtree(run_dir)
    interval = max(steps // VALIDATIONS, 1)
    argv = ['fit', '--config', str(RECIPE), '--seed_everything', str(seed),
            '--data.root', str(data), '--trainer.default_root_dir', str(run_dir),
            '--trainer.max_steps', str(steps), '--trainer.val_check_interval', str(interval),
            '--checkpoint.every_n_train_steps', str(interval),
            '--trainer.enable_progress_bar', 'false', *variant.overrides]
    print(f'\n== {variant.name}: {variant.description}\n   python -m training '
          + ' '.join(argv), flush=True)
    if cli.main(argv) != 0:
        raise SystemExit(f'variant {variant.name} failed')
    return run_dir


def validations(run_dir: Path) -> list[dict[str, float]]:
    """Every validation of the run's latest CSV log, in step order."""
    logs = sorted((run_dir / 'csv').glob('version_*/metrics.csv'),
                  key=lambda p: int(p.parent.name.split('_')[1]))
    rows = []
    with open(logs[-1]) as stream:
        for row in csv.DictReader(stream):
            if row.get('val/silog'):
                rows.append({'step': float(row['step']),
                             **{k: float(row[f'val/{k}']) if row.get(f'val/{k}') else math.nan
                                for k in REPORTED}})
    return rows


def constant_baseline(data: Path) -> dict[str, float]:
    """Validation metrics of the best constant in log space (the ground truth's geometric mean)."""
    recipe = yaml.safe_load(RECIPE.read_text())
    low, high = recipe['model']['val_depth_range']
    frames = KittiDataset(data, split=recipe['data']['val_split'], **recipe['data']['val_args'])
    depths = [frames[i]['depth'][0].numpy() for i in range(len(frames))]
    masks = [(d > low) & (d <= high) for d in depths]
    constant = float(np.exp(np.mean(np.concatenate([np.log(d[m]) for d, m in zip(depths, masks)]))))
    accumulator = DepthAccumulator()
    for depth, mask in zip(depths, masks):
        accumulator.update(np.full_like(depth, constant), depth, mask)
    return accumulator.result('image')['all']


def table(results: dict[str, list[dict[str, float]]], constant: dict[str, float]) -> str:
    lines = ['| variant | SILog (final) | SILog (best) | AbsRel | RMSE (m) | d1 | interval acc. |',
             '|---|---|---|---|---|---|---|',
             f"| constant depth (reference) | {constant['silog']:.2f} | - | "
             f"{constant['abs_rel']:.3f} | {constant['rmse']:.2f} | {constant['d1']:.3f} | - |"]
    for variant in VARIANTS:
        rows = results[variant.name]
        final = rows[-1]
        best = min(r['silog'] for r in rows)
        interval = '-' if math.isnan(final['interval_accuracy']) else \
            f"{final['interval_accuracy']:.3f}"
        lines.append(f"| {variant.description} | {final['silog']:.2f} | {best:.2f} | "
                     f"{final['abs_rel']:.3f} | {final['rmse']:.2f} | {final['d1']:.3f} | "
                     f'{interval} |')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', type=Path, default=DEFAULT_DATA,
                        help='generated KITTI tree (made if missing)')
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT, help='run directories')
    parser.add_argument('--steps', type=int, default=DEFAULT_STEPS, help='training steps per run')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--only', nargs='+', choices=[v.name for v in VARIANTS],
                        help='run only these variants (the table reads the others from --out)')
    parser.add_argument('--report', action='store_true',
                        help='train nothing: print the table of the runs under --out')
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    ensure_data(args.data, args.seed)
    for variant in VARIANTS:
        if not args.report and (not args.only or variant.name in args.only):
            run_variant(variant, args.data, args.out, args.steps, args.seed)
    results = {v.name: validations(args.out / v.name) for v in VARIANTS}
    print(f'\nMultiDepth Table 1 shape, {args.steps} steps, seed {args.seed}, '
          f'validation on {args.data} (full frames):\n')
    print(table(results, constant_baseline(args.data)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
