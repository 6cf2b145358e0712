"""The bundling rule: does a candidate replace ``models/mtdepth_default.onnx``?

``python -m training rule CANDIDATE BUNDLED [--json FILE]``
``python -m training rule --seeds FILE FILE [FILE ...]``
``python -m training rule --trees FILE [FILE ...]``

CANDIDATE and BUNDLED are ``real-check --kitti TREE --split sound_files.txt
--textured`` output folders (or their ``summary.json``): the two models on the
189 sound generated validation frames, as rendered and with texture-probe's
fixed pattern. The candidate wins only if both means of the two readings, AbsRel
and SILog, are lower than the bundled model's (docs/training.md, "The rule
reads the frames twice"). ``--json`` writes the verdict; ``--seeds`` reads such
verdicts, one per seed of a recipe, and says whether every one of at least two
won: a recipe is believed on two seeds, since two runs of one recipe differ by
as much as the rule's margins (docs/training.md, "The texture recipe's fourth
start"). ``--trees`` reads the verdicts of one candidate that no seed repeats (a
mean of every seed's model) on each tree, and says whether it won on every one.
The verdict is printed; the exit status is 0 whatever it says (1 for
unreadable input), so a script goes on to score the real frames either way.

The real frames never enter it: they measure, they choose nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

JUDGED = ('abs_rel', 'silog')  # both must be lower
MEAN_KEY = 'kitti_mean'  # real-check's mean of the as-rendered and textured readings
MIN_SEEDS = 2


class RuleInputError(ValueError):
    """A summary the rule cannot read; the text says which and why."""


@dataclass(frozen=True)
class Verdict:
    candidate: dict[str, float]  # the judged means
    bundled: dict[str, float]
    wins: bool

    def lines(self) -> list[str]:
        rows = [f'{who}: mean AbsRel {means["abs_rel"]:.4f}, mean SILog {means["silog"]:.2f}'
                for who, means in (('candidate', self.candidate), ('bundled', self.bundled))]
        return rows + ['the rule: ' + ('bundle it (both means lower)' if self.wins
                                       else 'not bundled')]


def read_means(path: Path) -> dict[str, float]:
    """The judged means of a real-check output folder or its summary.json."""
    summary_path = path / 'summary.json' if path.is_dir() else path
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RuleInputError(f'{summary_path}: not a real-check summary ({error})') from error
    means = summary.get(MEAN_KEY)
    if means is None:
        raise RuleInputError(f'{summary_path}: no {MEAN_KEY!r}: the rule reads the frames '
                             'twice, score them with real-check --kitti TREE --textured')
    if summary.get('blur_sigma_px'):
        raise RuleInputError(f'{summary_path}: scored on blurred frames (a diagnosis)')
    missing = [key for key in JUDGED if key not in means]
    if missing:
        raise RuleInputError(f'{summary_path}: {MEAN_KEY} lacks {", ".join(missing)}')
    return {key: float(means[key]) for key in JUDGED}


def judge(candidate: dict[str, float], bundled: dict[str, float]) -> Verdict:
    """Both judged means strictly lower: a tie keeps the bundled model."""
    return Verdict(candidate, bundled, all(candidate[k] < bundled[k] for k in JUDGED))


def read_verdicts(verdict_files: Sequence[Path]) -> tuple[list[bool], list[str]]:
    """Whether each verdict (``--json`` file) won; a line for each."""
    lines, wins = [], []
    for path in verdict_files:
        try:
            won = bool(json.loads(path.read_text())['wins'])
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise RuleInputError(f'{path}: not a verdict of the rule ({error})') from error
        wins.append(won)
        lines.append(f'{path}: {"wins" if won else "does not win"}')
    return wins, lines


def every_tree_wins(verdict_files: Sequence[Path]) -> tuple[bool, list[str]]:
    """Whether one candidate's verdicts, one per tree, all won; the lines that say so."""
    wins, lines = read_verdicts(verdict_files)
    believed = bool(wins) and all(wins)
    lines.append('every tree: ' + ('bundle this model' if believed else 'not bundled'))
    return believed, lines


def every_seed_wins(verdict_files: Sequence[Path]) -> tuple[bool, list[str]]:
    """Whether at least :data:`MIN_SEEDS` verdicts (``--json`` files) all won; the lines
    that say so."""
    wins, lines = read_verdicts(verdict_files)
    enough = len(wins) >= MIN_SEEDS
    believed = enough and all(wins)
    reason = ('' if enough else f' (the rule asks for {MIN_SEEDS} seeds, '
              f'{len(wins)} given)')
    lines.append('every seed: ' + ('bundle the first seed\'s model' if believed
                                   else 'not bundled') + reason)
    return believed, lines


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog='python -m training rule',
        description='the bundling rule: a candidate against the bundled model on the '
                    'generated validation frames (real-check --textured summaries)')
    result.add_argument('candidate', type=Path, nargs='?', help='real-check output folder')
    result.add_argument('bundled', type=Path, nargs='?', help='real-check output folder')
    result.add_argument('--json', type=Path, help='write the verdict here')
    result.add_argument('--seeds', type=Path, nargs='+', metavar='FILE',
                        help='verdicts (--json files) of one recipe\'s seeds: every one must win')
    result.add_argument('--trees', type=Path, nargs='+', metavar='FILE',
                        help='verdicts of one candidate made from every seed, one per tree: '
                             'every one must win')
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    pair = args.candidate is not None and args.bundled is not None
    lists = bool(args.seeds) + bool(args.trees)
    if pair + lists != 1 or (lists and args.json):
        print('rule: give CANDIDATE BUNDLED [--json FILE], --seeds FILE..., or --trees FILE...',
              file=sys.stderr)
        return 2
    try:
        if lists:
            check = every_seed_wins if args.seeds else every_tree_wins
            print('\n'.join(check(args.seeds or args.trees)[1]))
            return 0
        verdict = judge(read_means(args.candidate), read_means(args.bundled))
    except RuleInputError as error:
        print(f'rule: {error}', file=sys.stderr)
        return 1
    print('\n'.join(verdict.lines()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(verdict), indent=1) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
