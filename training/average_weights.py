"""Exports of one network, weight-averaged into another (a "model soup").

``python -m training average-weights A.onnx B.onnx --weight W --out C.onnx``
``python -m training average-weights A.onnx B.onnx C.onnx D.onnx [--weights ...] --out S.onnx``

Every float initializer of the result is the weighted mean of the models':
``W * A + (1 - W) * B`` for two (``--weight``: the first's share), ``--weights``
one share per model summing to 1, by default equal shares (a uniform soup).
These are the parameters of the deployed function, BatchNorm folded into the
convolutions as the export leaves it (:mod:`training.onnx_weights`). A stage
that starts from an export keeps that BatchNorm frozen, so the stage and its
start differ in these parameters alone, and the line between them is the
line between the two trainings (Wortsman et al., "Robust fine-tuning of
zero-shot models", CVPR 2022: the weights of a fine-tuned model averaged with
those it started from keep more of what the start knew; Wortsman et al.,
"Model soups", ICML 2022: so do several fine-tunings of one start). The
graphs must be the same network:
the same computations (``node_signatures``: operators, attributes and how
they connect, whatever the exporter named the constants and the values
between nodes, in which order it wrote the nodes and what metadata it
attached), the parameters (initializers of one name in both) of the same
shapes and types, every non-float one (shapes, indices) equal, and every
initializer of one model only a constant equal to one of the other's;
anything else is refused with what differs.

The result's card is A's, with its recipe and training data naming every
parent and its share (with its seed where its card has one; a parent that is
itself an average in brackets), and its metrics cleared (they were A's alone)
but for the training-data facts the parents share (``train_mean_depth_m``,
A's) and ``average_weight`` (A's share).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mtdepth_ros.inference.card import SEED_METRIC, ModelCard
from mtdepth_ros.inference.model_file import embed_card, read_card

KEPT_METRICS = ('train_mean_depth_m',)  # facts of the training data, not of the weights
WEIGHT_METRIC = 'average_weight'  # the first model's share
SHARES_TOLERANCE = 1e-6  # how far from 1 the shares may sum


class AverageWeightsError(ValueError):
    """The models are not one network, or the shares are not a mean; the text says why."""


def check_shares(weights: Sequence[float], models: int) -> tuple[float, ...]:
    """``weights`` as the shares of ``models`` models: one each, in [0, 1], summing to 1."""
    if models < 2:
        raise AverageWeightsError(f'an average needs two models or more, got {models}')
    if len(weights) != models:
        raise AverageWeightsError(f'{len(weights)} weights for {models} models: one each')
    if not all(0.0 <= w <= 1.0 for w in weights):
        raise AverageWeightsError(f'weight must be in [0, 1], got {list(weights)}')
    if abs(sum(weights) - 1.0) > SHARES_TOLERANCE:
        raise AverageWeightsError(f'the weights sum to {sum(weights):g}, not 1: {list(weights)}')
    return tuple(float(w) for w in weights)


def constant_digest(initializer: Any) -> bytes:
    """An initializer's type, shape and values, as a digest."""
    from onnx import numpy_helper  # noqa: PLC0415

    value = np.ascontiguousarray(numpy_helper.to_array(initializer))
    return hashlib.sha256(f'{value.dtype}{list(value.shape)}'.encode() + value.tobytes()).digest()


def node_signatures(graph: Any, parameters: set[str]) -> list[bytes]:
    """What each node of an ``onnx.GraphProto`` computes, as a digest of its operator,
    attributes and what its inputs are: a graph input by name, an initializer in
    ``parameters`` by name, any other initializer (a constant the exporter named, a
    shape, an index) by its values, another node's output by that node's digest. Equal
    for two exports of one network whatever the exporter named the constants and the
    values between nodes, in which order it wrote the nodes and what metadata it
    attached (source lines, which move when the code does)."""
    leaves = {i.name: b'input:' + i.name.encode() for i in graph.input}
    leaves |= {i.name: b'param:' + i.name.encode() if i.name in parameters
               else b'const:' + constant_digest(i) for i in graph.initializer}
    produced: dict[str, bytes] = {}
    signatures = []
    for node in graph.node:  # ONNX stores nodes in topological order
        digest = hashlib.sha256(f'{node.domain}:{node.op_type}'.encode())
        for attribute in sorted(node.attribute, key=lambda a: a.name):
            digest.update(attribute.SerializeToString())
        for name in node.input:
            source = leaves.get(name) or produced.get(name, b'?' + name.encode())
            digest.update(b'|' + source)
        signature = digest.digest()
        for index, name in enumerate(node.output):
            produced[name] = signature + bytes([index])
        signatures.append(signature)
    return signatures


def check_one_network(first: Any, other: Any) -> set[str]:
    """The parameters (initializer names) ``first`` and ``other`` (``onnx.ModelProto``)
    share; AverageWeightsError unless they are one network (module docstring)."""
    firsts = {i.name: i for i in first.graph.initializer}
    others = {i.name: i for i in other.graph.initializer}
    shared = set(firsts) & set(others)
    nodes, theirs = node_signatures(first.graph, shared), node_signatures(other.graph, shared)
    if sorted(nodes) != sorted(theirs):
        unmatched = set(nodes) - set(theirs)
        differ = next((i for i, n in enumerate(nodes) if n in unmatched), len(nodes))
        raise AverageWeightsError(f'the graphs differ at node {differ} ({len(first.graph.node)} '
                                  f'and {len(other.graph.node)} nodes): not one network')
    # initializers of one model only: constants the exporters named differently, each equal
    # to one of the other's
    only_first = {constant_digest(firsts[n]): n for n in set(firsts) - shared}
    only_other = {constant_digest(others[n]): n for n in set(others) - shared}
    if set(only_first) != set(only_other):
        only = sorted([only_first[d] for d in set(only_first) - set(only_other)]
                      + [only_other[d] for d in set(only_other) - set(only_first)])
        raise AverageWeightsError(f'initializers in one model only: {only[:5]}'
                                  + (f' and {len(only) - 5} more' if len(only) > 5 else ''))
    return shared


def average_graphs(models: Sequence[Any], weights: Sequence[float]) -> Any:
    """A copy of the first of ``models`` (``onnx.ModelProto``) whose float initializers
    are the ``weights``-weighted mean of the models' (:func:`check_shares`)."""
    import onnx  # noqa: PLC0415
    from onnx import numpy_helper  # noqa: PLC0415

    weights = check_shares(weights, len(models))
    first, *others = models
    shared = set.intersection(*(check_one_network(first, other) for other in others))
    others_values = [{i.name: i for i in other.graph.initializer} for other in others]
    averaged = onnx.ModelProto()
    averaged.CopyFrom(first)
    for initializer in averaged.graph.initializer:
        if initializer.name not in shared:
            continue  # a constant, equal to one of every other model's
        values = [numpy_helper.to_array(initializer)]
        values += [numpy_helper.to_array(v[initializer.name]) for v in others_values]
        a = values[0]
        for b in values[1:]:
            if b.shape != a.shape or b.dtype != a.dtype:
                raise AverageWeightsError(f'{initializer.name}: {a.dtype}{list(a.shape)} '
                                          f'against {b.dtype}{list(b.shape)}')
        if a.dtype.kind != 'f':
            if not all(np.array_equal(a, b) for b in values[1:]):
                raise AverageWeightsError(f'{initializer.name}: {a.dtype} values differ (a '
                                          'shape or an index, not a weight)')
            continue
        # last + sum w (x - last): values equal in every model stay exactly equal, and two
        # models give b + w (a - b) as this always has
        last = values[-1].astype(np.float64)
        mixed = last.copy()
        for weight, value in zip(weights[:-1], values[:-1], strict=True):
            mixed += weight * (value.astype(np.float64) - last)
        initializer.CopyFrom(numpy_helper.from_array(mixed.astype(a.dtype), initializer.name))
    return averaged


def parent_name(card: ModelCard) -> str:
    """A parent as the average's card names it: its recipe with its seed where the card has
    one, an average in brackets."""
    if ' + ' in card.recipe:
        return f'[{card.recipe}]'
    seed = card.metrics.get(SEED_METRIC)
    return card.recipe if seed is None else f'{card.recipe} (seed {int(seed)})'


def averaged_card(cards: Sequence[ModelCard], weights: Sequence[float]) -> ModelCard:
    """The first of ``cards``' card for the average: every parent named with its share,
    the metrics cleared."""
    weights = check_shares(weights, len(cards))
    first = cards[0]
    for card in cards[1:]:
        for field in ('architecture', 'input', 'heads', 'depth_coding', 'classes'):
            if getattr(first, field) != getattr(card, field):
                raise AverageWeightsError(f'the cards differ in {field}: not one network')
    share = ' + '.join(f'{w:g} x {parent_name(c)}' for c, w in zip(cards, weights, strict=True))
    data = '; '.join(f'{w:g} x [{c.training_data}]' for c, w in zip(cards, weights, strict=True))
    metrics = {k: first.metrics[k] for k in KEPT_METRICS if k in first.metrics}
    return replace(first, recipe=f'weight average: {share}',
                   training_data=f'weights averaged, {share}: {data}',
                   metrics={**metrics, WEIGHT_METRIC: weights[0]})


def average_weights(models: Sequence[Path], weights: Sequence[float], out: Path) -> ModelCard:
    """Write the ``weights``-weighted average of the exports ``models`` to ``out``; its card."""
    import onnx  # noqa: PLC0415

    card = averaged_card([read_card(m) for m in models], weights)
    model = average_graphs([onnx.load(str(m)) for m in models], weights)
    embed_card(model, card)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + '.part')
    onnx.save_model(model, str(partial), save_as_external_data=False)
    partial.replace(out)
    return read_card(out)  # valid for the vehicle


def shares(args: argparse.Namespace) -> list[float]:
    """The shares the command line asks for: --weight (two models), --weights, or equal."""
    count = len(args.models)
    if args.weight is not None and args.weights is not None:
        raise AverageWeightsError('--weight and --weights: give one of them')
    if args.weight is not None:
        if count != 2:
            raise AverageWeightsError(f'--weight is the first of two models\' share; for '
                                      f'{count} models give --weights')
        return [args.weight, 1.0 - args.weight]
    return list(args.weights) if args.weights is not None else [1.0 / count] * count


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m training average-weights',
                                description=__doc__.split('\n\n')[0])
    p.add_argument('models', type=Path, nargs='+',
                   help="exports of one network, two or more (the first's card is the average's)")
    p.add_argument('--weight', type=float,
                   help="with two models: the first's share, 0 to 1 (default 0.5)")
    p.add_argument('--weights', type=float, nargs='+',
                   help='one share per model, summing to 1 (default: equal shares)')
    p.add_argument('--out', type=Path, required=True, help='the averaged model (.onnx)')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        card = average_weights(args.models, shares(args), args.out)
    except (AverageWeightsError, OSError) as error:
        print(f'average-weights: {error}', file=sys.stderr)
        return 2
    print(f'{args.out}: {card.recipe}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
