"""How far a model's depth moves when depth-free fine texture is laid on some classes.

``python -m training texture-probe --kitti ROOT --split FILE --model M.onnx
[--change texture|sharpen] [--json OUT]``

Each frame of a labelled KITTI raw tree (the generated validation tree) is
predicted twice: as rendered, and with the pixels of ``--classes`` (default
building, wall, fence, vegetation) multiplied by a fine pattern
(``1 + amplitude (2 n - 1)``, n a mix of uniform noise in cells of 1, 2 and 3
pixels: :func:`training.data.texture.cell_noise`), the same pattern for every
model (``--seed``). For every class with at least ``--min-pixels`` labelled
pixels of finite depth in both predictions, the frame's median log2 ratio
(textured / plain) is kept; the table gives, per class, the frames and the
median and mean of those per-frame medians. A model that reads depth from
geometry moves little; +0.32 for buildings is 1.25x farther. The classes left
plain are the control: their depth should not move. Generated frames only:
this measures a model, it chooses nothing.

``--change sharpen`` lays an unsharp mask instead of the pattern: the detail of
those classes' pixels (the image minus its Gaussian blur of 1 pixel) times
PROBE_DETAIL_GAIN (:mod:`training.data.sharpness`), the same for every model.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtdepth_ros.conversions.geometry import resize_depth_nearest
from mtdepth_ros.conversions.labels import IGNORE_INDEX
from mtdepth_ros.inference.predictor import Predictor
from training.data.base import RawSample
from training.data.kitti import KittiDataset
from training.data.sharpness import PROBE_DETAIL_GAIN, with_detail_gain
from training.data.texture import PROBE_AMPLITUDE, PROBE_CLASSES, probe_pattern

CHANGES = ('texture', 'sharpen')


@dataclass(frozen=True)
class ClassShift:
    """Per-frame median log2(textured / plain depth) of one class."""

    name: str
    textured: bool
    shifts: tuple[float, ...]

    def row(self) -> dict[str, object]:
        values = np.asarray(self.shifts)
        return {'class': self.name, 'textured': self.textured, 'frames': len(values),
                'median_log2': float(np.median(values)), 'mean_log2': float(values.mean())}


def changed(image: np.ndarray, region: np.ndarray, change: str, amplitude: float,
            rng: np.random.Generator) -> np.ndarray:
    """``image`` with the probe's ``change`` laid on the pixels of ``region`` (H, W) bool."""
    if change == 'sharpen':
        return with_detail_gain(image, np.where(region, np.float32(PROBE_DETAIL_GAIN),
                                                np.float32(1.0)))
    if change != 'texture':
        raise ValueError(f'change must be one of {CHANGES}, got {change!r}')
    return probe_pattern(image, region, amplitude, rng)


def texture_shifts(predictor: Predictor, samples: Iterable[RawSample], names: Sequence[str],
                   textured_ids: Sequence[int], amplitude: float = PROBE_AMPLITUDE, seed: int = 0,
                   min_pixels: int = 50, change: str = 'texture') -> list[ClassShift]:
    """Every class's per-frame depth shifts (:class:`ClassShift`), changed classes first."""
    rng = np.random.default_rng(seed)
    shifts: dict[int, list[float]] = {}
    for sample in samples:
        if sample.labels is None:
            raise ValueError('texture-probe needs labelled frames (a generated tree)')
        shape = sample.labels.shape
        probed = changed(sample.image, np.isin(sample.labels, textured_ids), change, amplitude,
                         rng)
        plain, textured = (resize_depth_nearest(predictor.predict(image).depth, shape)
                           for image in (sample.image, probed))
        both = np.isfinite(plain) & np.isfinite(textured) & (plain > 0) & (textured > 0)
        for class_id in np.unique(sample.labels):
            pixels = both & (sample.labels == class_id)
            if class_id != IGNORE_INDEX and pixels.sum() >= min_pixels:
                ratio = np.log2(textured[pixels] / plain[pixels])
                shifts.setdefault(int(class_id), []).append(float(np.median(ratio)))
    order = sorted(shifts, key=lambda c: (c not in textured_ids, c))
    return [ClassShift(names[c] if c < len(names) else str(c), c in textured_ids,
                       tuple(shifts[c])) for c in order]


def table(rows: Sequence[ClassShift], change: str = 'texture') -> list[str]:
    word = 'textured' if change == 'texture' else 'sharpened'
    lines = [f'| class | {word} | frames | median log2 ({word} / plain) | mean |',
             '|---|---|---|---|---|']
    for shift in rows:
        r = shift.row()
        lines.append(f"| {r['class']} | {'yes' if shift.textured else 'no (control)'} | "
                     f"{r['frames']} | {r['median_log2']:+.3f} | {r['mean_log2']:+.3f} |")
    return lines


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m training texture-probe',
                                description=__doc__.split('\n\n')[0])
    p.add_argument('--kitti', type=Path, required=True, help='a labelled KITTI raw tree')
    p.add_argument('--split', required=True, help="the tree's split name or a split file")
    p.add_argument('--model', type=Path, required=True, help='an exported ONNX model')
    p.add_argument('--classes', nargs='+', default=list(PROBE_CLASSES))
    p.add_argument('--change', choices=CHANGES, default='texture',
                   help='lay the fine pattern (texture) or an unsharp mask (sharpen)')
    p.add_argument('--amplitude', type=float, default=PROBE_AMPLITUDE,
                   help='pattern gain 1 -/+ this')
    p.add_argument('--every', type=int, default=1, help='every n-th frame of the split')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--json', type=Path, help='write the table as JSON here')
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if not 0 < args.amplitude <= 1 or args.every < 1:
        raise SystemExit('texture-probe: --amplitude must be in (0, 1] and --every >= 1')
    dataset = KittiDataset(args.kitti, args.split)
    names = list(dataset.classes.names) if dataset.classes else []
    unknown = [n for n in args.classes if n not in names]
    if unknown:
        raise SystemExit(f'texture-probe: {unknown} are not classes of the tree ({names})')
    samples = (dataset.read(i) for i in range(0, len(dataset), args.every))
    rows = texture_shifts(Predictor(args.model), samples, names,
                          [names.index(n) for n in args.classes], args.amplitude, args.seed,
                          change=args.change)
    print('\n'.join(table(rows, args.change)))
    if args.json:
        args.json.write_text(json.dumps({'model': str(args.model), 'change': args.change,
                                         'amplitude': args.amplitude,
                                         'classes': [r.row() for r in rows]}, indent=2) + '\n')
    return 0
