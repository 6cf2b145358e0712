"""MultitaskNet (Rajvanshi & Kumar): VGG-16-BN encoder, unpooling decoders per task.

Built as the public MultitaskNet code (github.com/imvinod/MultitaskNet,
``models/model.py``) builds it, a FuseNet/SegNet-style network: the five
conv stages of VGG-16 with BN (conv-BN-ReLU, "CBR"), each followed by a 2x2
max-pool that keeps its indices, dropout 0.5 after pools 3, 4 and 5. Each
task has its own decoder of five stages; a stage max-unpools with the
matching encoder stage's indices, concatenates that stage's (pre-pool)
output as a skip connection and applies CBRs::

    stage 5: 512+512 -> 1024 -> 1024 -> 512, dropout 0.5
    stage 4: 512+512 -> 1024 -> 1024 -> 256, dropout 0.5
    stage 3: 256+256 ->  512 ->  512 -> 128, dropout 0.5
    stage 2: 128+128 ->  256 ->   64
    stage 1:  64+64  ->   64 -> 3x3 score conv (40 classes | depth)

The depth decoder's score is log metres (returned as metres). The loss is
``lambda * segmentation + (1 - lambda) * depth`` with lambda = 0.5 as in the
code; depth is Eigen's scale-invariant loss plus MegaDepth's multi-scale
gradient matching term.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.losses import CompositeLoss, LossTerm, SparseCrossEntropy
from training.losses.gradient import MATCHING_SCALES, gradient_matching_loss
from training.losses.scale_invariant import SI_LAMBDA, scale_invariant_loss
from training.losses.sparse import HAS_DEPTH
from training.nets._log_depth import log_depth_to_metres
from training.nets._vgg import vgg16_stages
from training.nets.registry import MultiTaskNet, register_model

HEADS = ('segmentation', 'depth')
NYU_CLASSES = 40
DROPOUT = 0.5
POOL = (2, 2)  # VGG's 2x2 max-pools, unpooled with their indices
ENCODER_DROPOUT_STAGES = (2, 3, 4)  # after pools 3, 4, 5 (0-based stage index)
# Decoder CBR widths per stage (stage 5 first), at width_divisor 1.
DECODER_WIDTHS = ((1024, 1024, 512), (1024, 1024, 256), (512, 512, 128), (256, 64), (64,))
DECODER_DROPOUT_STAGES = (0, 1, 2)  # decoder stages 5, 4, 3
TASK_LAMBDA = 0.5  # loss = lambda * segmentation + (1 - lambda) * depth


def cbr(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class UnpoolingDecoder(nn.Module):
    """Five stages of max-unpool, skip concatenation and CBRs, then a 3x3 score conv."""

    def __init__(self, skip_widths: Sequence[int], out_channels: int,
                 width_divisor: int = 1) -> None:
        super().__init__()
        stages = []
        in_width = skip_widths[-1]  # the unpooled bottleneck
        for index, (skip, widths) in enumerate(zip(reversed(skip_widths), DECODER_WIDTHS)):
            layers: list[nn.Module] = []
            width = in_width + skip
            for out in widths:
                out = max(1, out // width_divisor)
                layers.append(cbr(width, out))
                width = out
            if index in DECODER_DROPOUT_STAGES:
                layers.append(nn.Dropout(DROPOUT))
            stages.append(nn.Sequential(*layers))
            in_width = width
        self.stages = nn.ModuleList(stages)
        self.score = nn.Conv2d(in_width, out_channels, 3, padding=1)

    def forward(self, x: Tensor, skips: Sequence[Tensor], indices: Sequence[Tensor]) -> Tensor:
        for stage, skip, index in zip(self.stages, reversed(skips), reversed(indices)):
            x = F.max_unpool2d(x, index, kernel_size=POOL, stride=POOL,
                               output_size=skip.shape[-2:])
            x = stage(torch.cat([x, skip], dim=1))
        return self.score(x)


class ScaleInvariantGradientLoss(LossTerm):
    """Eigen's scale-invariant loss + ``gradient_weight`` x MegaDepth's gradient matching."""

    def __init__(self, head: str = 'depth', lam: float = SI_LAMBDA,
                 gradient_weight: float = 1.0, scales: int = MATCHING_SCALES) -> None:
        super().__init__(head, 'regression', HAS_DEPTH)
        self.lam = lam
        self.gradient_weight = gradient_weight
        self.scales = scales

    def forward(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor | None:
        prediction, target = outputs[self.head], batch['depth']
        valid = batch['depth_valid'].bool()
        loss = scale_invariant_loss(prediction, target, valid, self.lam)
        if loss is None or self.gradient_weight == 0:
            return loss
        matching = gradient_matching_loss(prediction, target, valid, self.scales)
        return loss if matching is None else loss + self.gradient_weight * matching


def multitasknet_loss(weighting: str = 'fixed', weights: Mapping[str, float] | None = None,
                      uncertainty_init: float = 1.0, task_lambda: float = TASK_LAMBDA,
                      si_lambda: float = SI_LAMBDA, gradient_weight: float = 1.0,
                      gradient_scales: int = MATCHING_SCALES,
                      heads: Sequence[str] = HEADS) -> CompositeLoss:
    """``task_lambda * CE + (1 - task_lambda) * (SI + gradient matching)``.

    Explicit ``weights`` replace the ``task_lambda`` split.
    """
    terms: dict[str, LossTerm] = {
        'segmentation': SparseCrossEntropy('segmentation', target='labels'),
        'depth': ScaleInvariantGradientLoss('depth', si_lambda, gradient_weight,
                                            gradient_scales)}
    unknown = sorted(set(heads) - set(terms))
    if unknown:
        raise ValueError(f'MultitaskNet loss has no heads {unknown}; it has {list(terms)}')
    if weights is None:
        weights = {'segmentation': task_lambda, 'depth': 1.0 - task_lambda}
    return CompositeLoss({head: terms[head] for head in heads}, weighting=weighting,
                         weights={h: w for h, w in weights.items() if h in heads},
                         uncertainty_init=uncertainty_init)


@register_model(
    'multitasknet', heads=HEADS, loss=multitasknet_loss, depth_encoding='metres',
    tiny={'width_divisor': 16},
    description='MultitaskNet (Rajvanshi & Kumar): VGG-16-BN encoder with pooling indices, '
                'unpooling decoders for segmentation and depth')
class MultitaskNet(MultiTaskNet):
    def __init__(self, num_classes: int = NYU_CLASSES, pretrained: bool = False,
                 width_divisor: int = 1) -> None:
        """``width_divisor`` > 1 narrows every layer (tests only)."""
        super().__init__({'segmentation': num_classes, 'depth': 1})
        self.encoder, widths = vgg16_stages(batch_norm=True, pretrained=pretrained,
                                            width_divisor=width_divisor)
        self.dropout = nn.Dropout(DROPOUT)
        self.decoders = nn.ModuleDict({
            head: UnpoolingDecoder(widths, channels, width_divisor)
            for head, channels in self.head_channels.items()})

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        x = image
        skips, indices = [], []
        for index, stage in enumerate(self.encoder):
            skip = stage(x)  # (N, C_i, H / 2^i, W / 2^i)
            x, pooled_at = F.max_pool2d(skip, kernel_size=POOL, stride=POOL, return_indices=True)
            if index in ENCODER_DROPOUT_STAGES:
                x = self.dropout(x)
            skips.append(skip)
            indices.append(pooled_at)
        outputs = {head: decoder(x, skips, indices) for head, decoder in self.decoders.items()}
        outputs['depth'] = log_depth_to_metres(outputs['depth'])  # (N, 1, H, W)
        return outputs
