"""Sample panels for the report: image | prediction | ground truth | error, as PNG.

A depth row always; a segmentation row below it when the frame has labels.
Sparse ground truth (LiDAR) is thickened for display only: each missing
pixel shows the nearest (smallest) measured depth of its 3x3 neighbourhood.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from mtdepth_ros.conversions.colorize import colormap_lut, depth_to_color, labels_to_color
from mtdepth_ros.evaluation.scoring import Aligned

MIN_TILE_WIDTH = 320  # small images are enlarged (nearest) to at least this width
CAPTION_HEIGHT = 20
CAPTION_SCALE = 0.5
CAPTION_COLOR = (255, 255, 255)
GAP = 4  # pixels between tiles
SPARSE_FRACTION = 0.3  # ground truth covering less than this is thickened for display
ERROR_COLORMAP = cv2.COLORMAP_INFERNO
ERROR_FULL_SCALE = 0.25  # relative error shown at full colour
WRONG_COLOR = (255, 0, 0)
RIGHT_COLOR = (40, 40, 40)
THICKEN_KERNEL = np.ones((3, 3), np.uint8)


def _thicken(depth: np.ndarray) -> np.ndarray:
    valid = np.isfinite(depth) & (depth > 0)
    if valid.mean() >= SPARSE_FRACTION:
        return depth
    nearest = cv2.erode(np.where(valid, depth, np.inf).astype(np.float32), THICKEN_KERNEL)
    return np.where(valid, depth, np.where(np.isfinite(nearest), nearest, np.nan))


def error_to_color(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """|pred - gt| / gt as (H, W, 3) uint8 RGB (INFERNO, full at 25 %); black without gt."""
    lut = colormap_lut(ERROR_COLORMAP)
    with np.errstate(invalid='ignore', divide='ignore'):
        relative = np.abs(pred - gt) / gt
    usable = mask & np.isfinite(relative)
    scaled = np.clip(np.nan_to_num(relative) / ERROR_FULL_SCALE, 0, 1) * (len(lut) - 1)
    colour = lut[np.rint(scaled).astype(np.intp)]
    colour[~usable] = 0
    return colour


def caption_tile(rgb: np.ndarray, caption: str, scale: int = 1) -> np.ndarray:
    """``rgb`` (enlarged ``scale`` times, nearest) under a caption band."""
    if scale > 1:
        rgb = cv2.resize(rgb, (rgb.shape[1] * scale, rgb.shape[0] * scale),
                         interpolation=cv2.INTER_NEAREST)
    band = np.zeros((CAPTION_HEIGHT, rgb.shape[1], 3), np.uint8)
    cv2.putText(band, caption, (4, CAPTION_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, CAPTION_SCALE,
                CAPTION_COLOR, 1, cv2.LINE_AA)
    return np.vstack([band, rgb])


def tile_row(tiles: Sequence[tuple[np.ndarray, str]], scale: int = 1) -> np.ndarray:
    """Captioned tiles side by side, GAP pixels apart, padded to the tallest."""
    rendered = [caption_tile(rgb, caption, scale) for rgb, caption in tiles]
    height = max(t.shape[0] for t in rendered)
    gap = np.zeros((height, GAP, 3), np.uint8)
    parts: list[np.ndarray] = []
    for tile in rendered:
        parts += [np.pad(tile, ((0, height - tile.shape[0]), (0, 0), (0, 0))), gap]
    return np.hstack(parts[:-1])


def compose_panel(aligned: Aligned, depth_range: tuple[float, float],
                  palette: Sequence[Sequence[int]] | None) -> np.ndarray | None:
    """The panel of one frame, (H, W, 3) uint8 RGB; None when there is nothing to show."""
    rows: list[list[tuple[np.ndarray, str]]] = []
    if aligned.depth_pred is not None and aligned.depth_gt is not None:
        gt, pred = aligned.depth_gt, aligned.depth_pred
        mask = aligned.depth_mask if aligned.depth_mask is not None else np.isfinite(gt)
        image = cv2.resize(aligned.frame.rgb, (gt.shape[1], gt.shape[0]),
                           interpolation=cv2.INTER_AREA)
        rows.append([(image, 'image'), (depth_to_color(pred, *depth_range), 'prediction'),
                     (depth_to_color(_thicken(np.where(mask, gt, np.nan)), *depth_range),
                      'ground truth'),
                     (error_to_color(pred, gt, mask), f'|error|/gt (0-{ERROR_FULL_SCALE:.0%})')])
    if aligned.labels_pred is not None and aligned.labels_gt is not None and palette:
        gt_labels, pred_labels = aligned.labels_gt, aligned.labels_pred
        image = cv2.resize(aligned.frame.rgb, (gt_labels.shape[1], gt_labels.shape[0]),
                           interpolation=cv2.INTER_AREA)
        wrong = np.where(((pred_labels != gt_labels) & (gt_labels != 255))[..., None],
                         np.array(WRONG_COLOR, np.uint8), np.array(RIGHT_COLOR, np.uint8))
        rows.append([(image, 'image'), (labels_to_color(pred_labels, palette), 'segmentation'),
                     (labels_to_color(gt_labels, palette), 'labels'), (wrong, 'wrong (red)')])
    if not rows:
        return None
    width = max(tiles[0][0].shape[1] for tiles in rows)
    scale = max(1, -(-MIN_TILE_WIDTH // width))  # ceil
    rendered = [tile_row(tiles, scale) for tiles in rows]
    full = max(r.shape[1] for r in rendered)
    return np.vstack([np.pad(r, ((0, GAP), (0, full - r.shape[1]), (0, 0))) for r in rendered])


def write_panel(path: Path, aligned: Aligned, depth_range: tuple[float, float],
                palette: Sequence[Sequence[int]] | None) -> bool:
    """Write the panel PNG; False when the frame had nothing to show."""
    panel = compose_panel(aligned, depth_range, palette)
    if panel is None:
        return False
    write_png(path, panel)
    return True


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """``rgb`` (H, W, 3) uint8 as a PNG at ``path``, its folder made; OSError if it cannot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f'{path}: could not write the panel image')
    return path

