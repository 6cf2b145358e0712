"""Loss composition: per-head loss terms, summed by a task weighting.

The task-dictionary contract (house style 8): a network returns
``{head: tensor}``; a :class:`MultiTaskLoss` returns ``{head: loss, ...,
'total': loss}``, each head's entry the *unweighted* loss (for logging) and
``'total'`` the weighted sum that is back-propagated. The heads a loss
supervises must be among the network's outputs (checked every call).

Mixed supervision (Jiao et al.'s KITTI + Cityscapes scheme): every term names
the batch flag that says whether a sample carries its target
(``supervision='has_depth'`` or ``'has_labels'``). A term sees only the
samples whose flag is true; a term with no such sample in the batch is left
out: no entry in the result, nothing added to ``'total'``, so its head's
parameters (and its learned task weight) get no gradient at all.

Writing a loss for a new model: subclass :class:`LossTerm` (one head each;
a term may read other heads too, e.g. a gradient-consistency term that reads
``depth`` and ``gradients``) and compose them::

    CompositeLoss({'depth': SparseMSE('depth'), 'gradients': MyGradientTerm()},
                  weighting='fixed', weights={'gradients': 0.5})

or subclass :class:`MultiTaskLoss` directly when the paper's loss does not
split into per-head terms; keep the same return contract and call
:func:`check_heads` and :func:`select_samples`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from training.losses.uncertainty import build_weighting

TOTAL = 'total'
KINDS = ('regression', 'classification')

Batch = Mapping[str, Tensor]


def check_heads(outputs: Mapping[str, Tensor], heads: tuple[str, ...] | list[str]) -> None:
    """Raise KeyError naming the heads a loss needs that the network did not return."""
    missing = [head for head in heads if head not in outputs]
    if missing:
        raise KeyError(f'loss supervises heads {list(heads)}, but the network returned '
                       f'{sorted(outputs)}: missing {missing}')


def select_samples(outputs: Mapping[str, Tensor], batch: Batch, supervision: str | None
                   ) -> tuple[dict[str, Tensor], dict[str, Tensor]] | None:
    """Outputs and batch restricted to the samples whose ``batch[supervision]`` is true.

    None when no sample is supervised. Tensors without the batch dimension
    (scalars) pass through unchanged.
    """
    if supervision is None or supervision not in batch:
        return dict(outputs), dict(batch)
    flags = batch[supervision].reshape(-1).bool()  # (N,)
    if bool(flags.all()):
        return dict(outputs), dict(batch)
    if not bool(flags.any()):
        return None
    count = flags.numel()

    def take(values: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {key: value[flags] if isinstance(value, Tensor) and value.dim() > 0
                and value.shape[0] == count else value for key, value in values.items()}

    return take(outputs), take(batch)


class LossTerm(nn.Module):
    """The loss of one head; ``forward`` returns a scalar, or None when no pixel is valid."""

    def __init__(self, head: str, kind: str, supervision: str | None) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f'loss term kind must be one of {KINDS}, got {kind!r}')
        self.head = head
        self.kind = kind  # chooses the uncertainty weighting's factor (0.5 or 1)
        self.supervision = supervision  # batch flag of the samples it may see

    def forward(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor | None:
        raise NotImplementedError


class MultiTaskLoss(nn.Module):
    """``forward(outputs, batch) -> {head: loss, ..., 'total': loss}``."""

    heads: tuple[str, ...] = ()

    def forward(self, outputs: Mapping[str, Tensor], batch: Batch) -> dict[str, Tensor]:
        raise NotImplementedError

    def task_weights(self) -> dict[str, float]:
        """Current weight of each head (learned ones included), for logging."""
        return {}


class CompositeLoss(MultiTaskLoss):
    """Per-head :class:`LossTerm` s combined by a weighting from :mod:`.uncertainty`.

    ``weighting``: ``'equal'``, ``'fixed'`` (``weights`` per head, default
    1), ``'uncertainty'`` (Kendall et al. as MultiDepth's released code
    writes it, the default of the MultiDepth recipes) or ``'uncertainty_text'``
    (the form in MultiDepth's paper text). ``weights`` multiply each head's
    loss under every scheme; ``uncertainty_init`` is the initial ``s``.
    """

    def __init__(self, terms: Mapping[str, LossTerm], weighting: str = 'fixed',
                 weights: Mapping[str, float] | None = None,
                 uncertainty_init: float = 1.0) -> None:
        super().__init__()
        if not terms:
            raise ValueError('a CompositeLoss needs at least one term')
        for head, term in terms.items():
            if term.head != head:
                raise ValueError(f'term for {head!r} reads head {term.head!r}')
        self.terms = nn.ModuleDict(dict(terms))
        self.heads = tuple(terms)
        kinds = {head: term.kind for head, term in terms.items()}
        self.weighting = build_weighting(weighting, kinds, weights, uncertainty_init)

    def forward(self, outputs: Mapping[str, Tensor], batch: Batch) -> dict[str, Tensor]:
        check_heads(outputs, self.heads)
        losses: dict[str, Tensor] = {}
        for head, term in self.terms.items():
            assert isinstance(term, LossTerm)
            selected = select_samples(outputs, batch, term.supervision)
            if selected is None:
                continue
            value = term(*selected)
            if value is not None:
                losses[head] = value
        if losses:
            total = self.weighting(losses)
        else:  # nothing supervised: a constant, the module skips the step
            total = torch.zeros((), device=next(iter(outputs.values())).device)
        return {**losses, TOTAL: total}

    def task_weights(self) -> dict[str, float]:
        return self.weighting.current_weights()
