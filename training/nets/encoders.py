"""torchvision backbones as encoders that expose their channel counts per stage.

``build_encoder(name, pretrained=...)`` returns an :class:`Encoder`:
``forward(image) -> [feature per stage]`` (finest first), with
``encoder.channels`` and ``encoder.reductions`` (stride of each stage w.r.t.
the input) so decoders are built from them, never from hard-coded numbers.

``pretrained=True`` loads torchvision's ImageNet weights (downloaded once into
torch's hub cache, or taken from it where the user already has them); the
default is False and tests never set it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torchvision import models
from torchvision.models.resnet import Bottleneck, ResNet, conv1x1

LOG = logging.getLogger(__name__)

RESNETS: dict[str, Callable[..., ResNet]] = {
    'resnet18': models.resnet18, 'resnet34': models.resnet34,
    'resnet50': models.resnet50, 'resnet101': models.resnet101,
}
# Block counts per stage; a tiny variant for tests passes its own.
RESNET_LAYERS = {'resnet18': (2, 2, 2, 2), 'resnet34': (3, 4, 6, 3),
                 'resnet50': (3, 4, 6, 3), 'resnet101': (3, 4, 23, 3)}
SEQUENTIAL: dict[str, Callable[..., nn.Module]] = {
    'mobilenet_v3_small': models.mobilenet_v3_small,
    'mobilenet_v3_large': models.mobilenet_v3_large,
}
DEEP_STEM_WIDTHS = (64, 64, 128)  # PSPNet's stem: three 3x3 conv-BN-ReLU, first with stride 2
PROBE_SIZE = 64  # input side of the shape probe that finds a sequential net's stages


class Encoder(nn.Module):
    """A backbone returning one feature map per stage, finest first."""

    channels: tuple[int, ...]
    reductions: tuple[int, ...]

    def forward(self, image: Tensor) -> list[Tensor]:  # (N, 3, H, W) -> [(N, C_i, H/r_i, W/r_i)]
        raise NotImplementedError


def deep_stem(widths: Sequence[int] = DEEP_STEM_WIDTHS) -> nn.Sequential:
    """PSPNet's deep stem: 3x3 conv-BN-ReLU x3, the first with stride 2."""
    layers: list[nn.Module] = []
    in_channels = 3
    for index, width in enumerate(widths):
        stride = 2 if index == 0 else 1
        layers += [nn.Conv2d(in_channels, width, 3, stride=stride, padding=1, bias=False),
                   nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        in_channels = width
    return nn.Sequential(*layers)


class ResNetEncoder(Encoder):
    """torchvision ResNet; optional dilation (output stride 8 or 16) and PSPNet deep stem.

    Stages: stem (stride 2), layer1 (4), layer2 (8), layer3, layer4.
    """

    def __init__(self, name: str = 'resnet50', pretrained: bool = False,
                 output_stride: int = 32, deep_stem_widths: Sequence[int] | None = None,
                 layers: Sequence[int] | None = None) -> None:
        super().__init__()
        if name not in RESNETS:
            raise ValueError(f'unknown ResNet {name!r}; choose one of {sorted(RESNETS)}')
        dilation = {32: [False, False, False], 16: [False, False, True],
                    8: [False, True, True]}.get(output_stride)
        if dilation is None:
            raise ValueError(f'output_stride must be 8, 16 or 32, got {output_stride}')
        net = _build_resnet(name, pretrained, dilation, layers)
        stem_channels = 64
        if deep_stem_widths is not None:
            stem_channels = deep_stem_widths[-1]
            self.stem = deep_stem(deep_stem_widths)
            _widen_first_block(net, stem_channels)
        else:
            self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.pool = net.maxpool
        self.stages = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        widths = [_out_channels(stage) for stage in self.stages]
        strides = [4, 8, 16, 32]
        for index, dilated in enumerate(dilation):
            if dilated:  # the stage keeps the previous stage's resolution
                strides[index + 1] = strides[index]
        self.channels = (stem_channels, *widths)
        self.reductions = (2, *strides)

    def forward(self, image: Tensor) -> list[Tensor]:
        x = self.stem(image)  # (N, C0, H/2, W/2)
        features = [x]
        x = self.pool(x)  # (N, C0, H/4, W/4)
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def _build_resnet(name: str, pretrained: bool, dilation: list[bool],
                  layers: Sequence[int] | None) -> ResNet:
    if layers is not None and tuple(layers) != RESNET_LAYERS[name]:
        if pretrained:
            raise ValueError(f'pretrained {name} weights need layers {RESNET_LAYERS[name]}, '
                             f'got {tuple(layers)}')
        block = Bottleneck if name in ('resnet50', 'resnet101') else models.resnet.BasicBlock
        return ResNet(block, list(layers), replace_stride_with_dilation=dilation)
    weights = 'DEFAULT' if pretrained else None
    return RESNETS[name](weights=weights, replace_stride_with_dilation=dilation)


def _widen_first_block(net: ResNet, in_channels: int) -> None:
    """Let layer1 take the deep stem's channels (torchvision builds it for 64).

    Its first block's input convolutions are replaced, so ImageNet weights of
    those two layers (and of the stem) are not used.
    """
    block = net.layer1[0]
    old = block.conv1
    block.conv1 = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride,
                            old.padding, bias=False)
    if block.downsample is not None:
        out_channels = block.downsample[0].out_channels
        block.downsample[0] = conv1x1(in_channels, out_channels)
    else:  # BasicBlock with 64 in and out: give it a projection shortcut
        out_channels = old.out_channels
        block.downsample = nn.Sequential(conv1x1(in_channels, out_channels),
                                         nn.BatchNorm2d(out_channels))
    LOG.info('deep stem: layer1[0] input convolutions re-initialised for %d channels',
             in_channels)


def _out_channels(stage: nn.Module) -> int:
    block = stage[-1]  # type: ignore[index]
    last_norm = block.bn3 if isinstance(block, Bottleneck) else block.bn2
    return int(last_norm.num_features)


class SequentialEncoder(Encoder):
    """A torchvision classifier's ``features`` Sequential, cut where the resolution halves.

    The stages are found by a probe forward pass at construction, so any
    ``features`` stack (MobileNet, EfficientNet, ...) works without a table of
    indices. The last feature of each resolution is a stage output.
    """

    def __init__(self, name: str = 'mobilenet_v3_small', pretrained: bool = False,
                 **kwargs: Any) -> None:
        super().__init__()
        if name not in SEQUENTIAL:
            raise ValueError(f'unknown encoder {name!r}; choose one of {sorted(SEQUENTIAL)}')
        if pretrained and kwargs.get('width_mult', 1.0) != 1.0:
            raise ValueError(f'pretrained {name} weights need width_mult 1.0, got {kwargs}')
        net = SEQUENTIAL[name](weights='DEFAULT' if pretrained else None, **kwargs)
        features: nn.Sequential = net.features  # type: ignore[assignment]
        cuts, channels, reductions = _probe_stages(features)
        self.stages = nn.ModuleList(
            [features[start:end] for start, end in zip((0, *cuts[:-1]), cuts)])
        self.channels = tuple(channels)
        self.reductions = tuple(reductions)

    def forward(self, image: Tensor) -> list[Tensor]:
        features = []
        x = image
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def _probe_stages(features: nn.Sequential) -> tuple[list[int], list[int], list[int]]:
    """End index, channels and stride of each resolution level of ``features``."""
    cuts: list[int] = []
    channels: list[int] = []
    reductions: list[int] = []
    was_training = features.training
    features.eval()
    with torch.no_grad():
        x = torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE)
        for index, layer in enumerate(features):
            x = layer(x)
            reduction = PROBE_SIZE // x.shape[-1]
            if reductions and reductions[-1] == reduction:
                cuts[-1], channels[-1] = index + 1, x.shape[1]
            else:
                cuts.append(index + 1)
                channels.append(x.shape[1])
                reductions.append(reduction)
    features.train(was_training)
    return cuts, channels, reductions


def build_encoder(name: str, pretrained: bool = False, **kwargs: Any) -> Encoder:
    """Encoder by torchvision name: ``resnet18/34/50/101``, ``mobilenet_v3_small/large``.

    ResNet options: ``output_stride`` (8, 16, 32), ``deep_stem_widths``,
    ``layers``. MobileNet options: torchvision's (e.g. ``width_mult``).
    """
    if name in RESNETS:
        return ResNetEncoder(name, pretrained, **kwargs)
    if name in SEQUENTIAL:
        return SequentialEncoder(name, pretrained, **kwargs)
    raise ValueError(f'unknown encoder {name!r}; choose one of {sorted({**RESNETS, **SEQUENTIAL})}')
