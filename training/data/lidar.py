"""Velodyne scans: reading KITTI's .bin files and projecting points into an image.

A KITTI scan is a flat float32 file of (x, y, z, reflectance) per point in
the Velodyne frame (x forward, y left, z up). Projection follows the KITTI
raw devkit: ``P_rect_02 @ R_rect_00 @ [R|T]_velo_to_cam``; where several
points fall on one pixel the nearest is kept. Pixel centres are at integer
coordinates (a point projecting to u = 10.4 lands in column 10).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data.errors import DataError

POINT_FIELDS = 4  # x, y, z, reflectance
MIN_DEPTH_M = 0.1  # points closer than this to the image plane are dropped


def read_velodyne(path: Path) -> np.ndarray:
    """(N, 4) float32 points of a KITTI .bin scan."""
    try:
        raw = np.fromfile(path, dtype='<f4')
    except OSError as error:
        raise DataError(path, f'cannot read the Velodyne scan ({error.strerror})') from error
    if raw.size % POINT_FIELDS:
        raise DataError(path, f'a Velodyne scan holds {POINT_FIELDS} float32 per point; '
                              f'{raw.size * 4} bytes is not a whole number of points (truncated?)')
    return raw.reshape(-1, POINT_FIELDS)


def write_velodyne(path: Path, points: np.ndarray) -> None:
    """Write (N, 4) points as KITTI's little-endian float32 .bin."""
    np.ascontiguousarray(points, dtype='<f4').tofile(path)


def project_points(points: np.ndarray, velo_to_image: np.ndarray, width: int,
                   height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels (u, v) int and depth z of the points (N, >=3) that land in the image."""
    homogeneous = np.concatenate([points[:, :3], np.ones((len(points), 1), points.dtype)], axis=1)
    image = homogeneous.astype(np.float64) @ velo_to_image.T  # (N, 3)
    depth = image[:, 2]
    in_front = depth > MIN_DEPTH_M
    u = np.floor(image[in_front, 0] / depth[in_front] + 0.5).astype(np.int64)
    v = np.floor(image[in_front, 1] / depth[in_front] + 0.5).astype(np.int64)
    depth = depth[in_front]
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    return u[inside], v[inside], depth[inside]


def points_to_depth_map(points: np.ndarray, velo_to_image: np.ndarray, width: int,
                        height: int) -> np.ndarray:
    """(H, W) float32 depth in metres of the nearest projected point per pixel, 0 = none."""
    u, v, depth = project_points(points, velo_to_image, width, height)
    pixel = v * width + u
    order = np.lexsort((depth, pixel))  # by pixel, nearest first
    first = np.unique(pixel[order], return_index=True)[1]
    chosen = order[first]
    depth_map = np.zeros(height * width, dtype=np.float32)
    depth_map[pixel[chosen]] = depth[chosen]
    return depth_map.reshape(height, width)
