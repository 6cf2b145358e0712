"""A depth image to a serialized PointCloud2 vs a plain copy, the message path and Python.

``python -m bench clouds``. At 1216x352 (428,032 points) with x y z, rgb,
label and confidence, from depth, intrinsics, colour, labels and confidence
to the bytes ``Publisher.publish`` takes:

- ``cloud_bytes``: the node's path, one numba pass into the message's own
  CDR bytes (organized, and unorganized with its extra counting pass);
- the message path it replaced: ``depth_to_points`` + ``points_to_cloud``
  (numpy, several passes) + ``rclpy.serialization.serialize_message``;
- a per-point Python baseline (back-project each pixel, ``struct.pack_into``
  one 32-byte point), timed on a subset of pixels and scaled to the image;
- ``np.copyto`` of the organized cloud's bytes (:func:`bench.rows.copy_seconds`): the floor.

The scene is built like a road frame (depth rising to the horizon, objects,
labels and confidence in coherent regions, 10 % of pixels without depth),
not noise: per-pixel branches predict as they do on real predictions.
Ratios are of times measured in the same run.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np
from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from bench.rows import copy_seconds, median_seconds, report
from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.cloud_bytes import cloud_bytes
from mtdepth_ros.conversions.clouds import XYZRGB_POINT_STEP, depth_to_points, points_to_cloud
from mtdepth_ros.node.process import tune_allocator

WIDTH, HEIGHT = 1216, 352
CAMERA = PinholeCamera(width=WIDTH, height=HEIGHT, fx=707.0, fy=707.0, cx=604.0, cy=180.5)
BASELINE_SUBSET = 20_000  # pixels the Python baseline packs; scaled to WIDTH * HEIGHT
INVALID_SHARE = 0.1  # pixels without depth (NaN)
MAX_RANGE_M = 80.0
MIN_CONFIDENCE = 0.5
SKY, ROAD, CAR = 10, 0, 13  # Cityscapes train ids
SEED = 0
# x y z, 4 pad, rgb (uint32 bits), label uint32, confidence, 4 pad: the cloud's 32 bytes
POINT_STRUCT = struct.Struct('<fff4xIIf4x')


def road_scene(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """depth (m, NaN holes), rgb, labels, confidence of a road-like frame."""
    rows = np.arange(HEIGHT, dtype=np.float32)[:, None]
    horizon = CAMERA.cy
    ground = np.where(rows > horizon + 1, 1.65 * CAMERA.fy / (rows - horizon + 1e-3), 200.0)
    depth = np.broadcast_to(ground, (HEIGHT, WIDTH)).astype(np.float32).copy()
    labels = np.where(rows > horizon, ROAD, SKY).astype(np.uint8) * np.ones((1, WIDTH), np.uint8)
    for _ in range(12):  # cars and walls: boxes at a constant depth
        top, left = int(rng.integers(100, 300)), int(rng.integers(0, WIDTH - 200))
        height, width = int(rng.integers(20, 80)), int(rng.integers(40, 200))
        depth[top:top + height, left:left + width] = rng.uniform(5, 60)
        labels[top:top + height, left:left + width] = CAR
    depth[rng.random((HEIGHT, WIDTH)) < INVALID_SHARE] = np.nan
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8), (9, 9), 0)
    confidence = cv2.GaussianBlur(rng.random((HEIGHT, WIDTH), dtype=np.float32), (31, 31), 0)
    confidence = (confidence - confidence.min()) / np.ptp(confidence)
    return depth, rgb, labels, confidence.astype(np.float32)


def python_cloud(depth: list[float], rgb: list[list[int]], labels: list[int],
                 confidence: list[float], pixels: int) -> bytearray:
    """The per-point baseline: one Python iteration and one struct.pack_into per pixel."""
    out = bytearray(pixels * POINT_STRUCT.size)
    nan = float('nan')
    for i in range(pixels):
        v, u = divmod(i, WIDTH)
        z = depth[i]
        if z > 0:  # NaN compares False
            x, y = (u - CAMERA.cx) * z / CAMERA.fx, (v - CAMERA.cy) * z / CAMERA.fy
        else:
            x = y = z = nan
        r, g, b = rgb[i]
        POINT_STRUCT.pack_into(out, i * POINT_STRUCT.size, x, y, z, (r << 16) | (g << 8) | b,
                               labels[i], confidence[i])
    return out


def main() -> None:
    tune_allocator()  # as the node does: big buffers stay in the heap between frames
    depth, rgb, labels, confidence = road_scene(np.random.default_rng(SEED))
    header = Header(frame_id='camera_optical_frame')
    pixels = WIDTH * HEIGHT

    def ours(organized: bool) -> bytes:
        return cloud_bytes(depth, CAMERA, header, rgb, labels, confidence, organized,
                           max_depth=MAX_RANGE_M, min_confidence=MIN_CONFIDENCE,
                           drop_ids=(SKY,))

    def message_path(organized: bool) -> bytes:
        points = depth_to_points(depth, CAMERA)
        keep = (~(depth > MAX_RANGE_M)) & (confidence >= MIN_CONFIDENCE) & (labels != SKY)
        return serialize_message(points_to_cloud(
            points, header, rgb=rgb, labels=labels, confidence=confidence,
            organized=organized, keep=keep))

    copy_s = copy_seconds(ours(True))  # the organized cloud's own bytes
    timings = [('plain copy of the cloud bytes (13.7 MB)', copy_s)]
    for organized in (True, False):
        kind = 'organized' if organized else 'unorganized'
        timings.append((f'cloud_bytes, {kind}', median_seconds(lambda o=organized: ours(o))))
        timings.append((f'points_to_cloud + serialize_message, {kind}',
                        median_seconds(lambda o=organized: message_path(o), repeats=5)))
    subset = BASELINE_SUBSET
    lists = (depth.reshape(-1)[:subset].tolist(), rgb.reshape(-1, 3)[:subset].tolist(),
             labels.reshape(-1)[:subset].tolist(), confidence.reshape(-1)[:subset].tolist())
    python_s = median_seconds(lambda: python_cloud(*lists, subset), repeats=3) * pixels / subset
    timings.append(('per-point Python struct.pack (scaled)', python_s))
    report('clouds', [{'name': name, 'ms': seconds * 1e3, 'vs copy': seconds / copy_s,
                       'Python / this': python_s / seconds} for name, seconds in timings],
           note=f'{WIDTH}x{HEIGHT} = {pixels} points, x y z rgb label confidence (point_step '
                f'{XYZRGB_POINT_STEP}), max depth, confidence and sky dropped; median of runs. '
                f'Python baseline timed on {subset} points and scaled x{pixels / subset:.1f}')


if __name__ == '__main__':
    main()
