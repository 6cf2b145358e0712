"""Export a checkpoint to one self-contained ONNX file with its model card.

``python -m training export CKPT --out model.onnx [--height H --width W]``
``python -m training card model.onnx [--json]``

The exported graph is the network plus the deploy decode (the contract in
``mtdepth_ros/inference/card.py``): input ``image`` float32 (1, 3, H, W) normalised RGB;
outputs, each (1, 1, H, W): ``depth`` (normalised log or metres, as the card
says), ``intervals`` int32 (argmax), ``confidence`` float 0..1 (the interval
softmax mass on the regression's bin and its two neighbours) and
``segmentation`` int32 (argmax). Model-specific training heads (gradients,
image class) are not exported.

After writing, the command runs the file with ONNX Runtime on a fixed random
image and compares every output with the checkpoint's in torch; it fails
(exit 1) when they disagree beyond tolerance.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mtdepth_ros.inference.backends.base import MAX_BATCH
from mtdepth_ros.inference.card import ModelCard
from mtdepth_ros.inference.depth_coding import DepthCoding
from mtdepth_ros.inference.model_file import embed_card, read_card
from training.checkpoints import EXTRA_KEY, load_checkpoint
from training.export_card import INPUT_NAME, build_card, deploy_heads, network_heads
from training.losses.targets import decode_depth, encode_depth, interval_confidence
from training.depth_decoding import coding_from_config
from training.nets import build_model, get_spec
from training.nets.registry import ModelSpec

LOG = logging.getLogger(__name__)

OPSET = 18
DEPTH_ATOL = 1e-3  # normalised log depth (or relative, for metres) after ONNX vs torch
CONFIDENCE_ATOL = 1e-3
# Argmax may flip where two logits tie within float error; confidence jumps where
# the regressed depth sits on an interval edge within float error (its window of
# intervals moves by one). Both must agree on this share of pixels.
LABEL_AGREEMENT = 0.999
CHECK_SEED = 0
AGREEMENT_HEADS = ('intervals', 'segmentation', 'confidence')  # reported as a share of pixels


class DeployNet(nn.Module):
    """The network with the deploy decode appended: what the vehicle runs."""

    def __init__(self, net: nn.Module, spec: ModelSpec, coding: DepthCoding,
                 depth_encoding: str) -> None:
        super().__init__()
        self.net = net
        self.coding = coding
        self.model_encoding = spec.depth_encoding
        self.depth_encoding = depth_encoding
        self.heads = deploy_heads(network_heads(net, spec))

    def _depth(self, raw: Tensor) -> tuple[Tensor, Tensor]:
        """(depth in the card's encoding, normalised log depth) from the depth head."""
        deploy = getattr(self.net, 'deploy_depth', None)
        if deploy is not None or self.model_encoding == 'metres':
            metres = deploy(raw) if deploy is not None else raw
            coded = encode_depth(metres.clamp(min=self.coding.d_min), self.coding)
        else:
            coded = raw
            metres = decode_depth(raw, self.coding)
        return (coded if self.depth_encoding == 'normalized_log' else metres), coded

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:  # (1, 3, H, W)
        outputs = self.net(image)
        result: dict[str, Tensor] = {}
        coded: Tensor | None = None
        if 'depth' in outputs:
            result['depth'], coded = self._depth(outputs['depth'].float())  # (1, 1, H, W)
        if 'intervals' in outputs:
            logits = outputs['intervals'].float()  # (1, K, H, W)
            result['intervals'] = logits.argmax(1, keepdim=True).to(torch.int32)
            if coded is not None:
                result['confidence'] = interval_confidence(logits, coded, self.coding)
        if 'segmentation' in outputs:
            result['segmentation'] = outputs['segmentation'].argmax(1, keepdim=True).to(torch.int32)
        return tuple(result[head] for head in self.heads)


# -- loading -------------------------------------------------------------------------------------


@dataclass
class LoadedCheckpoint:
    net: nn.Module
    spec: ModelSpec
    coding: DepthCoding
    hparams: dict[str, Any]
    extra: dict[str, Any]
    global_step: int


def load_for_export(path: str | Path) -> LoadedCheckpoint:
    """Network (eval mode), spec and coding of a Lightning checkpoint, read weights-only."""
    checkpoint = load_checkpoint(path)
    hparams = dict(checkpoint.get('hyper_parameters') or {})
    if 'net' not in hparams:
        raise ValueError(f'{path}: no hyper_parameters.net; not a training.module checkpoint')
    spec = get_spec(hparams['net'])
    net = build_model(hparams['net'], **(hparams.get('net_args') or {}))
    weights = {k[len('net.'):]: v for k, v in checkpoint['state_dict'].items()
               if k.startswith('net.')}
    net.load_state_dict(weights, strict=True)
    net.eval()
    coding = coding_from_config(hparams.get('depth_coding'))
    return LoadedCheckpoint(net, spec, coding, hparams, dict(checkpoint.get(EXTRA_KEY) or {}),
                            int(checkpoint.get('global_step', 0)))


def export_size(loaded: LoadedCheckpoint, height: int | None, width: int | None) -> tuple[int, int]:
    """The network input size: given, the recipe's ``export_size``, or the validation size."""
    facts = loaded.extra.get('data', {})
    multiple = loaded.spec.input_multiple
    if height and width:
        size = (height, width)
    elif facts.get('export_size'):
        size = (int(facts['export_size'][0]), int(facts['export_size'][1]))
    elif facts.get('image_size'):
        rows, cols = facts['image_size']
        size = (rows // multiple * multiple, cols // multiple * multiple)
    else:
        raise ValueError('the checkpoint records no image size; pass --height and --width')
    if any(s <= 0 or s % multiple for s in size):
        raise ValueError(f'input size {size} must be positive multiples of {multiple} '
                         f'for {loaded.spec.name}')
    return size


# -- export and check ----------------------------------------------------------------------------


def export_onnx(deploy: DeployNet, size: tuple[int, int], out: Path, optimize: bool = True) -> None:
    """torch.onnx.export (dynamo) into one self-contained file, batch dimension free
    (1 to MAX_BATCH images).

    ``optimize=False`` skips onnxscript's graph optimiser (constant folding,
    fusion): the same numbers, a larger graph, about half the export time.
    """
    # A free batch dimension: the node runs the frames of several cameras as one batch.
    # (The example has two images: torch.export would specialise a batch of one.)
    dummy = torch.zeros(2, 3, *size)
    batch = torch.export.Dim('batch', min=1, max=MAX_BATCH)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(deploy, (dummy,), str(out), input_names=[INPUT_NAME],
                          output_names=list(deploy.heads), opset_version=OPSET,
                          dynamo=True, external_data=False, optimize=optimize,
                          dynamic_shapes=({0: batch},), verbose=False)


def write_card(path: Path, card: ModelCard) -> None:
    import onnx  # noqa: PLC0415

    model = onnx.load(str(path))
    embed_card(model, card)
    onnx.save_model(model, str(path), save_as_external_data=False)
    leftovers = [p for p in path.parent.glob(path.name + '.data')]
    for stray in leftovers:  # an external-data file of an earlier export would mislead
        stray.unlink()


def compare_outputs(deploy: DeployNet, path: Path, size: tuple[int, int],
                    seed: int = CHECK_SEED) -> dict[str, float]:
    """Run torch and ONNX Runtime on one image; per head, the disagreement measured."""
    import onnxruntime as ort  # noqa: PLC0415

    image = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = dict(zip(deploy.heads, (t.numpy() for t in deploy(image))))
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    actual = dict(zip(deploy.heads, session.run(list(deploy.heads), {INPUT_NAME: image.numpy()})))
    report: dict[str, float] = {}
    for head in deploy.heads:
        a, e = actual[head], expected[head]
        if a.shape != e.shape or a.dtype != e.dtype:
            raise ValueError(f'ONNX output {head!r} is {a.dtype}{a.shape}, torch gives {e.dtype}{e.shape}')
        if head in ('intervals', 'segmentation'):
            report[head] = float((a == e).mean())
        elif head == 'confidence':
            report[head] = float((np.abs(a - e) <= CONFIDENCE_ATOL).mean())
        elif head == 'depth' and deploy.depth_encoding == 'metres':
            report[head] = float(np.max(np.abs(a - e) / np.maximum(np.abs(e), 1e-6)))
        else:
            report[head] = float(np.max(np.abs(a - e)))
    return report


def check_report(report: dict[str, float]) -> list[str]:
    """Problems in a :func:`compare_outputs` report (empty when within tolerance)."""
    problems = []
    for head, value in report.items():
        if head in AGREEMENT_HEADS:
            if value < LABEL_AGREEMENT:
                problems.append(f'{head}: only {value:.4%} of pixels agree')
        elif value > DEPTH_ATOL:
            problems.append(f'{head}: max error {value:.2e}')
    return problems


def export_checkpoint(checkpoint: str | Path, out: str | Path, height: int | None = None,
                      width: int | None = None, depth_encoding: str | None = None,
                      name: str | None = None, optimize: bool = True, strict: bool = True,
                      valid_range: tuple[float, float] | None = None,
                      frame_size: tuple[int, int] | None = None,
                      ) -> tuple[ModelCard, dict[str, float]]:
    """Export, embed the card, check against the checkpoint; raise on a mismatch.

    ``strict=False`` keeps the file and returns the comparison (``check_report``
    lists its problems) for a caller that reports it instead: the benchmark
    scores the file the vehicle would run and says how far it is from torch.
    """
    loaded = load_for_export(checkpoint)
    size = export_size(loaded, height, width)
    encoding = depth_encoding or loaded.spec.depth_encoding
    deploy = DeployNet(loaded.net, loaded.spec, loaded.coding, encoding).eval()
    card = build_card(loaded, size, encoding, name, valid_range, frame_size)
    path = Path(out)
    export_onnx(deploy, size, path, optimize)
    write_card(path, card)
    read_card(path)  # the vehicle's reader must accept it
    report = compare_outputs(deploy, path, size)
    problems = check_report(report)
    if problems and strict:
        raise RuntimeError(f'{path}: ONNX outputs differ from the checkpoint: ' + '; '.join(problems))
    return card, report


# -- command line --------------------------------------------------------------------------------


def export_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='python -m training export',
                                     description='export a checkpoint to ONNX with its model card')
    parser.add_argument('checkpoint', help='Lightning checkpoint (.ckpt)')
    parser.add_argument('--out', required=True, help='ONNX file to write')
    parser.add_argument('--height', type=int, help='network input height (default: the recipe)')
    parser.add_argument('--width', type=int, help='network input width (default: the recipe)')
    parser.add_argument('--depth-encoding', choices=('normalized_log', 'metres'),
                        help="the depth output's encoding (default: the model's own)")
    parser.add_argument('--name', help='model name in the card')
    parser.add_argument('--valid-range', type=float, nargs=2, metavar=('NEAR', 'FAR'),
                        help='metres the depth estimates hold in, for the card (default: the '
                             'depth coding\'s range); the node publishes +-inf outside')
    parser.add_argument('--frame-size', type=int, nargs=2, metavar=('WIDTH', 'HEIGHT'),
                        help='the training images the input was resized from, for the card '
                             '(default: as the checkpoint records); other aspects are cropped')
    args = parser.parse_args(argv)
    frame = (args.frame_size[1], args.frame_size[0]) if args.frame_size else None
    if args.valid_range and not 0 <= args.valid_range[0] < args.valid_range[1]:
        near, far = args.valid_range
        print(f'export failed: --valid-range {near} {far}: NEAR must be at least 0 and below FAR',
              file=sys.stderr)
        return 1
    try:
        card, report = export_checkpoint(args.checkpoint, args.out, args.height, args.width,
                                         args.depth_encoding, args.name,
                                         valid_range=tuple(args.valid_range) if args.valid_range
                                         else None, frame_size=frame)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f'export failed: {error}', file=sys.stderr)
        return 1
    size = Path(args.out).stat().st_size / 2 ** 20
    print(f'wrote {args.out} ({size:.1f} MiB)\n{card.describe()}')
    print('ONNX Runtime vs checkpoint: ' + ', '.join(
        f'{h}: {v:.4%} of pixels agree' if h in AGREEMENT_HEADS else f'{h}: max error {v:.2e}'
        for h, v in report.items()))
    return 0


def card_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='python -m training card',
                                     description='print the model card of an exported model')
    parser.add_argument('model', help='ONNX file')
    parser.add_argument('--json', action='store_true', help='print the whole card as JSON')
    args = parser.parse_args(argv)
    try:
        card = read_card(args.model)
    except ValueError as error:  # CardError
        print(error, file=sys.stderr)
        return 1
    print(card.to_json() if args.json else card.describe())
    return 0
