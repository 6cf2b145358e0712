"""Semantic booster (Jiao, Cao, Song & Lau, ECCV 2018, "Look Deeper into Depth").

A synergy network: a shared ResNet-50 encoder, ``conv2`` (1x1, 2048 -> 1024,
+ BN, as in Laina et al.'s FCRN that the paper builds on), then a depth and a
semantic branch of four up-convolutions each (1024 -> 512 -> 256 -> 128 ->
64, stride 32 -> 2). Between consecutive up-convolutions a lateral sharing
unit (LSU) lets each branch add the other's features with learned scalar
weights on top of an identity mapping. Each branch ends in semi-dense
up-skip connections: ``h(f_in) + sum_i h(f_i)`` over ``conv2``'s output and
the four up-convolutions, ``h`` = 1x1 conv to 64 channels + bilinear resize
to the last up-convolution's resolution, then a 3x3 convolution predicts
depth (log metres) or the 40 NYU class logits, resized to the input.

Mixed supervision (the paper's KITTI depth + Cityscapes labels scheme):
``forward(image, has_depth=..., has_labels=...)`` stops gradients through
the LSUs per sample, so a sample without labels sends no gradient into the
semantic branch (its features reach the depth branch detached) and one
without depth none into the depth branch. The loss leaves out the missing
task's term, so a depth-only batch trains the encoder and depth branch only.
Without the flags (inference, export, fully labelled data) nothing is stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from training.losses import CompositeLoss, LossTerm, SparseCrossEntropy
from training.losses.attention import NYU_MAX_DEPTH, DepthAwareLoss, FocalLoss
from training.losses.gradient import gradient_l1_loss
from training.losses.sparse import HAS_DEPTH
from training.nets._log_depth import log_depth_to_metres
from training.nets.encoders import build_encoder
from training.nets.heads import upsample_to
from training.nets.registry import MultiTaskNet, register_model

HEADS = ('depth', 'segmentation')
NYU_CLASSES = 40
BOTTLENECK = 1024  # conv2: 2048 -> 1024
UP_CONVS = 4  # each halves the channels and doubles the resolution
UP_KERNEL = 5  # Laina et al.'s up-convolution: 2x unpooling + 5x5 convolution
LSU_CROSS_INIT = 0.1  # initial weight of the other branch's features in an LSU


def up_convolution(in_channels: int, out_channels: int) -> nn.Sequential:
    """Zero-insertion 2x upsampling + 5x5 conv, written as one stride-2 transposed conv."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, UP_KERNEL, stride=2,
                           padding=UP_KERNEL // 2, output_padding=1, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class LateralSharing(nn.Module):
    """One branch's half of an LSU: ``own + w_own * own + w_other * other``."""

    def __init__(self, cross_init: float = LSU_CROSS_INIT) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor([0.0, cross_init]))  # (w_own, w_other)

    def forward(self, own: Tensor, other: Tensor) -> Tensor:
        return own + self.weight[0] * own + self.weight[1] * other


class Branch(nn.Module):
    """One task's four up-convolutions, three LSU halves and its up-skip predictor."""

    def __init__(self, widths: Sequence[int], out_channels: int,
                 cross_init: float = LSU_CROSS_INIT) -> None:
        super().__init__()
        self.up = nn.ModuleList(
            [up_convolution(a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.share = nn.ModuleList([LateralSharing(cross_init) for _ in widths[2:]])
        # h(f) for conv2's output and every up-convolution's, summed at the finest scale.
        self.skips = nn.ModuleList([nn.Conv2d(w, widths[-1], 1) for w in widths])
        self.predict = nn.Sequential(nn.ReLU(inplace=True),
                                     nn.Conv2d(widths[-1], out_channels, 3, padding=1))

    def up_skip(self, features: Sequence[Tensor]) -> Tensor:
        """``sum_i h(f_i)`` then the 3x3 predictor, at the last feature's resolution."""
        size = features[-1].shape[-2:]
        # The 1x1 conv runs before the resize: both are linear, so this is
        # h(f) exactly, at a fraction of the cost on the 1024-channel map.
        total = torch.stack([upsample_to(skip(f), size)
                             for skip, f in zip(self.skips, features)]).sum(dim=0)
        return self.predict(total)


def stop_unsupervised(x: Tensor, supervised: Tensor | None) -> Tensor:
    """``x`` with its gradient stopped for the samples whose flag is false."""
    if supervised is None:
        return x
    keep = supervised.reshape(-1, 1, 1, 1).to(device=x.device, dtype=torch.bool)
    return torch.where(keep, x, x.detach())


class JiaoDepthLoss(LossTerm):
    """Depth-aware objective ``L_DA`` plus a depth-gradient L1 term (weight ``gradient_weight``)."""

    def __init__(self, max_depth: float = NYU_MAX_DEPTH, gradient_weight: float = 1.0) -> None:
        super().__init__('depth', 'regression', HAS_DEPTH)
        self.attention = DepthAwareLoss('depth', max_depth)
        self.gradient_weight = gradient_weight

    def forward(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor | None:
        loss = self.attention(outputs, batch)
        if loss is None or self.gradient_weight == 0:
            return loss
        edges = gradient_l1_loss(outputs['depth'], batch['depth'], batch['depth_valid'].bool())
        return loss if edges is None else loss + self.gradient_weight * edges


def semantic_booster_loss(weighting: str = 'fixed', weights: Mapping[str, float] | None = None,
                          uncertainty_init: float = 1.0, max_depth: float = NYU_MAX_DEPTH,
                          gradient_weight: float = 1.0, segmentation_loss: str = 'focal',
                          focal_alpha: float = 0.25, focal_gamma: float = 2.0,
                          heads: Sequence[str] = HEADS) -> CompositeLoss:
    """Attention-driven loss: ``L_DA`` (+ gradient term) for depth, focal loss for classes.

    ``segmentation_loss='cross_entropy'`` swaps the focal loss for plain
    cross-entropy; ``max_depth`` is the dataset's depth cap (alpha's normaliser).
    """
    segmentation: LossTerm
    if segmentation_loss == 'focal':
        segmentation = FocalLoss('segmentation', focal_alpha, focal_gamma)
    elif segmentation_loss == 'cross_entropy':
        segmentation = SparseCrossEntropy('segmentation', target='labels')
    else:
        raise ValueError(f"segmentation_loss must be 'focal' or 'cross_entropy', "
                         f'got {segmentation_loss!r}')
    terms: dict[str, LossTerm] = {'depth': JiaoDepthLoss(max_depth, gradient_weight),
                                  'segmentation': segmentation}
    unknown = sorted(set(heads) - set(terms))
    if unknown:
        raise ValueError(f'semantic booster loss has no heads {unknown}; it has {list(terms)}')
    return CompositeLoss({head: terms[head] for head in heads}, weighting=weighting,
                         weights=weights, uncertainty_init=uncertainty_init)


@register_model(
    'semantic_booster', heads=HEADS, loss=semantic_booster_loss, depth_encoding='metres',
    tiny={'layers': (1, 1, 1, 1), 'bottleneck': 32},
    description='Semantic booster (Jiao et al. 2018): ResNet-50, depth + semantic '
                'branches with lateral sharing units, attention-driven loss')
class SemanticBooster(MultiTaskNet):
    def __init__(self, num_classes: int = NYU_CLASSES, pretrained: bool = False,
                 bottleneck: int = BOTTLENECK, layers: Sequence[int] | None = None,
                 lsu_cross_init: float = LSU_CROSS_INIT) -> None:
        """``bottleneck`` (conv2's width, halved by every up-conv) and ``layers``
        (ResNet blocks per stage) shrink the network for tests only."""
        super().__init__({'depth': 1, 'segmentation': num_classes})
        self.encoder = build_encoder('resnet50', pretrained,
                                     layers=tuple(layers) if layers is not None else None)
        self.conv2 = nn.Sequential(
            nn.Conv2d(self.encoder.channels[-1], bottleneck, 1, bias=False),
            nn.BatchNorm2d(bottleneck))
        widths = [bottleneck // 2 ** i for i in range(UP_CONVS + 1)]  # 1024 ... 64
        self.depth = Branch(widths, 1, lsu_cross_init)
        self.semantic = Branch(widths, num_classes, lsu_cross_init)

    def forward(self, image: Tensor, has_depth: Tensor | None = None,
                has_labels: Tensor | None = None) -> dict[str, Tensor]:
        """``has_depth`` / ``has_labels`` (N,) bool: see the module doc (mixed supervision)."""
        shared = self.conv2(self.encoder(image)[-1])  # (N, 1024, H/32, W/32)
        d, s = shared, shared
        depth_features, semantic_features = [shared], [shared]
        for index in range(UP_CONVS):
            d, s = self.depth.up[index](d), self.semantic.up[index](s)  # 2x finer each
            depth_features.append(d)
            semantic_features.append(s)
            if index < len(self.depth.share):
                d, s = (self.depth.share[index](d, stop_unsupervised(s, has_labels)),
                        self.semantic.share[index](s, stop_unsupervised(d, has_depth)))
        size = image.shape[-2:]
        log_depth = upsample_to(self.depth.up_skip(depth_features), size)  # (N, 1, H, W)
        logits = upsample_to(self.semantic.up_skip(semantic_features), size)  # (N, C, H, W)
        return {'depth': log_depth_to_metres(log_depth), 'segmentation': logits}
