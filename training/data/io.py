"""Reading and writing the image files of the datasets, with errors that name the file.

Depth PNGs follow KITTI: 16-bit single channel, metres = value / 256, 0 = no
measurement. Label PNGs are 8-bit single channel. Colour images are returned
as RGB (OpenCV reads BGR).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from training.data.errors import DataError

DEPTH_SCALE = 256.0  # KITTI: uint16 value = metres * 256
MAX_PNG_DEPTH_M = 65535 / DEPTH_SCALE  # 255.996 m: deeper pixels are written as 0 (invalid)
PNG_COMPRESSION = 3  # zlib level: 1-3 are the fast ones and barely bigger


def _read(path: Path, flags: int) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, 'file not found')
    image = cv2.imread(str(path), flags)
    if image is None:
        raise DataError(path, 'cannot be decoded as an image (truncated, empty or not a PNG/JPEG)')
    return image


def _bits(image: np.ndarray) -> str:
    return {np.dtype(np.uint8): '8-bit', np.dtype(np.uint16): '16-bit'}.get(image.dtype, str(image.dtype))


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a colour image."""
    image = _read(path, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint8:
        raise DataError(path, f'expected an 8-bit colour image, got {_bits(image)}')
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise DataError(path, f'expected a colour image, got {image.ndim == 2 and 1 or image.shape[2]} channel(s)')
    return np.ascontiguousarray(image[..., 2::-1])


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    _write(path, np.ascontiguousarray(rgb[..., ::-1]))


def read_depth_png(path: Path) -> np.ndarray:
    """(H, W) float32 metres from a KITTI depth PNG, 0 = no measurement."""
    image = _read(path, cv2.IMREAD_UNCHANGED)
    if image.ndim != 2:
        raise DataError(path, f'expected a single-channel depth PNG, got {image.shape[2]} channels')
    if image.dtype != np.uint16:
        raise DataError(path, f'expected a 16-bit PNG (metres * 256), got {_bits(image)}')
    return image.astype(np.float32) / DEPTH_SCALE


def depth_to_png_values(depth: np.ndarray) -> np.ndarray:
    """Metres -> uint16 metres * 256; invalid (<= 0, non-finite) and out-of-range depth -> 0."""
    depth = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(depth) & (depth > 0) & (depth <= MAX_PNG_DEPTH_M)
    values = np.rint(np.where(valid, depth, 0.0) * DEPTH_SCALE)
    return np.clip(values, 0, 65535).astype(np.uint16)


def write_depth_png(path: Path, depth: np.ndarray) -> None:
    _write(path, depth_to_png_values(depth))


def read_label_png(path: Path) -> np.ndarray:
    """(H, W) uint8 class ids from an 8-bit single-channel PNG."""
    image = _read(path, cv2.IMREAD_UNCHANGED)
    if image.ndim != 2:
        raise DataError(path, f'expected a single-channel label PNG, got {image.shape[2]} channels')
    if image.dtype != np.uint8:
        raise DataError(path, f'expected an 8-bit label PNG, got {_bits(image)}')
    return image


def write_label_png(path: Path, labels: np.ndarray) -> None:
    _write(path, np.asarray(labels, dtype=np.uint8))


def _write(path: Path, image: np.ndarray) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]):
        raise DataError(path, 'OpenCV could not write the image')
