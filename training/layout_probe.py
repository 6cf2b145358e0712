"""Depth from the segmentation alone: does the scene's layout carry over to real frames?

``python -m training layout-probe prepare --tree TREE [TREE ...] --out DATA.npz [--model M.onnx]
[--with-depth [--with-confidence]] [--random-convolution P]``
``python -m training layout-probe train DATA.npz [DATA.npz ...] --out NET.pt [--steps N]
[--seed S] [--widths W ...] [--patch-noise SHARE] [--row-fallback SHARE] [--read-far SHARE]
[--save-every N] [--resume]``
``python -m training layout-probe score NET.pt [--frames DIR ...] [--kitti TREE --split FILE]
[--model M.onnx] [--shares S ...]``
``python -m training layout-probe graft NET.pt --out MODEL.onnx [--model M.onnx] [--mix 0.5]
[--confidence LOW HIGH] [--class-share SHARE.json]``
``python -m training layout-probe fit-share NET.pt --tree TREE [TREE ...] --out SHARE.json
[--model M.onnx] [--truth scan|dense]`` (:mod:`training.layout_share`)

On real KITTI frames the bundled model's segmentation is right where its depth is not
(docs/training.md, "What the bundled model sees on real frames"). The probe asks how much
depth the segmentation alone holds: a small U-Net (:class:`LayoutNet`) that reads only
class ids (one-hot) and the pixel's position, at a quarter of the network input's
resolution, and gives ln depth. It never sees appearance, so what it learns from
generated frames depends on the renderer's look only through the segmentation.

``prepare`` runs an exported model on a generated KITTI tree's images (its
``synth_dense_depth``, the dense ground truth, is the target) and keeps its segmentation
at the probe's resolution: the probe learns from the segmentation it is given at run
time, mistakes included. ``train`` fits the probe (:mod:`training.layout_train`: L1 plus
scale-invariant loss on ln depth; saved with the run's state every 100 steps, so that a
run killed at any moment continues with ``--resume`` to bit for bit the probe of a run
never stopped). ``score`` runs the model and
the probe on real-check's sets (``--frames``, ``--kitti``: :func:`~training.real_check.
frame_sets`, with ``--textured`` the generated frames twice, as the bundling rule reads
them) and scores, under ``kitti_eigen`` with the project's scorer,
three predictors: the model's depth, the probe's from the model's segmentation (both
focal-corrected alike), and their geometric mean.

A refiner is the same U-Net reading the model's ln depth as well (``prepare --with-depth``
keeps it; ``train`` then makes one): it gives that depth plus a learnt correction, and
``score`` reports it in the probe's place; with ``--with-confidence`` it reads the model's
confidence as well, where the model says it is unsure. With ``--row-fallback SHARE`` it
learns from frames in which standing things are drawn at their row's depth, the failure
the bundled model shows on real frames (:func:`~training.layout_train.row_fallback`;
docs/training.md, "A refiner that reads the model's depth"); with ``--read-far SHARE``
from frames whose facades, walls and verges are read too far
(:func:`~training.layout_train.read_far`).

``prepare`` records the tree and the model (its sha256) and ``train`` keeps that record
in the probe, so that ``graft`` (:mod:`training.layout_graft`) puts the probe only into the
model whose segmentation it learnt from: the default network's layout branch, the
geometric mean that ``score`` reports, as one exported model. The real frames only
measure (docs/training.md, "Depth from the segmentation alone").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from mtdepth_ros.evaluation.bag_reader import Frame
from mtdepth_ros.evaluation.protocols import PROTOCOLS
from mtdepth_ros.evaluation.scoring import Scorer
from mtdepth_ros.inference.backends.engine_cache import file_sha256
from mtdepth_ros.inference.predictor import Prediction, Predictor
from mtdepth_ros.inference.resources import resolve_model_path
from training.data.io import read_depth_png, read_rgb
from training.data.random_convolution import random_convolution
from training.data.synth.kitti_writer import EXTRA_DENSE
from training.data.synth.rosbag_writer import BagFrame
from training.layout_train import SAVE_EVERY, train
from training.nets.layout import STRIDE, WIDTHS, LayoutNet
from training.real_check import frame_sets

HELD_M = (2.0, 125.0)  # a refiner's input depth held here (the coding's range; the sky's inf)
PREDICTORS = ('model', 'layout', 'geometric mean')
HEADLINE = ('abs_rel', 'silog', 'd1', 'rmse')
CONVOLUTION_SEED = 0  # prepare --random-convolution: the same frames each run


def probe_labels(segmentation: np.ndarray) -> np.ndarray:
    """The network-resolution segmentation at the probe's resolution (every STRIDE-th)."""
    return np.ascontiguousarray(segmentation[::STRIDE, ::STRIDE])


TRUTHS = ('dense', 'scan')  # a generated tree's dense depth; its simulated scan (scored)


def truth_path(tree: Path, image_path: Path, truth: str = 'dense') -> Path | None:
    """The depth PNG of ``image_path`` (under ``tree``/raw) by ``truth``: the dense
    depth, or the simulated scan KITTI's protocols score (proj_depth/groundtruth of
    the train or val split); None where the frame has none."""
    relative = image_path.relative_to(tree / 'raw')  # date/drive/image_02/data/frame.png
    if truth == 'dense':
        dense = tree / EXTRA_DENSE / relative
        return dense if dense.exists() else None
    drive, frame = relative.parts[1], relative.name
    found = sorted(tree.glob(f'depth/*/{drive}/proj_depth/groundtruth/image_02/{frame}'))
    return found[0] if found else None


def truth_frames(trees: Sequence[Path], truth: str = 'dense') -> Iterator[tuple[Path, Path]]:
    """Each image of the generated ``trees`` with ground truth of the kind ``truth``
    (:func:`truth_path`), and that depth's PNG, tree by tree, in order; a tree without
    any is refused."""
    for tree in trees:
        found = 0
        for image_path in sorted(tree.glob('raw/*/*/image_02/data/*.png')):
            depth = truth_path(tree, image_path, truth)
            if depth is not None:
                found += 1
                yield image_path, depth
        if not found:
            raise SystemExit(f'{tree}: no image with {truth} depth: a generated tree?')


def input_depth(predictor: Predictor, prediction: Prediction, depth: Path) -> np.ndarray:
    """A ground truth PNG (metres) on the network input's pixels, as the prediction
    cropped and resized its frame (nearest: a scan keeps its points, fewer of them)."""
    assert prediction.region is not None
    return cv2.resize(prediction.region.of(read_depth_png(depth)), predictor.input_size,
                      interpolation=cv2.INTER_NEAREST)


def model_ln_depth(depth: np.ndarray) -> np.ndarray:
    """A model's depth (metres; +inf where it says far, -inf nearer than its range) as a
    refiner reads it: ln metres held to ``HELD_M``, float32 (as the refine branch holds
    the coded depth, :class:`~training.nets.layout.RefineBranch`)."""
    held = np.nan_to_num(depth, nan=HELD_M[1], posinf=HELD_M[1], neginf=HELD_M[0])
    return np.log(np.clip(held, *HELD_M)).astype(np.float32)


def prepare(trees: Sequence[Path], out: Path, model: Path, with_depth: bool = False,
            with_confidence: bool = False, convolution: float = 0.0) -> int:
    """The model's segmentation of each image of ``trees`` with its dense depth, and with
    ``with_depth`` the model's own ln depth (:func:`model_ln_depth`, what a refiner
    corrects), with ``with_confidence`` its confidence as well (what a refiner with
    ``confidence_input`` reads): frames. With ``convolution`` each image goes to the
    model, with that probability, through a random convolution (seeded: the same frames
    each run), a look the model was not trained on; the truth is the frame's."""
    if with_confidence and not with_depth:
        raise SystemExit('--with-confidence is a refiner\'s: give --with-depth too')
    if not 0 <= convolution <= 1:
        raise SystemExit(f'--random-convolution {convolution}: a probability, 0..1')
    if convolution:  # the generator random_convolution draws from
        torch.manual_seed(CONVOLUTION_SEED)
    predictor = Predictor(model)
    labels, depths, model_depths, confidences = [], [], [], []
    heads = ['depth', 'segmentation'] if with_depth else ['segmentation']
    heads += ['confidence'] if with_confidence else []
    for image_path, dense in truth_frames(trees):
        image = read_rgb(image_path)
        if convolution:
            image = random_convolution(image, convolution)
        prediction = predictor.predict(image, heads=heads)
        assert prediction.segmentation is not None
        labels.append(probe_labels(prediction.segmentation))
        depths.append(probe_labels(input_depth(predictor, prediction, dense)).astype(np.float16))
        if with_depth:
            assert prediction.depth is not None
            model_depths.append(model_ln_depth(probe_labels(prediction.depth)).astype(np.float16))
        if with_confidence:
            assert prediction.confidence is not None
            confidences.append(probe_labels(prediction.confidence).astype(np.float16))
    classes = predictor.card.classes
    extra = {'model_depth': np.stack(model_depths)} if with_depth else {}
    extra.update({'model_confidence': np.stack(confidences)} if with_confidence else {})
    np.savez_compressed(out, labels=np.stack(labels), depth=np.stack(depths), **extra,
                        classes=len(classes.names) if classes else 0,
                        names=np.array(classes.names if classes else ()),
                        tree=' + '.join(str(tree) for tree in trees)
                        + (f' (random convolution {convolution:g})' if convolution else ''),
                        model=str(model), model_sha256=file_sha256(model))
    return len(labels)


def load(path: Path) -> LayoutNet:
    saved = torch.load(path, weights_only=True)
    net = LayoutNet(*saved_shape(saved), depth_input=bool(saved.get('depth_input', False)),
                    confidence_input=bool(saved.get('confidence_input', False)))
    net.load_state_dict(saved['state'])
    return net.eval()


def saved_shape(saved: dict[str, Any]) -> tuple[int, tuple[int, ...]]:
    """A saved probe's classes and widths (probes saved before widths were kept: WIDTHS)."""
    return int(saved['classes']), tuple(int(w) for w in saved.get('widths', WIDTHS))


def layout_depth(net: LayoutNet, segmentation: np.ndarray, depth: np.ndarray | None = None,
                 confidence: np.ndarray | None = None) -> np.ndarray:
    """The probe's depth (metres) at the network input's resolution from its segmentation;
    a refiner's from the model's ``depth`` (metres, the same pixels) too, and its
    ``confidence`` where the refiner reads it: that depth times the refiner's correction,
    resized from the probe's resolution (+inf stays +inf)."""
    height, width = segmentation.shape
    with torch.no_grad():
        labels = torch.from_numpy(probe_labels(segmentation).astype(np.int64))[None]
        if not net.depth_input:
            ln_depth = net(labels)[0].numpy()
            return cv2.resize(np.exp(ln_depth), (width, height), interpolation=cv2.INTER_LINEAR)
        if depth is None:
            raise ValueError('a refiner corrects the model\'s depth: give it')
        given = model_ln_depth(probe_labels(depth))
        given_confidence = None
        if net.confidence_input:
            if confidence is None:
                raise ValueError('this refiner reads the model\'s confidence too: give it')
            given_confidence = torch.from_numpy(probe_labels(confidence).astype(np.float32))[None]
        refined = net(labels, torch.from_numpy(given)[None], given_confidence)
        correction = np.exp(refined[0].numpy() - given)
    factor = cv2.resize(correction, (width, height), interpolation=cv2.INTER_LINEAR)
    with np.errstate(invalid='ignore'):
        return np.where(np.isfinite(depth), depth * factor, depth).astype(np.float32)


def score_frames(frames: Iterator[BagFrame], net: LayoutNet, predictor: Predictor,
                 shares: Sequence[float] = ()) -> dict[str, dict[str, float]]:
    """The headline metrics (kitti_eigen) of the model, the probe and their geometric mean,
    and of each mix ``ln d_model + share (ln d_layout - ln d_model)`` in ``shares``
    (named ``share S``: 0 is the model, 0.5 the geometric mean, 1 the probe)."""
    protocol, card = PROTOCOLS['kitti_eigen'], predictor.card
    near = card.depth_range[0] if card.depth_range else None  # -inf scored there, as mtdepth-eval
    names = PREDICTORS + tuple(f'share {share:g}' for share in shares)
    scorers = {name: Scorer(protocol, (), plot_max_m=protocol.max_depth or 80.0, near_limit=near)
               for name in names}
    for index, bag_frame in enumerate(frames):
        fx = float(bag_frame.intrinsics[0, 0])
        heads = ['depth', 'segmentation'] + (['confidence'] if net.confidence_input else [])
        prediction = predictor.predict(bag_frame.image, heads=heads, focal_px=fx)
        assert prediction.depth is not None and prediction.segmentation is not None
        model, scale = prediction.depth, np.float32(prediction.depth_scale)
        # A refiner reads the depth in the network's own frame (before the focal scale).
        layout = layout_depth(net, prediction.segmentation, model / scale,
                              prediction.confidence) * scale
        with np.errstate(invalid='ignore', divide='ignore'):
            mean = np.where(np.isfinite(model), np.sqrt(model * layout), model)
            mixed = [np.where(np.isfinite(model), model * (layout / model) ** share, model)
                     for share in shares]
        frame = Frame(index=index, stamp_ns=0, log_time_ns=0, frame_id='', rgb=bag_frame.image,
                      depth=bag_frame.depth)
        for name, depth in zip(names, (model, layout, mean, *mixed)):
            scorers[name].add(frame, depth.astype(np.float32), None, region=prediction.region,
                              depth_scale=prediction.depth_scale)
    return {name: {key: float(s.depth_summary()['headline'][key]) for key in HEADLINE}
            for name, s in scorers.items()}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog='python -m training layout-probe', description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest='command', required=True)
    p = commands.add_parser('prepare', help="a model's segmentation of a generated tree")
    p.add_argument('--tree', type=Path, nargs='+', required=True,
                   help='generated KITTI trees (their frames in the order given)')
    p.add_argument('--out', type=Path, required=True, help='the .npz to write')
    p.add_argument('--model', default='', help='exported model (default: the bundled one)')
    p.add_argument('--with-depth', action='store_true',
                   help="keep the model's depth too: data for a refiner")
    p.add_argument('--with-confidence', action='store_true',
                   help="with --with-depth, its confidence too: a refiner that reads it")
    p.add_argument('--random-convolution', type=float, default=0.0, metavar='P',
                   help='each image, with probability P, through a random convolution '
                        'before the model sees it (its truth the same)')
    t = commands.add_parser('train', help='fit the probe')
    t.add_argument('data', type=Path, nargs='+', help="prepare's .npz files (one model's)")
    t.add_argument('--out', type=Path, required=True, help='the probe (.pt) to write')
    t.add_argument('--steps', type=int, default=2000)
    t.add_argument('--seed', type=int, default=0)
    t.add_argument('--widths', type=int, nargs='+', default=list(WIDTHS),
                   help="the U-Net's channels, level by level")
    t.add_argument('--patch-noise', type=float, default=0.0, metavar='SHARE',
                   help='share of frames given patches of another class (patch_noise)')
    t.add_argument('--row-fallback', type=float, default=0.0, metavar='SHARE',
                   help="a refiner: share of frames whose standing things' input depth is "
                        "pulled toward their row's (row_fallback)")
    t.add_argument('--read-far', type=float, default=0.0, metavar='SHARE',
                   help="a refiner: share of frames whose facades, walls and verges are read "
                        'too far in its input depth (read_far)')
    t.add_argument('--save-every', type=int, default=SAVE_EVERY, metavar='N',
                   help='save the probe and the run\'s state (OUT.state) every N steps')
    t.add_argument('--resume', action='store_true',
                   help='continue a killed run from its last save: bit for bit the run '
                        'never stopped')
    g = commands.add_parser('graft', help='the model with the probe as its layout branch '
                                          '(a refiner: as its refine branch)')
    g.add_argument('probe', type=Path, help="train's .pt (of this model's segmentation, or "
                                            "a refiner of its depth)")
    g.add_argument('--out', type=Path, required=True, help='the ONNX file to write')
    g.add_argument('--model', default='', help='exported model (default: the bundled one)')
    g.add_argument('--mix', type=float, default=0.5,
                   help="the branch's share in ln depth (0.5: the geometric mean of the "
                        "model's depth and the probe's or refiner's)")
    g.add_argument('--confidence', type=float, nargs=2, default=(), metavar=('LOW', 'HIGH'),
                   help="gate the share by the segmentation's top-class probability: the "
                        'full mix at HIGH or more, none at LOW or less')
    g.add_argument('--class-share', type=Path, default=None, metavar='JSON',
                   help="fit-share's table: each pixel's share is mix times its class's entry")
    g.add_argument('--name', default=None, help="the card's name (default: the model's)")
    f = commands.add_parser('fit-share', help="the branch's share fitted class by class")
    f.add_argument('probe', type=Path, help="train's .pt")
    f.add_argument('--tree', type=Path, nargs='+', required=True,
                   help='generated KITTI trees (not the probe\'s training frames, no rule\'s)')
    f.add_argument('--model', default='', help='exported model (default: the bundled one)')
    f.add_argument('--truth', choices=TRUTHS, default='scan',
                   help="the tree's simulated scan, the pixels KITTI's protocols score "
                        '(default), or its dense depth')
    f.add_argument('--out', type=Path, required=True, help='the JSON to write')
    s = commands.add_parser('score', help='the model, the probe and their mean on frames')
    s.add_argument('probe', type=Path, help="train's .pt")
    s.add_argument('--frames', type=Path, nargs='*', default=[], help='real frame folders')
    s.add_argument('--kitti', type=Path, default=None, help='a KITTI raw tree')
    s.add_argument('--split', default='val', help="--kitti's split file")
    s.add_argument('--textured', action='store_true',
                   help="--kitti's frames again with real-check's texture (set kitti_textured)")
    s.add_argument('--model', default='', help='exported model (default: the bundled one)')
    s.add_argument('--shares', type=float, nargs='+', default=[], metavar='S',
                   help="also each mix of model and probe at these shares (the branch's mix)")
    s.add_argument('--out', type=Path, default=None, help='also write the figures as JSON')
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == 'prepare':
        started = time.monotonic()
        count = prepare(args.tree, args.out, resolve_model_path(args.model), args.with_depth,
                        args.with_confidence, args.random_convolution)
        print(f'{count} frames -> {args.out} ({time.monotonic() - started:.0f} s)')
        return 0
    if args.command == 'train':
        train(args.data, args.out, args.steps, args.seed, widths=args.widths,
              patch_share=args.patch_noise, fallback_share=args.row_fallback,
              far_share=args.read_far,
              resume=args.resume, save_every=args.save_every)
        return 0
    if args.command == 'graft':
        from training.layout_graft import graft  # noqa: PLC0415  (imports this)

        try:
            card, report = graft(args.probe, resolve_model_path(args.model), args.out,
                                 args.mix, args.name, args.confidence, args.class_share)
        except (FileNotFoundError, ValueError, RuntimeError) as error:  # GraftError, card's
            print(f'graft failed: {error}', file=sys.stderr)
            return 1
        print(f'wrote {args.out}\n{card.describe()}')
        print('ONNX Runtime vs torch: ' + ', '.join(f'{h} {v:.4g}' for h, v in report.items()))
        return 0
    if args.command == 'fit-share':
        from training.layout_share import fit_class_share  # noqa: PLC0415  (imports this)

        fitted = fit_class_share(args.probe, resolve_model_path(args.model), args.tree,
                                 args.truth)
        args.out.write_text(json.dumps(fitted, indent=2) + '\n')
        print(f"{fitted['frames']} frames; shares by class: {fitted['shares']} "
              f"(all pixels: {fitted['overall']}) -> {args.out}")
        return 0
    net = load(args.probe)
    predictor = Predictor(resolve_model_path(args.model))
    sets = frame_sets(args.frames, args.kitti, args.split, textured=args.textured)
    if not sets:
        raise SystemExit('nothing to score: give --frames and/or --kitti')
    results = {name: score_frames(frames, net, predictor, args.shares)
               for name, frames in sets.items()}
    print('| set | predictor | ' + ' | '.join(HEADLINE) + ' |')
    print('|---|---|' + '---|' * len(HEADLINE))
    for name, by_predictor in results.items():
        for predictor_name, metrics in by_predictor.items():
            print(f'| {name} | {predictor_name} | '
                  + ' | '.join(f'{metrics[k]:.4f}' for k in HEADLINE) + ' |')
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
