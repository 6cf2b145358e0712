"""The ONNX file of an exported model: its card read, checked against the graph, embedded.

The card lives in the model's ``metadata_props`` under :data:`~.card.CARD_KEY`.
Checking it against the graph catches a card that names tensors the graph
lacks or an input size the graph was not exported with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtdepth_ros.inference.card import CARD_KEY, CardError, ModelCard


def read_card(model_path: str | Path) -> ModelCard:
    """Read and validate the card of an ONNX model file; check it against the graph."""
    import onnx  # noqa: PLC0415  (a few MB of import, needed only here)

    path = Path(model_path)
    if not path.is_file():
        raise CardError(f'model file not found: {path}')
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # onnx raises DecodeError, OSError, ...
        raise CardError(f'{path} is not a readable ONNX model: {error}') from error
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    if CARD_KEY not in metadata:
        raise CardError(
            f"{path} has no model card (metadata_props key '{CARD_KEY}'); "
            'export it with `python -m training export`')
    try:
        card = ModelCard.from_json(metadata[CARD_KEY])
    except CardError as error:
        raise CardError(f'{path}: {error}') from error
    check_card_against_graph(card, model, path)
    return card


def input_shapes(model: Any) -> dict[str, list[int | str]]:
    """Graph input name -> its shape (ints where static, names where symbolic)."""
    return {i.name: [d.dim_value if d.HasField('dim_value') else d.dim_param
                     for d in i.type.tensor_type.shape.dim] for i in model.graph.input}


def check_card_against_graph(card: ModelCard, model: Any, where: str | Path = 'model') -> None:
    """CardError naming every way ``card`` and the graph of ``model`` disagree."""
    inputs = input_shapes(model)
    outputs = [o.name for o in model.graph.output]
    problems = []
    if card.input.name not in inputs:
        problems.append(f'input {card.input.name!r} is not a graph input (inputs: {list(inputs)})')
    else:
        problems += _size_problems(card, inputs[card.input.name])
    for head, spec in card.heads.items():
        if spec.output not in outputs:
            problems.append(f'head {head!r} names output {spec.output!r}, '
                            f'which the graph does not have (outputs: {outputs})')
    if problems:
        raise CardError(f'{where}: card does not match the graph: ' + '; '.join(problems))


def _size_problems(card: ModelCard, shape: Sequence[int | str]) -> list[str]:
    """The card's NCHW input size against the graph input's static dimensions."""
    expected = {2: card.input.height, 3: card.input.width}
    if len(shape) != 4:
        return [f'input {card.input.name!r} has shape {list(shape)}, not NCHW']
    wrong = [f'{"height" if axis == 2 else "width"} {size} (graph) vs {expected[axis]} (card)'
             for axis, size in enumerate(shape)
             if axis in expected and isinstance(size, int) and size > 0 and size != expected[axis]]
    return [f'input size differs: {", ".join(wrong)}'] if wrong else []


def embed_card(model: Any, card: ModelCard) -> None:
    """Write ``card`` into an ``onnx.ModelProto``'s metadata, replacing any earlier card."""
    check_card_against_graph(card, model)
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != CARD_KEY]
    del model.metadata_props[:]
    for key, value in kept + [(CARD_KEY, card.to_json())]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
