"""The model card: the contract between the training half and the vehicle half.

An exported model is one ONNX file whose ``metadata_props`` hold the card as
JSON under the key ``mtdepth.card``. The node reads everything it needs from
the card (input size and normalisation, heads and their output tensors, depth
coding, classes and palette, the training camera's focal length), so any
exported model runs without code or parameter changes.

Every head output is a tensor of shape (N, 1, H, W) at the network's input
resolution:

- ``depth``: float; normalised log depth (decode with :class:`DepthCoding`) or
  metres, as ``heads.depth.encoding`` says
- ``intervals``: integer interval index in [0, num_intervals)
- ``confidence``: float in [0, 1], agreement of regression and intervals
- ``segmentation``: integer class id in [0, len(classes.names))

A card that is missing or wrong is refused with :class:`CardError`, whose
message lists every problem found.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mtdepth_ros.inference.depth_coding import DepthCoding

CARD_KEY = 'mtdepth.card'
FORMAT_VERSION = 1
HEADS = ('depth', 'intervals', 'confidence', 'segmentation')
DEPTH_ENCODINGS = ('normalized_log', 'metres')
LAYOUTS = ('NCHW',)
COLOR_ORDERS = ('RGB', 'BGR')


class CardError(ValueError):
    """A model card that is missing, malformed or inconsistent with its model."""


@dataclass(frozen=True)
class InputSpec:
    name: str  # ONNX input tensor name
    height: int
    width: int
    layout: str = 'NCHW'
    color_order: str = 'RGB'
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # on the 0..1 scale
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class HeadSpec:
    output: str  # ONNX output tensor name
    encoding: str | None = None  # depth head only: one of DEPTH_ENCODINGS


@dataclass(frozen=True)
class ClassSpec:
    names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]  # RGB per class
    ignore_index: int = 255


@dataclass(frozen=True)
class CameraSpec:
    """The training camera after the resize to the network input."""

    focal_length_px: float  # fx at the network input resolution
    name: str = ''


@dataclass(frozen=True)
class ModelCard:
    name: str
    recipe: str
    architecture: str
    input: InputSpec
    heads: dict[str, HeadSpec]
    camera: CameraSpec
    depth_coding: DepthCoding | None = None
    classes: ClassSpec | None = None
    training_data: str = ''
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # the resolved training config
    format_version: int = FORMAT_VERSION

    def has_head(self, head: str) -> bool:
        return head in self.heads

    @property
    def output_names(self) -> dict[str, str]:
        """Head name -> ONNX output tensor name."""
        return {head: spec.output for head, spec in self.heads.items()}

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values['depth_coding'] = self.depth_coding.to_dict() if self.depth_coding else None
        values['heads'] = {
            head: {k: v for k, v in asdict(spec).items() if v is not None}
            for head, spec in self.heads.items()}
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: Any) -> ModelCard:
        return _CardParser(values).parse()

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise CardError(f'model card is not valid JSON: {error}') from error
        return cls.from_dict(values)

    def describe(self) -> str:
        """A few lines a person reads: what the model is and what it outputs."""
        lines = [
            f'{self.name} ({self.architecture}, recipe {self.recipe})',
            f'input: {self.input.name} {self.input.layout} {self.input.height}x{self.input.width} '
            f'{self.input.color_order}',
            'heads: ' + ', '.join(f'{h} -> {s.output}' for h, s in self.heads.items()),
            f'training camera focal length: {self.camera.focal_length_px:.1f} px',
        ]
        if self.depth_coding:
            c = self.depth_coding
            lines.append(f'depth coding: {c.d_min}-{c.d_max} m, {c.num_intervals} intervals')
        if self.classes:
            lines.append(f'classes ({len(self.classes.names)}): ' + ', '.join(self.classes.names))
        if self.training_data:
            lines.append(f'training data: {self.training_data}')
        for key, value in sorted(self.metrics.items()):
            lines.append(f'metric {key}: {value}')
        return '\n'.join(lines)


class _CardParser:
    """Parses a card dictionary, collecting every problem before raising."""

    def __init__(self, values: Any) -> None:
        self.values = values
        self.problems: list[str] = []

    def parse(self) -> ModelCard:
        if not isinstance(self.values, dict):
            raise CardError(f'model card must be a JSON object, got {type(self.values).__name__}')
        v = self.values
        version = self._get(v, 'format_version', int)
        if version is not None and version != FORMAT_VERSION:
            self.problems.append(
                f'format_version {version} is not supported (this package reads {FORMAT_VERSION})')
        card_input = self._input(v.get('input'))
        heads = self._heads(v.get('heads'))
        camera = self._camera(v.get('camera'))
        coding = self._depth_coding(v.get('depth_coding'), heads)
        classes = self._classes(v.get('classes'), heads)
        name = self._get(v, 'name', str)
        recipe = self._get(v, 'recipe', str)
        architecture = self._get(v, 'architecture', str)
        metrics = self._get(v, 'metrics', dict, default={})
        config = self._get(v, 'config', dict, default={})
        training_data = self._get(v, 'training_data', str, default='')
        if self.problems:
            raise CardError('invalid model card: ' + '; '.join(self.problems))
        assert card_input and heads and camera and name is not None
        return ModelCard(
            name=name, recipe=recipe or '', architecture=architecture or '', input=card_input,
            heads=heads, camera=camera, depth_coding=coding, classes=classes,
            training_data=training_data or '', metrics=metrics or {}, config=config or {},
            format_version=FORMAT_VERSION)

    def _get(self, values: dict[str, Any], key: str, kind: type, where: str = '',
             default: Any = None) -> Any:
        path = f'{where}.{key}' if where else key
        if key not in values:
            if default is None:
                self.problems.append(f"missing '{path}'")
            return default
        value = values[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problems.append(f"'{path}' must be {kind.__name__}, got {value!r}")
            return None
        return value

    def _section(self, values: Any, where: str) -> dict[str, Any] | None:
        if values is None:
            self.problems.append(f"missing '{where}'")
            return None
        if not isinstance(values, dict):
            self.problems.append(f"'{where}' must be an object, got {values!r}")
            return None
        return values

    def _triple(self, values: dict[str, Any], key: str, default: tuple[float, ...]) -> Any:
        value = values.get(key, list(default))
        ok = (isinstance(value, list) and len(value) == 3
              and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value))
        if not ok:
            self.problems.append(f"'input.{key}' must be a list of 3 numbers, got {value!r}")
            return default
        return tuple(float(x) for x in value)

    def _input(self, values: Any) -> InputSpec | None:
        section = self._section(values, 'input')
        if section is None:
            return None
        name = self._get(section, 'name', str, 'input')
        height = self._get(section, 'height', int, 'input')
        width = self._get(section, 'width', int, 'input')
        layout = self._get(section, 'layout', str, 'input', default='NCHW')
        order = self._get(section, 'color_order', str, 'input', default='RGB')
        for size, label in ((height, 'height'), (width, 'width')):
            if size is not None and size <= 0:
                self.problems.append(f"'input.{label}' must be positive, got {size}")
        if layout not in LAYOUTS:
            self.problems.append(f"'input.layout' must be one of {LAYOUTS}, got {layout!r}")
        if order not in COLOR_ORDERS:
            self.problems.append(f"'input.color_order' must be one of {COLOR_ORDERS}, got {order!r}")
        mean = self._triple(section, 'mean', InputSpec.mean)
        std = self._triple(section, 'std', InputSpec.std)
        if any(s <= 0 for s in std):
            self.problems.append(f"'input.std' must be positive, got {list(std)}")
        if name is None or height is None or width is None:
            return None
        return InputSpec(name=name, height=height, width=width, layout=layout or 'NCHW',
                         color_order=order or 'RGB', mean=mean, std=std)

    def _heads(self, values: Any) -> dict[str, HeadSpec]:
        section = self._section(values, 'heads')
        if section is None:
            return {}
        unknown = sorted(set(section) - set(HEADS))
        if unknown:
            self.problems.append(f"unknown heads {unknown}; known heads are {list(HEADS)}")
        if not section:
            self.problems.append("'heads' is empty: the model must have at least one head")
        heads = {}
        for head in HEADS:
            if head not in section:
                continue
            spec = self._section(section[head], f'heads.{head}')
            if spec is None:
                continue
            output = self._get(spec, 'output', str, f'heads.{head}')
            encoding = None
            if head == 'depth':
                encoding = self._get(spec, 'encoding', str, 'heads.depth')
                if encoding is not None and encoding not in DEPTH_ENCODINGS:
                    self.problems.append(
                        f"'heads.depth.encoding' must be one of {DEPTH_ENCODINGS}, got {encoding!r}")
            if output is not None:
                heads[head] = HeadSpec(output=output, encoding=encoding)
        outputs = [spec.output for spec in heads.values()]
        if len(set(outputs)) != len(outputs):
            self.problems.append(f'heads share output tensors: {outputs}')
        return heads

    def _camera(self, values: Any) -> CameraSpec | None:
        section = self._section(values, 'camera')
        if section is None:
            return None
        focal = self._get(section, 'focal_length_px', float, 'camera')
        if focal is not None and focal <= 0:
            self.problems.append(f"'camera.focal_length_px' must be positive, got {focal}")
            return None
        name = self._get(section, 'name', str, 'camera', default='')
        return None if focal is None else CameraSpec(focal_length_px=focal, name=name or '')

    def _depth_coding(self, values: Any, heads: dict[str, HeadSpec]) -> DepthCoding | None:
        needs = 'intervals' in heads or (
            'depth' in heads and heads['depth'].encoding == 'normalized_log')
        if values is None:
            if needs:
                self.problems.append(
                    "missing 'depth_coding': needed by a normalized_log depth head or an intervals head")
            return None
        if not isinstance(values, dict):
            self.problems.append(f"'depth_coding' must be an object, got {values!r}")
            return None
        try:
            return DepthCoding.from_dict(values)
        except (TypeError, ValueError) as error:
            self.problems.append(f"'depth_coding' is invalid: {error}")
            return None

    def _classes(self, values: Any, heads: dict[str, HeadSpec]) -> ClassSpec | None:
        if values is None:
            if 'segmentation' in heads:
                self.problems.append("missing 'classes': needed by the segmentation head")
            return None
        section = self._section(values, 'classes')
        if section is None:
            return None
        names = self._get(section, 'names', list, 'classes')
        palette = self._get(section, 'palette', list, 'classes')
        ignore = self._get(section, 'ignore_index', int, 'classes', default=255)
        if names is None or palette is None:
            return None
        if not names or not all(isinstance(n, str) for n in names):
            self.problems.append("'classes.names' must be a non-empty list of strings")
            return None
        colours_ok = all(
            isinstance(c, list) and len(c) == 3
            and all(isinstance(x, int) and 0 <= x <= 255 for x in c) for c in palette)
        if not colours_ok or len(palette) != len(names):
            self.problems.append(
                f"'classes.palette' must hold one [r, g, b] (0-255) per class: "
                f'{len(names)} names, {len(palette)} colours')
            return None
        return ClassSpec(names=tuple(names), palette=tuple(tuple(c) for c in palette),
                         ignore_index=ignore)


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
    check_card_against_graph(
        card, [i.name for i in model.graph.input], [o.name for o in model.graph.output], path)
    return card


def check_card_against_graph(card: ModelCard, inputs: list[str], outputs: list[str],
                             where: str | Path = 'model') -> None:
    problems = []
    if card.input.name not in inputs:
        problems.append(f'input {card.input.name!r} is not a graph input (inputs: {inputs})')
    for head, spec in card.heads.items():
        if spec.output not in outputs:
            problems.append(f'head {head!r} names output {spec.output!r}, '
                            f'which the graph does not have (outputs: {outputs})')
    if problems:
        raise CardError(f'{where}: card does not match the graph: ' + '; '.join(problems))


def embed_card(model: Any, card: ModelCard) -> None:
    """Write ``card`` into an ``onnx.ModelProto``'s metadata, replacing any earlier card."""
    check_card_against_graph(
        card, [i.name for i in model.graph.input], [o.name for o in model.graph.output])
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != CARD_KEY]
    del model.metadata_props[:]
    for key, value in kept + [(CARD_KEY, card.to_json())]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
