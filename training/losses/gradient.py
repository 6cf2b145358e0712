"""Depth gradient losses: edge L1, multi-scale gradient matching, gradient consistency.

Three published forms, each on (N, 1, H, W) maps with a (N, 1, H, W) bool
``valid`` mask; a difference counts only where every pixel it reads is valid.

- :func:`gradient_l1_loss`: ``mean |dx p - dx t| + mean |dy p - dy t|`` with
  forward differences (Alhashim & Wonka's edge term, ``tf.image.image_gradients``).
- :func:`gradient_matching_loss`: the multi-scale scale-invariant gradient
  matching term of Li & Snavely (MegaDepth, CVPR 2018) on the log difference
  ``R = log p - log t``: ``sum_k 1/n_k sum_i |dx R^k_i| + |dy R^k_i|`` over
  ``scales`` levels, level k keeping every 2^k-th pixel.
- :func:`gradient_consistency_loss`: predicted x/y depth gradients against the
  ground truth's, both from the ``[-1 0 1]`` filters, penalised with
  ``phi(x) = sqrt(x^2 + 1e-4)`` (Takamine & Endo).
"""

from __future__ import annotations

import torch
from torch import Tensor

from training.losses.composition import LossTerm
from training.losses.scale_invariant import log_difference
from training.losses.sparse import HAS_DEPTH

PHI_EPSILON = 1e-4  # phi(x) = sqrt(x^2 + PHI_EPSILON)
MATCHING_SCALES = 4  # MegaDepth's number of gradient-matching levels


def forward_gradients(x: Tensor) -> tuple[Tensor, Tensor]:
    """(N, C, H, W) -> x[j+1] - x[j] along W (N, C, H, W-1) and along H (N, C, H-1, W)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def forward_pairs(valid: Tensor) -> tuple[Tensor, Tensor]:
    """Validity of each forward difference: both of its pixels valid."""
    return valid[..., :, 1:] & valid[..., :, :-1], valid[..., 1:, :] & valid[..., :-1, :]


def central_gradients(x: Tensor) -> Tensor:
    """(N, 1, H, W) -> (N, 2, H, W): the ``[-1 0 1]`` filter along x, then along y.

    ``gx[i, j] = x[i, j+1] - x[i, j-1]`` (no 1/2, as the filter is written);
    the border rows and columns, where the filter leaves the image, are 0.
    """
    gx = torch.zeros_like(x)
    gy = torch.zeros_like(x)
    gx[..., :, 1:-1] = x[..., :, 2:] - x[..., :, :-2]
    gy[..., 1:-1, :] = x[..., 2:, :] - x[..., :-2, :]
    return torch.cat([gx, gy], dim=1)


def central_valid(valid: Tensor) -> Tensor:
    """(N, 1, H, W) bool -> (N, 2, H, W): where :func:`central_gradients` reads valid pixels."""
    vx = torch.zeros_like(valid)
    vy = torch.zeros_like(valid)
    vx[..., :, 1:-1] = valid[..., :, 2:] & valid[..., :, :-2]
    vy[..., 1:-1, :] = valid[..., 2:, :] & valid[..., :-2, :]
    return torch.cat([vx, vy], dim=1)


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor | None:
    count = mask.sum()
    if int(count) == 0:
        return None
    return torch.where(mask, values, torch.zeros_like(values)).sum() / count


def gradient_l1_loss(prediction: Tensor, target: Tensor, valid: Tensor) -> Tensor | None:
    """``mean |dx p - dx t| + mean |dy p - dy t|`` over valid forward differences."""
    px, py = forward_gradients(prediction.float())
    tx, ty = forward_gradients(torch.where(valid, target.float(), torch.zeros_like(target)))
    vx, vy = forward_pairs(valid)
    terms = [_masked_mean((px - tx).abs(), vx), _masked_mean((py - ty).abs(), vy)]
    present = [term for term in terms if term is not None]
    return torch.stack(present).sum() if present else None


def gradient_matching_loss(prediction: Tensor, target: Tensor, valid: Tensor,
                           scales: int = MATCHING_SCALES) -> Tensor | None:
    """MegaDepth's multi-scale gradient matching on ``R = log p - log t`` (metres in).

    Level k keeps every 2^k-th pixel; its term is ``sum |dx R| + |dy R|`` over
    valid differences divided by the level's valid pixel count ``n_k``.
    """
    valid = valid & (target > 0)
    residual = log_difference(prediction.float(), target.float(), valid)  # (N, 1, H, W)
    levels = []
    for k in range(scales):
        step = 2 ** k
        r, v = residual[..., ::step, ::step], valid[..., ::step, ::step]
        count = v.sum()
        if int(count) == 0:
            continue
        rx, ry = forward_gradients(r)
        vx, vy = forward_pairs(v)
        total = (torch.where(vx, rx.abs(), torch.zeros_like(rx)).sum()
                 + torch.where(vy, ry.abs(), torch.zeros_like(ry)).sum())
        levels.append(total / count)
    return torch.stack(levels).sum() if levels else None


def phi(x: Tensor, epsilon: float = PHI_EPSILON) -> Tensor:
    """Takamine & Endo's robust penalty ``sqrt(x^2 + epsilon)``."""
    return torch.sqrt(x * x + epsilon)


def gradient_consistency_loss(gradients: Tensor, target: Tensor, valid: Tensor,
                              epsilon: float = PHI_EPSILON) -> Tensor | None:
    """Mean of ``phi(g - [-1 0 1] * target)`` over valid x and y entries.

    ``gradients`` is (N, 2, H, W) (x then y), ``target`` (N, 1, H, W) metres.
    """
    truth = central_gradients(torch.where(valid, target.float(), torch.zeros_like(target)))
    return _masked_mean(phi(gradients.float() - truth, epsilon), central_valid(valid))


class GradientConsistencyLoss(LossTerm):
    """:func:`gradient_consistency_loss` on a head of predicted x/y depth gradients."""

    def __init__(self, head: str = 'gradients', target: str = 'depth',
                 valid: str = 'depth_valid', epsilon: float = PHI_EPSILON,
                 supervision: str | None = HAS_DEPTH) -> None:
        super().__init__(head, 'regression', supervision)
        self.target = target
        self.valid = valid
        self.epsilon = epsilon

    def forward(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor | None:
        return gradient_consistency_loss(outputs[self.head], batch[self.target],
                                         batch[self.valid].bool(), self.epsilon)
