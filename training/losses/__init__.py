"""Multi-task losses: per-head terms, sparse losses and task weightings.

See :mod:`training.losses.composition` for the contract and how to add a loss.
"""

from training.losses.composition import (
    TOTAL, CompositeLoss, LossTerm, MultiTaskLoss, check_heads, select_samples)
from training.losses.sparse import HAS_DEPTH, HAS_LABELS, SparseCrossEntropy, SparseMSE
from training.losses.uncertainty import (
    WEIGHTINGS, FixedWeighting, UncertaintyWeighting, Weighting, build_weighting)

__all__ = [
    'HAS_DEPTH', 'HAS_LABELS', 'TOTAL', 'WEIGHTINGS', 'CompositeLoss', 'FixedWeighting',
    'LossTerm', 'MultiTaskLoss', 'SparseCrossEntropy', 'SparseMSE', 'UncertaintyWeighting',
    'Weighting', 'build_weighting', 'check_heads', 'select_samples',
]
