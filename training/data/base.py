"""The batch dictionary every dataset returns, written down once.

Keys and what each holds (per sample; a DataLoader adds the batch dimension):

- ``image``        float32 (3, H, W) RGB normalised with IMAGENET_MEAN / IMAGENET_STD
- ``depth``        float32 (1, H, W) metres, 0 = invalid, +inf = farther than any depth
                   coding reaches (``Augment.far_classes``)
- ``depth_valid``  bool (1, H, W)
- ``labels``       int64 (H, W) class ids, IGNORE_INDEX = ignore
- ``has_depth``    bool scalar: the sample carries depth ground truth
- ``has_labels``   bool scalar: the sample carries class labels
- ``intrinsics``   float32 (3, 3) after every crop, resize and flip
- ``scene``        int64 scalar: the image's scene class (NYU's scene types,
                   training.data.classes.NYU_SCENE_TYPES), IGNORE_INDEX where
                   unknown or the dataset has none (every dataset but NYU)
- ``index``        int, the sample's index in its dataset
- ``depth_native`` (``Augment.native_depth`` only) float32 (H0, W0) metres, 0 =
                   invalid: the ground truth as read, before any resize or crop, so
                   validation scores the protocol on the dataset's own frames;
                   ``native_region`` (top, left, height, width) is the part of that
                   frame the network input shows (after ``bottom_crop``). Both stay
                   per-sample lists in a batch (:func:`collate`): frames differ in size.

Depth targets (``depth_log``, ``intervals``) are not here: the training
module derives them from ``depth`` with the recipe's depth coding
(:meth:`training.module.MultiTaskModule.with_targets`), the one place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate
from torchvision.transforms import v2

from mtdepth_ros.conversions.geometry import (
    Region,
    bottom_centre_region,
    crop_intrinsics,
    flip_intrinsics,
    resize_depth_sparse,
    resize_image,
    resize_intrinsics,
    resize_labels,
)
from mtdepth_ros.conversions.labels import IGNORE_INDEX
from training.data.classes import ClassList
from training.data.random_convolution import random_convolution
from training.data.sharpness import sharpened
from training.data.texture import textured

IMAGE = 'image'
DEPTH = 'depth'
DEPTH_VALID = 'depth_valid'
LABELS = 'labels'
HAS_DEPTH = 'has_depth'
HAS_LABELS = 'has_labels'
INTRINSICS = 'intrinsics'
SCENE = 'scene'
INDEX = 'index'
BATCH_KEYS = (IMAGE, DEPTH, DEPTH_VALID, LABELS, HAS_DEPTH, HAS_LABELS, INTRINSICS, SCENE, INDEX)
DEPTH_NATIVE = 'depth_native'
NATIVE_REGION = 'native_region'
LISTED_KEYS = (DEPTH_NATIVE, NATIVE_REGION)  # kept as per-sample lists when batched

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB on the 0..1 scale (torchvision's ImageNet weights)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class RawSample:
    """What a subclass reads for one index, before any augmentation."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    intrinsics: np.ndarray  # (3, 3) float
    depth: np.ndarray | None = None  # (H, W) float32 metres, 0 = invalid; None = no depth
    labels: np.ndarray | None = None  # (H, W) integer class ids, IGNORE_INDEX = ignore; None = none
    scene: int = IGNORE_INDEX  # image-level scene class id; IGNORE_INDEX = unknown


@dataclass
class Augment:
    """Geometric and photometric augmentation; the default does nothing (validation, test).

    Applied in this order: ``bottom_crop`` takes the fixed bottom-centre
    (height, width) window (KITTI's 352 x 1216 benchmark crop); ``resize``
    scales to (height, width); ``zoom`` enlarges by a random factor in [low, high] (see
    :func:`zoomed`); ``crop`` takes a random (height, width) window
    (MultiDepth trains on crops of full-size images, no resize); ``flip``
    mirrors left-right with probability 0.5; colour jitter (torchvision's
    ColorJitter strengths) and ``channel_swap`` (probability of a random RGB
    channel permutation, as DenseDepth), ``sharpness`` (the largest extra detail gain
    of whole classes, drawn at random from blurred to sharpened,
    :func:`training.data.sharpness.sharpened`) and ``texture`` (the largest amplitude of
    a fine pattern laid on whole classes at random, :func:`training.data.texture.textured`)
    and ``random_convolution`` (the probability of a random convolution mixed into the
    frame, :func:`training.data.random_convolution.random_convolution`)
    change the image only. Intrinsics follow every geometric step.

    ``far_classes`` shapes the depth target rather than the image (it is here
    because every dataset passes these keyword arguments through): pixels the
    labels give one of these class names, and that have no depth measurement,
    are supervised at ``far_depth`` metres (0: +inf, which the training module
    supervises at its depth coding's far end).
    LiDAR never returns from the sky, so without it a network's sky depth is
    whatever context suggests; a training-only option (validation keeps the
    measured ground truth alone).
    """

    bottom_crop: tuple[int, int] | None = None
    resize: tuple[int, int] | None = None
    crop: tuple[int, int] | None = None
    flip: bool = False
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    channel_swap: float = 0.0
    zoom: tuple[float, float] | None = None
    sharpness: float = 0.0
    texture: float = 0.0
    random_convolution: float = 0.0
    far_classes: tuple[str, ...] = ()
    far_depth: float = 0.0
    native_depth: bool = False

    def __post_init__(self) -> None:
        self.far_classes = tuple(self.far_classes)
        if self.far_depth < 0:
            raise ValueError(f'far_depth must be >= 0 metres, got {self.far_depth}')
        if self.native_depth and (self.crop is not None or self.flip or self.zoom is not None):
            raise ValueError('native_depth scores predictions on the frames as read: the '
                             'transform may bottom-crop and resize, not crop at random, zoom '
                             'or flip')
        if not 0.0 <= self.sharpness <= 4.0:
            raise ValueError(f'sharpness is an extra detail gain in [0, 4], got {self.sharpness}')
        if not 0.0 <= self.texture <= 1.0:
            raise ValueError(f'texture is a gain amplitude in [0, 1], got {self.texture}')
        if not 0.0 <= self.random_convolution <= 1.0:
            raise ValueError('random_convolution is a probability in [0, 1], got '
                             f'{self.random_convolution}')
        if self.zoom is not None:
            low, high = (float(v) for v in self.zoom)
            if not 1.0 <= low <= high:
                raise ValueError(f'zoom must be (low, high) factors with 1 <= low <= high, '
                                 f'got {self.zoom!r}')
            self.zoom = (low, high)
        for name in ('bottom_crop', 'resize', 'crop'):
            value = getattr(self, name)
            if value is not None:
                if len(value) != 2 or min(int(v) for v in value) < 1:
                    raise ValueError(f'{name} must be (height, width) in pixels, got {value!r}')
                setattr(self, name, (int(value[0]), int(value[1])))

    @classmethod
    def train(cls, crop: tuple[int, int] = (256, 256)) -> Augment:
        """Random crops, flips and colour jitter: a reasonable training default."""
        return cls(crop=crop, flip=True, brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02)


def zoomed(sample: RawSample, factor: float) -> RawSample:
    """The sample enlarged by ``factor`` (>= 1), depth divided by it.

    What a camera with the sample's focal length would see of the scene with every
    depth divided by the factor: a pixel's lateral and vertical position in metres,
    x = (u - cx) z / f, is unchanged, so the road stays at the camera's height.
    Objects look as large as they would that much nearer, wherever they sit in the
    image, so a network cannot read depth from the image row alone. Intrinsics: the
    principal point moves with the enlargement, the focal lengths stay.
    """
    height, width = sample.image.shape[:2]
    size = (max(height, round(height * factor)), max(width, round(width * factor)))
    out = resized(sample, size)
    intrinsics = np.array(out.intrinsics, dtype=np.float64)
    intrinsics[0, 0], intrinsics[1, 1] = sample.intrinsics[0, 0], sample.intrinsics[1, 1]
    scale = np.float32(size[1] / width)  # the enlargement in x, as the focal length sees it
    depth = None if out.depth is None else (out.depth / scale).astype(np.float32)
    return replace(out, intrinsics=intrinsics, depth=depth)


def window(sample: RawSample, region: Region) -> RawSample:
    """The ``region`` of a sample, intrinsics shifted with it."""
    return replace(sample, image=region.of(sample.image),
                   intrinsics=crop_intrinsics(sample.intrinsics, region.top, region.left),
                   depth=None if sample.depth is None else region.of(sample.depth),
                   labels=None if sample.labels is None else region.of(sample.labels))


def resized(sample: RawSample, size: tuple[int, int]) -> RawSample:
    """The sample scaled to (height, width): area/linear image, depth without interpolation."""
    old = sample.image.shape[:2]
    return replace(sample, image=resize_image(sample.image, size),
                   intrinsics=resize_intrinsics(sample.intrinsics, old, size),
                   depth=None if sample.depth is None else resize_depth_sparse(sample.depth, size),
                   labels=None if sample.labels is None else resize_labels(sample.labels, size))


class DepthDataset(Dataset[dict[str, Any]], ABC):
    """Base of every dataset: augmentation and the batch dictionary.

    A subclass implements ``__len__`` and :meth:`read`; it may override
    :meth:`crop_region` to keep random crops inside part of the image.
    Randomness comes from torch's generator, which a DataLoader seeds per worker.
    """

    classes: ClassList | None = None  # what ``labels`` ids mean; None = no labels
    camera_name: str = ''

    def __init__(self, augment: Augment | None = None,
                 mean: tuple[float, float, float] = IMAGENET_MEAN,
                 std: tuple[float, float, float] = IMAGENET_STD) -> None:
        self.augment = augment or Augment()
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        a = self.augment
        self.jitter = (v2.ColorJitter(a.brightness, a.contrast, a.saturation, a.hue)
                       if max(a.brightness, a.contrast, a.saturation, a.hue) > 0 else None)

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def read(self, index: int) -> RawSample:
        """The full-size sample at ``index``, with intrinsics, straight from the files."""

    def resize_source_size(self) -> tuple[int, int] | None:
        """(height, width) of the images the network input is resized from; None when
        training does not resize (the model card's ``input.frame_*``)."""
        if self.augment.resize is None or len(self) == 0:
            return None
        size = self.read(0).image.shape[:2]
        if self.augment.bottom_crop is not None:
            size = bottom_centre_region(size, self.augment.bottom_crop).size
        return int(size[0]), int(size[1])

    def crop_region(self, sample: RawSample) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) random crops must lie in; default the whole image."""
        height, width = sample.image.shape[:2]
        return 0, height, 0, width

    def _far_ids(self) -> np.ndarray:
        """Label ids of ``augment.far_classes`` in this dataset's classes."""
        names = list(self.classes.names) if self.classes else []
        unknown = [n for n in self.augment.far_classes if n not in names]
        if unknown:
            raise ValueError(f'far_classes {unknown} are not classes of {type(self).__name__} '
                             f'(its classes: {names or "none"})')
        return np.array([names.index(n) for n in self.augment.far_classes], dtype=np.int64)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f'index {index} out of range for {len(self)} samples')
        sample = self.read(index)
        batch = self.to_batch(self.transform(sample), index)
        if self.augment.native_depth:
            batch.update(self.native_truth(sample))
        return batch

    def native_truth(self, sample: RawSample) -> dict[str, Any]:
        """``depth_native`` and ``native_region`` of a sample as read (``Augment.native_depth``)."""
        frame = sample.image.shape[:2]
        region = (bottom_centre_region(frame, self.augment.bottom_crop)
                  if self.augment.bottom_crop is not None else Region.whole(frame))
        if sample.depth is None:
            depth = np.zeros(frame, dtype=np.float32)
        else:
            depth = np.asarray(sample.depth, dtype=np.float32)
            depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)
        return {DEPTH_NATIVE: depth,
                NATIVE_REGION: (region.top, region.left, region.height, region.width)}

    def transform(self, sample: RawSample) -> RawSample:
        """Bottom crop, resize, zoom, random crop and flip, the intrinsics following each step;
        then sharpness, texture and a random convolution."""
        a = self.augment
        if a.bottom_crop is not None:
            sample = window(sample, bottom_centre_region(sample.image.shape[:2], a.bottom_crop))
        if a.resize is not None and a.resize != sample.image.shape[:2]:
            sample = resized(sample, a.resize)
        if a.zoom is not None:
            low, high = a.zoom
            factor = low + (high - low) * float(torch.rand(()))
            if factor > 1.0:
                sample = zoomed(sample, factor)
        if a.crop is not None:
            top, bottom, left, right = self.crop_region(sample)
            crop_h, crop_w = min(a.crop[0], bottom - top), min(a.crop[1], right - left)
            y = top + int(torch.randint(0, bottom - top - crop_h + 1, ()).item())
            x = left + int(torch.randint(0, right - left - crop_w + 1, ()).item())
            sample = window(sample, Region(y, x, crop_h, crop_w))
        if a.flip and bool(torch.rand(()) < 0.5):
            width = sample.image.shape[1]
            sample = replace(sample, image=sample.image[:, ::-1],
                             intrinsics=flip_intrinsics(sample.intrinsics, width),
                             depth=None if sample.depth is None else sample.depth[:, ::-1],
                             labels=None if sample.labels is None else sample.labels[:, ::-1])
        if a.sharpness > 0:
            sample = replace(sample, image=sharpened(sample.image, sample.labels, a.sharpness))
        if a.texture > 0:
            sample = replace(sample, image=textured(sample.image, sample.labels, a.texture))
        if a.random_convolution > 0:
            sample = replace(sample, image=random_convolution(sample.image,
                                                              a.random_convolution))
        return sample

    def to_batch(self, sample: RawSample, index: int) -> dict[str, Any]:
        """The batch dictionary of one transformed sample (the keys at the top of this module)."""
        height, width = sample.image.shape[:2]
        image = torch.from_numpy(np.ascontiguousarray(sample.image)).permute(2, 0, 1)  # (3, H, W) uint8
        if self.jitter is not None:
            image = self.jitter(image)
        if self.augment.channel_swap > 0 and bool(torch.rand(()) < self.augment.channel_swap):
            image = image[torch.randperm(3)]
        image = (image.float() / 255.0 - self.mean) / self.std
        if sample.depth is None:
            depth = np.zeros((height, width), dtype=np.float32)
        else:
            depth = np.ascontiguousarray(sample.depth, dtype=np.float32)
        valid = np.isfinite(depth) & (depth > 0)
        depth = np.where(valid, depth, 0.0).astype(np.float32)
        if self.augment.far_classes and sample.labels is not None:
            far = np.isin(sample.labels, self._far_ids()) & ~valid
            depth[far] = self.augment.far_depth or np.inf
            valid |= far
        if sample.labels is None:
            labels = np.full((height, width), IGNORE_INDEX, dtype=np.int64)
        else:
            labels = np.ascontiguousarray(sample.labels).astype(np.int64)
        return {
            IMAGE: image.contiguous(),
            DEPTH: torch.from_numpy(depth)[None],
            DEPTH_VALID: torch.from_numpy(valid)[None],
            LABELS: torch.from_numpy(labels),
            HAS_DEPTH: torch.tensor(sample.depth is not None),
            HAS_LABELS: torch.tensor(sample.labels is not None),
            INTRINSICS: torch.from_numpy(np.asarray(sample.intrinsics, dtype=np.float32)),
            SCENE: torch.tensor(int(sample.scene), dtype=torch.int64),
            INDEX: index,
        }


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """torch's default collation, except ``LISTED_KEYS``: per-sample lists (sizes differ;
    None for a sample without the key, as when validation sources differ)."""
    listed = {key: [sample.pop(key, None) for sample in samples]
              for key in LISTED_KEYS if any(key in sample for sample in samples)}
    batch: dict[str, Any] = default_collate(samples)
    batch.update(listed)
    return batch
