"""The deployable default: a light encoder, a shared light decoder, three small heads.

MobileNetV3-Small (torchvision) -> FPN-style decoder at stride 4 -> one
3x3+1x1 head each for normalised log depth, depth intervals and semantic
segmentation, upsampled bilinearly to the input. About 1.1 M parameters
(a ~4.5 MB ONNX file), trained with sparse losses and learned uncertainty
weighting (the MultiDepth recipe, plus segmentation).

``segmentation_cue_width`` > 0 adds :class:`SegmentationCue`: the depth head's
output corrected by a small branch that reads the segmentation (its class
probabilities, detached, so depth's loss never bends the segmentation) and
that depth, with a tall vertical reach, so that depth may learn what the
segmentation knows of what stands where (docs/training.md, "The segmentation
cue"). Its last convolution starts at zero: a network built with it computes
exactly what the same weights compute without it, and an export without the
branch loads into it (:attr:`DefaultNet.starts_neutral`).

``layout_widths`` (non-empty) adds :class:`~training.nets.layout.LayoutBranch`: a small
U-Net that reads only the segmentation's class ids and position and gives depth, mixed
with the depth head's in ln metres by a share that starts at 0 (neutral as the cue is).
A layout probe trained on this network's segmentation (``python -m training
layout-probe``) is grafted into it by ``layout-probe graft`` (docs/training.md, "Depth
from the segmentation alone: a probe"). ``layout_confidence`` (low, high) gates the share by
the segmentation's confidence, pixel by pixel, and ``layout_class_share`` by its class
(:class:`~training.nets.layout.LayoutBranch`).

``refine_widths`` (non-empty) adds :class:`~training.nets.layout.RefineBranch` after it: a
refiner (the same U-Net reading the depth as well) whose correction is applied by the
share ``refine_mix`` (0, neutral, by default); ``layout-probe graft`` puts a refiner trained
on this network's depth and segmentation in it (docs/training.md, "A refiner that reads the
model's depth"). ``layout_depth_range``, the depth coding's, is both branches'.
``refine_far_classes`` are the classes whose depth the refiner reads as the coding's far
end (the card's far classes: the prediction's +inf). ``refine_confidence`` has the refiner
read the confidence as well, as the exported model reports it (the interval head's mass
around the depth, in the coding of ``layout_depth_range`` and ``num_intervals``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtdepth_ros.inference.depth_coding import MULTIDEPTH_KITTI, DepthCoding
from training.losses import CompositeLoss, SparseCrossEntropy, SparseMSE
from training.nets.encoders import build_encoder
from training.nets.heads import ConvHead, LightDecoder, upsample_to
from training.nets.layout import LayoutBranch, RefineBranch
from training.nets.registry import MultiTaskNet, register_model

NUM_CLASSES = 19  # Cityscapes train ids
DECODER_WIDTH = 64
HEAD_WIDTH = 32
DECODER_FIRST_STAGE = 1  # stride 4: finest stage the decoder uses
# The segmentation cue's vertical reach: (k x 1) convolutions at these dilations (rows at
# stride 4), after a 3x3 one: 1 + 2 + 4 * (1 + 2 + 4) = 31 rows, 124 input rows.
CUE_KERNEL_ROWS = 5
CUE_DILATIONS = (1, 2, 4)


class SegmentationCue(nn.Module):
    """A correction of normalised log depth from the segmentation and that depth.

    Softmax of the segmentation logits (detached) and the depth map, both at the
    decoder's stride, -> 3x3 conv -> tall (k x 1) dilated convs with residuals ->
    1x1 conv to one channel, zero-initialised (module docstring).
    """

    def __init__(self, num_classes: int, width: int) -> None:
        super().__init__()
        self.enter = nn.Conv2d(num_classes + 1, width, 3, padding=1)
        half = CUE_KERNEL_ROWS // 2
        self.vertical = nn.ModuleList(
            nn.Conv2d(width, width, (CUE_KERNEL_ROWS, 1), padding=(half * d, 0), dilation=(d, 1))
            for d in CUE_DILATIONS)
        self.out = nn.Conv2d(width, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, logits: Tensor, depth: Tensor) -> Tensor:  # -> (N, 1, h, w)
        x = F.relu(self.enter(torch.cat([logits.detach().softmax(dim=1), depth], dim=1)))
        for conv in self.vertical:
            x = x + F.relu(conv(x))
        return self.out(x)


def default_loss(weighting: str = 'uncertainty', weights: Mapping[str, float] | None = None,
                 uncertainty_init: float = 1.0) -> CompositeLoss:
    """Sparse MSE (depth) + sparse cross-entropy (intervals, segmentation), learned weights."""
    return CompositeLoss(
        {'depth': SparseMSE('depth'), 'intervals': SparseCrossEntropy('intervals'),
         'segmentation': SparseCrossEntropy('segmentation', target='labels')},
        weighting=weighting, weights=weights, uncertainty_init=uncertainty_init)


@register_model(
    'default', heads=('depth', 'intervals', 'segmentation'), loss=default_loss,
    tiny={'decoder_width': 16, 'head_width': 8, 'encoder_args': {'width_mult': 0.25}},
    description='deployable default: MobileNetV3-Small, light decoder, depth/intervals/segmentation')
class DefaultNet(MultiTaskNet):
    def __init__(self, num_intervals: int = MULTIDEPTH_KITTI.num_intervals,
                 num_classes: int = NUM_CLASSES, encoder: str = 'mobilenet_v3_small',
                 pretrained: bool = False, encoder_args: Mapping[str, Any] | None = None,
                 decoder_width: int = DECODER_WIDTH, head_width: int = HEAD_WIDTH,
                 segmentation_cue_width: int = 0, layout_widths: Sequence[int] = (),
                 layout_depth_range: Sequence[float] = (MULTIDEPTH_KITTI.d_min,
                                                        MULTIDEPTH_KITTI.d_max),
                 layout_confidence: Sequence[float] = (),
                 layout_class_share: Sequence[float] = (),
                 refine_widths: Sequence[int] = (),
                 refine_far_classes: Sequence[int] = (), refine_mix: float = 0.0,
                 refine_confidence: bool = False) -> None:
        super().__init__({'depth': 1, 'intervals': num_intervals, 'segmentation': num_classes})
        self.encoder = build_encoder(encoder, pretrained, **dict(encoder_args or {}))
        self.decoder = LightDecoder(self.encoder.channels, decoder_width, DECODER_FIRST_STAGE)
        self.task_heads = nn.ModuleDict({
            task: ConvHead(decoder_width, out, head_width)
            for task, out in self.head_channels.items()})
        self.segmentation_cue = SegmentationCue(num_classes, segmentation_cue_width) \
            if segmentation_cue_width > 0 else None
        self.layout = LayoutBranch(num_classes, layout_widths, (
            float(layout_depth_range[0]), float(layout_depth_range[1])),
            layout_confidence, layout_class_share) if layout_widths else None
        self.refine = RefineBranch(num_classes, refine_widths, (
            float(layout_depth_range[0]), float(layout_depth_range[1])),
            refine_far_classes, refine_mix, DepthCoding(
                float(layout_depth_range[0]), float(layout_depth_range[1]), num_intervals)
            if refine_confidence else None) if refine_widths else None
        # Parameters an export of this network without them may lack: they start neutral.
        self.starts_neutral = tuple(
            prefix for prefix, branch in (('segmentation_cue.', self.segmentation_cue),
                                          ('layout.', self.layout), ('refine.', self.refine))
            if branch is not None)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        shared = self.decoder(self.encoder(image))  # (N, decoder_width, H/4, W/4)
        outputs = {task: head(shared) for task, head in self.task_heads.items()}
        if self.segmentation_cue is not None:
            outputs['depth'] = outputs['depth'] + self.segmentation_cue(
                outputs['segmentation'], outputs['depth'])
        size = image.shape[-2:]
        outputs = {task: upsample_to(output, size) for task, output in outputs.items()}
        if self.layout is not None:
            outputs['depth'] = self.layout(outputs['segmentation'], outputs['depth'])
        if self.refine is not None:
            outputs['depth'] = self.refine(outputs['segmentation'], outputs['depth'],
                                           outputs['intervals'])
        return outputs
