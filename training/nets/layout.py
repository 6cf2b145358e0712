"""Depth from the scene's layout: class ids and position -> ln depth.

:class:`LayoutNet` is a small U-Net that reads only a segmentation's class ids
(one-hot) and each pixel's row and column, at a quarter of the network input's
resolution, and gives ln metres. It never sees appearance: what it learns from
generated frames depends on the renderer's look only through the segmentation
(docs/training.md, "Depth from the segmentation alone: a probe").

:class:`LayoutBranch` puts one inside a network: the segmentation's argmax (of the
detached logits, at the network input's resolution, every ``STRIDE``-th pixel, the
probe's input exactly), the U-Net, and a mix with the depth head in ln metres,
``ln d = ln d_head + mix * (ln d_layout - ln d_head)``, both held to the depth coding's
range. ``mix`` starts at 0: a network built with the branch computes what the same
weights compute without it. At 0.5 it is the geometric mean the probe was scored with.

With ``confidence`` (low, high) the share is gated per pixel by how sure the segmentation
is there: ``mix`` where its top class has probability ``high`` or more, none at ``low`` or
less, linear between. The probe reads the argmax alone, and where that is a guess (the
real frames' blobby trees and pavement) its depth is a guess too (docs/training.md, "The
branch's share gated by the segmentation's confidence").

With ``class_share`` (one entry per class) each pixel's share is ``mix`` times its class's
entry (the segmentation's argmax at the input's resolution): a table fitted on generated
frames by ``layout-probe fit-share`` (:mod:`training.layout_share`).

:class:`RefineBranch` puts a refiner inside a network, after the layout branch: the same
U-Net reading the network's depth as well, its correction applied with a fixed share
``mix`` (0 by default: neutral as the layout branch is; docs/training.md, "A refiner that
reads the model's depth").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mtdepth_ros.inference.depth_coding import DepthCoding
from training.losses.targets import interval_confidence

STRIDE = 4  # the layout maps: every STRIDE-th pixel of the network input's
WIDTHS = (32, 48, 64, 96, 128)  # the U-Net's channels, level by level
START_DEPTH_M = 15.0  # the output's bias at the start (its weights start at zero)


def network_input(labels: Tensor, classes: int) -> Tensor:
    """(N, h, w) int64 class ids -> (N, classes + 2, h, w): one-hot, then row and column in
    -1..1 (depth at a class depends on where in the image it is).

    The one-hot is a comparison with the class numbers (ONNX Equal), which every
    runtime has."""
    n, h, w = labels.shape
    ids = torch.arange(classes, device=labels.device).view(1, classes, 1, 1)
    onehot = (labels.clamp(0, classes - 1).unsqueeze(1) == ids).float()
    rows = torch.linspace(-1, 1, h, device=labels.device).view(1, 1, h, 1).expand(n, 1, h, w)
    columns = torch.linspace(-1, 1, w, device=labels.device).view(1, 1, 1, w).expand(n, 1, h, w)
    return torch.cat([onehot, rows, columns], 1)


def _block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True))


class LayoutNet(nn.Module):
    """Class ids -> ln depth: a U-Net of ``widths``, max-pooled down, bilinear up.

    With ``depth_input`` it is a refiner: it also reads a network's ln depth at the same
    pixels (one more input channel, centred on ln ``START_DEPTH_M``) and gives that depth
    plus a learnt correction, zero at the start (docs/training.md, "A refiner that reads
    the model's depth"). With ``confidence_input`` as well it reads the network's
    confidence at those pixels too (0..1, one more channel, centred on 0.5): where the
    network says it is unsure."""

    def __init__(self, classes: int, widths: Sequence[int] = WIDTHS,
                 depth_input: bool = False, confidence_input: bool = False) -> None:
        super().__init__()
        if not widths or min(widths) < 1:
            raise ValueError(f'LayoutNet needs positive widths, got {list(widths)}')
        if confidence_input and not depth_input:
            raise ValueError('LayoutNet reads a confidence only as a refiner (depth_input)')
        self.classes = classes
        self.widths = tuple(int(w) for w in widths)
        self.depth_input = depth_input
        self.confidence_input = confidence_input
        self.down = nn.ModuleList()
        previous = classes + 2 + int(depth_input) + int(confidence_input)
        for width in self.widths:
            self.down.append(_block(previous, width))
            previous = width
        self.up = nn.ModuleList()
        for width in reversed(self.widths[:-1]):
            self.up.append(_block(previous + width, width))
            previous = width
        self.out = nn.Conv2d(previous, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.constant_(self.out.bias, 0.0 if depth_input else math.log(START_DEPTH_M))

    def forward(self, labels: Tensor, ln_depth: Tensor | None = None,
                confidence: Tensor | None = None) -> Tensor:
        """(N, h, w) int64 class ids [and, for a refiner, (N, h, w) ln metres; with
        ``confidence_input``, (N, h, w) confidence] -> (N, h, w) ln metres."""
        x = network_input(labels, self.classes)
        if self.depth_input:
            if ln_depth is None:
                raise ValueError('a refiner (depth_input) reads the ln depth it corrects')
            x = torch.cat([x, (ln_depth - math.log(START_DEPTH_M)).unsqueeze(1)], 1)
        if self.confidence_input:
            if confidence is None:
                raise ValueError('this refiner (confidence_input) reads the confidence too')
            x = torch.cat([x, (confidence - 0.5).unsqueeze(1)], 1)
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else F.max_pool2d(x, 2, ceil_mode=True))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode='bilinear', align_corners=False)
            x = block(torch.cat([x, skip], 1))
        out = self.out(x)[:, 0]
        return out + ln_depth if ln_depth is not None and self.depth_input else out


def check_confidence(confidence: Sequence[float]) -> tuple[float, float]:
    """``confidence`` as the gate's (low, high); ValueError unless 0 <= low < high <= 1."""
    gate = tuple(float(c) for c in confidence)
    if len(gate) != 2 or not 0 <= gate[0] < gate[1] <= 1:
        raise ValueError('LayoutBranch confidence must be (low, high) with '
                         f'0 <= low < high <= 1, got {tuple(confidence)}')
    return gate[0], gate[1]


def check_class_share(class_share: Sequence[float], classes: int) -> None:
    """ValueError unless ``class_share`` holds one share in 0..1 for each of ``classes``."""
    if len(class_share) != classes or not all(0 <= share <= 1 for share in class_share):
        raise ValueError(f'LayoutBranch class_share needs {classes} entries in 0..1, '
                         f'got {len(class_share)}: {list(class_share)}')


class _LogDepthMix(nn.Module):
    """A branch that changes a network's normalised log depth in ln metres;
    ``depth_range`` is the depth coding's (d_min, d_max)."""

    def __init__(self, depth_range: tuple[float, float]) -> None:
        super().__init__()
        self.d_min, self.d_max = (float(d) for d in depth_range)
        if not 0 < self.d_min < self.d_max:
            raise ValueError(f'{type(self).__name__} needs 0 < d_min < d_max, got {depth_range}')
        self.log_span = math.log(self.d_max - self.d_min + 1.0)

    def _ln_metres(self, coded: Tensor) -> Tensor:
        """Normalised log depth -> ln metres held to the coding's range (its inverse)."""
        head = torch.exp(coded * self.log_span) + (self.d_min - 1.0)
        return torch.log(head.clamp(self.d_min, self.d_max))

    def _changed(self, coded: Tensor, ln_head: Tensor, ln_depth: Tensor) -> Tensor:
        """``coded`` plus the change from ``ln_head`` to ``ln_depth``: with no change it is
        ``coded`` exactly, even where the head overshoots the coding's range."""
        return coded + (self._encode(ln_depth) - self._encode(ln_head))

    def _encode(self, ln_metres: Tensor) -> Tensor:
        """ln metres, held to [ln d_min, ln d_max] (a ``mix`` trained outside 0..1 leaves
        it), -> normalised log depth."""
        held = ln_metres.clamp(math.log(self.d_min), math.log(self.d_max))
        return torch.log(torch.exp(held) - (self.d_min - 1.0)) / self.log_span


class LayoutBranch(_LogDepthMix):
    """The depth head's normalised log depth mixed with :class:`LayoutNet`'s (module
    docstring). ``depth_range`` is the depth coding's (d_min, d_max) in metres."""

    def __init__(self, classes: int, widths: Sequence[int],
                 depth_range: tuple[float, float], confidence: Sequence[float] = (),
                 class_share: Sequence[float] = ()) -> None:
        super().__init__(depth_range)
        if class_share:
            check_class_share(class_share, classes)
        # From the network's arguments, not its weights: a buffer outside the state dict.
        self.register_buffer('class_share', torch.tensor([float(c) for c in class_share]),
                             persistent=False)
        self.confidence = check_confidence(confidence) if confidence else ()
        self.layout = LayoutNet(classes, widths)
        self.mix = nn.Parameter(torch.zeros(()))  # the layout's share in ln depth

    def forward(self, logits: Tensor, coded: Tensor) -> Tensor:
        """Segmentation logits (N, K, H, W) and normalised log depth (N, 1, H, W), both at
        the network input's resolution -> the mixed normalised log depth (N, 1, H, W).

        The result is ``coded`` plus the mix's change, so that at ``mix`` 0 it is ``coded``
        exactly, even where the head overshoots the coding's range."""
        labels = logits.detach().argmax(1)[:, ::STRIDE, ::STRIDE]  # (N, H/4, W/4)
        # As the probe was scored: its metres resized as cv2's INTER_LINEAR resizes.
        layout = F.interpolate(self.layout(labels).exp().unsqueeze(1), size=coded.shape[-2:],
                               mode='bilinear', align_corners=False)
        ln_head = self._ln_metres(coded)
        ln_layout = torch.log(layout.clamp(self.d_min, self.d_max))
        ln_depth = ln_head + self._share(logits) * (ln_layout - ln_head)
        return self._changed(coded, ln_head, ln_depth)

    def _share(self, logits: Tensor) -> Tensor:
        """The layout's share: ``mix``, per pixel (N, 1, H, W) with ``class_share`` or
        ``confidence``."""
        share = self.mix
        if self.class_share.numel():
            share = share * self.class_share[logits.detach().argmax(1, keepdim=True)]
        if self.confidence:
            low, high = self.confidence
            sure = logits.detach().softmax(1).amax(1, keepdim=True)
            share = share * ((sure - low) / (high - low)).clamp(0.0, 1.0)
        return share


class RefineBranch(_LogDepthMix):
    """The network's depth corrected by a refiner (:class:`LayoutNet` with ``depth_input``)
    by a share ``mix`` in ln metres (module docstring): a fixed argument, not a weight, so
    that the card's network arguments carry it (an export folds a weight of exactly 1
    away), and at its default 0 the branch is neutral.

    As ``layout-probe score`` runs a refiner on a prediction: the segmentation's argmax and
    the depth in ln metres held to the coding's range, every ``STRIDE``-th pixel, the depth
    of a ``far_classes`` pixel (the sky, +inf in the prediction) read as ``d_max``; the
    refiner's correction, ``exp(ln refined - ln given)``, resized bilinearly to the input
    (as cv2's INTER_LINEAR) and raised to ``mix``: at 1 the refined depth, at 0.5 the
    geometric mean of it and the depth given. With ``confidence_coding`` (the depth
    coding, whose intervals the confidence counts) the refiner reads the confidence the
    exported model reports as well, from the interval logits and the depth given
    (:func:`~training.losses.targets.interval_confidence`)."""

    def __init__(self, classes: int, widths: Sequence[int], depth_range: tuple[float, float],
                 far_classes: Sequence[int] = (), mix: float = 0.0,
                 confidence_coding: DepthCoding | None = None) -> None:
        super().__init__(depth_range)
        if not 0 <= mix <= 1:
            raise ValueError(f'RefineBranch mix must be in 0..1, got {mix}')
        self.refiner = LayoutNet(classes, widths, depth_input=True,
                                 confidence_input=confidence_coding is not None)
        self.far_classes = tuple(int(c) for c in far_classes)
        self.mix = float(mix)
        self.confidence_coding = confidence_coding

    def forward(self, logits: Tensor, coded: Tensor,
                interval_logits: Tensor | None = None) -> Tensor:
        """Segmentation logits (N, K, H, W), normalised log depth (N, 1, H, W) [and, with
        ``confidence_coding``, the interval logits (N, I, H, W)] -> the corrected
        normalised log depth (N, 1, H, W)."""
        labels = logits.detach().argmax(1)[:, ::STRIDE, ::STRIDE]  # (N, H/4, W/4)
        ln_head = self._ln_metres(coded)
        given = ln_head[:, 0, ::STRIDE, ::STRIDE]
        for far in self.far_classes:  # one comparison each (ONNX Equal)
            given = torch.where(labels == far, torch.full_like(given, math.log(self.d_max)),
                                given)
        if not self.mix:
            return coded
        confidence = None
        if self.confidence_coding is not None:
            if interval_logits is None:
                raise ValueError('this refine branch reads the confidence: give the interval '
                                 'logits')
            confidence = interval_confidence(
                interval_logits.detach()[:, :, ::STRIDE, ::STRIDE],
                coded.detach()[:, :, ::STRIDE, ::STRIDE], self.confidence_coding)[:, 0]
        correction = torch.exp(self.refiner(labels, given, confidence) - given).unsqueeze(1)
        factor = F.interpolate(correction, size=coded.shape[-2:], mode='bilinear',
                               align_corners=False)
        return self._changed(coded, ln_head, ln_head + self.mix * torch.log(factor))
