"""Two models on the same frames, frame by frame: is the difference more than noise?

``python -m training compare-frames BEFORE AFTER [--metric abs_rel] [--json FILE]``

BEFORE and AFTER are ``real-check`` output folders of the same frames (each set's
``frames.csv``: one row per frame, written by ``mtdepth-eval``). For every set both
hold, and for the real sets pooled (``all real``, per-image as real-check pools them),
it pairs the frames by index and gives the two means, their difference (AFTER -
BEFORE), how many frames got better, worse or stayed equal, the exact two-sided sign
test's p (ties left out), and a paired bootstrap 95 % interval of the mean difference
(the frames resampled with replacement, ``--resamples`` times, seeded: the same
folders always give the same interval).

Twelve real frames are few: a model that reads them 0.002 AbsRel better may have
gained nothing. An interval that holds 0 says the frames do not tell the two apart;
it never says they are equal. Nothing here chooses a model (the bundling rule reads
generated frames only, ``python -m training rule``): it says how far the real frames'
figures can be trusted.

Folders whose ``summary.json`` name other real frames' folders (``--frames``), or a set
whose scored frames differ between the two (a frame scored in one and not the other),
are refused with the reason: pairing other frames would compare nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mtdepth_ros.evaluation.report import FRAMES_CSV
from training.real_check import ALL_REAL, REAL_SETS
HIGHER_IS_BETTER = frozenset({'d1', 'd2', 'd3', 'miou', 'pixel_accuracy'})
INTERVAL = (2.5, 97.5)  # percentiles of the bootstrap means: a 95 % interval


class CompareInputError(ValueError):
    """Folders that cannot be compared; the text says which and why."""


@dataclass(frozen=True)
class Comparison:
    """One set's frames under two models, paired."""

    name: str
    frames: int
    before: float  # mean of the metric over the frames
    after: float
    difference: float  # after - before
    interval: tuple[float, float]  # bootstrap 95 % interval of the difference
    better: int  # frames where AFTER is better
    worse: int
    equal: int
    sign_p: float  # exact two-sided sign test, ties left out

    @property
    def shown(self) -> bool:
        """True when the interval excludes 0: the frames tell the two apart."""
        low, high = self.interval
        return low > 0 or high < 0


def read_frames(path: Path, metric: str) -> dict[int, float]:
    """``metric`` of each scored frame of a ``frames.csv``, by frame index."""
    try:
        with open(path, newline='') as stream:
            rows = list(csv.DictReader(stream))
    except OSError as error:
        raise CompareInputError(f'{path}: {error.strerror or error}') from error
    if rows and metric not in rows[0]:
        raise CompareInputError(f'{path}: no column {metric!r} (columns: {", ".join(rows[0])})')
    values = {}
    for row in rows:
        if row.get('status') != 'scored' or row[metric] == '':
            continue
        value = float(row[metric])
        if math.isfinite(value):
            values[int(row['index'])] = value
    return values


def set_names(folder: Path) -> list[str]:
    """The sets of a real-check folder: its subfolders that hold a ``frames.csv``."""
    if not folder.is_dir():
        raise CompareInputError(f'{folder}: not a folder (a real-check --out folder)')
    return sorted(p.parent.name for p in folder.glob(f'*/{FRAMES_CSV}'))


def paired(before: dict[int, float], after: dict[int, float],
           name: str) -> tuple[np.ndarray, np.ndarray]:
    if before.keys() != after.keys():
        only_before = sorted(before.keys() - after.keys())
        only_after = sorted(after.keys() - before.keys())
        raise CompareInputError(
            f'set {name!r}: the two folders scored other frames (only before: '
            f'{only_before or "none"}; only after: {only_after or "none"})')
    indices = sorted(before)
    return (np.array([before[i] for i in indices], dtype=np.float64),
            np.array([after[i] for i in indices], dtype=np.float64))


def sign_test(better: int, worse: int) -> float:
    """Exact two-sided p of ``better`` against ``worse`` under a fair coin."""
    n = better + worse
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(better, worse) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def compare(name: str, before: np.ndarray, after: np.ndarray, metric: str,
            resamples: int, seed: int) -> Comparison:
    if len(before) == 0:
        raise CompareInputError(f'set {name!r}: no frame scored in either folder')
    difference = after - before
    gain = -difference if metric not in HIGHER_IS_BETTER else difference
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(difference), size=(resamples, len(difference)))
    low, high = np.percentile(difference[draws].mean(axis=1), INTERVAL)
    better, worse = int((gain > 0).sum()), int((gain < 0).sum())
    return Comparison(name, len(before), float(before.mean()), float(after.mean()),
                      float(difference.mean()), (float(low), float(high)),
                      better, worse, len(gain) - better - worse, sign_test(better, worse))


def frames_read(folder: Path) -> str | None:
    """The real frames' folders a real-check folder's ``summary.json`` names, if it has one."""
    try:
        frames = json.loads((folder / 'summary.json').read_text()).get('frames')
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return frames if isinstance(frames, str) else None


def compare_folders(before: Path, after: Path, metric: str = 'abs_rel',
                    resamples: int = 10000, seed: int = 0) -> list[Comparison]:
    """Every set both folders hold, then the real sets pooled (when there are two)."""
    in_after = set(set_names(after))
    names = [n for n in set_names(before) if n in in_after]
    read_before, read_after = frames_read(before), frames_read(after)
    if read_before is not None and read_after is not None and read_before != read_after:
        raise CompareInputError(f'{before} read the frames of {read_before!r}, {after} those '
                                f'of {read_after!r}: frame i is not the same frame in both')
    if not names:
        raise CompareInputError(f'{before} and {after} hold no set in common '
                                f'(each set is a subfolder with a {FRAMES_CSV})')
    pairs = {n: paired(read_frames(before / n / FRAMES_CSV, metric),
                       read_frames(after / n / FRAMES_CSV, metric), n) for n in names}
    real = [n for n in REAL_SETS if n in pairs]
    if len(real) > 1:
        pairs[ALL_REAL] = (np.concatenate([pairs[n][0] for n in real]),
                         np.concatenate([pairs[n][1] for n in real]))
    return [compare(n, b, a, metric, resamples, seed) for n, (b, a) in pairs.items()]


def table(comparisons: Sequence[Comparison], metric: str) -> list[str]:
    direction = 'higher' if metric in HIGHER_IS_BETTER else 'lower'
    lines = [f'{metric} ({direction} is better); after - before, paired by frame',
             '| set | frames | before | after | after - before | 95 % interval '
             '| better / worse / equal | sign test p |',
             '|---|---|---|---|---|---|---|---|']
    for c in comparisons:
        lines.append(f'| {c.name} | {c.frames} | {c.before:.4f} | {c.after:.4f} '
                     f'| {c.difference:+.4f} | [{c.interval[0]:+.4f}, {c.interval[1]:+.4f}] '
                     f'| {c.better} / {c.worse} / {c.equal} | {c.sign_p:.3g} |')
    for c in comparisons:
        verdict = ('the frames tell the two apart' if c.shown else
                   'the interval holds 0: the frames do not tell the two apart')
        lines.append(f'{c.name}: {verdict}')
    return lines


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m training compare-frames',
                                description=__doc__.split('\n\n')[0])
    p.add_argument('before', type=Path, help='real-check --out folder of the first model')
    p.add_argument('after', type=Path, help='real-check --out folder of the second, same frames')
    p.add_argument('--metric', default='abs_rel',
                   help="a per-frame column of frames.csv (default abs_rel; 'silog', 'd1', ...)")
    p.add_argument('--resamples', type=int, default=10000, help='bootstrap resamples')
    p.add_argument('--seed', type=int, default=0, help="the bootstrap's random seed")
    p.add_argument('--json', type=Path, help='also write the comparisons here')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.resamples < 1:
        print('compare-frames: --resamples must be at least 1', file=sys.stderr)
        return 2
    try:
        comparisons = compare_folders(args.before, args.after, args.metric,
                                      args.resamples, args.seed)
    except CompareInputError as error:
        print(f'compare-frames: {error}', file=sys.stderr)
        return 1
    print('\n'.join(table(comparisons, args.metric)))
    if args.json:
        args.json.write_text(json.dumps(
            {'metric': args.metric, 'before': str(args.before), 'after': str(args.after),
             'sets': [asdict(c) | {'shown': c.shown} for c in comparisons]}, indent=2) + '\n')
    return 0
