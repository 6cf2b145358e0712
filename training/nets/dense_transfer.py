"""Dense transfer (Nayak et al., after Alhashim & Wonka 2018, "DenseDepth").

Alhashim & Wonka's U-Net as their code builds it (github.com/ialhashim/
DenseDepth, ``model.py`` and ``PyTorch/model.py``): a DenseNet-169 encoder;
``conv2`` (1x1) on its ReLU'd last features, 1664 -> 1664 channels (the
paper's 42.6M-parameter model and the PyTorch code; the Keras code's
``is_halffeatures`` default halves it, ``decoder_width=0.5``); four
up-sampling blocks, each a bilinear 2x resize to the skip's size,
concatenation with the skip and two 3x3 convs with LeakyReLU(0.2), halving
the width (1664 -> 832 -> 416 -> 208 -> 104) with
skips from ``pool3`` (256, 1/16), ``pool2`` (128, 1/8), ``pool1`` (64, 1/4)
and ``conv1/relu`` (64, 1/2); ``conv3`` (3x3) to depth at half resolution,
resized here to the input. Nayak et al. add an image classification head;
we pool the encoder's last features globally and classify them linearly.

Depth: ``conv3`` predicts log metres (returned as metres); the loss works,
as Alhashim & Wonka's, on DepthNorm ``y = max_depth / depth`` (their
1000 cm / d on NYU = 10 m / d): ``1.0 * SSIM + 1.0 * edges + 0.1 * L1`` with
SSIM's value range ``max_depth / min_depth`` (their 1000 / 10).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision import models

from mtdepth_ros.conversions.labels import IGNORE_INDEX
from training.data.base import SCENE  # (N,) int64 scene class, IGNORE_INDEX where unknown
from training.data.classes import NYU_SCENE_TYPES
from training.losses import CompositeLoss, LossTerm
from training.losses.gradient import gradient_l1_loss
from training.losses.sparse import HAS_DEPTH
from training.losses.ssim import ssim_loss
from training.nets._log_depth import log_depth_to_metres
from training.nets.heads import upsample_to
from training.nets.registry import MultiTaskNet, register_model

HEADS = ('depth', 'classification')
NYU_SCENE_CLASSES = len(NYU_SCENE_TYPES)  # 27, the scene types of NYU Depth v2's labelled set
DECODER_WIDTH = 1.0  # conv2's width / the encoder's (0.5 = Keras is_halffeatures)
LEAKY_SLOPE = 0.2
NYU_MIN_DEPTH = 0.1  # metres; Alhashim & Wonka clip NYU depth to [10, 1000] cm
NYU_MAX_DEPTH = 10.0
SSIM_WEIGHT = 1.0
EDGE_WEIGHT = 1.0
L1_WEIGHT = 0.1  # their theta
# Encoder taps, finest first: conv1/relu, pool1, pool2, pool3 and the last block.
TAPS = ('relu0', 'pool0', 'transition1', 'transition2', 'norm5')


class UpSample(nn.Module):
    """Bilinear resize to the skip, concatenate, 3x3 conv + LeakyReLU twice."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.LeakyReLU(LEAKY_SLOPE))

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([upsample_to(x, skip.shape[-2:]), skip], dim=1))


class DenseNetTaps(nn.Module):
    """torchvision DenseNet ``features``, returning the outputs of :data:`TAPS`."""

    def __init__(self, pretrained: bool, tiny: bool) -> None:
        super().__init__()
        if tiny:  # one layer per dense block, narrow: tests only
            if pretrained:
                raise ValueError('ImageNet DenseNet-169 weights need the full encoder')
            net = models.DenseNet(growth_rate=8, block_config=(1, 1, 1, 1),
                                  num_init_features=16)
        else:
            net = models.densenet169(weights='DEFAULT' if pretrained else None)
        self.features = net.features
        self.channels = self._tap_channels()

    def _tap_channels(self) -> tuple[int, ...]:
        layers = dict(self.features.named_children())

        def width(layer: nn.Module, attribute: str) -> int:
            return int(getattr(layer, attribute))

        init = width(layers['conv0'], 'out_channels')
        return (init, init, width(layers['transition1'].conv, 'out_channels'),
                width(layers['transition2'].conv, 'out_channels'),
                width(layers['norm5'], 'num_features'))

    def forward(self, image: Tensor) -> list[Tensor]:
        taps = []
        x = image
        for name, layer in self.features.named_children():
            x = layer(x)
            if name in TAPS:
                taps.append(x)
        return taps  # (N, C_i, H / 2, 4, 8, 16, 32)


class DenseDepthLoss(LossTerm):
    """Alhashim & Wonka's depth loss on DepthNorm ``max_depth / depth`` (metres in)."""

    def __init__(self, min_depth: float = NYU_MIN_DEPTH, max_depth: float = NYU_MAX_DEPTH,
                 ssim_weight: float = SSIM_WEIGHT, edge_weight: float = EDGE_WEIGHT,
                 l1_weight: float = L1_WEIGHT) -> None:
        super().__init__('depth', 'regression', HAS_DEPTH)
        self.min_depth, self.max_depth = min_depth, max_depth
        self.weights = (ssim_weight, edge_weight, l1_weight)

    def depth_norm(self, depth: Tensor) -> Tensor:
        return self.max_depth / depth.float().clamp(self.min_depth, self.max_depth)

    def forward(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor | None:
        valid = batch['depth_valid'].bool()
        count = valid.sum()
        if int(count) == 0:
            return None
        prediction = self.depth_norm(outputs['depth'])
        target = self.depth_norm(torch.where(valid, batch['depth'],
                                             torch.full_like(batch['depth'], self.max_depth)))
        l1 = torch.where(valid, (prediction - target).abs(), torch.zeros_like(target)).sum() / count
        edges = gradient_l1_loss(prediction, target, valid)
        structure = ssim_loss(prediction, target, self.max_depth / self.min_depth, valid)
        ssim_weight, edge_weight, l1_weight = self.weights
        loss = ssim_weight * structure + l1_weight * l1
        return loss if edges is None else loss + edge_weight * edges


class SceneCrossEntropy(LossTerm):
    """Cross-entropy of the image classification head on ``batch['scene']``."""

    def __init__(self, head: str = 'classification', target: str = SCENE,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(head, 'classification', None)
        self.target = target
        self.ignore_index = ignore_index

    def forward(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor | None:
        if self.target not in batch:
            return None
        labels = batch[self.target].reshape(-1).long()  # (N,)
        if not bool((labels != self.ignore_index).any()):
            return None
        return F.cross_entropy(outputs[self.head].float(), labels, ignore_index=self.ignore_index)


def dense_transfer_loss(weighting: str = 'fixed', weights: Mapping[str, float] | None = None,
                        uncertainty_init: float = 1.0, min_depth: float = NYU_MIN_DEPTH,
                        max_depth: float = NYU_MAX_DEPTH, ssim_weight: float = SSIM_WEIGHT,
                        edge_weight: float = EDGE_WEIGHT, l1_weight: float = L1_WEIGHT,
                        heads: Sequence[str] = HEADS) -> CompositeLoss:
    """DenseDepth's SSIM + edges + 0.1 L1 on DepthNorm; cross-entropy on the scene class."""
    terms: dict[str, LossTerm] = {
        'depth': DenseDepthLoss(min_depth, max_depth, ssim_weight, edge_weight, l1_weight),
        'classification': SceneCrossEntropy()}
    unknown = sorted(set(heads) - set(terms))
    if unknown:
        raise ValueError(f'dense transfer loss has no heads {unknown}; it has {list(terms)}')
    return CompositeLoss({head: terms[head] for head in heads}, weighting=weighting,
                         weights=weights, uncertainty_init=uncertainty_init)


@register_model(
    'dense_transfer', heads=HEADS, loss=dense_transfer_loss, depth_encoding='metres',
    tiny={'tiny_encoder': True, 'decoder_width': 2.0},
    description='Dense transfer (Nayak et al. after Alhashim & Wonka 2018): DenseNet-169 '
                'U-Net with bilinear up-sampling blocks, scene classification head')
class DenseTransfer(MultiTaskNet):
    def __init__(self, num_scene_classes: int = NYU_SCENE_CLASSES, pretrained: bool = False,
                 decoder_width: float = DECODER_WIDTH, tiny_encoder: bool = False) -> None:
        """``tiny_encoder`` (a one-layer-per-block DenseNet) is for tests only."""
        super().__init__({'depth': 1, 'classification': num_scene_classes})
        self.encoder = DenseNetTaps(pretrained, tiny_encoder)
        skips = self.encoder.channels[:-1]
        bottom = self.encoder.channels[-1]
        width = int(bottom * decoder_width)
        self.conv2 = nn.Conv2d(bottom, width, 1)
        blocks = []
        for skip in reversed(skips):  # pool3, pool2, pool1, conv1
            blocks.append(UpSample(width + skip, width // 2))
            width //= 2
        self.up = nn.ModuleList(blocks)
        self.conv3 = nn.Conv2d(width, 1, 3, padding=1)
        self.classifier = nn.Linear(bottom, num_scene_classes)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        *skips, last = self.encoder(image)
        last = F.relu(last)  # (N, 1664, H/32, W/32)
        x = self.conv2(last)
        for block, skip in zip(self.up, reversed(skips)):
            x = block(x, skip)  # (N, C / 2, 2x finer)
        log_depth = upsample_to(self.conv3(x), image.shape[-2:])  # (N, 1, H, W)
        scene = self.classifier(last.mean(dim=(2, 3)))  # (N, num_scene_classes)
        return {'depth': log_depth_to_metres(log_depth), 'classification': scene}
