"""Shared heads and decoders: PSPNet's pyramid pooling head and a light decoder.

Both take encoder features and return logits (or a regression map) that the
caller upsamples to the input size with :func:`upsample_to`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PSP_BINS = (6, 3, 2, 1)  # PSPNet's pyramid levels (output sizes of the pooling)
PSP_WIDTH = 512  # channels of the 3x3 conv after the pyramid
PSP_DROPOUT = 0.1
ALIGN_CORNERS = True  # PSPNet's code upsamples with align_corners=True


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def upsample_to(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resize of (N, C, h, w) to (N, C, *size)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode='bilinear', align_corners=ALIGN_CORNERS)


def adaptive_avg_pool(x: Tensor, bins: int) -> Tensor:
    """``F.adaptive_avg_pool2d(x, bins)`` written as two matrix products.

    ONNX has no adaptive pooling to sizes other than 1, so the exporter fails
    on feature maps not divisible by ``bins`` (KITTI's 44x152 at stride 8).
    The averaging matrices use PyTorch's bin bounds (floor(i h / b),
    ceil((i + 1) h / b)), so the result is identical; with static input
    shapes they become constants of the exported graph.
    """
    rows = _pool_matrix(x.shape[-2], bins, x)  # (bins, h)
    cols = _pool_matrix(x.shape[-1], bins, x)  # (bins, w)
    return rows @ x @ cols.transpose(0, 1)  # (N, C, bins, bins)


def _pool_matrix(size: int, bins: int, like: Tensor) -> Tensor:
    index = torch.arange(bins, device=like.device)
    start = torch.div(index * size, bins, rounding_mode='floor')  # (bins,)
    end = torch.div((index + 1) * size + bins - 1, bins, rounding_mode='floor')
    position = torch.arange(size, device=like.device)  # (size,)
    inside = (position[None, :] >= start[:, None]) & (position[None, :] < end[:, None])
    weights = inside.to(like.dtype)
    return weights / weights.sum(dim=1, keepdim=True)


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling module: input concatenated with pooled, projected levels."""

    def __init__(self, in_channels: int, bins: Sequence[int] = PSP_BINS,
                 level_channels: int | None = None) -> None:
        super().__init__()
        self.bins = tuple(bins)
        level_channels = level_channels or in_channels // len(self.bins)  # 2048 -> 512 each
        self.levels = nn.ModuleList(
            [conv_bn_relu(in_channels, level_channels, kernel_size=1) for _ in self.bins])
        self.out_channels = in_channels + level_channels * len(self.bins)

    def forward(self, x: Tensor) -> Tensor:  # (N, C, h, w) -> (N, C + L * len(bins), h, w)
        size = x.shape[-2:]
        pooled = [upsample_to(level(adaptive_avg_pool(x, b)), size)
                  for b, level in zip(self.bins, self.levels)]
        return torch.cat([x, *pooled], dim=1)


class PSPHead(nn.Module):
    """Pyramid pooling, 3x3 conv + BN + ReLU, dropout, 1x1 conv to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, bins: Sequence[int] = PSP_BINS,
                 width: int = PSP_WIDTH, dropout: float = PSP_DROPOUT) -> None:
        super().__init__()
        self.pyramid = PyramidPooling(in_channels, bins)
        self.fuse = conv_bn_relu(self.pyramid.out_channels, width)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(width, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:  # (N, C, h, w) -> (N, out, h, w)
        return self.classifier(self.dropout(self.fuse(self.pyramid(x))))


class LightDecoder(nn.Module):
    """FPN-style top-down decoder: 1x1 laterals, upsample-and-add, one 3x3 conv per level.

    Uses the encoder stages from ``first_stage`` on; returns a (N, width, H/r,
    W/r) map at the finest used stage's stride r.
    """

    def __init__(self, channels: Sequence[int], width: int = 64, first_stage: int = 1) -> None:
        super().__init__()
        self.first_stage = first_stage
        used = list(channels)[first_stage:]
        self.laterals = nn.ModuleList([nn.Conv2d(c, width, 1) for c in used])
        self.smooth = nn.ModuleList([conv_bn_relu(width, width) for _ in used[:-1]])
        self.out_channels = width

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        used = list(features)[self.first_stage:]
        x = self.laterals[-1](used[-1])  # coarsest
        for index in range(len(used) - 2, -1, -1):
            skip = self.laterals[index](used[index])
            x = self.smooth[index](skip + upsample_to(x, skip.shape[-2:]))
        return x


class ConvHead(nn.Module):
    """A small task head: 3x3 conv-BN-ReLU then 1x1 conv to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, width: int | None = None) -> None:
        super().__init__()
        width = width or in_channels
        self.body = conv_bn_relu(in_channels, width)
        self.out = nn.Conv2d(width, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x))
