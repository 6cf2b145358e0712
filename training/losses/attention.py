"""Jiao et al.'s attention-driven loss (ECCV 2018, "Look Deeper into Depth").

Depth is long-tailed: most pixels are near, so a plain L1 loss is dominated
by them and the network becomes "short-sighted". The depth-aware objective
weights each pixel's L1 error by an attention term that grows with depth::

    L_DA = 1/N sum_i (alpha_i + lambda_i) * |d_i - d*_i|
    alpha_i  = d*_i / d_max                     (normalised ground truth)
    lambda_i = 1 - min(log d_i, log d*_i) / max(log d_i, log d*_i)

``lambda`` keeps near pixels (alpha ~ 0) learning and is 0 where the
prediction is exact. The paper writes ``log d`` on depth in metres, which is
negative below 1 m (NYU has such pixels) and makes the ratio exceed 1 and
``lambda`` negative; we take ``log(1 + d)`` so that ``lambda`` stays in
[0, 1) and matches the paper's value for depth well above 1 m. ``d_max`` is
the dataset's depth cap (10 m for NYU, 80 m for KITTI), not a per-image maximum,
so the attention of a pixel does not depend on what else is in the image.

For the long-tailed classes the paper uses the focal loss of Lin et al.
(ICCV 2017), ``-alpha (1 - p_t)^gamma log p_t``, with alpha = 0.25 and gamma = 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mtdepth_ros.conversions.labels import IGNORE_INDEX
from training.losses.composition import LossTerm
from training.losses.sparse import HAS_DEPTH, HAS_LABELS

NYU_MAX_DEPTH = 10.0  # metres; alpha's normaliser for NYU Depth v2
LOG_OFFSET = 1.0  # lambda reads log(LOG_OFFSET + d): defined and in [0, 1) for all d > 0
FOCAL_ALPHA = 0.25  # Lin et al.'s balancing weight
FOCAL_GAMMA = 2.0  # Lin et al.'s focusing parameter
MIN_DEPTH = 1e-3  # metres; predictions are clamped here inside lambda


def depth_attention(prediction: Tensor, target: Tensor, max_depth: float) -> Tensor:
    """Per-pixel weight ``alpha + lambda`` of the depth-aware objective."""
    alpha = (target / max_depth).clamp(0.0, 1.0)
    log_p = torch.log(LOG_OFFSET + prediction.clamp_min(MIN_DEPTH))
    log_t = torch.log(LOG_OFFSET + target.clamp_min(MIN_DEPTH))
    lam = 1.0 - torch.minimum(log_p, log_t) / torch.maximum(log_p, log_t)
    return alpha + lam


def depth_aware_loss(prediction: Tensor, target: Tensor, valid: Tensor,
                     max_depth: float = NYU_MAX_DEPTH) -> Tensor | None:
    """``L_DA`` over the valid pixels of the batch (metres in); None when none is valid."""
    valid = valid & (target > 0)
    count = valid.sum()
    if int(count) == 0:
        return None
    prediction = prediction.float()
    target = torch.where(valid, target.float(), torch.ones_like(prediction))
    weighted = depth_attention(prediction, target, max_depth) * (prediction - target).abs()
    return torch.where(valid, weighted, torch.zeros_like(weighted)).sum() / count


def focal_loss(logits: Tensor, labels: Tensor, alpha: float = FOCAL_ALPHA,
               gamma: float = FOCAL_GAMMA, ignore_index: int = IGNORE_INDEX) -> Tensor | None:
    """Mean of ``-alpha (1 - p_t)^gamma log p_t`` over labelled pixels; (N, C, H, W), (N, H, W)."""
    labelled = labels != ignore_index  # (N, H, W)
    count = labelled.sum()
    if int(count) == 0:
        return None
    log_p = F.log_softmax(logits.float(), dim=1)  # (N, C, H, W)
    safe = torch.where(labelled, labels, torch.zeros_like(labels))
    log_pt = log_p.gather(1, safe[:, None].long())[:, 0]  # (N, H, W)
    loss = -alpha * (1.0 - log_pt.exp()) ** gamma * log_pt
    return torch.where(labelled, loss, torch.zeros_like(loss)).sum() / count


class DepthAwareLoss(LossTerm):
    """:func:`depth_aware_loss` on a head that returns metres."""

    def __init__(self, head: str = 'depth', max_depth: float = NYU_MAX_DEPTH,
                 target: str = 'depth', valid: str = 'depth_valid',
                 supervision: str | None = HAS_DEPTH) -> None:
        super().__init__(head, 'regression', supervision)
        self.max_depth = max_depth
        self.target = target
        self.valid = valid

    def forward(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor | None:
        return depth_aware_loss(outputs[self.head], batch[self.target],
                                batch[self.valid].bool(), self.max_depth)


class FocalLoss(LossTerm):
    """:func:`focal_loss` on a head of class logits."""

    def __init__(self, head: str = 'segmentation', alpha: float = FOCAL_ALPHA,
                 gamma: float = FOCAL_GAMMA, target: str = 'labels',
                 supervision: str | None = HAS_LABELS,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(head, 'classification', supervision)
        self.alpha = alpha
        self.gamma = gamma
        self.target = target
        self.ignore_index = ignore_index

    def forward(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor | None:
        return focal_loss(outputs[self.head], batch[self.target].long(), self.alpha,
                          self.gamma, self.ignore_index)
