"""Eigen et al.'s scale-invariant log depth loss (NIPS 2014, eq. 4).

With ``d_i = log y_i - log y*_i`` over the ``n`` valid pixels of one image::

    D(y, y*) = 1/n sum_i d_i^2  -  lambda / n^2 (sum_i d_i)^2

``lambda = 1`` is fully scale invariant, ``lambda = 0`` is the plain squared
log error; Eigen et al. train with ``lambda = 0.5`` (the default here). The
loss is computed per image (the mean log offset is a per-image quantity) and
averaged over the images that have at least one valid pixel.
"""

from __future__ import annotations

import torch
from torch import Tensor

from training.losses.composition import LossTerm
from training.losses.sparse import HAS_DEPTH

SI_LAMBDA = 0.5  # Eigen, Puhrsch & Fergus 2014 train with lambda = 0.5
MIN_DEPTH = 1e-3  # metres; predictions are clamped here before the log
IMAGE_DIMS = (1, 2, 3)  # C, H, W of an (N, 1, H, W) map


def log_difference(prediction: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """(N, 1, H, W) ``log prediction - log target`` on valid pixels, 0 elsewhere.

    Invalid targets are replaced before the log so no inf enters the graph
    (a NaN gradient would leak through ``torch.where`` otherwise).
    """
    one = torch.ones_like(target)
    safe_target = torch.where(valid, target, one)
    safe_prediction = torch.where(valid, prediction.clamp_min(MIN_DEPTH), one)
    return torch.log(safe_prediction) - torch.log(safe_target)


def scale_invariant_loss(prediction: Tensor, target: Tensor, valid: Tensor,
                         lam: float = SI_LAMBDA) -> Tensor | None:
    """Mean over images of Eigen's D(y, y*); None when no pixel is valid.

    ``prediction`` and ``target`` are (N, 1, H, W) metres, ``valid`` bool.
    """
    valid = valid & (target > 0)
    count = valid.sum(dim=IMAGE_DIMS)  # (N,)
    supervised = count > 0
    if not bool(supervised.any()):
        return None
    d = log_difference(prediction.float(), target.float(), valid)  # 0 where invalid
    n = count.clamp_min(1).to(d.dtype)
    per_image = (d * d).sum(dim=IMAGE_DIMS) / n - lam * d.sum(dim=IMAGE_DIMS) ** 2 / n ** 2
    return per_image[supervised].mean()


class ScaleInvariantLoss(LossTerm):
    """:func:`scale_invariant_loss` on a head that returns metres."""

    def __init__(self, head: str = 'depth', lam: float = SI_LAMBDA, target: str = 'depth',
                 valid: str = 'depth_valid', supervision: str | None = HAS_DEPTH) -> None:
        super().__init__(head, 'regression', supervision)
        self.lam = lam
        self.target = target
        self.valid = valid

    def forward(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor | None:
        return scale_invariant_loss(outputs[self.head], batch[self.target],
                                    batch[self.valid].bool(), self.lam)
