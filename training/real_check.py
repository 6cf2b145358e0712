"""Score an exported model on real KITTI frames kept outside the project.

``python -m training real-check --frames DIR [DIR ...] --out OUT [--model M.onnx]``
``python -m training real-check --kitti ROOT --split FILE --out OUT [--model M.onnx]``

Each ``DIR`` holds either or both of two of KITTI's own layouts (docs/training.md
says where the frames we measure with came from; with several folders, each layout's
frames of all of them are scored as one set, the folders in the order given):

- ``object/image_2/<id>.png``, ``object/velodyne/<id>.bin``,
  ``object/calib/<id>.txt`` (the object/tracking benchmarks' layout): the
  ground truth is the scan projected into the image, nearest point per pixel
  (``P2 @ R0_rect @ Tr_velo_to_cam``), as the Eigen split scores raw LiDAR;
- ``depth_selection/val_selection_cropped/{image,groundtruth_depth,intrinsics}``
  (the depth benchmark's layout, read by :class:`~training.data.kitti.KittiSelection`):
  the benchmark's annotated ground truth.

``--kitti ROOT --split FILE`` adds the frames of a KITTI raw tree that a split
file lists, with their annotated depth and (generated trees) labels: the same
scoring on generated validation frames, so one command compares models on
both. ``--textured`` scores those frames a second time (set ``kitti_textured``)
with texture-probe's fixed pattern on the building, wall, fence and vegetation
pixels (:func:`textured_frames`: a fine pattern of light and shade that says
nothing about depth, the same for every model), and the table adds the mean
of the two (``kitti mean``): what the bundling rule reads since 2026-12-01
(docs/training.md, "The rule reads the frames twice").

Each set becomes a rosbag (:func:`~training.data.synth.rosbag_writer.write_frames`)
that ``mtdepth-eval``'s offline replay scores under ``--protocol`` (default
``kitti_eigen``: Garg crop, 1e-3 < gt < 80 m, per-image averages), and the same
frames are scored with the constant predictor at the card's
``train_mean_depth_m``. The table and ``OUT/summary.json`` give both; each
set's full report is ``OUT/<set>/report.html``. A bag is an intermediate
(about 300 MB for 190 generated frames) and is removed once its set is
scored, unless ``--keep-bags`` (then ``OUT/bags/<set>``, to replay with
``mtdepth-eval``). ``--record`` writes the real-frame figures into the
model's card (``real_kitti_<set>_<metric>`` metrics, with the frame counts
and ``real_kitti_source``), and with ``--kitti`` the generated frames' as
rendered (``generated_val_<metric>``,
``generated_val_frames``, ``generated_val_source``: the tree and split): a
model made by ``average-weights`` has no validation figures of its own.

``--blur SIGMA`` is a diagnosis: every frame's image is Gaussian-blurred by
SIGMA pixels at its own resolution before it is scored (:func:`blurred_frames`),
to ask how much of a model's error rides on fine detail (docs/training.md,
"Sharpness is not distance"). A blurred frame's figures are not the model's:
``--record`` refuses them, and no setting of the node or the recipe is taken
from them.

``--flip`` scores the model as the node runs it with ``flip: true`` (each frame
and its mirror image, depth averaged: the predictor's ``flip``), and
``--ground-contact`` as it runs with ``ground_contact: true`` (standing things
at the depth of the ground beneath them). The card's figures are the plain
model's: ``--record`` refuses both.

These frames measure, nothing more: no real frame is ever used for training
or to pick a checkpoint.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, replace
from itertools import chain
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mtdepth_ros.evaluation.bag_reader import BagTopics
from mtdepth_ros.evaluation.evaluate import evaluate_bag
from mtdepth_ros.evaluation.options import EvalOptions, make_reader
from mtdepth_ros.evaluation.protocols import PROTOCOLS
from mtdepth_ros.evaluation.scoring import Scorer
from mtdepth_ros.inference.model_file import embed_card, read_card
from mtdepth_ros.inference.resources import resolve_model_path
from training.data.io import read_rgb
from training.data.kitti import KittiDataset, KittiSelection
from training.data.kitti_files import SELECTION_DIR, read_object_calibration
from training.data.lidar import points_to_depth_map, read_velodyne
from training.data.texture import PROBE_AMPLITUDE, PROBE_CLASSES, probe_pattern
from training.data.synth.rosbag_writer import BagFrame, write_frames
from training.real_frames import identify_all

OBJECT_DIR = Path('object')
PANELS = 6  # sample panels per set in its report
RECORDED = ('abs_rel', 'd1', 'silog', 'rmse')  # the metrics --record writes into the card
REAL_SETS = ('velodyne', 'annotated')
ALL_REAL = 'all real'  # the table's row of the real sets pooled, per image
SHOWN = ('abs_rel', 'd1', 'silog', 'rmse', 'sq_rel')  # the table's columns
MEAN_DEPTH_KEY = 'train_mean_depth_m'
KITTI_SETS = ('kitti', 'kitti_textured')  # a raw tree's frames as rendered, then textured
TEXTURE_SEED = 0  # the pattern of every frame follows from it: the same for every model


def velodyne_frames(root: Path) -> Iterator[BagFrame]:
    """Frames of ``root/object``: image, projected scan (NaN = no point), intrinsics."""
    base = root / OBJECT_DIR
    for image_path in sorted((base / 'image_2').glob('*.png')):
        image = read_rgb(image_path)
        height, width = image.shape[:2]
        calibration = read_object_calibration(base / 'calib' / f'{image_path.stem}.txt')
        points = read_velodyne(base / 'velodyne' / f'{image_path.stem}.bin')
        depth = points_to_depth_map(points, calibration.velo_to_image(), width, height)
        yield BagFrame(image, np.where(depth > 0, depth, np.nan).astype(np.float32), None,
                       calibration.intrinsics)


def annotated_frames(root: Path) -> Iterator[BagFrame]:
    """Frames of ``root/depth_selection/val_selection_cropped`` with annotated depth."""
    dataset = KittiSelection(root)
    for index in range(len(dataset)):
        sample = dataset.read(index)
        assert sample.depth is not None
        depth = np.where(sample.depth > 0, sample.depth, np.nan).astype(np.float32)
        yield BagFrame(sample.image, depth, None, sample.intrinsics)


def kitti_frames(root: Path, split: str) -> Iterator[BagFrame]:
    """Frames of a KITTI raw tree listed by ``split`` (annotated depth; Cityscapes train
    ids where the tree has labels, as generated trees do)."""
    dataset = KittiDataset(root, split)
    for index in range(len(dataset)):
        sample = dataset.read(index)
        assert sample.depth is not None
        depth = np.where(sample.depth > 0, sample.depth, np.nan).astype(np.float32)
        labels = None if sample.labels is None else sample.labels.astype(np.uint8)
        yield BagFrame(sample.image, depth, labels, sample.intrinsics)


def textured_frames(frames: Iterator[BagFrame], textured_ids: Sequence[int],
                    amplitude: float = PROBE_AMPLITUDE, seed: int = TEXTURE_SEED
                    ) -> Iterator[BagFrame]:
    """``frames`` with texture-probe's pattern (:func:`~training.data.texture.probe_pattern`)
    on the pixels labelled one of ``textured_ids``; depth, labels and intrinsics as they
    were. The same frames and ``seed`` give the same images."""
    rng = np.random.default_rng(seed)
    for frame in frames:
        if frame.labels is None:
            raise ValueError('--textured needs labelled frames (a generated tree)')
        yield replace(frame, image=probe_pattern(frame.image, np.isin(frame.labels, textured_ids),
                                                 amplitude, rng))


def blurred_frames(frames: Iterator[BagFrame], sigma_px: float) -> Iterator[BagFrame]:
    """``frames`` with each image Gaussian-blurred by ``sigma_px`` pixels; depth, labels and
    intrinsics as they were."""
    for frame in frames:
        yield replace(frame, image=cv2.GaussianBlur(frame.image, (0, 0), sigma_px,
                                                    borderType=cv2.BORDER_REFLECT))


def frame_sets(roots: Sequence[Path] = (), kitti: Path | None = None, split: str = 'val',
               textured: bool = False) -> dict[str, Iterator[BagFrame]]:
    """The sets present under ``roots`` (folders of real frames: each layout's frames of
    every folder, in the folders' order, are one set) and ``kitti`` (a raw tree, twice
    when ``textured``), by name."""
    sets: dict[str, Iterator[BagFrame]] = {}
    object_roots = [r for r in roots if (r / OBJECT_DIR / 'image_2').is_dir()]
    if object_roots:
        sets['velodyne'] = chain.from_iterable(velodyne_frames(r) for r in object_roots)
    selection_roots = [r for r in roots if (r / SELECTION_DIR / 'image').is_dir()
                       or (r / 'depth' / SELECTION_DIR).is_dir()]
    if selection_roots:
        sets['annotated'] = chain.from_iterable(annotated_frames(r) for r in selection_roots)
    if kitti is not None:
        sets['kitti'] = kitti_frames(kitti, split)
        if textured:
            names = KittiDataset(kitti, split).classes
            known = list(names.names) if names else []
            ids = [known.index(n) for n in PROBE_CLASSES if n in known]
            sets['kitti_textured'] = textured_frames(kitti_frames(kitti, split), ids)
    return sets


def score_constant(bag: Path, depth_m: float, options: EvalOptions) -> dict[str, float]:
    """Headline metrics of predicting ``depth_m`` everywhere, under the same protocol."""
    protocol = options.resolved_protocol()
    scorer = Scorer(protocol, (), plot_max_m=protocol.max_depth or 80.0)
    for frame in make_reader(bag, options):
        if frame.depth is not None:
            scorer.add(frame, np.full(frame.depth.shape, depth_m, np.float32), None)
    return dict(scorer.depth_summary()['headline'])


def score_set(name: str, frames: Iterator[BagFrame], model: Path, out: Path,
              options: EvalOptions, constant_m: float | None,
              keep_bag: bool = False) -> dict[str, Any]:
    """Write ``frames`` to ``out/bags/name``, score it (model, then the constant predictor),
    and remove the bag unless ``keep_bag``."""
    bag = out / 'bags' / name
    try:
        count = write_frames(bag, frames)
        if name in KITTI_SETS:  # generated trees carry labels: score segmentation too
            options = replace(options, topics=BagTopics())
        report = evaluate_bag(bag, model, out / name, 'offline', options)
        result: dict[str, Any] = {'frames': count,
                                  'depth_scored': report.metrics['frames']['depth_scored'],
                                  'model': dict(report.depth)}
        if report.miou is not None:
            result['miou'] = report.miou
        if constant_m is not None:
            result['constant'] = score_constant(bag, constant_m, options)
        return result
    finally:
        if not keep_bag:
            shutil.rmtree(bag, ignore_errors=True)


def combined(results: dict[str, dict[str, Any]], names: Sequence[str], key: str) -> dict[str, float]:
    """Per-image averages over several sets (each set's are per-image averages)."""
    counts = [results[n]['depth_scored'] for n in names]
    return {k: sum(c * results[n][key][k] for c, n in zip(counts, names)) / sum(counts)
            for k in SHOWN if all(k in results[n][key] for n in names)}


def table(results: dict[str, dict[str, Any]], constant_m: float | None) -> list[str]:
    lines = [f"| set | frames | predictor | {' | '.join(SHOWN)} |",
             '|' + '---|' * (len(SHOWN) + 3)]
    real = [n for n in REAL_SETS if n in results]
    if len(real) > 1:
        results = {**results, ALL_REAL: {
            'depth_scored': sum(results[n]['depth_scored'] for n in real),
            'model': combined(results, real, 'model'),
            **({'constant': combined(results, real, 'constant')} if constant_m is not None else {})}}
    if all(n in results for n in KITTI_SETS):  # the same frames twice: the plain mean
        results = {**results, 'kitti mean': {
            'depth_scored': results['kitti']['depth_scored'],
            'model': combined(results, KITTI_SETS, 'model'),
            **({'constant': combined(results, KITTI_SETS, 'constant')}
               if constant_m is not None else {})}}
    for name, result in results.items():
        model = 'model' + (f" (mIoU {result['miou']:.3f})" if 'miou' in result else '')
        rows = [(model, result['model'])]
        if 'constant' in result:
            rows.append((f'constant {constant_m:.1f} m', result['constant']))
        for label, metrics in rows:
            values = ' | '.join(f'{metrics.get(k, float("nan")):.3f}' for k in SHOWN)
            lines.append(f"| {name} | {result['depth_scored']} | {label} | {values} |")
    return lines


def card_metrics(results: dict[str, dict[str, Any]], protocol: str,
                 source: str, generated: str | None = None) -> dict[str, Any]:
    """The real-frame figures as model card metrics; with ``generated`` (the tree and its
    split, in words) the generated frames' too, as rendered (``generated_val_*``)."""
    metrics: dict[str, Any] = {'real_kitti_protocol': protocol, 'real_kitti_source': source}
    if generated is not None and 'kitti' in results:
        metrics['generated_val_source'] = generated
        metrics['generated_val_frames'] = results['kitti']['depth_scored']
        for key in RECORDED:
            metrics[f'generated_val_{key}'] = round(float(results['kitti']['model'][key]), 4)
    real = [n for n in REAL_SETS if n in results]
    sets = {n: results[n] for n in real}
    if len(real) > 1:
        sets['all'] = {'depth_scored': sum(results[n]['depth_scored'] for n in real),
                       'model': combined(results, real, 'model')}
    for name, result in sets.items():
        metrics[f'real_kitti_{name}_frames'] = result['depth_scored']
        for key in RECORDED:
            metrics[f'real_kitti_{name}_{key}'] = round(float(result['model'][key]), 4)
    return metrics


def record_in_card(model: Path, metrics: dict[str, Any]) -> None:
    """Rewrite ``model``'s card with ``metrics`` added (the graph is untouched)."""
    import onnx  # noqa: PLC0415

    card = read_card(model)
    card = replace(card, metrics={**card.metrics, **metrics})
    onnx_model = onnx.load(str(model))
    embed_card(onnx_model, card)
    onnx.save_model(onnx_model, str(model), save_as_external_data=False)
    read_card(model)  # still valid for the vehicle


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m training real-check',
                                description=__doc__.split('\n\n')[0])
    p.add_argument('--frames', type=Path, nargs='+', default=[], metavar='DIR',
                   help='folders of real KITTI frames (layouts above); with several, '
                        "each layout's frames of all of them are one set")
    p.add_argument('--kitti', type=Path, help='a KITTI raw tree (e.g. a generated one) to score too')
    p.add_argument('--split', default='val',
                   help='with --kitti: split name or split file of the frames to score')
    p.add_argument('--out', type=Path, required=True, help='folder for the reports (replaced)')
    p.add_argument('--keep-bags', action='store_true',
                   help='keep the bag of each set under OUT/bags (removed once scored by default)')
    p.add_argument('--model', default='', help="ONNX model with a card; '' = the bundled model")
    p.add_argument('--textured', action='store_true',
                   help="with --kitti: score its frames again with texture-probe's pattern on "
                        'building, wall, fence and vegetation, and the mean of the two')
    p.add_argument('--blur', type=float, default=0.0, metavar='SIGMA',
                   help='a diagnosis: blur every image by SIGMA pixels before scoring '
                        '(not with --record)')
    p.add_argument('--flip', action='store_true',
                   help="score the model as the node's flip parameter runs it (the frame and "
                        'its mirror image; not with --record)')
    p.add_argument('--ground-contact', action='store_true',
                   help="score the model as the node's ground_contact parameter runs it "
                        '(standing things at the depth of the ground beneath them; not with '
                        '--record)')
    p.add_argument('--protocol', choices=sorted(PROTOCOLS), default='kitti_eigen')
    p.add_argument('--record', metavar='SOURCE',
                   help='write the real-frame figures (and the --kitti tree\'s) into the model '
                        'card, SOURCE describing the frames (e.g. "12 KITTI frames from public '
                        'repositories, docs/training.md")')
    p.add_argument('--constant', type=float,
                   help=f"constant predictor in metres (default: the card's {MEAN_DEPTH_KEY})")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.record and not args.model:
        # '' resolves to the installed copy of the bundled model, which a reinstall replaces
        print('real-check: --record rewrites the card of the model file it scores: name it '
              'with --model (the bundled one is models/mtdepth_default.onnx)', file=sys.stderr)
        return 2
    if args.blur < 0 or (args.blur > 0 and args.record):
        print("real-check: --blur takes a sigma >= 0 pixels, and a blurred frame's figures "
              "are a diagnosis, not the model's: not with --record", file=sys.stderr)
        return 2
    if (args.flip or args.ground_contact) and args.record:
        print("real-check: the card records the model's own figures; --flip and "
              '--ground-contact score it with a setting of the node: not with --record',
              file=sys.stderr)
        return 2
    model = resolve_model_path(str(args.model))
    constant = args.constant if args.constant is not None else \
        read_card(model).metrics.get(MEAN_DEPTH_KEY)
    if args.textured and args.kitti is None:
        print('real-check: --textured textures the frames of --kitti: name a tree',
              file=sys.stderr)
        return 2
    sets = frame_sets(args.frames, args.kitti, args.split, args.textured)
    if not sets:
        print(f'real-check: no object/ or {SELECTION_DIR}/ frames under '
              f"{' '.join(map(str, args.frames)) or '(no --frames)'}, "
              'and no --kitti tree', file=sys.stderr)
        return 1
    if args.blur > 0:
        sets = {name: blurred_frames(frames, args.blur) for name, frames in sets.items()}
    if args.out.exists():
        shutil.rmtree(args.out)
    options = EvalOptions(protocol=args.protocol, topics=BagTopics(labels=None),
                          panels=PANELS, progress=False, write_predictions=False,
                          flip_tta=args.flip or None, ground_contact=args.ground_contact)
    results = {name: score_set(name, frames, model, args.out, options, constant, args.keep_bags)
               for name, frames in sets.items()}
    if not args.keep_bags:
        shutil.rmtree(args.out / 'bags', ignore_errors=True)
    identities = identify_all(args.frames)
    summary = {'model': str(model), 'protocol': args.protocol,
               'frames': ' '.join(map(str, args.frames)),
               'frames_identity': [asdict(i) | {'folder': str(i.folder)} for i in identities],
               'kitti': str(args.kitti),
               'split': args.split, 'constant_m': constant,
               'blur_sigma_px': args.blur, 'flip': args.flip,
               'ground_contact': args.ground_contact,
               'sets': results}
    if all(n in results for n in KITTI_SETS):
        summary['kitti_mean'] = combined(results, KITTI_SETS, 'model')
    (args.out / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    print('\n'.join(table(results, constant)))
    for identity in identities:
        print(identity.line())
    if args.record:
        generated = None if args.kitti is None else f'{args.kitti}, split {args.split}'
        record_in_card(model, card_metrics(results, args.protocol, args.record, generated))
        also = '' if generated is None else " and the generated frames'"
        print(f'recorded the real-frame figures{also} in the card of {model}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
