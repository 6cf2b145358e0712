"""The demo's picture of one frame: everything the node published for it.

image | depth | intervals (top row), segmentation | confidence | point cloud
seen from above (bottom row), all from the messages the node published, as
recorded in the predictions bag.
"""

from __future__ import annotations

import cv2
import numpy as np

from mtdepth_ros.conversions.colorize import confidence_to_color, depth_to_color
from mtdepth_ros.evaluation.panels import GAP, tile_row

# Bird's-eye view of the cloud: forward (z) to the right, left (-x) up.
BEV_FORWARD_M = 60.0
BEV_SIDE_M = 12.0  # each side of the optical axis
BEV_BACKGROUND = (24, 24, 24)
BEV_GRID = (70, 70, 70)
BEV_GRID_STEP_M = 10.0
BEV_CAMERA = (255, 255, 255)


def bird_eye_view(points: dict[str, np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """(height, width, 3) uint8 RGB: the cloud from above, each point in its own colour.

    ``points`` is :func:`mtdepth_ros.conversions.clouds.cloud_to_points`' result (x, y, z and rgb).
    """
    height, width = size
    view = np.empty((height, width, 3), np.uint8)
    view[:] = BEV_BACKGROUND
    px_per_m = width / BEV_FORWARD_M
    for metres in np.arange(BEV_GRID_STEP_M, BEV_FORWARD_M, BEV_GRID_STEP_M):
        view[:, int(metres * px_per_m)] = BEV_GRID
    x, z = points['x'].ravel(), points['z'].ravel()
    keep = np.isfinite(x) & np.isfinite(z) & (z > 0)
    u = (z[keep] * px_per_m).astype(np.intp)
    v = ((x[keep] + BEV_SIDE_M) / (2 * BEV_SIDE_M) * height).astype(np.intp)
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    if 'rgb' in points:
        colours = points['rgb'].reshape(-1, 3)[keep][inside]
    else:
        colours = np.full((int(inside.sum()), 3), 255, np.uint8)
    # Far points first, so nearer ones (drawn later) stay on top.
    order = np.argsort(-u[inside], kind='stable')
    view[v[inside][order], u[inside][order]] = colours[order]
    cv2.circle(view, (2, height // 2), 3, BEV_CAMERA, -1)
    return view


def compose(rgb: np.ndarray, depth: np.ndarray, intervals_color: np.ndarray | None,
            segmentation_color: np.ndarray | None, confidence: np.ndarray | None,
            points: dict[str, np.ndarray] | None, depth_range: tuple[float, float]) -> np.ndarray:
    """The two-row panel, (H, W, 3) uint8 RGB; tiles at the depth map's resolution."""
    height, width = depth.shape
    blank = np.zeros((height, width, 3), np.uint8)
    image = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    top = [(image, 'camera image'),
           (depth_to_color(depth, *depth_range), f'depth ({depth_range[0]:g}-{depth_range[1]:g} m)'),
           (blank if intervals_color is None else intervals_color, 'depth intervals')]
    bottom = [(blank if segmentation_color is None else segmentation_color, 'segmentation'),
              (blank if confidence is None else confidence_to_color(confidence), 'confidence'),
              (blank if points is None else bird_eye_view(points, (height, width)),
               f'point cloud from above (0-{BEV_FORWARD_M:g} m ahead)')]
    rows = [tile_row(top), tile_row(bottom)]
    return np.vstack([rows[0], np.zeros((GAP, rows[0].shape[1], 3), np.uint8), rows[1]])
