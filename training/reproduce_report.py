"""The tables of ``python -m training.reproduce --report``: mean +- std over seeds, the constant
predictor, the validation curve and a verdict per study."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import yaml
from scipy import stats

from mtdepth_ros.evaluation.protocols import get_protocol
from mtdepth_ros.evaluation.scoring import Scorer
from training.benchmark import DatasetFrames, run_test, scored_dataset
from training.checkpoints import LAST, checkpoint_dir

if TYPE_CHECKING:
    from training.reproduce import Run, Study

METRICS = ('silog', 'abs_rel', 'rmse', 'd1')  # the table's columns; d1 higher is better
VERDICT_METRICS = ('silog', 'abs_rel')
SIGNIFICANCE = 0.05  # Welch's t-test, two-sided: a difference beyond the seed noise
TEST_DIR = 'test'
CONSTANT_FRAMES = 64  # training frames whose measured depth gives the constant


def test_metrics(run: Run) -> dict[str, float]:
    """The final checkpoint's test metrics (scored once, then read from its report)."""
    out = run.directory / TEST_DIR
    checkpoint = checkpoint_dir(run.directory) / LAST
    saved = out / 'metrics.json'
    if not saved.is_file() or saved.stat().st_mtime < checkpoint.stat().st_mtime:
        run_test(checkpoint, run.study.protocol, out, recipe=run.study.recipe, panels=2)
    headline: dict[str, float] = json.loads(saved.read_text())['depth']['per_image']['all']
    return headline


def validation_curve(run: Run) -> dict[int, float]:
    """Validation SILog per step over every CSV log of the run (a resumed run has several)."""
    curve: dict[int, float] = {}
    for log in sorted((run.directory / 'csv').glob('version_*/metrics.csv'),
                      key=lambda p: int(p.parent.name.split('_')[1])):
        with open(log) as stream:
            for row in csv.DictReader(stream):
                if row.get('val/silog'):
                    curve[int(row['step'])] = float(row['val/silog'])
    return curve


def constant_metrics(study: Study) -> tuple[dict[str, float], float]:
    """Test metrics of a constant depth (the training frames' geometric mean) and that depth."""
    data = dict(yaml.safe_load(study.recipe.read_text())['data'])
    train, _ = scored_dataset({**data, 'test_args': data.get('train_args')}, data['train_split'],
                              None, None)
    logs = []
    for index in np.linspace(0, len(train) - 1, min(CONSTANT_FRAMES, len(train))).astype(int):
        depth = train.read(int(index)).depth
        if depth is not None:
            logs.append(np.log(depth[np.isfinite(depth) & (depth > 0)]))
    constant = float(np.exp(np.concatenate(logs).mean()))
    protocol = get_protocol(study.protocol)
    test, name = scored_dataset(data, None, None, None)
    scorer = Scorer(protocol, (), plot_max_m=protocol.max_depth or 80.0)
    for frame in DatasetFrames(test, name):
        scorer.add(frame, np.full(frame.rgb.shape[:2], constant, np.float32), None)
    return scorer.depth_summary()['per_image']['all'], constant


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else math.nan


def verdict(study: Study, scores: dict[str, list[dict[str, float]]], metric: str) -> str:
    """Whether each variant beats the study's baseline on ``metric`` beyond the seed noise.

    Beyond the noise means Welch's two-sided t-test over the seeds gives
    p < :data:`SIGNIFICANCE`; how many seeds of the variant beat every seed of
    the baseline is printed too (with 3 against 3, all of them by chance has
    probability 1/20).
    """
    base = [s[metric] for s in scores.get(study.baseline, [])]
    lines = []
    for variant in study.variants:
        ours = [s[metric] for s in scores.get(variant.name, [])]
        if variant.name == study.baseline or len(ours) < 2 or len(base) < 2:
            continue
        (m_base, s_base), (m_ours, s_ours) = mean_std(base), mean_std(ours)
        gain = m_base - m_ours  # lower is better for SILog and AbsRel
        error = math.sqrt(s_base ** 2 / len(base) + s_ours ** 2 / len(ours))
        test = stats.ttest_ind(base, ours, equal_var=False)
        if test.pvalue < SIGNIFICANCE:
            said = ('better than the baseline beyond the noise: the paper\'s direction holds'
                    if gain > 0 else 'worse than the baseline beyond the noise: the opposite '
                    'of the paper\'s direction')
        else:
            said = 'not beyond the noise at this number of seeds: no verdict either way'
        beating = sum(value < min(base) for value in ours)
        lines.append(f'- {metric}: {variant.description}: {m_ours:.3f} vs {m_base:.3f} '
                     f'({len(ours)} and {len(base)} seeds), difference {gain:+.3f} +- {error:.3f} '
                     f'(standard error), Welch t {test.statistic:.2f}, df {test.df:.1f}, '
                     f'p {test.pvalue:.3f}; {beating} of {len(ours)} seeds better than every '
                     f'baseline seed: {said}')
    return '\n'.join(lines)


def study_table(study: Study, runs: list[Run]) -> str:
    ours = [run for run in runs if run.study is study]
    scores: dict[str, list[dict[str, float]]] = {}
    curves: dict[str, list[dict[int, float]]] = {}
    unfinished = [run for run in ours if not run.finished]
    for run in ours:
        if run.finished:
            scores.setdefault(run.variant.name, []).append(test_metrics(run))
            curves.setdefault(run.variant.name, []).append(validation_curve(run))
    constant, depth = constant_metrics(study)
    lines = [f'### {study.name}: {study.claim}', '',
             (f'{study.steps} steps per run, final checkpoint scored with `python -m training test '
              f'--protocol {study.protocol}` on the test split; mean +- standard deviation over '
              'seeds.'), '',
             '| variant | seeds | ' + ' | '.join(METRICS) + ' |',
             '|---|---|' + '---|' * len(METRICS),
             f'| constant {depth:.2f} m (training geometric mean) | - | '
             + ' | '.join(f'{constant[m]:.3f}' for m in METRICS) + ' |']
    for variant in study.variants:
        found = scores.get(variant.name, [])
        cells = []
        for metric in METRICS:
            mean, std = mean_std([s[metric] for s in found]) if found else (math.nan, math.nan)
            cells.append(f'{mean:.3f} +- {std:.3f}' if found else '-')
        lines.append(f'| {variant.description} | {len(found)} | ' + ' | '.join(cells) + ' |')
    lines += ['', 'Validation SILog (mean over seeds) per step:', '']
    for name, variant_curves in curves.items():
        steps = sorted(set.intersection(*(set(c) for c in variant_curves)))
        values = ', '.join(f'{step + 1}: {np.mean([c[step] for c in variant_curves]):.1f}'
                           for step in steps)
        lines.append(f'- {name}: {values}')
    lines += ['', 'Verdict:', '']
    lines += [verdict(study, scores, metric) or f'- {metric}: fewer than 2 seeds on a side'
              for metric in VERDICT_METRICS]
    if unfinished:
        lines += ['', f'Unfinished ({len(unfinished)}): '
                  + ', '.join(str(run.directory) for run in unfinished)]
    return '\n'.join(lines)


def report(studies: Sequence[Study], runs: list[Run]) -> str:
    return '\n\n'.join(study_table(study, runs) for study in studies)
