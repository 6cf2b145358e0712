"""One registry of multi-task networks, built by name from a recipe config.

A paper model is a recipe of parts: a network builder, the heads it returns,
the loss that supervises them and, optionally, named training stages. Register
it once, in its own module under ``training/nets/`` (every module there is
imported on the first lookup, so no other file needs editing)::

    from training.losses import CompositeLoss, SparseMSE, SparseCrossEntropy
    from training.nets.registry import MultiTaskNet, Stage, register_model

    def my_loss(weighting: str = 'fixed', weights: dict[str, float] | None = None,
                **options) -> CompositeLoss:
        return CompositeLoss(
            {'depth': SparseMSE('depth'), 'segmentation': SparseCrossEntropy('segmentation')},
            weighting=weighting, weights=weights, **options)

    @register_model(
        'my_paper',
        heads=('depth', 'segmentation'),
        loss=my_loss,
        stages={'refine': Stage(freeze=('encoder.', 'coarse.'))},
        tiny={'width': 8},          # kwargs for a small, fast variant (tests)
        depth_encoding='normalized_log',
        description='Author et al. 20xx, one line')
    class MyPaperNet(MultiTaskNet):
        def __init__(self, num_classes: int = 19, width: int = 64,
                     pretrained: bool = False) -> None:
            super().__init__(head_channels={'depth': 1, 'segmentation': num_classes})
            ...
        def forward(self, image: Tensor) -> dict[str, Tensor]:
            return {'depth': ..., 'segmentation': ...}

Contract a registered network keeps (``test/test_nets.py`` checks it for every
entry, with ``tiny`` kwargs, so a new model is tested without new test code):

- ``forward(image)`` takes (N, 3, H, W) normalised RGB and returns exactly
  ``spec.heads`` as ``{head: tensor}``. Dense heads are (N, C, H, W) at the
  input resolution, C = ``net.head_channels[head]``; ``depth`` is (N, 1, H, W)
  in ``spec.depth_encoding`` (``normalized_log`` or ``metres``; a network that
  regresses something else, e.g. log metres, gives itself a method
  ``deploy_depth(depth) -> metres`` and declares ``metres``); ``intervals`` and
  ``segmentation`` are logits. Non-dense heads (an image classification head)
  are (N, C); their loss reads a model-specific batch key (``test_nets.py``
  fills ``scene`` with (N,) int64 class ids).
- Every parameter gets a gradient from the loss of a fully supervised batch.
- H and W that are multiples of ``spec.input_multiple`` must work; tests use
  ``spec.test_size``.
- The loss factory takes keyword options from the config's ``loss:`` section
  (at least ``weighting`` and ``weights``, see :mod:`training.losses`) and
  returns a :class:`training.losses.MultiTaskLoss` whose ``heads`` are a
  subset of ``spec.heads``.

Training stages (two-stage training): a recipe picks one with
``model.stage: <name>``; the stage's ``freeze`` prefixes are added to the
module's ``freeze`` list (parameters whose name starts with a prefix get
``requires_grad=False`` and their BatchNorm layers stay in eval mode), its
``loss`` options update the loss config, and ``model.init_from: <ckpt>``
loads the previous stage's weights. Run ``fit`` once per stage.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from torch import Tensor, nn

from training.losses import MultiTaskLoss

DEPTH_ENCODINGS = ('normalized_log', 'metres')

# Modules in training/nets/ that hold shared parts, not models.
_PART_MODULES = frozenset({'registry', 'encoders', 'heads'})


class MultiTaskNet(nn.Module):
    """Base class of registered networks: ``forward(image) -> {head: tensor}``.

    ``head_channels`` says how many channels each head returns (1 for depth,
    the interval or class count for logits); tests and the exporter read it.
    """

    def __init__(self, head_channels: Mapping[str, int]) -> None:
        super().__init__()
        self.head_channels = dict(head_channels)

    def forward(self, image: Tensor) -> dict[str, Tensor]:  # (N, 3, H, W) -> {head: tensor}
        raise NotImplementedError


@dataclass(frozen=True)
class Stage:
    """One stage of a multi-stage recipe."""

    freeze: tuple[str, ...] = ()  # parameter name prefixes frozen in this stage
    loss: Mapping[str, Any] = field(default_factory=dict)  # overrides of the loss options
    description: str = ''


@dataclass(frozen=True)
class ModelSpec:
    """Everything the framework needs to know about a registered model."""

    name: str
    build: Callable[..., nn.Module]
    heads: tuple[str, ...]
    loss: Callable[..., MultiTaskLoss]
    stages: Mapping[str, Stage] = field(default_factory=dict)
    tiny: Mapping[str, Any] = field(default_factory=dict)
    depth_encoding: str = 'normalized_log'
    input_multiple: int = 32
    test_size: tuple[int, int] = (64, 64)
    description: str = ''


_REGISTRY: dict[str, ModelSpec] = {}
_discovered = False

Builder = TypeVar('Builder', bound=Callable[..., nn.Module])


def register_model(name: str, *, heads: tuple[str, ...], loss: Callable[..., MultiTaskLoss],
                   stages: Mapping[str, Stage] | None = None,
                   tiny: Mapping[str, Any] | None = None,
                   depth_encoding: str = 'normalized_log', input_multiple: int = 32,
                   test_size: tuple[int, int] = (64, 64),
                   description: str = '') -> Callable[[Builder], Builder]:
    """Decorator registering a network class (or builder function) under ``name``."""
    if depth_encoding not in DEPTH_ENCODINGS:
        raise ValueError(f'model {name!r}: depth_encoding must be one of {DEPTH_ENCODINGS}, '
                         f'got {depth_encoding!r}')
    if not heads:
        raise ValueError(f'model {name!r} declares no heads')

    def decorate(builder: Builder) -> Builder:
        if name in _REGISTRY and _REGISTRY[name].build is not builder:
            raise ValueError(f'model {name!r} is registered twice '
                             f'({_REGISTRY[name].build.__module__} and {builder.__module__})')
        _REGISTRY[name] = ModelSpec(
            name=name, build=builder, heads=tuple(heads), loss=loss,
            stages=MappingProxyType(dict(stages or {})), tiny=MappingProxyType(dict(tiny or {})),
            depth_encoding=depth_encoding, input_multiple=input_multiple,
            test_size=test_size, description=description)
        return builder

    return decorate


def _discover() -> None:
    """Import every model module in this package once, so their decorators run."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = importlib.import_module(__package__ or 'training.nets')
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _PART_MODULES and not info.name.startswith('_'):
            importlib.import_module(f'{package.__name__}.{info.name}')


def list_models() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    _discover()
    if name not in _REGISTRY:
        raise KeyError(f'unknown model {name!r}; registered models: {sorted(_REGISTRY)}')
    return _REGISTRY[name]


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the network registered as ``name`` with the config's ``model_args``."""
    return get_spec(name).build(**kwargs)


def build_loss(name: str, stage: str | None = None, **options: Any) -> MultiTaskLoss:
    """Build the loss of model ``name`` with the config's ``loss:`` options (and stage's)."""
    spec = get_spec(name)
    if stage is not None:
        options = {**options, **resolve_stage(spec, stage).loss}
    return spec.loss(**options)


def resolve_stage(spec: ModelSpec, stage: str) -> Stage:
    if stage not in spec.stages:
        raise KeyError(f'model {spec.name!r} has no stage {stage!r}; '
                       f'its stages: {sorted(spec.stages) or "none"}')
    return spec.stages[stage]
