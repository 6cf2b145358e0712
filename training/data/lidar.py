"""Velodyne scans: reading KITTI's .bin files and projecting points into an image.

A KITTI scan is a flat float32 file of (x, y, z, reflectance) per point in
the Velodyne frame (x forward, y left, z up). Projection follows the KITTI
raw devkit: ``P_rect_02 @ R_rect_00 @ [R|T]_velo_to_cam``; where several
points fall on one pixel the nearest is kept. Two conventions for the pixel
and the depth (:func:`project_points`): pixel centres at integer coordinates
with the camera's z (a point projecting to u = 10.4 lands in column 10), or
monodepth2's, with which the Eigen split's ground truth was made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data.errors import DataError

POINT_FIELDS = 4  # x, y, z, reflectance
MIN_DEPTH_M = 0.1  # points closer than this to the image plane are dropped
PROJECTIONS = ('centre', 'monodepth2')  # see project_points
MONODEPTH2_PIXEL_SHIFT = 1


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
                   height: int, convention: str = 'centre'
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels (u, v) int and depth of the points (N, >=3) that land in the image.

    ``convention`` (:data:`PROJECTIONS`): ``centre`` puts a point in the pixel
    whose centre is nearest and gives it its camera depth z (the generator
    writes its ground truth so). ``monodepth2`` is the rule of monodepth2's
    ``generate_depth_map(..., vel_depth=True)``, which made the Eigen split's
    ground truth every published number is scored on: points with Velodyne
    x >= 0, ``np.round(u) - 1`` and ``np.round(v) - 1`` (its note: "to get the
    exact same value as KITTI matlab code", the MATLAB devkit's 1-based pixels),
    and the depth is the point's Velodyne x (forward distance from the
    scanner, about 0.27 m more than the camera's z on KITTI's rig).
    """
    homogeneous = np.concatenate([points[:, :3], np.ones((len(points), 1), points.dtype)], axis=1)
    image = homogeneous.astype(np.float64) @ velo_to_image.T  # (N, 3)
    if convention == 'monodepth2':
        keep = points[:, 0] >= 0
        image, depth = image[keep], points[keep, 0].astype(np.float64)
        with np.errstate(divide='ignore', invalid='ignore'):
            u = np.round(image[:, 0] / image[:, 2]) - MONODEPTH2_PIXEL_SHIFT
            v = np.round(image[:, 1] / image[:, 2]) - MONODEPTH2_PIXEL_SHIFT
        finite = np.isfinite(u) & np.isfinite(v)
        u, v, depth = u[finite].astype(np.int64), v[finite].astype(np.int64), depth[finite]
    elif convention == 'centre':
        depth = image[:, 2]
        in_front = depth > MIN_DEPTH_M
        u = np.floor(image[in_front, 0] / depth[in_front] + 0.5).astype(np.int64)
        v = np.floor(image[in_front, 1] / depth[in_front] + 0.5).astype(np.int64)
        depth = depth[in_front]
    else:
        raise ValueError(f'projection convention must be one of {PROJECTIONS}, got {convention!r}')
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height) & (depth > 0)
    return u[inside], v[inside], depth[inside]


def points_to_depth_map(points: np.ndarray, velo_to_image: np.ndarray, width: int,
                        height: int, convention: str = 'centre') -> np.ndarray:
    """(H, W) float32 depth in metres of the nearest projected point per pixel, 0 = none."""
    u, v, depth = project_points(points, velo_to_image, width, height, convention)
    pixel = v * width + u
    order = np.lexsort((depth, pixel))  # by pixel, nearest first
    first = np.unique(pixel[order], return_index=True)[1]
    chosen = order[first]
    depth_map = np.zeros(height * width, dtype=np.float32)
    depth_map[pixel[chosen]] = depth[chosen]
    return depth_map.reshape(height, width)
