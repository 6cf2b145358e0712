"""A simulated 64-beam spinning LiDAR (Velodyne HDL-64E-like) cast into the scene.

The HDL-64E has 64 lasers in two blocks: the upper 32 from +2 deg down to
-8.33 deg in 1/3 deg steps, the lower 32 from -8.83 deg down to -24.33 deg in
1/2 deg steps (Velodyne HDL-64E S2 manual). Only the azimuths the camera can
see (plus a margin) are cast: the rest of the 360 deg sweep never reaches the
image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.data.synth.raycast import Primitive, SphericalGrid, cast

UPPER_BLOCK_DEG = 2.0 - np.arange(32) / 3.0
LOWER_BLOCK_DEG = -8.83 - np.arange(32) * 0.5
HDL64_ELEVATIONS_DEG = np.concatenate([UPPER_BLOCK_DEG, LOWER_BLOCK_DEG])  # descending
AZIMUTH_STEP_DEG = 0.09  # 0.08 deg at 5 Hz .. 0.35 deg at 20 Hz
MAX_RANGE_M = 120.0  # HDL-64E: 120 m
RANGE_NOISE_M = 0.01  # 1 sigma; the datasheet quotes < 2 cm
DROPOUT = 0.03  # share of returns lost at random
AZIMUTH_MARGIN_DEG = 3.0


@dataclass
class Scan:
    points: np.ndarray  # (N, 3) float32, sensor frame with camera axes (x right, y down, z forward)
    reflectance: np.ndarray  # (N,) float32 in 0..1


def camera_axes_to_velodyne(points: np.ndarray) -> np.ndarray:
    """Camera-style axes (x right, y down, z forward) -> Velodyne's (x forward, y left, z up)."""
    return np.stack([points[:, 2], -points[:, 0], -points[:, 1]], axis=1)


def scan(primitives: list[Primitive], reflectance: np.ndarray, origin: np.ndarray,
         rotation: np.ndarray, half_fov_rad: float, rng: np.random.Generator,
         azimuth_step_deg: float = AZIMUTH_STEP_DEG) -> Scan:
    """Cast one sweep; ``reflectance`` (P,) per primitive (0 = no return, e.g. glass)."""
    half = half_fov_rad + np.deg2rad(AZIMUTH_MARGIN_DEG)
    step = np.deg2rad(azimuth_step_deg)
    azimuths = np.arange(-half, half + step / 2, step)
    grid = SphericalGrid(np.deg2rad(HDL64_ELEVATIONS_DEG), azimuths, origin, rotation)
    hits = cast(grid, primitives)
    returned = hits.valid & (hits.t <= MAX_RANGE_M)
    strength = np.where(hits.valid, reflectance[np.maximum(hits.primitive, 0)], 0.0)
    returned &= strength > 0
    returned &= rng.random(returned.shape) >= DROPOUT
    ranges = hits.t[returned] + rng.normal(0.0, RANGE_NOISE_M, int(returned.sum()))
    sensor_dirs = grid.dirs[returned] @ rotation  # world -> sensor frame, unit length
    points = sensor_dirs * ranges[:, None]
    return Scan(points.astype(np.float32), np.clip(strength[returned], 0, 1).astype(np.float32))
