"""The layout branch's share fitted class by class on generated frames.

``python -m training layout-probe fit-share PROBE.pt --tree TREE [TREE ...] --model M.onnx
--out share.json``

The branch mixes the depth head and the probe in ln metres, ``ln d = ln d_head + share *
(ln d_layout - ln d_head)``. One share for every pixel is a compromise between classes the
probe reads well by their place in the frame and classes it can only guess from an outline.
For each class ``c`` of the model's segmentation the share that minimises the squared error
in ln depth over a tree's ground truth has a closed form: with ``a = ln d_layout -
ln d_head`` and ``b = ln d_gt - ln d_head`` over the class's valid pixels, ``share_c =
sum(a b) / sum(a a)``, clipped to 0..1. A class with fewer than ``MIN_PIXELS`` valid pixels
takes the share fitted on all pixels. Fit it on frames the probe never trained on (its
training frames flatter it) and that no rule reads. The truth is the tree's simulated
scan (``truth='scan'``), the pixels KITTI's protocols score, or its dense depth: dense
truth covers upper façades and tree crowns the scan never sees, where the probe beats
the head by far, and pulls the share up (0.98 against 0.68 on the scan's pixels of the
same frames; docs/training.md, "The branch's share fitted class by class").

``layout-probe graft ... --class-share share.json`` puts the table in the branch
(:class:`~training.nets.layout.LayoutBranch`); the file names the probe and the model by
sha256 and the graft refuses another's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtdepth_ros.inference.backends.engine_cache import file_sha256
from mtdepth_ros.inference.predictor import Predictor
from training.data.io import read_rgb
from training.layout_probe import TRUTHS, input_depth, layout_depth, load, truth_frames
from training.layout_train import VALID_M
from training.nets.layout import check_class_share

MIN_PIXELS = 100_000


def fit_class_share(probe: Path, model: Path, trees: Sequence[Path],
                    truth: str = 'scan') -> dict[str, Any]:
    """The table (module docstring) and what it was fitted on: JSON-ready."""
    if truth not in TRUTHS:
        raise ValueError(f'truth {truth!r}: one of {TRUTHS}')
    predictor = Predictor(model)
    coding = predictor.card.depth_coding
    if coding is None:
        raise ValueError(f'{model}: its card has no depth coding')
    net = load(probe)
    if net.depth_input:
        raise SystemExit(f'{probe} is a refiner: fit-share fits the share of a probe of the '
                         'segmentation alone')
    sums = np.zeros((3, net.classes))  # sum(a b), sum(a a), pixels, by class
    frames = 0
    for image_path, depth in truth_frames(trees, truth):
        prediction = predictor.predict(read_rgb(image_path), heads=['depth', 'segmentation'])
        assert prediction.depth is not None and prediction.segmentation is not None
        metres = input_depth(predictor, prediction, depth)
        valid = (metres > VALID_M[0]) & (metres < VALID_M[1]) & np.isfinite(prediction.depth)
        ln_head = np.log(np.clip(prediction.depth[valid], coding.d_min, coding.d_max))
        layout = layout_depth(net, prediction.segmentation)[valid]
        a = np.log(np.clip(layout, coding.d_min, coding.d_max)) - ln_head
        b = np.log(metres[valid]) - ln_head
        labels = prediction.segmentation[valid].astype(np.int64)
        for row, weights in enumerate((a * b, a * a, np.ones_like(a))):
            sums[row] += np.bincount(labels, weights, minlength=net.classes)[:net.classes]
        frames += 1
    overall = float(np.clip(sums[0].sum() / max(sums[1].sum(), 1e-12), 0.0, 1.0))
    fitted = np.clip(sums[0] / np.maximum(sums[1], 1e-12), 0.0, 1.0)
    shares = np.where(sums[2] >= MIN_PIXELS, fitted, overall)
    return {'shares': [round(float(s), 4) for s in shares],
            'pixels': [int(n) for n in sums[2]], 'overall': round(overall, 4),
            'frames': frames, 'tree': ' + '.join(str(tree) for tree in trees), 'truth': truth,
            'probe': str(probe), 'probe_sha256': file_sha256(probe),
            'model': str(model), 'model_sha256': file_sha256(model)}


def read_class_share(path: Path, probe: Path, model: Path, classes: int) -> dict[str, Any]:
    """``path``'s table, refused with the reason unless fitted for ``probe`` in ``model``."""
    fitted = json.loads(path.read_text())
    for key, sha in (('probe_sha256', file_sha256(probe)), ('model_sha256', file_sha256(model))):
        if fitted.get(key) != sha:
            raise ValueError(f'{path} was fitted for another {key[:-7]} '
                             f'({str(fitted.get(key))[:12]}, not {sha[:12]}): fit it again')
    try:
        check_class_share(fitted.get('shares') or [], classes)
    except ValueError as error:
        raise ValueError(f'{path}: {error}') from None
    return fitted
