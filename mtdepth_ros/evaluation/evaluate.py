"""``mtdepth-eval``: replay a rosbag through a model and score it against ground truth.

Offline mode runs the model directly (no middleware, deterministic, as fast
as the backend goes). Live mode plays the bag into the running node at the
recorded speed (or a factor), records what it publishes and scores that, so
drops and latency count. Both write the same report folder; see
docs/evaluation.md.

Python API: :func:`evaluate_bag` returns a :class:`~mtdepth_ros.evaluation.report.Report`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mtdepth_ros.evaluation.bag_reader import DEFAULT_STAMP_TOLERANCE_S, BagTopics
from mtdepth_ros.evaluation.bag_source import BagError
from mtdepth_ros.evaluation.live import run_live
from mtdepth_ros.evaluation.offline import run_offline
from mtdepth_ros.evaluation.options import EvalOptions
from mtdepth_ros.evaluation.protocols import CROPS, GT_FRAMES, INPUT_CROPS, PROTOCOLS
from mtdepth_ros.evaluation.report import Report, fmt
from mtdepth_ros.inference.backends.base import BackendUnavailable
from mtdepth_ros.inference.card import CardError
from mtdepth_ros.inference.resources import resolve_model_path

MODES = ('offline', 'live')
EXIT_OK, EXIT_FAILED, EXIT_NOTHING_SCORED = 0, 1, 3

log = logging.getLogger('mtdepth_eval')


def evaluate_bag(bag: str | Path, model_path: str | Path, out_dir: str | Path,
                 mode: str = 'offline', options: EvalOptions | None = None) -> Report:
    """Score ``bag`` with the model at ``model_path`` ('' = the bundled model); write the
    report folder ``out_dir``. ``mode`` is 'offline' (Predictor) or 'live' (the node)."""
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    options = options or EvalOptions()
    model = resolve_model_path(str(model_path))
    if mode == 'live':
        return run_live(Path(bag), model, Path(out_dir), options)
    return run_offline(Path(bag), model, Path(out_dir), options)


def _edges(text: str) -> tuple[float, ...]:
    try:
        edges = tuple(float(x) for x in text.split(','))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f'--ranges takes comma-separated metres: {error}')
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise argparse.ArgumentTypeError(f'--ranges needs >= 2 increasing values, got {text}')
    return edges


def _classes(text: str) -> tuple[str, ...]:
    """Names from a comma-separated list, or a file with one name per line."""
    path = Path(text)
    if path.is_file():
        names = [line.strip() for line in path.read_text().splitlines()]
    else:
        names = [name.strip() for name in text.split(',')]
    return tuple(n for n in names if n)


def _optional_topic(text: str) -> str | None:
    return None if text in ('', 'none') else text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='mtdepth-eval', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('bag', type=Path, help='rosbag2 directory (mcap or sqlite3) or .mcap file')
    p.add_argument('--model', default='', help="ONNX model with a card; '' = the bundled model")
    p.add_argument('--out', type=Path, required=True, help='report folder to write')
    p.add_argument('--mode', choices=MODES, default='offline')
    p.add_argument('--protocol', choices=sorted(PROTOCOLS), default='raw')
    p.add_argument('--crop', choices=CROPS, help="override the protocol's crop")
    p.add_argument('--gt-frame', choices=GT_FRAMES,
                   help='apply the crop to the full ground truth or to its 352x1216 KB crop')
    p.add_argument('--input-crop', choices=INPUT_CROPS,
                   help='offline only: run the model on the whole image or on its 352x1216 KB '
                        'crop (BTS do_kb_crop); the prediction is scored in that window')
    p.add_argument('--median-scaling', action=argparse.BooleanOptionalAction, default=None)
    p.add_argument('--flip-tta', action=argparse.BooleanOptionalAction, default=None,
                   help="average depth and confidence with the mirror image's (live: the node's "
                        'flip parameter)')
    p.add_argument('--averaging', choices=('image', 'pixel'),
                   help='headline numbers: mean of per-image metrics or pooled pixels')
    p.add_argument('--ranges', type=_edges, help='depth range edges in metres, e.g. 0,10,20,40')
    defaults = BagTopics()
    p.add_argument('--image-topic', default=defaults.image)
    p.add_argument('--camera-info-topic', type=_optional_topic, default=defaults.camera_info)
    p.add_argument('--depth-topic', type=_optional_topic, default=defaults.depth,
                   help="ground-truth depth (32FC1 m or 16UC1 mm); 'none' = no depth")
    p.add_argument('--labels-topic', type=_optional_topic, default=defaults.labels,
                   help="ground-truth labels (mono8 ids, 255 ignored); 'none' = no labels")
    p.add_argument('--stamp-tolerance', type=float, default=DEFAULT_STAMP_TOLERANCE_S,
                   help='seconds between an image stamp and its ground truth')
    p.add_argument('--label-classes', type=_classes,
                   help="the labels' class names (comma list or file), checked against the card")
    p.add_argument('--backend', default='onnxruntime', help='comma-separated backend chain')
    p.add_argument('--focal-correction', action=argparse.BooleanOptionalAction, default=True)
    p.add_argument('--ground-contact', action=argparse.BooleanOptionalAction, default=False,
                   help='put what stands on the ground at the ground\'s depth, column by column '
                        "(live: the node's ground_contact parameter)")
    p.add_argument('--max-frames', type=int)
    p.add_argument('--start', type=int, default=0, help='first image to use')
    p.add_argument('--step', type=int, default=1, help='use every n-th image')
    p.add_argument('--panels', type=int, default=4, help='sample panels to draw')
    p.add_argument('--no-bag', action='store_true', help='do not write the predictions bag')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--rate', type=float, default=1.0, help='live: playback speed factor')
    p.add_argument('--node-arg', action='append', default=[],
                   help="live: extra argument after the node's --ros-args (repeatable)")
    return p


def options_from_args(args: argparse.Namespace) -> EvalOptions:
    return EvalOptions(
        protocol=args.protocol, crop=args.crop, gt_frame=args.gt_frame,
        input_crop=args.input_crop,
        median_scaling=args.median_scaling, flip_tta=args.flip_tta, averaging=args.averaging,
        range_edges=args.ranges,
        topics=BagTopics(args.image_topic, args.camera_info_topic, args.depth_topic,
                         args.labels_topic),
        tolerance_s=args.stamp_tolerance, backends=tuple(args.backend.split(',')),
        focal_correction=args.focal_correction, ground_contact=args.ground_contact,
        label_classes=args.label_classes,
        max_frames=args.max_frames, start=args.start, step=args.step, panels=args.panels,
        write_predictions=not args.no_bag, progress=not args.no_progress, rate=args.rate,
        node_args=tuple(args.node_arg))


def summary_lines(report: Report) -> list[str]:
    frames = report.metrics['frames']
    lines = [f"frames: {frames['read']} read, {frames['depth_scored']} depth-scored, "
             f"{frames['labels_scored']} label-scored, {frames['not_scored']} not scored"]
    if report.depth:
        lines.append('depth: ' + ', '.join(f'{k} {fmt(v)}' for k, v in report.depth.items()))
    if report.miou is not None:
        lines.append(f'segmentation: mIoU {fmt(report.miou)}')
    for reason, count in {**frames['skipped'], **frames['unmatched']}.items():
        lines.append(f'not scored ({count}): {reason}')
    lines += [f'bag problem: {p}' for p in report.metrics['bag']['problems']]
    lines.append(f'report: {report.out_dir / "report.html"}')
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    try:
        options = options_from_args(args)
        report = evaluate_bag(args.bag, args.model, args.out, args.mode, options)
    except (BagError, CardError, BackendUnavailable, OSError, ValueError,
            RuntimeError) as error:
        print(f'mtdepth-eval: {error}', file=sys.stderr)
        return EXIT_FAILED
    for line in summary_lines(report):
        print(line)
    frames = report.metrics['frames']
    return EXIT_OK if frames['depth_scored'] or frames['labels_scored'] else EXIT_NOTHING_SCORED


if __name__ == '__main__':
    sys.exit(main())
