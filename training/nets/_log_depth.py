"""Depth heads that regress log metres: positive depth by construction.

The paper models of this package return ``depth`` in metres (the model card's
``metres`` encoding, so export and the vehicle need no decoding). Their last
convolution predicts ``log(depth)``, and :func:`log_depth_to_metres` maps it
to metres: positive whatever the weights, with well-behaved gradients from
the first step (a linear output can go negative, where ``log`` in the
scale-invariant and attention losses is undefined).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MIN_METRES = 1e-2  # the output range; clamping the log keeps exp() finite in half precision
MAX_METRES = 1e3
LOG_MIN = math.log(MIN_METRES)
LOG_MAX = math.log(MAX_METRES)


def log_depth_to_metres(log_depth: Tensor) -> Tensor:
    """(N, 1, H, W) log metres -> metres in [MIN_METRES, MAX_METRES]."""
    return torch.exp(log_depth.clamp(LOG_MIN, LOG_MAX))
