"""Task weightings: how per-head losses add up to the loss that is trained.

- ``equal``: ``sum_t L_t``.
- ``fixed``: ``sum_t w_t L_t`` with the config's per-head ``weights``.
- ``uncertainty`` (default of the MultiDepth recipes): Kendall, Gal & Cipolla
  (2018) in the form of MultiDepth's *released code*, one learned ``s_t``
  (log variance) per task, initialised to 1 and trained with the network::

      regression:      0.5 * exp(-s) * L + 0.5 * s
      classification:        exp(-s) * L + 0.5 * s

- ``uncertainty_text``: the form of MultiDepth's *paper text*, weights
  ``w = 0.5 exp(-s^2)`` (regression) and ``exp(-s^2)`` (classification). The
  text gives only the weight; we pair it with the regulariser ``0.5 s^2``
  (= ln sigma for sigma^2 = exp(s^2), Kendall's ln sigma term), without which
  ``s`` would grow without bound.

Per-head ``weights`` multiply ``L_t`` under every scheme (default 1).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

WEIGHTINGS = ('equal', 'fixed', 'uncertainty', 'uncertainty_text')
KIND_FACTOR = {'regression': 0.5, 'classification': 1.0}  # Kendall's 1/(2 sigma^2) vs 1/sigma^2
REGULARISER = 0.5


class Weighting(nn.Module):
    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__()
        self.weights = dict(weights)

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def current_weights(self) -> dict[str, float]:
        return dict(self.weights)


class FixedWeighting(Weighting):
    """``sum_t w_t L_t``; ``equal`` is this with every ``w_t = 1``."""

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        return torch.stack([self.weights[head] * loss for head, loss in losses.items()]).sum()


class UncertaintyWeighting(Weighting):
    """Learned homoscedastic-uncertainty weighting, one ``s`` per head (see module doc)."""

    def __init__(self, kinds: Mapping[str, str], weights: Mapping[str, float],
                 squared: bool = False, init: float = 1.0) -> None:
        super().__init__(weights)
        self.kinds = dict(kinds)
        self.squared = squared  # False: released code's exp(-s); True: paper text's exp(-s^2)
        self.log_variance = nn.ParameterDict(
            {head: nn.Parameter(torch.tensor(float(init))) for head in kinds})

    def _exponent(self, head: str) -> Tensor:
        s = self.log_variance[head]
        return s * s if self.squared else s

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        terms = []
        for head, loss in losses.items():
            exponent = self._exponent(head)
            factor = KIND_FACTOR[self.kinds[head]] * self.weights[head]
            terms.append(factor * torch.exp(-exponent) * loss + REGULARISER * exponent)
        return torch.stack(terms).sum()

    def current_weights(self) -> dict[str, float]:
        with torch.no_grad():
            return {head: float(KIND_FACTOR[self.kinds[head]] * self.weights[head]
                                * torch.exp(-self._exponent(head)))
                    for head in self.kinds}


def build_weighting(name: str, kinds: Mapping[str, str],
                    weights: Mapping[str, float] | None = None,
                    uncertainty_init: float = 1.0) -> Weighting:
    """The weighting called ``name`` over heads ``kinds`` ({head: 'regression'|'classification'})."""
    if name not in WEIGHTINGS:
        raise ValueError(f'unknown loss weighting {name!r}; choose one of {WEIGHTINGS}')
    unknown = sorted(set(weights or {}) - set(kinds))
    if unknown:
        raise ValueError(f'loss weights given for heads {unknown} that the loss does not '
                         f'supervise (its heads: {sorted(kinds)})')
    if name == 'equal' and weights:
        raise ValueError("weighting 'equal' takes no weights; use weighting 'fixed'")
    per_head = {head: float((weights or {}).get(head, 1.0)) for head in kinds}
    if name in ('equal', 'fixed'):
        return FixedWeighting(per_head)
    return UncertaintyWeighting(kinds, per_head, squared=name == 'uncertainty_text',
                                init=uncertainty_init)
