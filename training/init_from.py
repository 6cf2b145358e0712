"""A run's first weights (``model.init_from``): another run's checkpoint or an exported model.

A checkpoint gives the network's entries by name (a warning counts those missing or
unexpected; none at all is an error). An exported model (``*.onnx``) has its BatchNorm
folded into the convolutions (:mod:`training.onnx_weights`), so the run must keep every
BatchNorm's statistics frozen; its checkpoints record that (:data:`BATCHNORM_FOLDED`), and a
run started from one of them keeps them frozen too. Either way the weights' lineage (what
they were trained on, :mod:`training.lineage`) comes along.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from torch import nn

from training.checkpoints import EXTRA_KEY, load_checkpoint
from training.lineage import checkpoint_lineage, exported_lineage, is_exported
from training.onnx_weights import load_onnx_weights

LOG = logging.getLogger(__name__)
NET_PREFIX = 'net.'  # the module's network entries in a checkpoint's state dict
# In a checkpoint's extra: its BatchNorm holds folded statistics (the run started from an
# export, or from such a run): runs started from it keep every BatchNorm in eval too.
BATCHNORM_FOLDED = 'batchnorm_folded'


@dataclass(frozen=True)
class StartWeights:
    """What came with the weights loaded into a network."""

    lineage: str  # what they were trained on
    batchnorm_folded: bool  # keep every BatchNorm in eval mode for the run


def load_start_weights(path: str, net: nn.Module, net_name: str) -> StartWeights:
    """Load the weights at ``path`` (a checkpoint or an export of network ``net_name``)
    into ``net``."""
    if is_exported(path):
        load_onnx_weights(path, net, net_name)
        return StartWeights(exported_lineage(path), batchnorm_folded=True)
    checkpoint = load_checkpoint(path)
    extra = checkpoint.get(EXTRA_KEY) or {}
    weights = {key[len(NET_PREFIX):]: value for key, value in checkpoint['state_dict'].items()
               if key.startswith(NET_PREFIX)}
    result = net.load_state_dict(weights, strict=False)
    if len(result.missing_keys) == len(net.state_dict()):
        raise ValueError(f'{path}: no network weights of {net_name} in this checkpoint')
    if result.missing_keys or result.unexpected_keys:
        LOG.warning('init_from %s: %d missing, %d unexpected keys', path,
                    len(result.missing_keys), len(result.unexpected_keys))
    # What those weights saw, kept in this run's checkpoints (the parent may go).
    return StartWeights(checkpoint_lineage(path, extra), bool(extra.get(BATCHNORM_FOLDED)))
