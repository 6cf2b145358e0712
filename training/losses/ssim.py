"""SSIM as Alhashim & Wonka's DenseDepth trains with it.

``ssim_loss = clip((1 - SSIM(p, t)) / 2, 0, 1)``, SSIM (Wang et al. 2004)
with an 11x11 Gaussian window (sigma 1.5, shrunk to the image side when the
image is smaller, as their PyTorch code does), no padding (only windows that
lie inside the image), ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with ``L`` the
value range of the maps (theirs: 1000 / 10 on DepthNorm-coded NYU depth),
averaged over the SSIM map.

SSIM reads whole windows, so it has no per-pixel mask: where the ground truth
is missing, :func:`ssim_loss` copies the prediction (detached) into the
target, and those pixels count as agreeing without pulling the prediction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def gaussian_window(size: int, sigma: float = SSIM_SIGMA) -> Tensor:
    """(1, 1, size, size) normalised Gaussian, centred on pixel ``size // 2``."""
    offsets = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(x: Tensor, y: Tensor, val_range: float, window_size: int = SSIM_WINDOW,
         sigma: float = SSIM_SIGMA) -> Tensor:
    """Mean SSIM of two (N, C, H, W) maps (windows entirely inside the image)."""
    channels = x.shape[1]
    size = min(window_size, x.shape[-2], x.shape[-1])
    window = gaussian_window(size, sigma).to(x).expand(channels, 1, size, size)

    def blur(v: Tensor) -> Tensor:
        return F.conv2d(v, window, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    c1 = (SSIM_K1 * val_range) ** 2
    c2 = (SSIM_K2 * val_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean()


def ssim_loss(prediction: Tensor, target: Tensor, val_range: float,
              valid: Tensor | None = None, window_size: int = SSIM_WINDOW) -> Tensor:
    """``clip((1 - SSIM) / 2, 0, 1)``; missing ground truth is filled from the prediction."""
    prediction = prediction.float()
    target = target.float()
    if valid is not None:
        target = torch.where(valid, target, prediction.detach())
    return torch.clamp((1.0 - ssim(prediction, target, val_range, window_size)) * 0.5, 0.0, 1.0)
