"""KITTI datasets: raw drives with depth ground truth, and the benchmark's cropped selection.

``root`` holds ``raw/`` (the raw drives with their ``<date>/calib_*.txt``),
``depth/`` (the depth prediction ground truth: ``train``, ``val``,
``depth_selection``) and ``splits/<split>_files.txt``; each can live elsewhere
(``raw_root``, ``depth_root``, ``split`` as a file path). This is the layout
``python -m training synth --format kitti`` writes (docs/data.md).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from mtdepth_ros.conversions.geometry import kb_crop_region
from training.data.base import Augment, DepthDataset, RawSample
from training.data.classes import ROAD, cityscapes_label_to_train_lut
from training.data.errors import DataError, check_listed_files, check_same_size
from training.data.io import read_depth_png, read_label_png, read_rgb
from training.data.kitti_files import (
    DEPTH_SPLITS,
    SELECTION_DIR,
    FrameId,
    KittiCalibration,
    read_split_file,
    shipped_split,
)
from training.data.lidar import PROJECTIONS, points_to_depth_map, read_velodyne

LOG = logging.getLogger(__name__)

DEPTH_SOURCES = ('annotated', 'annotated_or_velodyne', 'velodyne', 'velodyne_raw', 'dense', 'none')
SYNTH_LABELS_DIR = 'synth_semantic'  # written by the generator (Cityscapes label ids)
SYNTH_DENSE_DIR = 'synth_dense_depth'


class KittiDataset(DepthDataset):
    """Frames of KITTI raw drives (left colour camera by default) with depth and optional labels.

    Args:
        root: the KITTI folder (``raw/``, ``depth/``, ``splits/``).
        split: ``train``, ``val``, ``test`` (``root/splits/<split>_files.txt``; without a
            file, ``train`` and ``val`` list every annotated frame of ``depth/<split>``),
            a shipped standard list by name (``eigen_test``, ``eigen_benchmark_test``,
            ``eigen_zhou_train``, ``eigen_zhou_val``, ``benchmark_val``:
            ``training/data/splits/kitti/README.md``), or the path of a split file
            (``<date>/<drive>_sync <frame> l|r`` lines).
        depth: ``annotated`` (proj_depth/groundtruth only: a listed frame without
            it is an error, or dropped with ``skip_unannotated``),
            ``annotated_or_velodyne`` (the explicit mix: frames without annotation
            project their Velodyne scan), ``velodyne`` (always project the scan),
            ``velodyne_raw`` (the projected single-scan PNG), ``dense`` (synthetic
            trees only) or ``none``.
        skip_unannotated: with ``annotated``, leave out listed frames that have no
            annotated depth (the Eigen-Zhou lists hold drive ends the benchmark did
            not annotate); how many is logged.
        projection: how a Velodyne scan becomes a depth map
            (:func:`training.data.lidar.project_points`): ``monodepth2`` (the
            Eigen split's published ground truth) or ``centre``.
        labels: ``auto`` (``root/synth_semantic`` if present), ``none``, or a folder laid
            out like ``raw/`` holding 8-bit label PNGs.
        label_ids: the label PNGs hold Cityscapes label ids (mapped to train ids) rather
            than train ids.
        crop_in_lidar_band: random crops stay in the bottom-centre benchmark window,
            where the LiDAR has points.
        **augment: :class:`Augment` fields (``crop``, ``resize``, ``flip``, ...).
    """

    classes = ROAD
    camera_name = 'KITTI left colour camera (image_02)'

    def __init__(self, root: str | Path, split: str = 'train', *, raw_root: str | Path | None = None,
                 depth_root: str | Path | None = None, depth: str = 'annotated', labels: str = 'auto',
                 label_ids: bool = True, crop_in_lidar_band: bool = True,
                 skip_unannotated: bool = False, projection: str = 'monodepth2',
                 **augment: Any) -> None:
        super().__init__(Augment(**augment))
        if depth not in DEPTH_SOURCES:
            raise ValueError(f'depth must be one of {DEPTH_SOURCES}, got {depth!r}')
        if projection not in PROJECTIONS:
            raise ValueError(f'projection must be one of {PROJECTIONS}, got {projection!r}')
        self.projection = projection
        self.root = Path(root)
        self.raw_root = Path(raw_root) if raw_root else self.root / 'raw'
        self.depth_root = Path(depth_root) if depth_root else self.root / 'depth'
        self.depth_source = depth
        self.crop_in_lidar_band = crop_in_lidar_band
        self.label_lut = cityscapes_label_to_train_lut() if label_ids else None
        self.labels_root = self._labels_root(labels)
        self.listing, self.frames = self._frames(split)
        if skip_unannotated and depth == 'annotated':
            self.frames = self._annotated_only(self.frames)
        check_listed_files(self.listing, [f.image(self.raw_root) for f in self.frames], 'images')
        self.calibrations = {(f.date, f.camera): KittiCalibration.read(self.raw_root / f.date, f.camera)
                             for f in {FrameId(f.date, '', 0, f.side) for f in self.frames}}
        self.depth_paths = self._depth_paths()
        if self.labels_root is not None:
            check_listed_files(self.listing, [self._label_path(f) for f in self.frames], 'label images')

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def sequences(self) -> set[str]:
        """The drives of the frames (a train and a test split must not share one)."""
        return {frame.drive for frame in self.frames}

    def _annotated_only(self, frames: list[FrameId]) -> list[FrameId]:
        kept = [frame for frame in frames if self._annotated(frame) is not None]
        if len(kept) < len(frames):
            LOG.info('%s: %d of %d listed frames have no annotated depth and are left out',
                     self.listing, len(frames) - len(kept), len(frames))
        return kept

    def _labels_root(self, labels: str) -> Path | None:
        if labels == 'none':
            return None
        if labels == 'auto':
            candidate = self.root / SYNTH_LABELS_DIR
            return candidate if candidate.is_dir() else None
        return Path(labels)

    def _frames(self, split: str) -> tuple[Path, list[FrameId]]:
        listed = self.root / 'splits' / f'{split}_files.txt'
        if Path(split).suffix == '.txt':
            listed = Path(split)
        elif not listed.is_file():
            listed = shipped_split(split) or listed
        if listed.is_file():
            return listed, read_split_file(listed)
        if split in DEPTH_SPLITS and (self.depth_root / split).is_dir():
            pattern = '*/proj_depth/groundtruth/image_0[23]/*.png'
            frames = [FrameId(p.parts[-5][:10], p.parts[-5], int(p.stem), 'l' if p.parent.name == 'image_02' else 'r')
                      for p in sorted((self.depth_root / split).glob(pattern))]
            return self.depth_root / split, frames
        raise DataError(listed, f'no split file, and {self.depth_root / split} has no annotated frames '
                                f'(split {split!r})')

    def _annotated(self, frame: FrameId, kind: str = 'groundtruth') -> Path | None:
        for split in DEPTH_SPLITS:
            path = frame.depth(self.depth_root, split, kind)
            if path.is_file():
                return path
        return None

    def _depth_paths(self) -> list[Path | None]:
        """Where each frame's depth comes from; frames with none at all are one error."""
        if self.depth_source == 'none':
            return [None] * len(self.frames)
        paths: list[Path | None] = []
        missing = []
        for frame in self.frames:
            path: Path | None
            if self.depth_source == 'annotated':
                path = self._annotated(frame)
            elif self.depth_source == 'annotated_or_velodyne':
                path = self._annotated(frame) or frame.velodyne(self.raw_root)
            elif self.depth_source == 'velodyne_raw':
                path = self._annotated(frame, 'velodyne_raw')
            elif self.depth_source == 'dense':
                path = self.root / SYNTH_DENSE_DIR / frame.date / frame.drive / frame.camera / 'data' \
                    / f'{frame.stem}.png'
            else:
                path = frame.velodyne(self.raw_root)
            if path is None or not path.is_file():
                kind = 'groundtruth' if self.depth_source == 'annotated' else 'velodyne_raw'
                missing.append(path or frame.depth(self.depth_root, 'train|val', kind))
            paths.append(path)
        if missing:
            hint = (' (skip_unannotated=True leaves them out; depth=velodyne or '
                    'annotated_or_velodyne projects their scans)') if self.depth_source == 'annotated' else ''
            check_listed_files(self.listing, missing, f'{self.depth_source} depth files{hint}')
        return paths

    def _label_path(self, frame: FrameId) -> Path:
        assert self.labels_root is not None
        return self.labels_root / frame.date / frame.drive / frame.camera / 'data' / f'{frame.stem}.png'

    def read(self, index: int) -> RawSample:
        frame = self.frames[index]
        image = read_rgb(frame.image(self.raw_root))
        height, width = image.shape[:2]
        calibration = self.calibrations[(frame.date, frame.camera)]
        depth = None
        path = self.depth_paths[index]
        if path is not None and path.suffix == '.bin':
            depth = points_to_depth_map(read_velodyne(path), calibration.velo_to_image(), width,
                                        height, self.projection)
        elif path is not None:
            depth = read_depth_png(path)
            check_same_size(path, depth, frame.image(self.raw_root), image)
        labels = None
        if self.labels_root is not None:
            label_path = self._label_path(frame)
            labels = read_label_png(label_path)
            check_same_size(label_path, labels, frame.image(self.raw_root), image)
            if self.label_lut is not None:
                labels = self.label_lut[labels]
        return RawSample(image, calibration.intrinsics, depth, labels)

    def crop_region(self, sample: RawSample) -> tuple[int, int, int, int]:
        height, width = sample.image.shape[:2]
        if not self.crop_in_lidar_band:
            return 0, height, 0, width
        band = kb_crop_region((height, width))
        top = band.top
        if self.augment.crop is not None and self.augment.crop[0] > band.height:
            top = max(0, height - self.augment.crop[0])  # a tall crop reaches above the band
        return top, height, band.left, band.right


class KittiSelection(DepthDataset):
    """KITTI's ``val_selection_cropped``: 1216 x 352 crops with ground truth and intrinsics.

    ``root`` is the KITTI folder (``depth/depth_selection/...`` under it) or the
    depth folder itself; ``depth`` is ``groundtruth_depth`` or ``velodyne_raw``.
    """

    classes = ROAD
    camera_name = 'KITTI left colour camera (image_02), benchmark crop'

    def __init__(self, root: str | Path, split: str = 'val_selection', *,
                 depth: str = 'groundtruth_depth',
                 **augment: Any) -> None:
        super().__init__(Augment(**augment))
        root = Path(root)
        base = root / 'depth' / SELECTION_DIR if (root / 'depth' / SELECTION_DIR).is_dir() \
            else root / SELECTION_DIR
        if not (base / 'image').is_dir():
            raise DataError(base / 'image', f'no val_selection_cropped images here (split {split!r})')
        self.images = sorted((base / 'image').glob('*.png'))
        self.depths = [base / depth / p.name.replace('_image_', f'_{depth}_', 1) for p in self.images]
        self.intrinsics = [base / 'intrinsics' / f'{p.stem}.txt' for p in self.images]
        check_listed_files(base / 'image', self.depths, f'{depth} files of the images')
        check_listed_files(base / 'image', self.intrinsics, 'intrinsics files of the images')

    def __len__(self) -> int:
        return len(self.images)

    @property
    def sequences(self) -> set[str]:
        """The drives of the crops (their file names begin with it)."""
        return {p.name.split('_image_', 1)[0] for p in self.images}

    def read(self, index: int) -> RawSample:
        image = read_rgb(self.images[index])
        depth = read_depth_png(self.depths[index])
        check_same_size(self.depths[index], depth, self.images[index], image)
        return RawSample(image, read_intrinsics_txt(self.intrinsics[index]), depth, None)


def read_intrinsics_txt(path: Path) -> np.ndarray:
    """(3, 3) K from a val_selection_cropped intrinsics file (9 numbers, row-major)."""
    try:
        values = [float(v) for v in Path(path).read_text().split()]
    except (OSError, ValueError) as error:
        raise DataError(path, f'cannot read 9 numbers of a 3x3 camera matrix ({error})') from error
    if len(values) != 9:
        raise DataError(path, f'expected 9 numbers (a 3x3 camera matrix), found {len(values)}')
    return np.array(values).reshape(3, 3)

