"""Several datasets trained as one: Jiao et al.'s KITTI depth + Cityscapes labels.

The datamodule builds a dataset as ``Class(root, split=..., **args)``; this
class builds its parts the same way from ``sources`` and concatenates them,
so a recipe mixes depth-only and labels-only samples (each says which with
``has_depth`` / ``has_labels``)::

    data:
      dataset: training.data.mixed.MixedSources
      train_args:
        sources:
          - {dataset: kitti, root: data/kitti, args: {labels: none, crop: [256, 512]}}
          - {dataset: training.data.cityscapes.CityscapesSegmentation,
             root: data/cityscapes, args: {resize: [512, 1024], crop: [256, 512]}}

A source may name its own ``split`` (default: the split asked for). Give the
training sources the same crop so their samples stack into one batch. The
model card's facts (classes, normalisation, camera) come from the first
source that has them: list the depth source first, its camera is the one the
depth head learns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch.utils.data import ConcatDataset, Dataset

from training.data.base import IMAGENET_MEAN, IMAGENET_STD

SOURCE_KEYS = frozenset({'dataset', 'root', 'split', 'args'})


def source_name(source: Mapping[str, Any], root: str = '') -> str:
    """A source as a model card names it: its dataset and root (``root``, the mixture's,
    when it names none; '.' when that is empty)."""
    return f"{source.get('dataset')} at {source.get('root', root) or '.'}"


class MixedSources(ConcatDataset[dict[str, Any]]):
    """The concatenation of ``sources``, each ``{dataset, root, split?, args?}``."""

    def __init__(self, root: str = '', split: str = 'train', *,
                 sources: Sequence[Mapping[str, Any]] = ()) -> None:
        from training.datamodule import dataset_class  # noqa: PLC0415  (datamodule imports data)

        if not sources:
            raise ValueError('MixedSources needs at least one entry in sources')
        parts: list[Dataset[dict[str, Any]]] = []
        names = []
        for index, source in enumerate(sources):
            unknown = sorted(set(source) - SOURCE_KEYS)
            if unknown or 'dataset' not in source:
                raise ValueError(f'sources[{index}] must have dataset and may have root, split, '
                                 f'args; got keys {sorted(source)}')
            cls = dataset_class(str(source['dataset']))
            parts.append(cls(source.get('root', root), split=source.get('split', split),  # type: ignore[call-arg]
                             **dict(source.get('args') or {})))
            frames = len(parts[-1])  # type: ignore[arg-type]
            names.append(f"{source_name(source, root)} "
                         f"({frames} frames, split {source.get('split', split)!r})")
        super().__init__(parts)
        # what a model card says it was trained on: each source, not the mixture's own root
        self.description = ' + '.join(names)

    def _first(self, name: str) -> Any:
        return next((getattr(part, name) for part in self.datasets
                     if getattr(part, name, None) is not None), None)

    @property
    def classes(self) -> Any:
        return self._first('classes')

    @property
    def mean(self) -> Any:
        mean = self._first('mean')
        return IMAGENET_MEAN if mean is None else mean

    @property
    def std(self) -> Any:
        std = self._first('std')
        return IMAGENET_STD if std is None else std

    @property
    def sequences(self) -> set[str]:
        """The drives / scenes of every source that names them."""
        return set().union(*(getattr(part, 'sequences', set()) for part in self.datasets))

    @property
    def camera_name(self) -> str:
        return str(self._first('camera_name') or '')
