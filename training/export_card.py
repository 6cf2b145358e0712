"""The model card of an export: which heads the vehicle gets, and what the card says.

The card is the contract of ``mtdepth_ros/inference/card.py``; everything in it
comes from the checkpoint (its network, recipe and data facts) or, for facts a
checkpoint may not record, from the export command's options.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from mtdepth_ros.inference.card import (
    SEED_METRIC,
    CameraSpec,
    ClassSpec,
    HeadSpec,
    InputSpec,
    ModelCard,
)
from training.lineage import training_data
from training.nets.registry import ModelSpec

if TYPE_CHECKING:  # the checkpoint loader lives with the export itself
    from training.export import LoadedCheckpoint

INPUT_NAME = 'image'


def network_heads(net: nn.Module, spec: ModelSpec) -> tuple[str, ...]:
    """The registered heads this network instance has (MultiDepth with ``tasks=('depth',)``
    builds its depth head only)."""
    built = getattr(net, 'head_channels', None)
    return spec.heads if built is None else tuple(h for h in spec.heads if h in built)


def deploy_heads(heads: tuple[str, ...]) -> tuple[str, ...]:
    """The card heads a model with training ``heads`` exports, in contract order."""
    exported: list[str] = [h for h in ('depth', 'intervals') if h in heads]
    if 'depth' in heads and 'intervals' in heads:
        exported.append('confidence')
    if 'segmentation' in heads:
        exported.append('segmentation')
    return tuple(exported)


def build_card(loaded: LoadedCheckpoint, size: tuple[int, int], depth_encoding: str,
               name: str | None = None, valid_range: tuple[float, float] | None = None,
               frame_size: tuple[int, int] | None = None) -> ModelCard:
    """The card of an export. ``valid_range`` (metres the depth estimates hold in: beyond
    it the node publishes +-inf) and ``frame_size`` ((height, width) of the images the input
    was resized from) are facts of the training data that a checkpoint may not record."""
    facts = loaded.extra.get('data', {})
    config = loaded.extra.get('config', {})
    heads = deploy_heads(network_heads(loaded.net, loaded.spec))
    focal = facts.get('focal_length_px')
    if not focal:
        raise ValueError('the checkpoint records no training focal length '
                         '(train it with training.datamodule.MultiTaskDataModule)')
    frame = frame_size or facts.get('frame_size') or (0, 0)  # the images the input was resized from
    metrics = {f'val_{k}': float(v) for k, v in loaded.extra.get('metrics', {}).items()}
    metrics['global_step'] = loaded.global_step
    if isinstance(config.get('seed_everything'), int):  # two seeds of a recipe, told apart
        metrics[SEED_METRIC] = config['seed_everything']
    if 'mean_depth_m' in facts:  # the trivial predictor's depth, for comparisons (make demo)
        metrics['train_mean_depth_m'] = float(facts['mean_depth_m'])
    return ModelCard(
        name=name or f"{loaded.spec.name}-{config.get('recipe', 'model')}",
        recipe=str(config.get('recipe', loaded.spec.name)),
        architecture=loaded.spec.description or type(loaded.net).__name__,
        input=InputSpec(name=INPUT_NAME, height=size[0], width=size[1],
                        mean=tuple(facts.get('mean', InputSpec.mean)),
                        std=tuple(facts.get('std', InputSpec.std)),
                        frame_height=int(frame[0]), frame_width=int(frame[1])),
        heads={h: HeadSpec(output=h, encoding=depth_encoding if h == 'depth' else None,
                           valid_range=valid_range if h == 'depth' else None)
               for h in heads},
        camera=CameraSpec(focal_length_px=float(focal), name=str(facts.get('camera', ''))),
        depth_coding=loaded.coding if 'intervals' in heads or (
            'depth' in heads and depth_encoding == 'normalized_log') else None,
        classes=class_spec(loaded) if 'segmentation' in heads else None,
        training_data=training_data(loaded.extra),
        metrics=metrics, config=config)


def far_classes(loaded: LoadedCheckpoint) -> tuple[str, ...]:
    """Classes trained as beyond any depth: the data facts, else (checkpoints written before
    the facts recorded them, and mixtures' until 2026-12-03) the recipe's
    ``train_args.far_classes``, or a mixture's first source's that names them."""
    recorded = loaded.extra.get('data', {}).get('far_classes')
    if recorded is None:
        data = loaded.extra.get('config', {}).get('data') or {}
        args = data.get('train_args') or {}
        recorded = args.get('far_classes')
        if recorded is None:  # a mixture: its first source that names them
            recorded = next((source['args']['far_classes'] for source in args.get('sources') or ()
                             if (source.get('args') or {}).get('far_classes')), ())
    return tuple(recorded or ())


def class_spec(loaded: LoadedCheckpoint) -> ClassSpec:
    """Class names and palette: from the training data, else the standard list of that size."""
    facts = loaded.extra.get('data', {})
    recorded = facts.get('classes')
    if recorded:  # far: classes trained as beyond any depth (far_classes), +inf on the vehicle
        return ClassSpec(names=tuple(recorded['names']),
                         palette=tuple(tuple(c) for c in recorded['palette']),
                         ignore_index=int(recorded.get('ignore_index', 255)),
                         far=far_classes(loaded))
    from training.data import classes  # noqa: PLC0415  (the data package, only when needed)

    standard = {len(names): (names, palette) for names, palette in (
        (classes.ROAD_CLASSES, classes.ROAD_PALETTE),
        (classes.NYU40_CLASSES, classes.NYU40_PALETTE),
        (classes.NYU13_CLASSES, classes.NYU13_PALETTE))}
    count = int(getattr(loaded.net, 'head_channels', {}).get('segmentation', 0))
    if count not in standard:
        raise ValueError(f'the checkpoint records no class list and {count} classes match no '
                         'standard list; train with a dataset that exposes `classes`')
    names, palette = standard[count]
    return ClassSpec(names=tuple(names), palette=tuple(palette))
