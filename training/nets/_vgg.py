"""VGG-16 feature stacks cut into their five pooling stages.

MultitaskNet (VGG-16-BN) and the depth-gradient network's coarse scale
(Eigen & Fergus's VGG-16) both need the five conv stages of torchvision's
VGG-16 with the max-pools handled by the caller (MultitaskNet keeps their
indices for unpooling). ``width_divisor`` > 1 narrows every layer for fast
CPU tests; torchvision's ImageNet weights load only at full width.
"""

from __future__ import annotations

from torch import nn
from torchvision import models

VGG16_STAGE_WIDTHS = (64, 128, 256, 512, 512)
VGG16_STAGE_CONVS = (2, 2, 3, 3, 3)


def vgg16_stages(batch_norm: bool, pretrained: bool = False,
                 width_divisor: int = 1) -> tuple[nn.ModuleList, tuple[int, ...]]:
    """The five conv stages (without their max-pools) and each stage's output channels."""
    if pretrained and width_divisor != 1:
        raise ValueError(f'ImageNet VGG-16 weights need width_divisor 1, got {width_divisor}')
    widths = tuple(max(1, w // width_divisor) for w in VGG16_STAGE_WIDTHS)
    if width_divisor == 1:
        build = models.vgg16_bn if batch_norm else models.vgg16
        features = build(weights='DEFAULT' if pretrained else None).features
    else:
        config: list[int | str] = []
        for width, convs in zip(widths, VGG16_STAGE_CONVS):
            config += [width] * convs + ['M']
        features = models.vgg.make_layers(config, batch_norm=batch_norm)
    stages: list[nn.Module] = []
    current: list[nn.Module] = []
    for layer in features:
        if isinstance(layer, nn.MaxPool2d):
            stages.append(nn.Sequential(*current))
            current = []
        else:
            current.append(layer)
    return nn.ModuleList(stages), widths
