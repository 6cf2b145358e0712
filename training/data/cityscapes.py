"""Cityscapes-style segmentation-only data (Jiao et al. mix it with KITTI depth).

Samples carry labels (the 19 train ids) and no depth: ``has_depth`` is False,
so a multi-task loss trains only the segmentation head on them. Concatenate
with a depth-only :class:`~training.data.kitti.KittiDataset` (``labels='none'``)
through ``torch.utils.data.ConcatDataset`` for the mixed scheme; give both
the same ``crop`` so batches stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtdepth_ros.conversions.geometry import resize_intrinsics
from training.data.base import Augment, DepthDataset, RawSample
from training.data.cityscapes_files import (
    CITYSCAPES_HEIGHT,
    CITYSCAPES_INTRINSICS,
    CITYSCAPES_WIDTH,
    IMAGE_SUFFIX,
    camera_path,
    label_path,
    read_camera,
)
from training.data.classes import ROAD, cityscapes_label_to_train_lut
from training.data.errors import DataError, check_listed_files, check_same_size
from training.data.io import read_label_png, read_rgb


class CityscapesSegmentation(DepthDataset):
    """``leftImg8bit`` images with ``gtFine`` labels as train ids (255 = ignore).

    Args:
        root: the Cityscapes folder (``leftImg8bit/``, ``gtFine/``, optional ``camera/``).
        split: ``train``, ``val`` or ``test``.
        label_file: ``labelIds`` (mapped through the official table) or ``labelTrainIds``.
        **augment: :class:`Augment` fields.
    """

    classes = ROAD
    camera_name = 'Cityscapes left camera'

    def __init__(self, root: str | Path, split: str = 'train', *, label_file: str = 'labelIds', **augment: Any) -> None:
        super().__init__(Augment(**augment))
        self.root = Path(root)
        folder = self.root / 'leftImg8bit' / split
        if not folder.is_dir():
            raise DataError(folder, f'no Cityscapes images for split {split!r}')
        self.images = sorted(folder.glob(f'*/*{IMAGE_SUFFIX}'))
        self.names = [(p.parent.name, p.name[:-len(IMAGE_SUFFIX)]) for p in self.images]
        self.split, self.label_file = split, label_file
        self.labels = [label_path(self.root, split, city, name, label_file) for city, name in self.names]
        check_listed_files(folder, self.labels, f'gtFine {label_file} files of the images')
        self.lut = cityscapes_label_to_train_lut() if label_file == 'labelIds' else None

    def __len__(self) -> int:
        return len(self.images)

    def read(self, index: int) -> RawSample:
        image = read_rgb(self.images[index])
        labels = read_label_png(self.labels[index])
        check_same_size(self.labels[index], labels, self.images[index], image)
        if self.lut is not None:
            labels = self.lut[labels]
        city, name = self.names[index]
        camera = camera_path(self.root, self.split, city, name)
        if camera.is_file():
            intrinsics = read_camera(camera)
        else:  # no camera file: a typical Cityscapes camera at this image size
            height, width = image.shape[:2]
            intrinsics = resize_intrinsics(CITYSCAPES_INTRINSICS,
                                           (CITYSCAPES_HEIGHT, CITYSCAPES_WIDTH), (height, width))
        return RawSample(image, intrinsics, None, labels)
