"""Sparse losses: only pixels with ground truth count (LiDAR depth, ignore labels).

Both average over the valid pixels of the whole batch (sum over valid /
count of valid), so a sample with few LiDAR returns weighs less than a dense
one, as in MultiDepth's code. A batch without a single valid pixel gives None
(no loss, no gradient) rather than 0 / 0.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from mtdepth_ros.conversions.labels import IGNORE_INDEX
from training.losses.composition import LossTerm

HAS_DEPTH = 'has_depth'
HAS_LABELS = 'has_labels'


class SparseMSE(LossTerm):
    """Mean squared error over valid pixels: sum((pred - target)^2 [valid]) / count(valid)."""

    def __init__(self, head: str = 'depth', target: str = 'depth_log',
                 valid: str = 'depth_valid', supervision: str | None = HAS_DEPTH) -> None:
        super().__init__(head, 'regression', supervision)
        self.target = target
        self.valid = valid

    def forward(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor | None:
        prediction = outputs[self.head]  # (N, 1, H, W)
        target = batch[self.target]  # (N, 1, H, W)
        valid = batch[self.valid].bool()  # (N, 1, H, W)
        if prediction.shape != target.shape:
            raise ValueError(f'head {self.head!r} is {tuple(prediction.shape)}, '
                             f'target {self.target!r} is {tuple(target.shape)}')
        count = valid.sum()
        if int(count) == 0:
            return None
        error = (prediction.float() - target.float()) ** 2
        return error[valid].sum() / count


class SparseCrossEntropy(LossTerm):
    """Cross-entropy averaged over pixels whose label is not ``ignore_index``."""

    def __init__(self, head: str, target: str | None = None,
                 supervision: str | None = None, ignore_index: int = IGNORE_INDEX) -> None:
        target = target or head
        if supervision is None:
            # Interval labels come from depth; class labels from annotation.
            supervision = HAS_DEPTH if target == 'intervals' else HAS_LABELS
        super().__init__(head, 'classification', supervision)
        self.target = target
        self.ignore_index = ignore_index

    def forward(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor | None:
        logits = outputs[self.head]  # (N, C, H, W)
        labels = batch[self.target].long()  # (N, H, W)
        if logits.shape[0] != labels.shape[0] or logits.shape[2:] != labels.shape[1:]:
            raise ValueError(f'head {self.head!r} is {tuple(logits.shape)}, '
                             f'labels {self.target!r} are {tuple(labels.shape)}')
        if not bool((labels != self.ignore_index).any()):
            return None
        return F.cross_entropy(logits.float(), labels, ignore_index=self.ignore_index)
