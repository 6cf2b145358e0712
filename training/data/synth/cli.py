"""``python -m training synth``: write procedural scenes in KITTI, NYU, Cityscapes or rosbag format."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from training.data.cityscapes_files import CITYSCAPES_HEIGHT, CITYSCAPES_WIDTH
from training.data.synth.rig import KITTI_HEIGHT, KITTI_WIDTH
from training.data.synth.room import NYU_HEIGHT, NYU_WIDTH
from training.data.synth.runner import default_workers

FORMATS = ('kitti', 'nyu', 'rosbag', 'cityscapes')
DEFAULT_FRAMES_PER_DRIVE = 50


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='python -m training synth',
        description='Render procedural road (KITTI, Cityscapes, rosbag) and indoor (NYU) scenes with exact ground truth and '
                    'write them in the real datasets\' on-disk formats (docs/data.md).')
    p.add_argument('--format', required=True, choices=FORMATS, help='on-disk format to write')
    p.add_argument('--out', required=True, type=Path,
                   help='output directory (a tree; for rosbag the bag directory, which must not exist)')
    p.add_argument('--frames', type=int, default=100, help='number of frames (default 100)')
    p.add_argument('--seed', type=int, default=0, help='random seed; same seed, same files (default 0)')
    p.add_argument('--width', type=int, default=None,
                   help='image width; intrinsics scale with it (default: the dataset\'s own size)')
    p.add_argument('--height', type=int, default=None, help='image height (default: the dataset\'s)')
    p.add_argument('--workers', type=int, default=default_workers(),
                   help='processes rendering in parallel (default: usable CPUs, at most 8)')
    p.add_argument('--frames-per-drive', type=int, default=DEFAULT_FRAMES_PER_DRIVE,
                   help=f'kitti: frames per drive (default {DEFAULT_FRAMES_PER_DRIVE})')
    p.add_argument('--resume', action='store_true',
                   help='kitti: render only the frames a killed run with the same arguments left unwritten')
    p.add_argument('--dense-gt', action='store_true',
                   help='rosbag: dense ground-truth depth instead of the LiDAR-like sparse one')
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.frames < 1:
        print('synth: --frames must be at least 1', file=sys.stderr)
        return 2
    default_size = {'nyu': (NYU_WIDTH, NYU_HEIGHT), 'cityscapes': (CITYSCAPES_WIDTH, CITYSCAPES_HEIGHT)
                    }.get(args.format, (KITTI_WIDTH, KITTI_HEIGHT))
    width = args.width or default_size[0]
    height = args.height or default_size[1]
    start = time.perf_counter()
    if args.format == 'kitti':
        from training.data.synth.kitti_writer import SynthResumeError, write_kitti
        args.out.mkdir(parents=True, exist_ok=True)
        try:
            info = write_kitti(args.out, args.frames, args.seed, width, height,
                               args.frames_per_drive, args.workers, args.resume)
        except SynthResumeError as error:
            print(f'synth: {error}', file=sys.stderr)
            return 2
    elif args.format == 'cityscapes':
        from training.data.synth.cityscapes_writer import write_cityscapes
        args.out.mkdir(parents=True, exist_ok=True)
        info = write_cityscapes(args.out, args.frames, args.seed, width, height, args.workers)
    elif args.format == 'nyu':
        from training.data.synth.nyu_writer import write_nyu
        info = write_nyu(args.out, args.frames, args.seed, width, height, args.workers)
    else:
        from training.data.synth.rosbag_writer import write_rosbag
        if args.out.exists():
            print(f'synth: {args.out} exists; a rosbag is written into a new directory', file=sys.stderr)
            return 2
        info = write_rosbag(args.out, args.frames, args.seed, width, height, args.dense_gt, args.workers)
    elapsed = time.perf_counter() - start
    print(json.dumps({'out': str(args.out), 'seconds': round(elapsed, 1),
                      'frames_per_second': round(args.frames / elapsed, 2),
                      **{k: info[k] for k in ('format', 'frames', 'width', 'height')}}))
    return 0
