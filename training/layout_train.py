"""Training the layout probe and the refiner: ``python -m training layout-probe train``.

The probe (:mod:`training.layout_probe`, which prepares its data, scores and grafts it) is
fitted here: L1 plus scale-invariant loss on ln depth (:func:`layout_loss`), random mirror,
3 % of pixels given a random class, with ``--patch-noise`` patches of another class
(:func:`patch_noise`) and, for a refiner, with ``--row-fallback`` the real frames' failure
simulated on its input depth (:func:`row_fallback`), with ``--read-far`` the surfaces beside
the road read too far (:func:`read_far`). Every ``--save-every`` steps the run
saves the probe and, beside it, its state (:func:`state_path`: optimiser, schedule, random
generators), so that a run killed at any moment continues with ``--resume`` to bit for bit
the probe of a run never stopped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from mtdepth_ros.inference.ground_contact import STANDING_CLASSES
from training.checkpoints import atomic_save
from training.nets.layout import WIDTHS, LayoutNet

VALID_M = (0.5, 120.0)  # dense ground truth the loss reads
LABEL_NOISE = 0.03  # share of training pixels given a random class
PATCHES = (1, 4)  # --patch-noise: patches per chosen frame, at least and below
PATCH_ROWS, PATCH_COLUMNS = (3, 13), (3, 21)  # their size in probe cells, at least and below
SOURCE_KEYS = ('tree', 'model', 'model_sha256')  # prepare's record, kept in the probe
FALLBACK_SHARE = (0.3, 1.0)  # --row-fallback: how far a region is pulled to its row, from..to
REGION_CHANCE = 0.5  # --row-fallback, --read-far: each region's chance in a chosen frame
# --read-far: the classes the bundled model reads too far on the real frames, nine times in
# ten for terrain and wall (docs/training.md, "The machine lost a third time"), and how much
# farther a chosen region is read (log-uniform, from..to)
FAR_CLASSES = ('building', 'wall', 'fence', 'vegetation', 'terrain')
FAR_FACTOR = (1.1, 2.0)
SAVE_EVERY = 100  # train: steps between saves of the probe and the run's state


def layout_loss(predicted: Tensor, depth: Tensor) -> Tensor:
    """L1 plus scale-invariant (lambda 0.85) on ln depth, over the valid ground truth."""
    valid = (depth > VALID_M[0]) & (depth < VALID_M[1])
    error = predicted[valid] - torch.log(depth[valid])
    variance = (error.pow(2).mean() - 0.85 * error.mean().pow(2)).clamp(min=0)
    return error.abs().mean() + variance.sqrt()


def patch_noise(labels: Tensor, share: float, rng: np.random.Generator) -> Tensor:
    """``labels`` (N, h, w) with, in each frame chosen with probability ``share``, a few
    rectangles given the class of another pixel of that frame: a segmentation that errs in
    patches, a class spilling over its neighbours, rather than pixel by pixel."""
    labels = labels.clone()
    n, h, w = labels.shape
    for k in range(n):
        if rng.random() >= share:
            continue
        for _ in range(int(rng.integers(*PATCHES))):
            rows, columns = int(rng.integers(*PATCH_ROWS)), int(rng.integers(*PATCH_COLUMNS))
            top = int(rng.integers(0, max(1, h - rows)))
            left = int(rng.integers(0, max(1, w - columns)))
            source = labels[k, int(rng.integers(0, h)), int(rng.integers(0, w))]
            labels[k, top:top + rows, left:left + columns] = source
    return labels


def chosen_regions(labels: np.ndarray, classes: Sequence[int],
                   rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Masks of the connected regions (4-connected) of each of ``classes`` in one frame's
    ``labels`` (h, w), each with chance ``REGION_CHANCE``."""
    for class_id in classes:
        mask = (labels == class_id).astype(np.uint8)
        if not mask.any():
            continue
        count, regions = cv2.connectedComponents(mask, connectivity=4)
        for region in range(1, count):
            if rng.random() < REGION_CHANCE:
                yield regions == region


def row_fallback(labels: np.ndarray, ln_depth: np.ndarray, share: float,
                 standing: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """``ln_depth`` (N, h, w) with, in each frame chosen with probability ``share``, regions
    of a ``standing`` class in ``labels`` (:func:`chosen_regions`) pulled toward their
    row's median depth by a share drawn from ``FALLBACK_SHARE``: a standing thing the
    network does not recognise drawn at its row's depth (docs/training.md, "Rows or
    content"), simulated on generated frames."""
    ln_depth = ln_depth.copy()
    for k in range(len(labels)):
        if rng.random() >= share:
            continue
        row = np.broadcast_to(np.median(ln_depth[k], axis=1, keepdims=True), ln_depth[k].shape)
        for where in chosen_regions(labels[k], standing, rng):
            pull = rng.uniform(*FALLBACK_SHARE)
            ln_depth[k][where] += pull * (row[where] - ln_depth[k][where])
    return ln_depth


def read_far(labels: np.ndarray, ln_depth: np.ndarray, share: float,
             far: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """``ln_depth`` (N, h, w) with, in each frame chosen with probability ``share``, regions
    of a ``far`` class in ``labels`` (:func:`chosen_regions`) read farther by a factor
    drawn log-uniform from ``FAR_FACTOR``: the real frames' facades, walls and verges read
    too far (docs/training.md, "The machine lost a third time"), simulated on generated
    frames."""
    ln_depth = ln_depth.copy()
    low, high = np.log(FAR_FACTOR)
    for k in range(len(labels)):
        if rng.random() >= share:
            continue
        for where in chosen_regions(labels[k], far, rng):
            ln_depth[k][where] += rng.uniform(low, high)
    return ln_depth


def state_path(out: Path) -> Path:
    """Where :func:`train` keeps the state of a run writing ``out`` until it finishes."""
    return out.with_name(out.name + '.state')


def _finished(out: Path, source: dict[str, Any]) -> bool:
    """Whether ``out`` is the probe of the run ``source`` describes, trained to its end."""
    if state_path(out).exists() or not out.exists():
        return False
    saved = torch.load(out, weights_only=True).get('source', {})
    return bool(saved == {**source, 'step': source['steps']})


def _resumed(out: Path, run: dict[str, Any]) -> dict[str, Any] | None:
    """The saved state of the run ``run`` describes, or None where it never saved one;
    refused when the state is another run's."""
    path = state_path(out)
    if not path.exists():
        return None
    state: dict[str, Any] = torch.load(path, weights_only=True)
    differ = sorted(key for key in run.keys() | state['run'].keys()
                    if run.get(key) != state['run'].get(key))
    if differ:
        raise SystemExit(f'{path}: the state of another run (differs in '
                         f'{", ".join(differ)}); run without --resume to start afresh')
    return state


@dataclass(frozen=True)
class TrainingFrames:
    """:func:`~training.layout_probe.prepare`'s files, one model's, their frames in order."""

    labels: Tensor  # (N, h, w) int64 class ids: the model's segmentation
    depth: Tensor  # (N, h, w) float32 metres: the dense ground truth
    model_depth: np.ndarray | None  # (N, h, w) float32 ln metres: a refiner's input
    confidence: Tensor | None  # (N, h, w) float32: the model's, where a refiner reads it
    classes: int
    names: list[str]  # the class names (prepare records them)
    source: dict[str, Any]  # what the probe learnt from: tree, model, its sha256, frames


def training_frames(paths: Sequence[Path]) -> TrainingFrames:
    """The frames of ``paths``; refused where they are not all one model's, or mix a
    probe's data with a refiner's (or a refiner's with and without the confidence)."""
    files = [np.load(path) for path in paths]
    first = files[0]
    with_depth = ['model_depth' in f for f in files]
    if any(with_depth) and not all(with_depth):
        raise SystemExit('a refiner\'s data and a probe\'s given together: prepare all of '
                         'them --with-depth, or none')
    with_confidence = ['model_confidence' in f for f in files]
    if any(with_confidence) and not (all(with_depth) and all(with_confidence)):
        raise SystemExit('a refiner that reads the confidence learns from data prepared '
                         '--with-depth --with-confidence, all of it')
    for path, other in zip(paths[1:], files[1:]):
        for key in ('classes', 'model_sha256'):
            if key in first and (key not in other or str(other[key]) != str(first[key])):
                raise SystemExit(f'{path}: another {key} than {paths[0]}\'s: one model\'s '
                                 'frames only')

    def joined(key: str) -> np.ndarray:
        return np.concatenate([f[key] for f in files])

    labels = torch.from_numpy(joined('labels').astype(np.int64))
    source: dict[str, Any] = {key: str(first[key]) for key in SOURCE_KEYS if key in first}
    if len(files) > 1:
        source['tree'] = ' + '.join(str(f['tree']) for f in files if 'tree' in f)
    return TrainingFrames(
        labels, torch.from_numpy(joined('depth').astype(np.float32)),
        joined('model_depth').astype(np.float32) if all(with_depth) else None,
        torch.from_numpy(joined('model_confidence').astype(np.float32))
        if all(with_confidence) else None,
        int(first['classes']), [str(name) for name in first['names']] if 'names' in first
        else [], {**source, 'frames': len(labels)})


def train(data: Path | Sequence[Path], out: Path, steps: int, seed: int, batch: int = 8,
          widths: Sequence[int] = WIDTHS, patch_share: float = 0.0,
          fallback_share: float = 0.0, far_share: float = 0.0, resume: bool = False,
          save_every: int = SAVE_EVERY) -> list[float]:
    """Fit a probe on ``data`` (one or more of :func:`~training.layout_probe.prepare`'s
    files, all of one model); saved to ``out`` every ``save_every`` steps and at the end,
    with the run's state beside it (:func:`state_path`, removed when the run ends). The
    losses of the steps this call ran.

    Data prepared ``with_depth`` makes a refiner (:class:`LayoutNet` ``depth_input``),
    which with ``fallback_share`` learns from that share of frames given
    :func:`row_fallback`, with ``far_share`` from that share given :func:`read_far`. With
    ``resume`` a run killed at any moment continues from its last save: the probe it ends
    with is bit for bit the uninterrupted run's."""
    if save_every < 1:
        raise SystemExit(f'--save-every {save_every}: save at least every step (1 or more)')
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    paths = [data] if isinstance(data, Path) else list(data)
    frames = training_frames(paths)
    labels, depth, model_depth, confidence = (frames.labels, frames.depth, frames.model_depth,
                                              frames.confidence)
    refiner = model_depth is not None
    for flag, share in (('--row-fallback', fallback_share), ('--read-far', far_share)):
        if share and not refiner:
            raise SystemExit(f'{flag} corrects a model\'s depth: prepare --with-depth')
    standing = [i for i, name in enumerate(frames.names) if name in STANDING_CLASSES]
    if fallback_share and not standing:
        raise SystemExit('--row-fallback needs the class names (prepare records them) with a '
                         'standing class (car, building, ...)')
    far = [i for i, name in enumerate(frames.names) if name in FAR_CLASSES]
    if far_share and not far:
        raise SystemExit(f'--read-far needs the class names (prepare records them) with one '
                         f'of {", ".join(FAR_CLASSES)}')
    net = LayoutNet(frames.classes, widths, depth_input=refiner,
                    confidence_input=confidence is not None)
    source = {**frames.source, 'steps': steps, 'seed': seed, 'patch_noise': patch_share,
              **({'row_fallback': fallback_share} if refiner else {}),
              **({'read_far': far_share} if far_share else {})}  # (older records lack it)
    optimiser = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 2e-3, total_steps=steps,
                                                   pct_start=0.1)
    # What makes two runs one (the probe's record and the rest of the arguments): a state
    # saved by another is refused on --resume.
    run = {**source, 'data': [str(path.resolve()) for path in paths],
           'sizes': [path.stat().st_size for path in paths], 'batch': batch,
           'widths': list(widths)}
    if resume and _finished(out, source):
        print(f'{out}: already trained ({steps} steps); nothing to resume', flush=True)
        return []
    start = 0
    state = _resumed(out, run) if resume else None
    if state is not None:
        net.load_state_dict(state['net'])
        optimiser.load_state_dict(state['optimiser'])
        schedule.load_state_dict(state['schedule'])
        rng.bit_generator.state = state['rng']
        torch.set_rng_state(state['torch_rng'])
        start = int(state['step'])
        print(f'resumed at step {start}/{steps} from {state_path(out)}', flush=True)
    losses: list[float] = []
    for step in range(start, steps):
        chosen = torch.from_numpy(rng.integers(0, len(labels), batch))
        x, target = labels[chosen], depth[chosen]
        given = torch.from_numpy(model_depth[chosen.numpy()]) if model_depth is not None \
            else None
        given_confidence = confidence[chosen] if confidence is not None else None
        if rng.random() < 0.5:
            x, target = x.flip(-1), target.flip(-1)
            given = given.flip(-1) if given is not None else None
            given_confidence = given_confidence.flip(-1) \
                if given_confidence is not None else None
        if given is not None and fallback_share:
            given = torch.from_numpy(row_fallback(x.numpy(), given.numpy(), fallback_share,
                                                  standing, rng))
        if given is not None and far_share:
            given = torch.from_numpy(read_far(x.numpy(), given.numpy(), far_share, far, rng))
        noise = torch.from_numpy(rng.random(x.shape) < LABEL_NOISE)
        x = torch.where(noise, torch.from_numpy(rng.integers(0, net.classes, x.shape)), x)
        if patch_share:
            x = patch_noise(x, patch_share, rng)
        loss = layout_loss(net(x, given, given_confidence), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if (step + 1) % save_every == 0 or step + 1 == steps:
            print(f'step {step + 1}/{steps} loss {np.mean(losses[-save_every:]):.4f}',
                  flush=True)
            if step + 1 < steps:  # the state first: a probe is never ahead of its state
                atomic_save({'run': run, 'step': step + 1, 'net': net.state_dict(),
                             'optimiser': optimiser.state_dict(),
                             'schedule': schedule.state_dict(), 'rng': rng.bit_generator.state,
                             'torch_rng': torch.get_rng_state()}, state_path(out))
            atomic_save({'classes': net.classes, 'widths': list(widths),
                         'depth_input': refiner, 'confidence_input': confidence is not None,
                         'state': net.state_dict(),
                         'source': {**source, 'step': step + 1}}, out)
    state_path(out).unlink(missing_ok=True)
    return losses
