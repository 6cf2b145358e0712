"""The LightningDataModule over the project's datasets (``training/data``).

``dataset`` is a short name (``kitti``, ``nyu``, ``random``) or a dotted
``module.Class`` path; the class is built as ``Class(root, split=...,
**train_args | val_args)`` and yields the batch dictionary of
``training/data/base.py``. Cropping, flipping and resizing are the dataset's
business (its arguments), so the same recipe trains on generated trees in
tests and on the real datasets on a workstation.

``card_facts()`` reports what the exported model card needs from the data:
the training camera's focal length at the network input (taken from the
samples' ``intrinsics``, which follow every resize and crop), class names and
palette, and a description of the training data.
"""

from __future__ import annotations

import bisect
import importlib
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler, Subset

from mtdepth_ros.conversions.labels import IGNORE_INDEX
from training.data.base import IMAGENET_MEAN, IMAGENET_STD, DepthDataset, collate

DATASETS = {
    'kitti': 'training.data.kitti.KittiDataset',
    'nyu': 'training.data.nyu.NyuDataset',
    'random': 'training.datamodule.RandomScenes',
}
NORMALISATION_DIGITS = 6  # float32 round-off of 0.485 etc. kept out of the card
FOCAL_SAMPLES = 4  # training samples read to find the focal length at the network input
MEAN_DEPTH_SAMPLES = 64  # training frames read for the mean depth (the trivial baseline)


def dataset_class(name: str) -> type[Dataset[Any]]:
    """The dataset class for a short name or a dotted ``module.Class`` path."""
    path = DATASETS.get(name, name)
    module_name, _, class_name = path.rpartition('.')
    if not module_name:
        raise ValueError(f'unknown dataset {name!r}: use one of {sorted(DATASETS)} '
                         'or a dotted module.Class path')
    try:
        found: type[Dataset[Any]] = getattr(importlib.import_module(module_name), class_name)
        return found
    except (ImportError, AttributeError) as error:
        raise ValueError(f'dataset {name!r} ({path}) cannot be imported: {error}') from error


class RandomScenes(Dataset[dict[str, Any]]):
    """Noise images with sparse random depth and labels: for smoke tests and throughput.

    It needs no files and costs almost nothing to load, so a training run on
    it measures the network and the loop alone. Nothing can be learned from it.
    """

    def __init__(self, root: str = '', split: str = 'train', frames: int = 64,
                 size: tuple[int, int] = (64, 64), num_classes: int = 19,
                 density: float = 0.3, focal_px: float = 720.0, seed: int = 0) -> None:
        self.frames, self.size, self.num_classes = frames, tuple(size), num_classes
        self.density, self.focal_px = density, focal_px
        self.seed = seed + (0 if split == 'train' else 1_000_003)

    def __len__(self) -> int:
        return self.frames

    def __getitem__(self, index: int) -> dict[str, Any]:
        generator = torch.Generator().manual_seed(self.seed + index)
        height, width = self.size
        depth = 2.0 + 78.0 * torch.rand(1, height, width, generator=generator)
        valid = torch.rand(1, height, width, generator=generator) < self.density
        labels = torch.randint(0, self.num_classes, (height, width), generator=generator)
        intrinsics = torch.tensor([[self.focal_px, 0.0, width / 2], [0.0, self.focal_px, height / 2],
                                   [0.0, 0.0, 1.0]])
        return {
            'image': torch.randn(3, height, width, generator=generator),
            'depth': torch.where(valid, depth, torch.zeros_like(depth)),
            'depth_valid': valid,
            'labels': labels,
            'has_depth': torch.tensor(True), 'has_labels': torch.tensor(True),
            'intrinsics': intrinsics, 'scene': torch.tensor(IGNORE_INDEX), 'index': index,
        }


class MultiTaskDataModule(L.LightningDataModule):
    """Train and validation loaders of one dataset.

    Args:
        dataset: ``kitti``, ``nyu``, ``random`` or a dotted ``module.Class``.
        root: the dataset's directory.
        train_split, val_split: split names the dataset class understands.
        train_args, val_args: further dataset arguments (crop size, flip, resize, ...).
        batch_size: training batch per process (DDP: per GPU).
        val_batch_size: validation batch (full images; 1 when their sizes differ).
        num_workers: loader worker processes.
        train_limit, val_limit: use only the first N frames (quick runs).
        test_split, test_args, test_dataset, test_root: the split a trained model is
            scored on (``python -m training test``), its dataset arguments (default
            ``val_args``), class (default ``dataset``) and folder (default
            ``root``). ``fit`` refuses a
            training split that shares a drive or scene (the datasets'
            ``sequences``) with it: the test frames' neighbours would be trained on.
        export_size: (height, width) of the exported network input; None = the
            validation images' size rounded down to the model's input multiple.
        description: training data description for the model card.
    """

    def __init__(self, dataset: str = 'kitti', root: str = 'data/kitti',
                 train_split: str = 'train', val_split: str = 'val',
                 train_args: dict[str, Any] | None = None, val_args: dict[str, Any] | None = None,
                 batch_size: int = 8, val_batch_size: int = 1, num_workers: int = 2,
                 train_limit: int | None = None, val_limit: int | None = None,
                 export_size: tuple[int, int] | None = None, description: str = '',
                 test_split: str | None = None, test_args: dict[str, Any] | None = None,
                 test_dataset: str | None = None, test_root: str | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.train_set: Dataset[Any] | None = None
        self.val_set: Dataset[Any] | None = None
        self._facts: dict[str, Any] | None = None

    def _build(self, split: str, args: dict[str, Any] | None, limit: int | None,
               dataset: str | None = None, root: str | None = None) -> Dataset[Any]:
        name, root = dataset or self.hparams['dataset'], root or self.hparams['root']
        data = dataset_class(name)(root, split=split, **(args or {}))  # type: ignore[call-arg]
        size = len(data)  # type: ignore[arg-type]
        if size == 0:
            raise ValueError(f'dataset {name} at {root} has no frames in split {split!r}')
        if limit is not None and limit < size:
            data = Subset(data, range(limit))
        return data

    def test_set(self, split: str | None = None) -> Dataset[Any]:
        """The frames a trained model is scored on: ``test_split`` (or ``split``), ``test_args``."""
        split = split or self.hparams['test_split']
        if not split:
            raise ValueError('no test split: set data.test_split in the recipe or pass --split')
        args = self.hparams['test_args']
        return self._build(split, self.hparams['val_args'] if args is None else args, None,
                           self.hparams['test_dataset'], self.hparams['test_root'])

    def check_test_split(self) -> None:
        """Refuse a training set that shares a drive or scene with the test split."""
        if not self.hparams['test_split'] or self.train_set is None:
            return
        shared = sorted(sequences(self.train_set) & sequences(self.test_set()))
        if shared:
            raise ValueError(
                f"training split {self.hparams['train_split']!r} shares {len(shared)} "
                f"drive(s) or scene(s) with test split {self.hparams['test_split']!r}, on which "
                f"the model will be scored: {', '.join(shared[:5])}"
                f"{' ...' if len(shared) > 5 else ''}. Train on a split without them (KITTI: "
                'eigen_zhou_train for the Eigen split) or score on another test split.')

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, 'fit') and self.train_set is None:
            self.train_set = self._build(self.hparams['train_split'], self.hparams['train_args'],
                                         self.hparams['train_limit'])
            self.check_test_split()
        if self.val_set is None:
            self.val_set = self._build(self.hparams['val_split'], self.hparams['val_args'],
                                       self.hparams['val_limit'])

    def _loader(self, data: Dataset[Any] | None, batch_size: int, shuffle: bool,
                sampler: Sampler[int] | None = None) -> DataLoader[Any]:
        if data is None:
            raise RuntimeError('MultiTaskDataModule.setup() has not run')
        workers = self.hparams['num_workers']
        # Training drops a last partial batch (BatchNorm on one sample fails), unless
        # the data set is smaller than one batch.
        drop_last = shuffle and len(data) > batch_size  # type: ignore[arg-type]
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle and sampler is None,
                          sampler=sampler, drop_last=drop_last, num_workers=workers,
                          persistent_workers=workers > 0, pin_memory=torch.cuda.is_available(),
                          collate_fn=collate)

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.train_set, self.hparams['batch_size'], shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        """Every validation frame exactly once over all processes.

        Under DDP, Lightning's default DistributedSampler pads the frames to a
        multiple of the process count with repeats, which the summed metrics
        would count twice; this sampler gives each process every n-th frame
        instead (one process may have one batch fewer: validation runs no
        collective per batch, and the module sums its accumulators at the end).
        """
        sampler = None
        if self.val_set is not None and dist.is_available() and dist.is_initialized() \
                and dist.get_world_size() > 1:
            sampler = UnrepeatedDistributedSampler(self.val_set, shuffle=False)
        return self._loader(self.val_set, self.hparams['val_batch_size'], shuffle=False,
                            sampler=sampler)

    # -- model card ------------------------------------------------------------------------

    def card_facts(self) -> dict[str, Any]:
        """Facts about the training data that the exported model card records."""
        if self._facts is None:
            self.setup('fit')
            self._facts = self._collect_facts()
        return self._facts

    def _collect_facts(self) -> dict[str, Any]:
        train, val = self.train_set, self.val_set
        assert train is not None and val is not None
        count = min(FOCAL_SAMPLES, len(train))  # type: ignore[arg-type]
        focals = [float(train[i]['intrinsics'][0, 0]) for i in range(count)]
        val_image = val[0]['image']
        source = _unwrap(train)
        classes = getattr(source, 'classes', None)
        facts: dict[str, Any] = {
            'focal_length_px': float(np.median(focals)),
            'image_size': [int(val_image.shape[-2]), int(val_image.shape[-1])],
            'export_size': list(self.hparams['export_size'] or []),
            'mean': _triple(getattr(source, 'mean', IMAGENET_MEAN)),
            'std': _triple(getattr(source, 'std', IMAGENET_STD)),
            'camera': str(getattr(source, 'camera_name', '')),
            'training_data': self.hparams['description'] or (
                f"{source.description} ({len(train)} training frames)"
                if isinstance(getattr(source, 'description', None), str) else
                f"{self.hparams['dataset']} at {Path(self.hparams['root'])} "
                f"({len(train)} training frames, split {self.hparams['train_split']!r})"),  # type: ignore[arg-type]
        }
        depth_source = _first_depth_dataset(train)  # a mixture's: its first depth source
        if depth_source is not None:
            frame = depth_source.resize_source_size()
            if frame is not None:
                facts['frame_size'] = list(frame)
            if depth_source.augment.far_classes:
                facts['far_classes'] = list(depth_source.augment.far_classes)
        mean_depth = _mean_depth(train)
        if mean_depth is not None:
            facts['mean_depth_m'] = mean_depth
        if classes is not None:
            facts['classes'] = {'names': list(classes.names), 'palette': [list(c) for c in classes.palette],
                                'ignore_index': int(getattr(classes, 'ignore_index', IGNORE_INDEX))}
        return facts


def _mean_depth(data: Dataset[Any]) -> float | None:
    """Mean valid ground-truth depth (m) over up to MEAN_DEPTH_SAMPLES evenly spaced frames.

    The depth a trivial predictor would say everywhere: the baseline the demo
    compares the model with. Measured depth only: a DepthDataset's frames are
    read as stored, before crops and before ``far_classes`` fills the sky in.
    None when the frames carry no depth.
    """
    size = len(data)  # type: ignore[arg-type]
    total, count = 0.0, 0
    for i in np.linspace(0, size - 1, min(MEAN_DEPTH_SAMPLES, size)).astype(int):
        source, index = _source_index(data, int(i))
        if isinstance(source, DepthDataset):
            measured = _measured_depth(source, index)
        else:
            sample = data[int(i)]
            if not bool(sample.get('has_depth', True)):
                continue
            depth = torch.as_tensor(sample['depth'])
            measured = depth[torch.as_tensor(sample['depth_valid'])].numpy()
            measured = measured[np.isfinite(measured)]  # far classes' +inf is no measurement
        total, count = total + float(measured.sum()), count + int(measured.size)
    return round(total / count, 3) if count else None


def _source_index(data: Dataset[Any], index: int) -> tuple[Dataset[Any], int]:
    """The dataset under any Subsets and concatenations (MixedSources), and ``index``
    mapped into it."""
    while True:
        if isinstance(data, Subset):
            data, index = data.dataset, int(data.indices[index])
        elif isinstance(data, ConcatDataset):
            part = bisect.bisect_right(data.cumulative_sizes, index)
            index -= data.cumulative_sizes[part - 1] if part else 0
            data = data.datasets[part]
        else:
            return data, index


def _measured_depth(data: DepthDataset, index: int) -> np.ndarray:
    """The valid depth measurements (m) of frame ``index`` as stored; empty without depth."""
    depth = data.read(index).depth
    if depth is None:
        return np.zeros(0, np.float32)
    return depth[np.isfinite(depth) & (depth > 0)]


def sequences(data: Dataset[Any]) -> set[str]:
    """The drives or scenes a dataset's frames come from (empty when it does not say)."""
    return set(getattr(_unwrap(data), 'sequences', set()))


def _triple(values: Any) -> list[float]:
    """Per-channel normalisation constants (tuple or (3, 1, 1) tensor) as three floats."""
    return [round(float(v), NORMALISATION_DIGITS) for v in torch.as_tensor(values).flatten().tolist()]


def _first_depth_dataset(data: Dataset[Any]) -> DepthDataset | None:
    """The first DepthDataset with depth (its first frame read) under any Subsets and
    concatenations (MixedSources): the source whose facts (frame size, far classes) a
    mixture's card records, as its classes come from its first source that has them
    (training.data.mixed)."""
    data = _unwrap(data)
    if isinstance(data, DepthDataset):
        return data if len(data) and data.read(0).depth is not None else None
    for part in getattr(data, 'datasets', ()) if isinstance(data, ConcatDataset) else ():
        found = _first_depth_dataset(part)
        if found is not None:
            return found
    return None


def _unwrap(data: Dataset[Any]) -> Dataset[Any]:
    while isinstance(data, Subset):
        data = data.dataset
    return data
