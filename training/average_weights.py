"""Two exports of one network, weight-averaged into a third (a "model soup").

``python -m training average-weights A.onnx B.onnx --weight W --out C.onnx``

Every float initializer of C is ``W * A + (1 - W) * B``: the parameters of
the deployed function, BatchNorm folded into the convolutions as the export
leaves it (:mod:`training.onnx_weights`). A stage that starts from an export
keeps that BatchNorm frozen, so the stage and its start differ in these
parameters alone, and the line between them is the line between the two
trainings (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR
2022: the weights of a fine-tuned model averaged with those it started from
keep more of what the start knew). The two graphs must be the same network:
the same computations (``node_signatures``: operators, attributes and how
they connect, whatever the exporter named the constants and the values
between nodes, in which order it wrote the nodes and what metadata it
attached), the parameters (initializers of one name in both) of the same
shapes and types, every non-float one (shapes, indices) equal, and every
initializer of one model only a constant equal to one of the other's;
anything else is refused with what differs.

C's card is A's, with its recipe and training data naming both parents and
the weight, and its metrics cleared (they were A's alone) but for the
training-data facts both parents share (``train_mean_depth_m``, A's) and
``average_weight`` (W).
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

from mtdepth_ros.inference.card import ModelCard
from mtdepth_ros.inference.model_file import embed_card, read_card

KEPT_METRICS = ('train_mean_depth_m',)  # facts of the training data, not of the weights
WEIGHT_METRIC = 'average_weight'


class AverageWeightsError(ValueError):
    """The two models are not one network; the text says where they differ."""


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


def average_graphs(first: Any, second: Any, weight: float) -> Any:
    """A copy of ``first`` (an ``onnx.ModelProto``) whose float initializers are
    ``weight * first + (1 - weight) * second``."""
    import onnx  # noqa: PLC0415
    from onnx import numpy_helper  # noqa: PLC0415

    if not 0.0 <= weight <= 1.0:
        raise AverageWeightsError(f'weight must be in [0, 1], got {weight}')
    firsts = {i.name: i for i in first.graph.initializer}
    seconds = {i.name: i for i in second.graph.initializer}
    shared = set(firsts) & set(seconds)
    nodes, others = node_signatures(first.graph, shared), node_signatures(second.graph, shared)
    if sorted(nodes) != sorted(others):
        unmatched = set(nodes) - set(others)
        differ = next((i for i, n in enumerate(nodes) if n in unmatched), len(nodes))
        raise AverageWeightsError(f'the graphs differ at node {differ} ({len(first.graph.node)} '
                                  f'and {len(second.graph.node)} nodes): not one network')
    # initializers of one model only: constants the exporters named differently, each equal
    # to one of the other's
    only_first = {constant_digest(firsts[n]): n for n in set(firsts) - shared}
    only_second = {constant_digest(seconds[n]): n for n in set(seconds) - shared}
    if set(only_first) != set(only_second):
        only = sorted([only_first[d] for d in set(only_first) - set(only_second)]
                      + [only_second[d] for d in set(only_second) - set(only_first)])
        raise AverageWeightsError(f'initializers in one model only: {only[:5]}'
                                  + (f' and {len(only) - 5} more' if len(only) > 5 else ''))
    averaged = onnx.ModelProto()
    averaged.CopyFrom(first)
    for initializer in averaged.graph.initializer:
        if initializer.name not in shared:
            continue  # a constant, equal to one of the other model's
        a, b = numpy_helper.to_array(initializer), numpy_helper.to_array(seconds[initializer.name])
        if a.shape != b.shape or a.dtype != b.dtype:
            raise AverageWeightsError(f'{initializer.name}: {a.dtype}{list(a.shape)} against '
                                      f'{b.dtype}{list(b.shape)}')
        if a.dtype.kind != 'f':
            if not np.array_equal(a, b):
                raise AverageWeightsError(f'{initializer.name}: {a.dtype} values differ (a '
                                          'shape or an index, not a weight)')
            continue
        # b + w (a - b): equal values stay exactly equal
        mixed = (b.astype(np.float64) + weight * (a.astype(np.float64) - b)).astype(a.dtype)
        initializer.CopyFrom(numpy_helper.from_array(mixed, initializer.name))
    return averaged


def averaged_card(first: ModelCard, second: ModelCard, weight: float) -> ModelCard:
    """``first``'s card for the average: both parents named, their metrics cleared."""
    for field in ('architecture', 'input', 'heads', 'depth_coding', 'classes'):
        if getattr(first, field) != getattr(second, field):
            raise AverageWeightsError(f'the cards differ in {field}: not one network')
    share = f'{weight:g} x {first.recipe} + {1 - weight:g} x {second.recipe}'
    metrics = {k: first.metrics[k] for k in KEPT_METRICS if k in first.metrics}
    return replace(
        first, recipe=f'weight average: {share}',
        training_data=f'weights averaged, {share}: {weight:g} x [{first.training_data}]; '
                      f'{1 - weight:g} x [{second.training_data}]',
        metrics={**metrics, WEIGHT_METRIC: weight})


def average_weights(first: Path, second: Path, weight: float, out: Path) -> ModelCard:
    """Write the average of exports ``first`` and ``second`` to ``out``; its card."""
    import onnx  # noqa: PLC0415

    card = averaged_card(read_card(first), read_card(second), weight)
    model = average_graphs(onnx.load(str(first)), onnx.load(str(second)), weight)
    embed_card(model, card)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + '.part')
    onnx.save_model(model, str(partial), save_as_external_data=False)
    partial.replace(out)
    return read_card(out)  # valid for the vehicle


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m training average-weights',
                                description=__doc__.split('\n\n')[0])
    p.add_argument('first', type=Path, help="an export (its card is the average's)")
    p.add_argument('second', type=Path, help='an export of the same network')
    p.add_argument('--weight', type=float, default=0.5,
                   help="the first model's share, 0 to 1 (default 0.5)")
    p.add_argument('--out', type=Path, required=True, help='the averaged model (.onnx)')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == 'average-weights':
        argv = argv[1:]
    args = parser().parse_args(argv)
    try:
        card = average_weights(args.first, args.second, args.weight, args.out)
    except (AverageWeightsError, OSError) as error:
        print(f'average-weights: {error}', file=sys.stderr)
        return 2
    print(f'{args.out}: {card.recipe}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
