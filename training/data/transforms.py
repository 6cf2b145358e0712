"""Geometry of crops, resizes and flips for images, depth maps and intrinsics (numpy only).

Pixel centres sit at integer coordinates: a resize maps centre to centre,
a flip maps column u to width - 1 - u.
"""

from __future__ import annotations

import cv2
import numpy as np

def crop_intrinsics(intrinsics: np.ndarray, top: int, left: int) -> np.ndarray:
    out = np.array(intrinsics, dtype=np.float64)
    out[0, 2] -= left
    out[1, 2] -= top
    return out


def resize_intrinsics(intrinsics: np.ndarray, old: tuple[int, int], new: tuple[int, int]) -> np.ndarray:
    """K for an image resized from ``old`` to ``new`` (height, width); pixel centres stay centres."""
    sy, sx = new[0] / old[0], new[1] / old[1]
    out = np.array(intrinsics, dtype=np.float64)
    out[0, 0] *= sx
    out[1, 1] *= sy
    out[0, 2] = (out[0, 2] + 0.5) * sx - 0.5
    out[1, 2] = (out[1, 2] + 0.5) * sy - 0.5
    return out


def flip_intrinsics(intrinsics: np.ndarray, width: int) -> np.ndarray:
    out = np.array(intrinsics, dtype=np.float64)
    out[0, 2] = width - 1 - out[0, 2]
    return out


def resize_depth(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a depth map to (height, width) without inventing depth.

    Shrinking moves every measurement to its new pixel and keeps the nearest
    where several meet (sparse LiDAR points survive); enlarging is nearest
    neighbour. Depth is never interpolated across an edge.
    """
    height, width = depth.shape
    if size[0] >= height and size[1] >= width:
        return cv2.resize(depth, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    v, u = np.nonzero(depth > 0)
    values = depth[v, u]
    nu = np.minimum(((u + 0.5) * size[1] / width).astype(np.int64), size[1] - 1)
    nv = np.minimum(((v + 0.5) * size[0] / height).astype(np.int64), size[0] - 1)
    out = np.full(size[0] * size[1], np.inf, dtype=np.float32)
    np.minimum.at(out, nv * size[1] + nu, values)
    out[np.isinf(out)] = 0.0
    return out.reshape(size)
