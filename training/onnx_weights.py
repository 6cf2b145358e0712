"""Network weights read back from an exported model: ``model.init_from: model.onnx``.

An export (:mod:`training.export`) traces the network in eval mode and
optimises the graph, which folds every BatchNorm into the convolution that
feeds it: the Conv node keeps the torch weight's name (``net.`` + parameter
name) but holds ``W * gamma / sqrt(var + eps)``, and its bias input (another
name) holds ``beta + (b - mean) * gamma / sqrt(var + eps)``; the optimiser
drops any convolution's bias that is all zeros. The statistics are gone, so
the torch network gets the folded weight in the convolution and a
pass-through BatchNorm that adds the fused bias: running mean 0, running
variance ``1 - eps`` (``sqrt(var + eps)`` is 1), weight 1, bias the fused bias
(a convolution with a bias of its own gets 0 there). In eval mode that is the
exported function; training keeps it only with the BatchNorm statistics
frozen, which :mod:`training.module` does for a run started this way.

Everything else loads by name: convolutions without BatchNorm (decoder
laterals, heads, squeeze-excitation layers), and BatchNorm whose statistics
are still in the graph (an unoptimised export, ``optimize=False``, keeps its
BatchNormalization nodes). Every entry of the network's state dict must be
assigned, every ``net.`` initializer used and every shape match: otherwise
:class:`OnnxWeightsError` names what is wrong. The one exception: entries under
a prefix the network lists in its ``starts_neutral`` (a branch added to an
exported design whose initial weights leave the function unchanged) keep the
network's own initial values when the export lacks them.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from mtdepth_ros.inference.card import ModelCard
from mtdepth_ros.inference.model_file import read_card

NET_PREFIX = 'net.'  # DeployNet holds the network as ``net``: initializers are named net.<param>
WEIGHT_SUFFIX = '.weight'
STEP_COUNTER = '.num_batches_tracked'  # a BatchNorm buffer no export holds
SHOWN = 6  # names (or problems) an error lists, at most


class OnnxWeightsError(ValueError):
    """The exported model does not hold the weights of this network."""


def load_onnx_weights(path: str | Path, net: nn.Module, net_name: str) -> ModelCard:
    """Load the exported model at ``path`` into ``net`` (registry name ``net_name``);
    return its card. The card's recorded network must be ``net_name``."""
    import onnx  # noqa: PLC0415  (a few MB of import, needed only here)

    card = read_card(path)
    recorded = (card.config.get('model') or {}).get('net')
    if recorded and recorded != net_name:
        raise OnnxWeightsError(f'{path} is an export of network {recorded!r} '
                               f'({card.architecture}); this recipe builds {net_name!r}')
    try:
        state = onnx_state_dict(onnx.load(str(path)), net, (card.input.height, card.input.width))
    except OnnxWeightsError as error:
        raise OnnxWeightsError(f'{path}: {error}') from None
    net.load_state_dict(state, strict=True)
    return card


def onnx_state_dict(model: Any, net: nn.Module, size: tuple[int, int]) -> dict[str, Tensor]:
    """A complete state dict for ``net`` from an exported ``onnx.ModelProto``.

    ``size`` is the graph's input (height, width): one forward pass of that
    size finds which convolution feeds which BatchNorm (:func:`conv_batchnorm_pairs`).
    """
    builder = _StateBuilder(model, net)
    pairs = conv_batchnorm_pairs(net, size)
    for node in model.graph.node:
        if node.op_type == 'Conv':
            builder.conv(node, pairs)
    builder.by_name()
    return builder.result()


def conv_batchnorm_pairs(net: nn.Module, size: tuple[int, int]) -> dict[str, str]:
    """Convolution name -> the BatchNorm that reads its output as it is (the pairs an
    export folds), found by one eval-mode forward pass of a (1, 3, *size) image."""
    names = {module: name for name, module in net.named_modules()}
    # id(output) -> the conv and a weak reference (a freed tensor's id may be reused)
    produced: dict[int, tuple[str, weakref.ref[Tensor]]] = {}
    pairs: dict[str, str] = {}

    def conv_hook(module: nn.Module, args: Any, output: Tensor) -> None:
        produced[id(output)] = (names[module], weakref.ref(output))

    def norm_hook(module: nn.Module, args: tuple[Tensor, ...]) -> None:
        source = produced.get(id(args[0]))
        if source is not None and source[1]() is args[0]:
            pairs[source[0]] = names[module]

    handles = [m.register_forward_hook(conv_hook) for m in names if isinstance(m, _ConvNd)]
    handles += [m.register_forward_pre_hook(norm_hook) for m in names if isinstance(m, _BatchNorm)]
    was_training = net.training
    try:
        net.eval()
        device = next(net.parameters()).device
        with torch.no_grad():
            net(torch.zeros(1, 3, *size, device=device))
    finally:
        net.train(was_training)
        for handle in handles:
            handle.remove()
    return pairs


class _StateBuilder:
    """Assigns state dict entries from a graph, collecting every problem before raising."""

    def __init__(self, model: Any, net: nn.Module) -> None:
        from onnx import numpy_helper  # noqa: PLC0415

        self.target = net.state_dict()
        self.neutral = tuple(getattr(net, 'starts_neutral', ()))
        self.modules = dict(net.named_modules())
        self.arrays = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
        self.state: dict[str, Tensor] = {}
        self.used: set[str] = set()
        self.problems: list[str] = []

    def tensor(self, name: str) -> Tensor:
        self.used.add(name)
        return torch.from_numpy(self.arrays[name].copy())

    def assign(self, key: str, value: Tensor, source: str) -> None:
        expected = self.target.get(key)
        if expected is None:
            self.problems.append(f'{source} has no place in the network (no {key!r})')
        elif key in self.state:
            self.problems.append(f'{key!r} assigned twice (again from {source})')
        elif tuple(value.shape) != tuple(expected.shape):
            self.problems.append(f'{key!r} is {tuple(expected.shape)} in the network, '
                                 f'{tuple(value.shape)} in {source}')
        else:
            self.state[key] = value.to(expected.dtype)

    def conv(self, node: Any, pairs: Mapping[str, str]) -> None:
        weight = node.input[1]
        name = _module_name(weight)
        conv = self.modules.get(name) if name else None
        if name is None or weight not in self.arrays or not isinstance(conv, _ConvNd):
            self.problems.append(f'Conv node {node.name or node.output[0]!r}: its weight '
                                 f'{weight!r} is no stored convolution weight of the network')
            return
        self.assign(f'{name}.weight', self.tensor(weight), weight)
        bias: str | None = node.input[2] if len(node.input) > 2 and node.input[2] else None
        norm = pairs.get(name)
        if norm is not None and f'{NET_PREFIX}{norm}.running_mean' not in self.arrays:
            self.fold(conv, name, self.modules[norm], norm, bias)  # its statistics are gone
        elif bias is None:  # the optimiser drops a bias that is all zeros
            if conv.bias is not None:
                self.assign(f'{name}.bias', torch.zeros_like(conv.bias), f'{name} (no bias: 0)')
        elif bias in self.arrays:
            self.assign(f'{name}.bias', self.tensor(bias), bias)
        elif conv.bias is not None:
            self.problems.append(f'{name}.bias: the Conv node computes it ({bias!r}), '
                                 'nothing stores it')
        # else: a computed bias on a convolution without one is the exporter's zeros

    def fold(self, conv: _ConvNd, name: str, norm: nn.Module, norm_name: str,
             bias: str | None) -> None:
        """The pass-through BatchNorm that adds the fused bias (the module docstring)."""
        assert isinstance(norm, _BatchNorm)
        channels = norm.num_features
        if bias is not None and bias not in self.arrays:
            self.problems.append(f'{name}: the fused bias {bias!r} is computed, not stored')
            return
        fused = self.tensor(bias) if bias is not None else torch.zeros(channels)
        source = f'{bias or "no bias"} (folded into {name})'
        if conv.bias is not None:
            self.assign(f'{name}.bias', torch.zeros(channels), source)
        self.assign(f'{norm_name}.running_mean', torch.zeros(channels), source)
        self.assign(f'{norm_name}.running_var', torch.full((channels,), 1.0 - norm.eps), source)
        self.assign(f'{norm_name}.weight', torch.ones(channels), source)
        self.assign(f'{norm_name}.bias', fused, source)

    def by_name(self) -> None:
        """Every ``net.`` initializer the convolutions did not read, by its own name."""
        for name in self.arrays:
            if name.startswith(NET_PREFIX) and name not in self.used:
                self.assign(name[len(NET_PREFIX):], self.tensor(name), name)

    def result(self) -> dict[str, Tensor]:
        for key, value in self.target.items():
            if key.endswith(STEP_COUNTER) and key not in self.state:
                self.state[key] = torch.zeros_like(value)
        for key, value in self.target.items():  # a new branch the export predates
            if key not in self.state and key.startswith(self.neutral):
                self.state[key] = value.clone()
        missing = [key for key in self.target if key not in self.state]
        if not self.used:
            self.problems.insert(0, f'no initializer named {NET_PREFIX}<parameter>: '
                                    'not an export of a training network')
        elif missing:
            self.problems.append(f'{len(missing)} network entries not in the graph: '
                                 f'{_some(missing)}')
        if self.problems:
            raise OnnxWeightsError('the exported model does not fit the network: '
                                   + _some(self.problems, '; '))
        return self.state


def _module_name(weight: str) -> str | None:
    """``net.a.b.weight`` -> ``a.b``; None for a name an export of a network would not give."""
    if weight.startswith(NET_PREFIX) and weight.endswith(WEIGHT_SUFFIX):
        return weight[len(NET_PREFIX):-len(WEIGHT_SUFFIX)]
    return None


def _some(items: Iterable[str], separator: str = ', ') -> str:
    """The first :data:`SHOWN` items and how many more there are."""
    items = list(items)
    shown = separator.join(items[:SHOWN])
    return shown + (f'{separator}and {len(items) - SHOWN} more' if len(items) > SHOWN else '')
