"""KITTI's on-disk layout: paths, calibration files and split lists (no torch).

Raw data (``raw_root``, as the raw download unzips)::

    <date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    <date>/<date>_drive_XXXX_sync/image_02/data/0000000000.png
    <date>/<date>_drive_XXXX_sync/velodyne_points/data/0000000000.bin

Depth prediction ground truth (``depth_root``, data_depth_annotated.zip and
data_depth_velodyne.zip)::

    train|val/<drive>_sync/proj_depth/groundtruth/image_02/0000000005.png
    train|val/<drive>_sync/proj_depth/velodyne_raw/image_02/0000000005.png
    depth_selection/val_selection_cropped/{image,groundtruth_depth,velodyne_raw,intrinsics}/

Split files list one frame per line, ``<date>/<drive>_sync <frame> l|r``
(monodepth2's Eigen split files; ``l`` = image_02, ``r`` = image_03). The
standard lists ship in ``training/data/splits/kitti/`` (:func:`shipped_split`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from training.data.errors import DataError

CAMERA_DIRS = {'l': 'image_02', 'r': 'image_03'}
FRAME_DIGITS = 10
DEPTH_SPLITS = ('train', 'val')
SELECTION_DIR = Path('depth_selection') / 'val_selection_cropped'
# The standard split lists shipped with the package (splits/kitti/README.md names their source).
SHIPPED_SPLITS_DIR = Path(__file__).parent / 'splits' / 'kitti'


def shipped_split(name: str) -> Path | None:
    """The shipped split list called ``name`` (``eigen_test``, ``eigen_zhou_train``, ...), or None."""
    path = SHIPPED_SPLITS_DIR / f'{name}.txt'
    return path if '/' not in name and path.is_file() else None


def shipped_splits() -> list[str]:
    return sorted(p.stem for p in SHIPPED_SPLITS_DIR.glob('*.txt'))


@dataclass(frozen=True)
class FrameId:
    """One camera frame of a raw drive."""

    date: str  # 2011_09_26
    drive: str  # 2011_09_26_drive_0001_sync
    frame: int
    side: str = 'l'

    @property
    def camera(self) -> str:
        return CAMERA_DIRS[self.side]

    @property
    def stem(self) -> str:
        return f'{self.frame:0{FRAME_DIGITS}d}'

    def image(self, raw_root: Path) -> Path:
        return Path(raw_root) / self.date / self.drive / self.camera / 'data' / f'{self.stem}.png'

    def velodyne(self, raw_root: Path) -> Path:
        return Path(raw_root) / self.date / self.drive / 'velodyne_points' / 'data' / f'{self.stem}.bin'

    def depth(self, depth_root: Path, split: str, kind: str = 'groundtruth') -> Path:
        """``kind``: 'groundtruth' (annotated) or 'velodyne_raw'."""
        return Path(depth_root) / split / self.drive / 'proj_depth' / kind / self.camera / f'{self.stem}.png'

    def line(self) -> str:
        return f'{self.date}/{self.drive} {self.frame} {self.side}'


def drive_name(date: str, number: int) -> str:
    return f'{date}_drive_{number:04d}_sync'


def read_split_file(path: Path) -> list[FrameId]:
    """Frames of a split file; a malformed line is an error naming its number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, 'split file not found')
    frames = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 3 or '/' not in fields[0] or fields[2] not in CAMERA_DIRS \
                or not fields[1].isdigit():
            raise DataError(path, f'line {number} is {line!r}; expected "<date>/<drive>_sync <frame> l|r"')
        date, drive = fields[0].split('/', 1)
        frames.append(FrameId(date, drive, int(fields[1]), fields[2]))
    return frames


def write_split_file(path: Path, frames: list[FrameId]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(frame.line() + '\n' for frame in frames))


def read_calib_file(path: Path) -> dict[str, np.ndarray]:
    """``key: numbers`` lines of a KITTI calibration file; non-numeric values are skipped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, 'calibration file not found')
    values = {}
    for line in path.read_text().splitlines():
        key, sep, rest = line.partition(':')
        if not sep:
            continue
        try:
            values[key.strip()] = np.array([float(x) for x in rest.split()])
        except ValueError:
            continue  # calib_time: 09-Jan-2012 13:57:47
    return values


def _matrix(values: dict[str, np.ndarray], key: str, shape: tuple[int, int], path: Path) -> np.ndarray:
    if key not in values:
        raise DataError(path, f'has no {key}')
    if values[key].size != shape[0] * shape[1]:
        raise DataError(path, f'{key} has {values[key].size} numbers, expected {shape[0] * shape[1]}')
    return values[key].reshape(shape)


@dataclass(frozen=True)
class KittiCalibration:
    """What projection needs from one date's calibration files."""

    p_rect: np.ndarray  # (3, 4) P_rect_02 (or _03)
    r_rect: np.ndarray  # (3, 3) R_rect_00
    velo_to_cam: np.ndarray  # (3, 4) [R|T] Velodyne -> camera 0
    image_size: tuple[int, int]  # (width, height) of the rectified images, S_rect_0x

    @property
    def intrinsics(self) -> np.ndarray:
        return self.p_rect[:, :3].copy()

    def velo_to_image(self) -> np.ndarray:
        """(3, 4) P_rect @ R_rect @ [R|T]: homogeneous Velodyne point -> image (u*z, v*z, z)."""
        r_rect = np.eye(4)
        r_rect[:3, :3] = self.r_rect
        velo = np.eye(4)
        velo[:3, :] = self.velo_to_cam
        return self.p_rect @ r_rect @ velo

    @classmethod
    def read(cls, date_dir: Path, camera: str = 'image_02') -> KittiCalibration:
        cam_path = Path(date_dir) / 'calib_cam_to_cam.txt'
        velo_path = Path(date_dir) / 'calib_velo_to_cam.txt'
        cam = read_calib_file(cam_path)
        index = camera[-2:]
        velo = read_calib_file(velo_path)
        rotation = _matrix(velo, 'R', (3, 3), velo_path)
        translation = _matrix(velo, 'T', (3, 1), velo_path)
        size = _matrix(cam, f'S_rect_{index}', (1, 2), cam_path)[0]
        return cls(_matrix(cam, f'P_rect_{index}', (3, 4), cam_path),
                   _matrix(cam, 'R_rect_00', (3, 3), cam_path),
                   np.hstack([rotation, translation]), (int(size[0]), int(size[1])))

    @classmethod
    def read_intrinsics_only(cls, date_dir: Path, camera: str = 'image_02') -> np.ndarray:
        cam_path = Path(date_dir) / 'calib_cam_to_cam.txt'
        return _matrix(read_calib_file(cam_path), f'P_rect_{camera[-2:]}', (3, 4), cam_path)[:, :3]


def read_object_calibration(path: Path, camera: str = 'P2') -> KittiCalibration:
    """One frame's calibration in the layout of KITTI's object and tracking benchmarks
    (``P0``..``P3``, ``R0_rect``, ``Tr_velo_to_cam``: one file per frame). These files
    hold no image size; it is left (0, 0)."""
    path = Path(path)
    values = read_calib_file(path)
    velo_key = 'Tr_velo_to_cam' if 'Tr_velo_to_cam' in values else 'Tr_velo_cam'  # tracking
    return KittiCalibration(_matrix(values, camera, (3, 4), path),
                            _matrix(values, 'R0_rect', (3, 3), path),
                            _matrix(values, velo_key, (3, 4), path), (0, 0))


def _numbers(values: ArrayLike) -> str:
    return ' '.join(f'{v:.6e}' for v in np.asarray(values, dtype=np.float64).ravel())


def write_cam_to_cam(path: Path, intrinsics: np.ndarray, size: tuple[int, int], baseline_m: float,
                     colour_offset_m: float) -> None:
    """A calib_cam_to_cam.txt in KITTI's format for an ideal rectified rig.

    Cameras 0/1 are the grey pair, 2/3 the colour pair; camera 2 sits
    ``colour_offset_m`` left of camera 0, camera 3 ``baseline_m`` right of 2.
    All are rectified to the same K; R_rect_0x are identities and D zero.
    """
    width, height = size
    offsets = {'00': 0.0, '01': -baseline_m, '02': colour_offset_m,
               '03': colour_offset_m - baseline_m}
    lines = ['calib_time: 01-Jan-2000 00:00:00', 'corner_dist: 9.950000e-02']
    for index, offset in offsets.items():
        p_rect = np.hstack([intrinsics, [[intrinsics[0, 0] * offset], [0.0], [0.0]]])
        lines += [f'S_{index}: {_numbers([width, height])}', f'K_{index}: {_numbers(intrinsics)}',
                  f'D_{index}: {_numbers(np.zeros(5))}', f'R_{index}: {_numbers(np.eye(3))}',
                  f'T_{index}: {_numbers([-offset, 0.0, 0.0])}',
                  f'S_rect_{index}: {_numbers([width, height])}',
                  f'R_rect_{index}: {_numbers(np.eye(3))}', f'P_rect_{index}: {_numbers(p_rect)}']
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join(lines) + '\n')


def write_velo_to_cam(path: Path, rotation: np.ndarray, translation: np.ndarray) -> None:
    lines = ['calib_time: 01-Jan-2000 00:00:00', f'R: {_numbers(rotation)}', f'T: {_numbers(translation)}',
             f'delta_f: {_numbers([0.0, 0.0])}', f'delta_c: {_numbers([0.0, 0.0])}']
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join(lines) + '\n')


def selection_paths(root: Path, drive: str, frame: int, camera: str = 'image_02') -> dict[str, Path]:
    """Files of one val_selection_cropped sample: image, groundtruth_depth, velodyne_raw, intrinsics."""
    base = Path(root) / SELECTION_DIR
    stem = f'{frame:0{FRAME_DIGITS}d}_{camera}'
    return {'image': base / 'image' / f'{drive}_image_{stem}.png',
            'groundtruth_depth': base / 'groundtruth_depth' / f'{drive}_groundtruth_depth_{stem}.png',
            'velodyne_raw': base / 'velodyne_raw' / f'{drive}_velodyne_raw_{stem}.png',
            'intrinsics': base / 'intrinsics' / f'{drive}_image_{stem}.txt'}
