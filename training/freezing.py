"""What a run keeps fixed: parameters under frozen prefixes, and BatchNorm statistics.

``model.freeze`` (and a stage's ``freeze``) names network parameter prefixes that get
no gradient; the BatchNorm layers under them keep their running statistics (eval
mode). A run started from an export has its statistics folded into the weights
(:mod:`training.init_from`), so every BatchNorm keeps them. Lightning puts submodules
back in train mode around validation, so the module holds them again at every
``train()`` and every training batch.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def freeze_parameters(net: nn.Module, prefixes: tuple[str, ...], net_name: str) -> None:
    """No gradient for the parameters of ``net`` under ``prefixes``; a prefix matching no
    parameter is an error (a misspelt recipe would otherwise train everything)."""
    if not prefixes:
        return
    names = [name for name, _ in net.named_parameters()]
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name in names):
            raise ValueError(f'freeze prefix {prefix!r} matches no parameter of {net_name}'
                             f' (names look like {names[:3]})')
    for name, parameter in net.named_parameters():
        if name.startswith(prefixes):
            parameter.requires_grad_(False)


def hold_batchnorm(net: nn.Module, prefixes: tuple[str, ...], every: bool = False) -> int:
    """Put the BatchNorm layers under ``prefixes`` (all of them when ``every``) in eval
    mode, so that they keep their statistics; how many."""
    held = 0
    for name, module in net.named_modules():
        under = every or bool(name) and f'{name}.'.startswith(prefixes)
        if under and isinstance(module, _BatchNorm):
            module.eval()
            held += 1
    return held
