"""Cityscapes' on-disk layout (no torch).

::

    leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png       label ids (8-bit)
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png  train ids (createTrainIdLabelImgs)
    camera/<split>/<city>/<city>_<seq>_<frame>_camera.json                intrinsic fx, fy, u0, v0

(Cordts et al., CVPR 2016; cityscapesScripts.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.data.errors import DataError

IMAGE_SUFFIX = '_leftImg8bit.png'
LABEL_SUFFIXES = {'labelIds': '_gtFine_labelIds.png', 'labelTrainIds': '_gtFine_labelTrainIds.png'}
CAMERA_SUFFIX = '_camera.json'
CITYSCAPES_WIDTH, CITYSCAPES_HEIGHT = 2048, 1024
# A typical Cityscapes camera (aachen's camera.json): focal lengths and principal point.
CITYSCAPES_INTRINSICS = np.array([[2262.52, 0.0, 1096.98], [0.0, 2265.3017905988554, 513.137],
                                  [0.0, 0.0, 1.0]])


def stem(city: str, sequence: int, frame: int) -> str:
    return f'{city}_{sequence:06d}_{frame:06d}'


def image_path(root: Path, split: str, city: str, name: str) -> Path:
    return Path(root) / 'leftImg8bit' / split / city / f'{name}{IMAGE_SUFFIX}'


def label_path(root: Path, split: str, city: str, name: str, kind: str = 'labelIds') -> Path:
    return Path(root) / 'gtFine' / split / city / f'{name}{LABEL_SUFFIXES[kind]}'


def camera_path(root: Path, split: str, city: str, name: str) -> Path:
    return Path(root) / 'camera' / split / city / f'{name}{CAMERA_SUFFIX}'


def read_camera(path: Path) -> np.ndarray:
    """(3, 3) K from a Cityscapes camera.json (``intrinsic``: fx, fy, u0, v0)."""
    try:
        intrinsic = json.loads(Path(path).read_text())['intrinsic']
        fx, fy, u0, v0 = (float(intrinsic[k]) for k in ('fx', 'fy', 'u0', 'v0'))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(path, f'cannot read intrinsic fx, fy, u0, v0 ({error!r})') from error
    return np.array([[fx, 0.0, u0], [0.0, fy, v0], [0.0, 0.0, 1.0]])


def write_camera(path: Path, intrinsics: np.ndarray, height_m: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        'extrinsic': {'baseline': 0.209313, 'pitch': 0.0, 'roll': 0.0, 'yaw': 0.0,
                      'x': 1.7, 'y': 0.0, 'z': height_m},
        'intrinsic': {'fx': float(intrinsics[0, 0]), 'fy': float(intrinsics[1, 1]),
                      'u0': float(intrinsics[0, 2]), 'v0': float(intrinsics[1, 2])}}, indent=2) + '\n')
