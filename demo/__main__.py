"""``make demo``: the node on the bundled model and generated road scenes, scored live.

1. Writes a short rosbag of procedural road scenes (camera images, camera
   info, LiDAR-like ground-truth depth and labels) with the project's
   generator, unless it is already there (``demo_data/``).
2. Starts the real ``mtdepth_node`` with ``config/mtdepth.yaml`` and the
   bundled model, plays the bag into it at the recorded pace (times
   ``--rate``), records everything it publishes, and scores that
   (``mtdepth_ros.evaluation.evaluate``'s live mode: drops and latency count).
3. Scores the trivial predictor (the mean depth of the model's training data,
   everywhere) on the same frames and protocol, for comparison.
4. Writes ``demo_out/``: the evaluation report, one panel per answered frame
   (image | depth | intervals | segmentation | confidence | cloud from above)
   and ``summary.txt``; prints the summary.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

from demo.baseline import constant_depth_baseline
from demo.recorded import write_panels
from mtdepth_ros.evaluation.evaluate import EvalOptions, evaluate_bag
from mtdepth_ros.evaluation.report import Report, json_safe
from mtdepth_ros.inference.model_file import read_card
from mtdepth_ros.inference.resources import resolve_model_path
from training.data.classes import ROAD
from training.data.synth import SCENES_VERSION

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / 'config' / 'mtdepth.yaml'
DEFAULT_FRAMES = 30
DEFAULT_SEED = 2024  # scenes the bundled model never saw (its trees: seeds 16 and 1016)
DEFAULT_RATE = 1.0  # the recorded 10 Hz; frames the node cannot keep up with are dropped, newest wins
DEFAULT_THREADS = 0  # ONNX Runtime's own choice: 69 ms a frame on 2 idle cores, 1 thread 122 ms
PROTOCOL = 'kitti_eigen'  # Garg crop, 1e-3 < gt < 80 m, per-image averages
TRAIN_MEAN_KEY = 'train_mean_depth_m'
SUMMARY_FILE = 'summary.txt'
SUMMARY_JSON = 'summary.json'


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m demo', description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=DEFAULT_FRAMES, help='frames in the demo bag')
    parser.add_argument('--seed', type=int, default=DEFAULT_SEED, help='scene seed of the demo bag')
    parser.add_argument('--width', type=int, default=None, help='image width (default KITTI 1242)')
    parser.add_argument('--height', type=int, default=None, help='image height (default 375)')
    parser.add_argument('--rate', type=float, default=DEFAULT_RATE,
                        help='playback speed factor (1 = the recorded 10 Hz)')
    parser.add_argument('--model', default='', help="ONNX model with a card; '' = the bundled one")
    parser.add_argument('--data', type=Path, default=REPO / 'demo_data', help='where bags are kept')
    parser.add_argument('--out', type=Path, default=REPO / 'demo_out', help='output folder')
    parser.add_argument('--backend', default='onnxruntime', help='backend chain for the node')
    parser.add_argument('--threads', type=int, default=DEFAULT_THREADS,
                        help="the node's ONNX Runtime threads (default 0: one per core, as the "
                             "demo has the machine to itself; config/mtdepth.yaml's 1 suits a "
                             'machine shared with other work)')
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error('--frames must be at least 1')
    if args.rate <= 0:
        parser.error('--rate must be positive')
    return args


def bag_path(args: argparse.Namespace) -> Path:
    """The bag's folder, named by everything that decides its frames: seed, frame count,
    size, and the generator's scenes version (a bag of older scenes is not reused)."""
    size = f'_{args.width}x{args.height}' if args.width or args.height else ''
    return args.data / f'road_seed{args.seed}_{args.frames}f{size}_scenes{SCENES_VERSION}'


def ensure_bag(args: argparse.Namespace) -> Path:
    """The demo bag, written by ``python -m training synth`` if it is not there yet."""
    bag = bag_path(args)
    if (bag / 'metadata.yaml').is_file():
        print(f'demo: using {bag.relative_to(REPO) if bag.is_relative_to(REPO) else bag}')
        return bag
    if bag.exists():
        shutil.rmtree(bag)  # an earlier run stopped half-way
    print(f'demo: generating {args.frames} road frames into {bag} ...', flush=True)
    command = [sys.executable, '-m', 'training', 'synth', '--format', 'rosbag', '--out', str(bag),
               '--frames', str(args.frames), '--seed', str(args.seed)]
    for flag, value in (('--width', args.width), ('--height', args.height)):
        if value:
            command += [flag, str(value)]
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return bag


def run_live(bag: Path, model: Path, out: Path, args: argparse.Namespace) -> Report:
    print(f'demo: starting mtdepth_node ({CONFIG.relative_to(REPO)}, {model.name}) and playing '
          f'the bag at {args.rate:g}x ...', flush=True)
    options = EvalOptions(protocol=PROTOCOL, backends=tuple(args.backend.split(',')),
                          node_args=('--params-file', str(CONFIG),
                                     '-p', f'threads:={args.threads}'),
                          rate=args.rate,
                          label_classes=tuple(ROAD.names),  # the generator's label ids
                          panels=4, progress=False)
    return evaluate_bag(bag, model, out, mode='live', options=options)


def summary_lines(report: Report, baseline: dict[str, float], mean_depth: float,
                  panels: list[Path], out: Path, model_name: str) -> list[str]:
    live = report.metrics['live']
    timing = report.metrics.get('timing', {})
    depth = report.depth
    answered = live['answered_images']
    lines = [
        f"mtdepth_ros demo: {model_name} on {live['published_images']} generated road frames, "
        f"played at {live['rate_factor']:g}x the recorded 10 Hz",
        f"  frames      in {live['published_images']}, answered {answered}, "
        f"dropped {live['dropped_images']} (newest frame wins)",
    ]
    if 'latency_s p50' in timing:
        lines.append(f"  latency     median {timing['latency_s p50'] * 1e3:.0f} ms, "
                     f"p95 {timing['latency_s p95'] * 1e3:.0f} ms (image publish -> depth received)")
    if not math.isnan(live.get('input_rate_hz', math.nan)):
        out_hz = live['output_rate_hz']
        lines.append(f"  rate        in {live['input_rate_hz']:.1f} Hz, out "
                     f"{'-' if math.isnan(out_hz) else f'{out_hz:.1f}'} Hz "
                     f"(images played, depth images received)")
    if depth:
        lines.append(f"  depth       SILog {depth['silog']:.2f}  AbsRel {depth['abs_rel']:.3f}  "
                     f"RMSE {depth['rmse']:.2f} m  d1 {depth['d1']:.3f}  ({PROTOCOL}: Garg crop, "
                     f"0-80 m, per-image means)")
    if baseline:
        lines.append(f"  trivial     SILog {baseline['silog']:.2f}  AbsRel {baseline['abs_rel']:.3f}  "
                     f"RMSE {baseline['rmse']:.2f} m  d1 {baseline['d1']:.3f}  (the mean training "
                     f"depth, {mean_depth:.1f} m, everywhere; same frames)")
    if report.miou is not None:
        lines.append(f'  segmentation mIoU {report.miou:.3f} (classes present in the labels)')
    lines += [
        f'  outputs     {out}/',
        f'    report    {report.files.get("html", out / "report" / "report.html")}',
        f'    panels    {len(panels)} x {out}/panels/*.png (image | depth | intervals | '
        'segmentation | confidence | cloud from above)',
        f'    bag       {out}/report/predictions (the node\'s topics, for Foxglove or RViz)',
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model = resolve_model_path(args.model)
    card = read_card(model)
    if TRAIN_MEAN_KEY not in card.metrics:
        raise SystemExit(f'demo: {model} has no {TRAIN_MEAN_KEY!r} in its card metrics, needed '
                         'for the trivial baseline; export it with `python -m training export`')
    mean_depth = float(card.metrics[TRAIN_MEAN_KEY])
    bag = ensure_bag(args)
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    report = run_live(bag, model, out / 'report', args)
    baseline = constant_depth_baseline(bag, mean_depth, PROTOCOL, report)
    panels = write_panels(bag, out / 'report' / 'predictions', out / 'panels', card)
    lines = summary_lines(report, baseline, mean_depth, panels, out, card.name)
    (out / SUMMARY_FILE).write_text('\n'.join(lines) + '\n')
    (out / SUMMARY_JSON).write_text(json.dumps(json_safe({
        'live': report.metrics['live'], 'timing': report.metrics.get('timing', {}),
        'depth': report.depth, 'trivial_depth': baseline, 'train_mean_depth_m': mean_depth,
        'miou': report.miou, 'panels': [str(p) for p in panels]}), indent=2, allow_nan=False))
    print('\n'.join(lines))
    if not report.metrics['live']['answered_images']:
        print('demo: the node answered no frame; see demo_out/report/node.log', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
