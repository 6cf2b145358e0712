"""A recipe's depth coding, and a network's depth head read in metres.

One place for both, used by the training module, the exporter and window-check:
the recipe's ``depth_coding`` (DEFAULT_CODING when it names none) becomes a
:class:`~mtdepth_ros.inference.depth_coding.DepthCoding`, and a depth head's
output is decoded to metres the way the network deploys it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from mtdepth_ros.inference.depth_coding import DepthCoding
from training.losses.targets import decode_depth
from training.nets.registry import ModelSpec

DEFAULT_CODING = {'d_min': 2.0, 'd_max': 125.0, 'num_intervals': 32}


def coding_from_config(values: Mapping[str, Any] | None) -> DepthCoding:
    """The recipe's ``depth_coding`` (DEFAULT_CODING when absent) as a :class:`DepthCoding`."""
    fields = dict(values or DEFAULT_CODING)
    if 'num_intervals' in fields:  # YAML and jsonargparse may hand over 32.0
        fields['num_intervals'] = int(fields['num_intervals'])
    return DepthCoding.from_dict(fields)


def depth_metres(net: nn.Module, spec: ModelSpec, coding: DepthCoding, depth: Tensor) -> Tensor:
    """``net``'s depth head output in metres: its own ``deploy_depth`` if it has one, else
    decoded by the model's depth encoding (``spec``) with ``coding``."""
    deploy = getattr(net, 'deploy_depth', None)
    if deploy is not None:
        return deploy(depth)
    if spec.depth_encoding == 'normalized_log':
        return decode_depth(depth.float(), coding)
    return depth.float()
