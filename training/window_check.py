"""How a checkpoint's depth differs between the windows it trained on and the whole input it runs on.

``python -m training window-check CKPT --kitti ROOT --split FILE [--resize H W]
[--window H W] [--every N] [--json OUT]``

Recipes train on random windows of the network input (the default: 176 x 352
of 192 x 640, always near its bottom) and the exported model runs on the whole
input. A network can learn where its windows lie (the row of their top edge:
a road pixel's depth follows its row) or pool over the whole image, and then
read the whole input differently; ``--window`` with every column or every
row tells the two apart. Each frame of a KITTI raw tree is predicted
twice by the checkpoint's network in torch: on the whole input, and on windows
of ``--window`` along its bottom (where the LiDAR band and the training windows
lie), side by side from the left edge to the right, overlaps averaged. Both are
scored in the same pixels (those the windows cover, with ground truth) by the
median and mean of ln(pred / gt) and AbsRel. A model that reads what it learnt
gives the same numbers both ways; a gap says the recipe's windows are not what
the vehicle shows it. Generated frames only: this measures a model, it chooses
nothing.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

DEFAULT_WINDOW = (176, 352)  # the default recipes' training crop
DEFAULT_RESIZE = (192, 640)  # the default model's input

DepthFn = Callable[[Tensor], Tensor]  # (1, 3, H, W) normalised image -> (1, 1, H, W) metres


@dataclass(frozen=True)
class Reading:
    """ln(pred / gt) and AbsRel over the compared pixels of every frame, pooled."""

    name: str
    frames: int
    pixels: int
    median_log_ratio: float
    mean_log_ratio: float
    abs_rel: float


def window_lefts(width: int, window_width: int) -> list[int]:
    """Left columns of the fewest ``window_width`` windows that cover ``width``, evenly spread."""
    if not 0 < window_width <= width:
        raise ValueError(f'a window {window_width} px wide does not fit an input {width} px wide')
    count = -(-width // window_width)
    return sorted({int(round(x)) for x in np.linspace(0, width - window_width, count)})


def windowed(depth_fn: DepthFn, image: Tensor, window: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Depth from ``window``-sized pieces of ``image`` (1, 3, H, W) along its bottom, overlaps
    averaged: (H, W) depth and the (H, W) bool mask of the pixels the windows cover."""
    height, width = image.shape[-2:]
    rows, cols = window
    if rows > height:
        raise ValueError(f'a window {rows} px high does not fit an input {height} px high')
    top = height - rows
    total = torch.zeros(height, width)
    count = torch.zeros(height, width)
    for left in window_lefts(width, cols):
        piece = depth_fn(image[..., top:, left:left + cols])[0, 0]
        total[top:, left:left + cols] += piece
        count[top:, left:left + cols] += 1
    covered = count > 0
    return torch.where(covered, total / count.clamp(min=1), torch.nan), covered


def compare(depth_fn: DepthFn, frames: Iterable[tuple[Tensor, np.ndarray]],
            window: tuple[int, int]) -> tuple[Reading, Reading]:
    """The whole input's and the windows' readings of ``frames``: (image (3, H, W) normalised,
    ground truth (H, W) metres, 0 or NaN = none), in the pixels the windows cover."""
    ratios: dict[str, list[np.ndarray]] = {'whole': [], 'windows': []}
    count = 0
    with torch.no_grad():
        for image, truth in frames:
            batch = image[None]
            whole = depth_fn(batch)[0, 0]
            pieces, covered = windowed(depth_fn, batch, window)
            gt = np.asarray(truth, dtype=np.float64)
            depths = {'whole': whole.numpy(), 'windows': pieces.numpy()}
            keep = covered.numpy().copy()
            with np.errstate(invalid='ignore'):
                for depth in (gt, *depths.values()):
                    keep &= np.isfinite(depth) & (depth > 0)
            for name, depth in depths.items():
                ratios[name].append(np.log(depth[keep].astype(np.float64) / gt[keep]))
            count += 1
    readings = []
    for name in ('whole', 'windows'):
        values = np.concatenate(ratios[name]) if ratios[name] else np.zeros(0)
        if values.size == 0:
            raise ValueError('window-check: no pixel with ground truth inside the windows')
        readings.append(Reading(name, count, int(values.size), float(np.median(values)),
                                float(values.mean()), float(np.mean(np.abs(np.expm1(values))))))
    return readings[0], readings[1]


def checkpoint_depth(path: Path) -> DepthFn:
    """The checkpoint's network as (1, 3, H, W) -> (1, 1, H, W) metres, fed as training feeds
    its windows: unpadded (validation pads to the input multiple; a 176-row window padded
    to 192 rows is another picture)."""
    from training.export import load_for_export  # noqa: PLC0415 (Lightning, only when run)
    from training.depth_decoding import depth_metres  # noqa: PLC0415

    loaded = load_for_export(path)
    return lambda image: depth_metres(loaded.net, loaded.spec, loaded.coding,
                                      loaded.net(image)['depth'])


def table(readings: Iterable[Reading]) -> list[str]:
    lines = ['| input | frames | pixels | median ln(pred/gt) | mean ln(pred/gt) | AbsRel |',
             '|---|---|---|---|---|---|']
    for r in readings:
        lines.append(f'| {r.name} | {r.frames} | {r.pixels} | {r.median_log_ratio:+.4f} | '
                     f'{r.mean_log_ratio:+.4f} | {r.abs_rel:.4f} |')
    return lines


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m training window-check',
                                description=__doc__.split('\n\n')[0])
    p.add_argument('checkpoint', type=Path, help='a training checkpoint (best.ckpt)')
    p.add_argument('--kitti', type=Path, required=True, help='a KITTI raw tree with depth')
    p.add_argument('--split', required=True, help="the tree's split name or a split file")
    p.add_argument('--resize', type=int, nargs=2, default=DEFAULT_RESIZE, metavar=('H', 'W'),
                   help='the network input the frames are resized to (the recipe\'s resize)')
    p.add_argument('--window', type=int, nargs=2, default=DEFAULT_WINDOW, metavar=('H', 'W'),
                   help="the recipe's training window")
    p.add_argument('--every', type=int, default=1, help='every n-th frame of the split')
    p.add_argument('--json', type=Path, help='write both readings as JSON here')
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.every < 1 or min(args.window) < 1 or min(args.resize) < 1:
        raise SystemExit('window-check: --every, --window and --resize must be positive')
    from training.data.kitti import KittiDataset  # noqa: PLC0415

    dataset = KittiDataset(args.kitti, args.split, depth='annotated', resize=list(args.resize))
    depth_fn = checkpoint_depth(args.checkpoint)

    def frames() -> Iterable[tuple[Tensor, np.ndarray]]:
        for index in range(0, len(dataset), args.every):
            sample = dataset[index]
            yield sample['image'], sample['depth'].numpy().reshape(sample['image'].shape[-2:])

    try:
        readings = compare(depth_fn, frames(), tuple(args.window))
    except ValueError as error:
        raise SystemExit(f'window-check: {error}') from error
    print('\n'.join(table(readings)))
    if args.json:
        args.json.write_text(json.dumps({'checkpoint': str(args.checkpoint),
                                         'window': list(args.window),
                                         'resize': list(args.resize),
                                         'readings': [asdict(r) for r in readings]},
                                        indent=2) + '\n')
    return 0
