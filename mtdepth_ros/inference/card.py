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
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from mtdepth_ros.inference.depth_coding import DepthCoding

CARD_KEY = 'mtdepth.card'
FORMAT_VERSION = 1
HEADS = ('depth', 'intervals', 'confidence', 'segmentation')
DEPTH_ENCODINGS = ('normalized_log', 'metres')
LAYOUTS = ('NCHW',)
COLOR_ORDERS = ('RGB', 'BGR')
SEED_METRIC = 'seed'  # a metric: the training run's seed, which tells two seeds' exports apart
TRAINING_DATA_LINE = 200  # describe() summarises a longer training_data (a lineage of stages)
_DATASET = re.compile(r'(\w+) at (\S+) \(\d+ (?:training )?frames')  # training/export.py's words


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
    # The training images' size before their resize to the input; 0 = the input's own.
    # A live image is centre-cropped to this aspect before the same resize.
    frame_width: int = 0
    frame_height: int = 0

    @property
    def frame_aspect(self) -> float:
        """Width / height of the images the network was trained on, before the resize."""
        if self.frame_width and self.frame_height:
            return self.frame_width / self.frame_height
        return self.width / self.height


@dataclass(frozen=True)
class HeadSpec:
    output: str  # ONNX output tensor name
    encoding: str | None = None  # depth head only: one of DEPTH_ENCODINGS
    # depth head only: metres the model's estimates are valid in; None = the depth coding's
    valid_range: tuple[float, float] | None = None


@dataclass(frozen=True)
class ClassSpec:
    names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]  # RGB per class
    ignore_index: int = 255
    far: tuple[str, ...] = ()  # classes beyond any depth (the sky): +inf in depth (REP 117)


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
    def depth_range(self) -> tuple[float, float] | None:
        """Metres the depth estimates are valid in (REP 117: +inf beyond, -inf nearer)."""
        spec = self.heads.get('depth')
        if spec is not None and spec.valid_range is not None:
            return spec.valid_range
        return (self.depth_coding.d_min, self.depth_coding.d_max) if self.depth_coding else None

    @property
    def far_class_ids(self) -> tuple[int, ...]:
        """Class ids whose pixels are beyond any depth (``classes.far``)."""
        return tuple(self.classes.names.index(n) for n in self.classes.far) if self.classes else ()

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
        if not (self.input.frame_width and self.input.frame_height):
            del values['input']['frame_width'], values['input']['frame_height']
        if self.classes and not self.classes.far:
            del values['classes']['far']
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
        if self.input.frame_width:
            lines.append(f'trained on {self.input.frame_width}x{self.input.frame_height} '
                         'images resized to the input; other aspects are centre-cropped')
        if self.depth_range:
            lines.append('depth valid in {:g}-{:g} m (+inf beyond, -inf nearer)'.format(
                *self.depth_range))
        if self.depth_coding:
            c = self.depth_coding
            lines.append(f'depth coding: {c.d_min}-{c.d_max} m, {c.num_intervals} intervals')
        if self.classes:
            lines.append(f'classes ({len(self.classes.names)}): ' + ', '.join(self.classes.names))
            if self.classes.far:
                lines.append('far classes (+inf depth): ' + ', '.join(self.classes.far))
        if self.training_data:
            lines.append(f'training data: {training_data_summary(self.training_data)}')
        for key, value in sorted(self.metrics.items()):
            lines.append(f'metric {key}: {value}')
        return '\n'.join(lines)


def training_data_summary(text: str, limit: int = TRAINING_DATA_LINE) -> str:
    """``text`` when it fits on a line; else the datasets it names, by format, each once."""
    if len(text) <= limit:
        return text
    roots: dict[str, dict[str, None]] = {}
    for kind, root in _DATASET.findall(text):
        roots.setdefault(kind, {})[root] = None
    if not roots:
        return text
    named = '; '.join(f'{kind} at {", ".join(found)}' for kind, found in roots.items())
    count = sum(map(len, roots.values()))
    return (f'{count} dataset{"s" * (count != 1)} ({named}) through a lineage of stages and '
            f'weight averages (in full: the card\'s training_data, {len(text)} characters)')


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
        frame = [self._get(section, key, int, 'input', default=0) or 0
                 for key in ('frame_width', 'frame_height')]
        if min(frame) < 0 or (min(frame) == 0 < max(frame)):
            self.problems.append(f"'input.frame_width' and 'input.frame_height' must both be "
                                 f'positive (or both absent), got {frame}')
            frame = [0, 0]
        if name is None or height is None or width is None:
            return None
        return InputSpec(name=name, height=height, width=width, layout=layout or 'NCHW',
                         color_order=order or 'RGB', mean=mean, std=std,
                         frame_width=frame[0], frame_height=frame[1])

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
            valid_range = self._range(spec.get('valid_range')) if head == 'depth' else None
            if output is not None:
                heads[head] = HeadSpec(output=output, encoding=encoding, valid_range=valid_range)
        outputs = [spec.output for spec in heads.values()]
        if len(set(outputs)) != len(outputs):
            self.problems.append(f'heads share output tensors: {outputs}')
        return heads

    def _camera(self, values: Any) -> CameraSpec | None:
        section = self._section(values, 'camera')
        if section is None:
            return None
        focal = self._get(section, 'focal_length_px', float, 'camera')
        if focal is not None and not (math.isfinite(focal) and focal > 0):
            self.problems.append(f"'camera.focal_length_px' must be a positive number, got {focal}")
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
        far = self._get(section, 'far', list, 'classes', default=[])
        unknown = [n for n in far if n not in names]
        if unknown:
            self.problems.append(f"'classes.far' names {unknown}, which are not classes")
            far = []
        return ClassSpec(names=tuple(names), palette=tuple(tuple(c) for c in palette),
                         ignore_index=ignore, far=tuple(far))

    def _range(self, value: Any) -> tuple[float, float] | None:
        if value is None:
            return None
        numbers = isinstance(value, list) and len(value) == 2 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
        if not numbers or not (0 <= value[0] < value[1] and math.isfinite(value[1])):
            self.problems.append(f"'heads.depth.valid_range' must be [min, max] metres with "
                                 f'0 <= min < max, got {value!r}')
            return None
        return float(value[0]), float(value[1])
