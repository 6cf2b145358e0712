"""Tiny ONNX models with a model card, whose outputs are known exactly.

Built with ``onnx.helper`` (no torch), so tests can check every decoded value:

- ``depth``: normalised log depth that rises linearly down the rows
  (:func:`expected_depth` gives the metres), or, with ``echo=True``, the first
  input channel itself in metres (to check resizing, normalisation and colour order);
- ``intervals``: the interval of that depth (:func:`expected_intervals`);
- ``confidence``: 1.0 on the left half, :data:`LOW_CONFIDENCE` on the right;
- ``segmentation``: vertical bands of class ids from 0 (left) to the last class (right);
  with ``standing=True`` the bands' bottom :data:`GROUND_ROWS` rows are class 0 (road),
  so the other bands stand on it.

Each output is a constant added to ``0 * mean(image)`` so it stays a real
computation on the input (no output is a bare initialiser).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mtdepth_ros.inference.card import (
    CARD_KEY,
    CameraSpec,
    ClassSpec,
    HeadSpec,
    InputSpec,
    ModelCard,
)
from mtdepth_ros.inference.depth_coding import DepthCoding
from mtdepth_ros.inference.model_file import embed_card

HEIGHT, WIDTH = 24, 32  # network input of the default tiny model
FOCAL_PX = 30.0  # training camera fx at the network input
CODING = DepthCoding(d_min=1.0, d_max=40.0, num_intervals=8)
CODED_TOP, CODED_BOTTOM = 0.9, 0.1  # normalised log depth of the first and last row (far -> near)
LOW_CONFIDENCE = 0.25
ALL_HEADS = ('depth', 'intervals', 'confidence', 'segmentation')
OPSET = 17
WORK_SIZE = 512  # matrix size of the slow model's busy work
GROUND_ROWS = 6  # with standing=True: the bottom rows where every column is road
CLASS_NAMES = ('road', 'car', 'sky')
PALETTE = ((128, 64, 128), (0, 0, 142), (70, 130, 180))


def coded_depth(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """(h, w) float32 normalised log depth the model outputs."""
    rows = np.linspace(CODED_TOP, CODED_BOTTOM, height, dtype=np.float32)
    return np.repeat(rows[:, None], width, axis=1)


def expected_depth(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """(h, w) float32 metres the predictor must decode."""
    return CODING.decode(coded_depth(height, width))


def expected_intervals(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """(h, w) uint8 interval index of :func:`expected_depth`."""
    return CODING.depth_to_intervals(expected_depth(height, width))


def expected_confidence(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    confidence = np.ones((height, width), np.float32)
    confidence[:, width // 2:] = LOW_CONFIDENCE
    return confidence


def expected_segmentation(height: int = HEIGHT, width: int = WIDTH,
                          num_classes: int = len(CLASS_NAMES), standing: bool = False
                          ) -> np.ndarray:
    columns = np.linspace(0, num_classes - 1, width).round()  # bands from 0 to the last class
    labels = np.repeat(columns[None, :], height, axis=0).astype(np.int64)
    if standing:
        labels[-GROUND_ROWS:] = 0
    return labels


def make_card(height: int = HEIGHT, width: int = WIDTH, heads: Sequence[str] = ALL_HEADS,
              num_classes: int = len(CLASS_NAMES), echo: bool = False,
              color_order: str = 'RGB', valid_range: tuple[float, float] | None = None,
              far: tuple[str, ...] = (), frame: tuple[int, int] = (0, 0),
              std: float | None = None) -> ModelCard:
    """The tiny model's card; ``frame`` is (width, height) of the training images;
    ``std``: the input's normalisation is ``x / std`` (no mean), so that an echo model
    gives 0 to 1/std metres."""
    names: tuple[str, ...] = CLASS_NAMES
    palette: tuple[tuple[int, int, int], ...] = PALETTE
    if num_classes != len(CLASS_NAMES):
        names = tuple(f'class_{i}' for i in range(num_classes))
        palette = tuple((i % 256, (7 * i) % 256, (13 * i) % 256) for i in range(num_classes))
    return ModelCard(
        name='tiny_test', recipe='test', architecture='constant',
        input=InputSpec(name='image', height=height, width=width, color_order=color_order,
                        frame_width=frame[0], frame_height=frame[1],
                        **({} if std is None else {'mean': (0.0,) * 3, 'std': (std,) * 3})),
        heads={h: HeadSpec(output=f'{h}_out',
                           encoding=('metres' if echo else 'normalized_log') if h == 'depth'
                           else None,
                           valid_range=valid_range if h == 'depth' else None) for h in heads},
        camera=CameraSpec(focal_length_px=FOCAL_PX, name='tiny'),
        depth_coding=CODING,
        classes=ClassSpec(names=names, palette=palette, far=far)
        if 'segmentation' in heads else None,
        training_data='none (test fixture)')


def make_model(card: ModelCard, work: int = 0, standing: bool = False) -> onnx.ModelProto:
    """The ONNX graph for ``card`` (its heads and size), card embedded.

    ``work`` > 0 adds that many 512x512 matrix products that depend on the
    input and change no output: a slow model, for flooding the node.
    ``standing``: the segmentation's bands stand on road (module docstring).
    """
    height, width = card.input.height, card.input.width
    nodes = [
        helper.make_node('ReduceMean', ['image'], ['mean'], axes=[1], keepdims=1),
        # (1, 1, h, w) of 0
        helper.make_node('Mul', ['mean', 'zero'], ['zeros_in' if work else 'zeros']),
    ]
    inits = [numpy_helper.from_array(np.zeros((1,), np.float32), 'zero')]
    if work:
        nodes_work, inits_work = _busy_work(work)
        nodes += nodes_work
        inits += inits_work
    constants: dict[str, np.ndarray] = {
        'depth': coded_depth(height, width),
        'intervals': expected_intervals(height, width).astype(np.float32),
        'confidence': expected_confidence(height, width),
        'segmentation': expected_segmentation(
            height, width, len(card.classes.names) if card.classes else 1,
            standing).astype(np.float32),
    }
    outputs = []
    for head, spec in card.heads.items():
        integer = head in ('intervals', 'segmentation')
        if head == 'depth' and card.heads['depth'].encoding == 'metres':
            nodes.append(helper.make_node('Slice', ['image', 'c0', 'c1', 'c_axis'], [spec.output]))
            inits += [numpy_helper.from_array(np.array([v], np.int64), n)
                      for n, v in (('c0', 0), ('c1', 1), ('c_axis', 1))]
        else:
            inits.append(numpy_helper.from_array(constants[head][None, None], f'{head}_const'))
            target = f'{head}_float' if integer else spec.output
            nodes.append(helper.make_node('Add', ['zeros', f'{head}_const'], [target]))
            if integer:
                nodes.append(helper.make_node('Cast', [target], [spec.output], to=TensorProto.INT32))
        kind = TensorProto.INT32 if integer else TensorProto.FLOAT
        outputs.append(helper.make_tensor_value_info(spec.output, kind, [1, 1, height, width]))
    graph = helper.make_graph(
        nodes, 'tiny_test',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 3, height, width])],
        outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)])
    model.ir_version = 8  # readable by every ONNX Runtime this package supports
    onnx.checker.check_model(model)
    embed_card(model, card)
    return model


def _busy_work(count: int) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """``count`` matrix products of (WORK_SIZE, WORK_SIZE), folded into ``zeros`` as 0 x finite."""
    start = np.full((WORK_SIZE, WORK_SIZE), 1.0 / WORK_SIZE, np.float32)  # A @ A == A: stays finite
    nodes = [helper.make_node('ReduceMean', ['zeros_in'], ['zero_scalar'], keepdims=0),
             helper.make_node('Add', ['work_start', 'zero_scalar'], ['work_0'])]
    for i in range(count):
        nodes.append(helper.make_node('MatMul', [f'work_{i}', f'work_{i}'], [f'work_{i + 1}']))
    nodes += [helper.make_node('ReduceMean', [f'work_{count}'], ['work_mean'], keepdims=0),
              helper.make_node('Mul', ['work_mean', 'zero'], ['work_zero']),
              helper.make_node('Add', ['zeros_in', 'work_zero'], ['zeros'])]
    return nodes, [numpy_helper.from_array(start, 'work_start')]


def write_model(path: Path, work: int = 0, standing: bool = False, **card_args: Any) -> Path:
    """Write a tiny model (``make_card`` arguments) to ``path``; return the path."""
    onnx.save(make_model(make_card(**card_args), work, standing), str(path))
    return path


def write_model_without_card(path: Path) -> Path:
    model = make_model(make_card())
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != CARD_KEY]
    del model.metadata_props[:]
    for key, value in kept:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def write_model_with_missing_output(path: Path) -> Path:
    """A model whose card names a segmentation output the graph does not have."""
    card = make_card()
    model = make_model(card)
    broken = replace(card, heads={**card.heads, 'segmentation': HeadSpec(output='nowhere')})
    for prop in model.metadata_props:
        if prop.key == CARD_KEY:
            prop.value = broken.to_json()  # embed_card would refuse it: write it raw
    onnx.save(model, str(path))
    return path


def write_model_with_card_text(path: Path, edit: Any) -> Path:
    """A tiny model whose card JSON (a dict) ``edit(card)`` changed, written past the checks
    that embed_card makes (a corrupt export, or a card edited by hand)."""
    import json  # noqa: PLC0415

    model = make_model(make_card())
    values = make_card().to_dict()
    edit(values)
    for prop in model.metadata_props:
        if prop.key == CARD_KEY:
            prop.value = json.dumps(values)
    onnx.save(model, str(path))
    return path
