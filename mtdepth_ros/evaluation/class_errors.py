"""Depth error per semantic class: where a model's depth goes wrong, by what it looks at.

Every scored depth pixel is counted under a class: the ground truth's label
where the bag has labels on the depth's grid, else the model's own
segmentation (then a pixel the model mislabels counts under the wrong class,
and the report says which source it was). Pooled over all frames, each pixel
weighing the same: AbsRel, d<1.25, RMSE and the mean log ratio ln(pred / gt),
whose sign says which way the class is wrong (+ too far, - too near), which
AbsRel alone does not; the class's share of all pixels' summed AbsRel (what
fixing it would take off the pooled AbsRel: a common class with a small error
can weigh more than a rare one with a large error); and the mean ground-truth
and predicted depth (where the class sits, and where the model puts it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mtdepth_ros.evaluation.metrics import DELTA_BASE

GROUND_TRUTH_SOURCE = 'ground truth labels'
MODEL_SOURCE = "the model's segmentation"
SOURCES = (GROUND_TRUTH_SOURCE, MODEL_SOURCE)
TERMS = ('pixels', 'abs_rel', 'd1', 'sq_err', 'log_ratio', 'gt', 'pred')  # summed per class


class ClassDepthErrors:
    """Pooled depth error sums per class id in [0, num_classes)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.sums = np.zeros((num_classes, len(TERMS)), np.float64)
        self.sources: dict[str, int] = {}  # source -> frames counted from it

    def update(self, pred: np.ndarray, gt: np.ndarray, classes: np.ndarray, source: str
               ) -> None:
        """Add one frame's scored pixels: ``pred`` and ``gt`` (N,) metres, finite and
        positive; ``classes`` (N,) ids (outside [0, num_classes) are not counted)."""
        if source not in SOURCES:
            raise ValueError(f'source must be one of {SOURCES}, got {source!r}')
        known = (classes >= 0) & (classes < self.num_classes)
        ids = classes[known].astype(np.intp)
        p, g = pred[known].astype(np.float64), gt[known].astype(np.float64)
        ratio = p / g
        terms = (np.ones_like(g), np.abs(p - g) / g, np.maximum(ratio, 1.0 / ratio) < DELTA_BASE,
                 (p - g) ** 2, np.log(ratio), g, p)
        for column, values in enumerate(terms):
            self.sums[:, column] += np.bincount(ids, weights=values, minlength=self.num_classes)
        self.sources[source] = self.sources.get(source, 0) + 1

    def result(self, names: Sequence[str]) -> dict[str, Any]:
        """``{'source': ..., 'classes': {name: {pixels, abs_rel, d1, rmse, log_ratio,
        abs_rel_share, gt_mean_m, pred_mean_m}}}``, the classes with pixels, most pixels
        first; ``abs_rel_share``: the class's part of the summed AbsRel of all counted
        pixels (the shares add up to 1)."""
        if len(names) != self.num_classes:
            raise ValueError(f'{len(names)} class names for {self.num_classes} classes')
        classes = {}
        total_abs_rel = self.sums[:, 1].sum()
        for index in np.argsort(-self.sums[:, 0], kind='stable'):
            pixels, abs_rel, d1, sq_err, log_ratio, gt, pred = self.sums[index]
            if pixels == 0:
                continue
            share = abs_rel / total_abs_rel if total_abs_rel > 0 else 0.0
            classes[names[index]] = {'pixels': int(pixels), 'abs_rel': abs_rel / pixels,
                                     'd1': d1 / pixels, 'rmse': float(np.sqrt(sq_err / pixels)),
                                     'log_ratio': log_ratio / pixels,
                                     'abs_rel_share': float(share), 'gt_mean_m': gt / pixels,
                                     'pred_mean_m': pred / pixels}
        return {'source': ' and '.join(s for s in SOURCES if s in self.sources),
                'frames_per_source': dict(self.sources), 'classes': classes}
