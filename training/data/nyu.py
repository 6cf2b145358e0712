"""NYU Depth v2 (the labelled set): images, filled or raw depth, 40- or 13-class labels.

``root`` holds ``nyu_depth_v2_labeled.mat``, ``splits.mat`` and, for labels,
the class maps ``classMapping40.mat`` (and ``class13Mapping.mat`` for 13
classes) placed beside them (docs/data.md). The HDF5 file is opened lazily
in each process, so DataLoader workers each get their own handle. Each sample
carries its frame's scene class (``scene``, an index into
:data:`training.data.classes.NYU_SCENE_TYPES`) from the file's ``sceneTypes``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mtdepth_ros.conversions.geometry import resize_intrinsics
from mtdepth_ros.conversions.labels import IGNORE_INDEX
from training.data.base import Augment, DepthDataset, RawSample
from training.data.classes import NYU13, NYU40, nyu_scene_id
from training.data.errors import DataError
from training.data.nyu_files import (
    LABELED_FILE,
    MAP13_FILE,
    MAP40_FILE,
    NYU_IMAGE_SHAPE,
    SPLITS_FILE,
    check_labeled,
    hold_out_validation,
    read_map13,
    read_map40,
    read_scene_types,
    read_splits,
    read_strings,
)

LOG = logging.getLogger(__name__)

# Kinect colour camera (NYU toolbox camera_params.m: fx_rgb, fy_rgb, cx_rgb, cy_rgb).
KINECT_INTRINSICS = np.array([[518.857901, 0.0, 325.582449], [0.0, 519.469611, 253.736166],
                              [0.0, 0.0, 1.0]])
# The toolbox's get_projection_mask: rows 45..471 and columns 41..601 (1-based) are
# where registered depth and colour both exist; around it lies the RGB frames' white
# border. As 0-based half-open (top, bottom, left, right) at 640 x 480.
PROJECTION_MASK = (44, 471, 40, 601)
DEPTH_KINDS = {'filled': 'depths', 'raw': 'rawDepths'}
SPLITS = ('train', 'val', 'trainval', 'test', 'all')


class NyuDataset(DepthDataset):
    """The 1449 labelled frames of NYU Depth v2, split by splits.mat.

    Args:
        root: folder with the labelled .mat, splits.mat and the class maps.
        split: ``train`` (the official 795 training frames less the held-out
            validation scenes, about 715), ``val`` (those scenes, about 80:
            :func:`~training.data.nyu_files.hold_out_validation`), ``trainval``
            (all 795, for a final model trained without validation), ``test``
            (the official 654, for the benchmark only) or ``all``.
        depth: ``filled`` (``depths``, inpainted) or ``raw`` (``rawDepths``, Kinect holes
            = invalid): which one scores an evaluation is an explicit choice.
        num_classes: 40, 13, or 0 for no labels (then no class map is needed).
        mask_border: depth and labels outside the toolbox's projection mask (the white
            border of the RGB frames) count as invalid, and random crops stay inside it.
        maps_root: where the class maps are (default ``root``).
        **augment: :class:`Augment` fields.
    """

    camera_name = 'NYU Depth v2 Kinect colour camera'

    def __init__(self, root: str | Path, split: str = 'train', *, depth: str = 'filled',
                 num_classes: int = 40, mask_border: bool = True, maps_root: str | Path | None = None,
                 **augment: Any) -> None:
        super().__init__(Augment(**augment))
        if depth not in DEPTH_KINDS:
            raise ValueError(f'depth must be one of {sorted(DEPTH_KINDS)}, got {depth!r}')
        if num_classes not in (0, 13, 40):
            raise ValueError(f'num_classes must be 40, 13 or 0 (no labels), got {num_classes}')
        self.root = Path(root)
        self.path = self.root / LABELED_FILE
        if not self.path.is_file():
            raise DataError(self.path, 'NYU Depth v2 labelled file not found')
        self.depth_key = DEPTH_KINDS[depth]
        self.mask_border = mask_border
        try:
            with h5py.File(self.path, 'r') as file:
                count = check_labeled(self.path, file)
                self.width, self.height = file['images'].shape[2:]
                scene_types = read_scene_types(self.path, file, count)
                scene_names = read_strings(self.path, file, 'scenes', count)
        except OSError as error:
            raise DataError(self.path, f'cannot be opened as MATLAB v7.3 / HDF5 ({error})') from error
        splits = read_splits(self.root / SPLITS_FILE, count)
        splits['trainval'] = splits['train']
        splits['train'], splits['val'] = hold_out_validation(splits['trainval'], scene_names)
        splits['all'] = np.arange(count)
        if split not in SPLITS:
            raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
        self.indices = splits[split]
        self.scenes = self._scene_ids(scene_types, count)
        self.scene_names = scene_names
        maps = Path(maps_root) if maps_root else self.root
        self.label_lut = None
        if num_classes:
            lut = read_map40(maps / MAP40_FILE)  # raw id -> 1..40
            if num_classes == 13:
                lut = read_map13(maps / MAP13_FILE)[lut]
            self.label_lut = np.where(lut > 0, lut.astype(np.int64) - 1, IGNORE_INDEX).astype(np.uint8)
        self.classes = {40: NYU40, 13: NYU13}.get(num_classes)
        self.intrinsics = resize_intrinsics(KINECT_INTRINSICS, NYU_IMAGE_SHAPE[:2],
                                            (self.height, self.width))
        self._file: h5py.File | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def sequences(self) -> set[str]:
        """The scenes of the frames (frame numbers without scene names): a train and a test
        split must not share one."""
        if self.scene_names is None:
            return {f'frame {index}' for index in self.indices.tolist()}
        return {self.scene_names[index] for index in self.indices.tolist()}

    def _scene_ids(self, scene_types: list[str] | None, count: int) -> np.ndarray:
        """(count,) int64 scene class per frame; IGNORE_INDEX for unknown names or no sceneTypes."""
        if scene_types is None:
            LOG.warning('%s has no sceneTypes: scene = %d (unknown) for every frame', self.path, IGNORE_INDEX)
            return np.full(count, IGNORE_INDEX, dtype=np.int64)
        ids = np.array([nyu_scene_id(name) for name in scene_types], dtype=np.int64)
        unknown = sorted({name for name, id_ in zip(scene_types, ids) if id_ == IGNORE_INDEX})
        if unknown:
            LOG.warning('%s: %d of %d frames have a scene type outside NYU\'s 27 (%s); their scene '
                        'is %d (unknown)', self.path, int((ids == IGNORE_INDEX).sum()), count,
                        ', '.join(repr(name) for name in unknown[:5]) + (', ...' if len(unknown) > 5 else ''),
                        IGNORE_INDEX)
        return ids

    def _open(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():  # a forked worker needs its own handle
            self._file = h5py.File(self.path, 'r')
            self._pid = os.getpid()
        return self._file

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state['_file'] = None  # h5py handles do not pickle (spawned DataLoader workers)
        return state

    def read(self, index: int) -> RawSample:
        file = self._open()
        frame = int(self.indices[index])
        image = np.ascontiguousarray(np.transpose(file['images'][frame], (2, 1, 0)))  # (H, W, 3)
        depth = np.ascontiguousarray(file[self.depth_key][frame].T).astype(np.float32)  # (H, W)
        labels = None
        if self.label_lut is not None:
            raw = file['labels'][frame].T
            if raw.max() >= len(self.label_lut):
                raise DataError(self.path, f'frame {frame + 1} has label {raw.max()}; NYU ids are 0..894')
            labels = self.label_lut[raw]
        if self.mask_border:
            top, bottom, left, right = self.projection_mask(self.height, self.width)
            outside = np.ones(depth.shape, dtype=bool)
            outside[top:bottom, left:right] = False
            depth[outside] = 0.0
            if labels is not None:
                labels[outside] = IGNORE_INDEX
        return RawSample(image, self.intrinsics.copy(), depth, labels, int(self.scenes[frame]))

    @staticmethod
    def projection_mask(height: int, width: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) of the projection mask scaled to ``height`` x ``width``."""
        sy, sx = height / NYU_IMAGE_SHAPE[0], width / NYU_IMAGE_SHAPE[1]
        top, bottom, left, right = PROJECTION_MASK
        return round(top * sy), round(bottom * sy), round(left * sx), round(right * sx)

    def crop_region(self, sample: RawSample) -> tuple[int, int, int, int]:
        height, width = sample.image.shape[:2]
        if not self.mask_border or self.augment.crop is None:
            return 0, height, 0, width
        top, bottom, left, right = self.projection_mask(height, width)
        crop_h, crop_w = self.augment.crop
        # A crop larger than the mask grows symmetrically around it, never past the image.
        if bottom - top < crop_h:
            top = max(0, min(top - (crop_h - (bottom - top)) // 2, height - crop_h))
            bottom = min(height, top + crop_h)
        if right - left < crop_w:
            left = max(0, min(left - (crop_w - (right - left)) // 2, width - crop_w))
            right = min(width, left + crop_w)
        return top, bottom, left, right
