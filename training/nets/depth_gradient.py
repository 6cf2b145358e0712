"""Depth-gradient multi-task network (Takamine & Endo), after Eigen & Fergus (ICCV 2015).

Eigen & Fergus's three-scale network (VGG version) with a second task: the
shared second scale branches into depth and x/y depth gradients, and the
third scale refines depth from the image, that depth and those gradients.

- ``coarse`` (scale 1): VGG-16's conv stages and pools, then full1 (4096,
  ReLU, dropout 0.5) and full2 (64 maps at 1/16 of the input, ReLU), as
  Eigen & Fergus. Fully connected layers fix the network's input size,
  ``input_size`` (default Eigen's 228x304 crop of NYU at 320x240); images
  of other sizes are resized to it and the outputs back.
- ``scale2`` (shared): image -> 9x9 conv 96 stride 2 + 3x3 max-pool stride 2
  (1/4), concatenated with scale 1's maps resized to 1/4, one 5x5 conv of
  64; then a depth branch and a gradient branch, each a 5x5 conv of 64 and a
  5x5 conv to 1 (log depth) or 2 (x, y gradients of depth in metres, the
  ``[-1 0 1]`` filters per input pixel): each path has Eigen & Fergus's
  three 5x5 convolutions after the concatenation.
- ``scale3`` (refinement): image -> 9x9 conv 96 stride 2 (1/2),
  concatenated with scale 2's log depth and gradients upsampled to 1/2, two
  5x5 convs of 64 and a 5x5 conv to the refined log depth.

Heads (all at input resolution): ``depth`` (refined, metres),
``depth_scale2`` (scale 2's depth, metres) and ``gradients`` (N, 2, H, W).

Two-stage training, as Eigen & Fergus train scales 1+2 before scale 3:
stage ``coarse`` trains scales 1 and 2 on ``depth_scale2`` and
``gradients`` (scale 3 frozen); stage ``refine`` freezes scales 1 and 2 (the
shared layers) and trains scale 3 on ``depth``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.losses import CompositeLoss, LossTerm
from training.losses.gradient import (
    PHI_EPSILON, GradientConsistencyLoss, central_gradients, gradient_consistency_loss)
from training.losses.scale_invariant import SI_LAMBDA, scale_invariant_loss
from training.losses.sparse import HAS_DEPTH
from training.nets._log_depth import log_depth_to_metres
from training.nets._vgg import vgg16_stages
from training.nets.heads import ALIGN_CORNERS, upsample_to
from training.nets.registry import MultiTaskNet, Stage, register_model

HEADS = ('depth', 'depth_scale2', 'gradients')
EIGEN_INPUT = (228, 304)  # Eigen & Fergus's random crop of NYU at 320x240
VGG_STRIDE = 32  # scale 1's conv stages end at 1/32
COARSE_STRIDE = 16  # full2's maps are at 1/16 of the input
FULL1 = 4096
COARSE_CHANNELS = 64
IMAGE_WIDTH = 96  # the 9x9 image convolution of scales 2 and 3
WIDTH = 64  # the 5x5 convolutions of scales 2 and 3
IMAGE_KERNEL = 9
KERNEL = 5
DROPOUT = 0.5
STAGES = {
    'coarse': Stage(freeze=('scale3.',), loss={'heads': ['depth_scale2', 'gradients']},
                    description='stage 1: scales 1 and 2 on depth and depth gradients'),
    'refine': Stage(freeze=('coarse.', 'scale2.'), loss={'heads': ['depth']},
                    description='stage 2: scale 3 only, shared scales 1 and 2 frozen'),
}


def conv_relu(in_channels: int, out_channels: int, kernel: int = KERNEL,
              stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2),
                         nn.ReLU(inplace=True))


class CoarseScale(nn.Module):
    """Scale 1: VGG-16 conv stages, full1, full2 -> (N, 64, H/16, W/16)."""

    def __init__(self, input_size: Sequence[int], pretrained: bool, width_divisor: int,
                 hidden: int, channels: int) -> None:
        super().__init__()
        self.vgg, widths = vgg16_stages(batch_norm=False, pretrained=pretrained,
                                        width_divisor=width_divisor)
        height, width = input_size
        pooled = (height // VGG_STRIDE, width // VGG_STRIDE)
        self.grid = (height // COARSE_STRIDE, width // COARSE_STRIDE)
        self.channels = channels
        self.full1 = nn.Sequential(nn.Linear(widths[-1] * pooled[0] * pooled[1], hidden),
                                   nn.ReLU(inplace=True), nn.Dropout(DROPOUT))
        self.full2 = nn.Sequential(nn.Linear(hidden, channels * self.grid[0] * self.grid[1]),
                                   nn.ReLU(inplace=True))

    def forward(self, image: Tensor) -> Tensor:
        x = image
        for stage in self.vgg:
            x = F.max_pool2d(stage(x), kernel_size=2, stride=2)
        x = self.full2(self.full1(x.flatten(1)))
        return x.reshape(-1, self.channels, *self.grid)


class SharedScale2(nn.Module):
    """Scale 2: image features + scale 1, a shared conv, depth and gradient branches."""

    def __init__(self, coarse_channels: int, image_width: int, width: int) -> None:
        super().__init__()
        self.image = nn.Sequential(conv_relu(3, image_width, IMAGE_KERNEL, stride=2),
                                   nn.MaxPool2d(3, stride=2, padding=1))
        self.shared = conv_relu(image_width + coarse_channels, width)
        self.depth = nn.Sequential(conv_relu(width, width), nn.Conv2d(width, 1, KERNEL,
                                                                      padding=KERNEL // 2))
        self.gradients = nn.Sequential(conv_relu(width, width), nn.Conv2d(width, 2, KERNEL,
                                                                          padding=KERNEL // 2))

    def forward(self, image: Tensor, coarse: Tensor) -> tuple[Tensor, Tensor]:
        x = self.image(image)  # (N, 96, H/4, W/4)
        x = self.shared(torch.cat([x, upsample_to(coarse, x.shape[-2:])], dim=1))
        return self.depth(x), self.gradients(x)  # (N, 1 | 2, H/4, W/4)


class RefineScale3(nn.Module):
    """Scale 3: image features + scale 2's log depth and gradients -> refined log depth."""

    def __init__(self, image_width: int, width: int) -> None:
        super().__init__()
        self.image = conv_relu(3, image_width, IMAGE_KERNEL, stride=2)
        self.refine = nn.Sequential(conv_relu(image_width + 3, width), conv_relu(width, width),
                                    nn.Conv2d(width, 1, KERNEL, padding=KERNEL // 2))

    def forward(self, image: Tensor, log_depth: Tensor, gradients: Tensor) -> Tensor:
        x = self.image(image)  # (N, 96, H/2, W/2)
        size = x.shape[-2:]
        x = torch.cat([x, upsample_to(log_depth, size), upsample_to(gradients, size)], dim=1)
        return self.refine(x)  # (N, 1, H/2, W/2)


class DepthWithConsistency(LossTerm):
    """Scale-invariant loss + ``consistency_weight`` x gradient consistency of the depth map."""

    def __init__(self, head: str, lam: float = SI_LAMBDA, consistency_weight: float = 1.0,
                 epsilon: float = PHI_EPSILON) -> None:
        super().__init__(head, 'regression', HAS_DEPTH)
        self.lam = lam
        self.consistency_weight = consistency_weight
        self.epsilon = epsilon

    def forward(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor | None:
        prediction, target = outputs[self.head], batch['depth']
        valid = batch['depth_valid'].bool()
        loss = scale_invariant_loss(prediction, target, valid, self.lam)
        if loss is None or self.consistency_weight == 0:
            return loss
        consistency = gradient_consistency_loss(central_gradients(prediction), target, valid,
                                                self.epsilon)
        if consistency is None:
            return loss
        return loss + self.consistency_weight * consistency


def depth_gradient_loss(weighting: str = 'fixed', weights: Mapping[str, float] | None = None,
                        uncertainty_init: float = 1.0, si_lambda: float = SI_LAMBDA,
                        consistency_weight: float = 1.0, epsilon: float = PHI_EPSILON,
                        heads: Sequence[str] = HEADS) -> CompositeLoss:
    """Scale-invariant + gradient consistency on both depth maps, consistency on gradients.

    A stage picks ``heads`` (see ``STAGES``).
    """
    terms: dict[str, LossTerm] = {
        'depth': DepthWithConsistency('depth', si_lambda, consistency_weight, epsilon),
        'depth_scale2': DepthWithConsistency('depth_scale2', si_lambda, consistency_weight,
                                             epsilon),
        'gradients': GradientConsistencyLoss('gradients', epsilon=epsilon)}
    unknown = sorted(set(heads) - set(terms))
    if unknown:
        raise ValueError(f'depth-gradient loss has no heads {unknown}; it has {list(terms)}')
    return CompositeLoss({head: terms[head] for head in heads}, weighting=weighting,
                         weights=weights, uncertainty_init=uncertainty_init)


@register_model(
    'depth_gradient', heads=HEADS, loss=depth_gradient_loss, stages=STAGES,
    depth_encoding='metres', input_multiple=4,  # any size works: it is resized to input_size
    tiny={'input_size': (64, 64), 'width_divisor': 16, 'hidden': 32, 'coarse_channels': 8,
          'image_width': 12, 'width': 8},
    description='Depth-gradient multi-task (Takamine & Endo): Eigen-style three scales, '
                'shared scale 2 with depth and gradient branches, refinement scale')
class DepthGradientNet(MultiTaskNet):
    def __init__(self, input_size: Sequence[int] = EIGEN_INPUT, pretrained: bool = False,
                 width_divisor: int = 1, hidden: int = FULL1,
                 coarse_channels: int = COARSE_CHANNELS, image_width: int = IMAGE_WIDTH,
                 width: int = WIDTH) -> None:
        """``input_size`` (H, W) is fixed by scale 1's fully connected layers;
        ``width_divisor``, ``hidden`` and the widths shrink the network for tests."""
        super().__init__({'depth': 1, 'depth_scale2': 1, 'gradients': 2})
        if min(input_size) < VGG_STRIDE:
            raise ValueError(f'input_size must be at least {VGG_STRIDE} px a side, '
                             f'got {tuple(input_size)}')
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.coarse = CoarseScale(self.input_size, pretrained, width_divisor, hidden,
                                  coarse_channels)
        self.scale2 = SharedScale2(coarse_channels, image_width, width)
        self.scale3 = RefineScale3(image_width, width)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        """Other input sizes are resized to ``input_size`` and the outputs back, as
        Eigen & Fergus evaluate full images; gradients are rescaled to the output's pixels."""
        size = tuple(image.shape[-2:])
        if size != self.input_size:
            image = F.interpolate(image, size=self.input_size, mode='bilinear',
                                  align_corners=ALIGN_CORNERS)
        log_depth2, gradients = self.scale2(image, self.coarse(image))  # (N, 1 | 2, H/4, W/4)
        refined = self.scale3(image, log_depth2, gradients)  # (N, 1, H/2, W/2)
        return {'depth': log_depth_to_metres(upsample_to(refined, size)),
                'depth_scale2': log_depth_to_metres(upsample_to(log_depth2, size)),
                'gradients': upsample_to(gradients, size) * self._gradient_scale(size, gradients)}

    def _gradient_scale(self, size: tuple[int, ...], like: Tensor) -> Tensor:
        """(1, 2, 1, 1): per-pixel depth differences shrink as the map is enlarged."""
        scale = [(n - 1) / max(m - 1, 1) for n, m in zip(self.input_size[::-1], size[::-1])]
        return torch.tensor(scale, dtype=like.dtype, device=like.device).reshape(1, 2, 1, 1)
