"""Point cloud creation vs per-point Python packing and a plain copy (``python -m bench clouds``).

At 1216x352 (428,032 points) with x y z, rgb, label and confidence: our
``depth_to_points`` + ``points_to_cloud`` against

- a per-point Python baseline (back-project each pixel, ``struct.pack_into``
  one 32-byte point), timed on a subset of pixels and scaled to the full
  image, because running it on all of them takes seconds;
- ``np.copy`` of a buffer the size of the cloud's data.

Ratios are of times measured in the same run.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

import numpy as np
from std_msgs.msg import Header

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.clouds import XYZRGB_POINT_STEP, depth_to_points, points_to_cloud

WIDTH, HEIGHT = 1216, 352
CAMERA = PinholeCamera(width=WIDTH, height=HEIGHT, fx=707.0, fy=707.0, cx=604.0, cy=180.5)
BASELINE_SUBSET = 20_000  # pixels the Python baseline packs; scaled to WIDTH * HEIGHT
INVALID_SHARE = 0.1  # pixels without depth (NaN)
MAX_RANGE_M = 80.0
REPEATS = 10
SEED = 0
# x y z, 4 pad, rgb (uint32 bits), label uint32, confidence, 4 pad: the cloud's 32 bytes
POINT_STRUCT = struct.Struct('<fff4xIIf4x')


def median_seconds(function: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median wall time of ``repeats`` calls after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


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
    rng = np.random.default_rng(SEED)
    depth = rng.uniform(1.0, 100.0, (HEIGHT, WIDTH)).astype(np.float32)
    depth[rng.random((HEIGHT, WIDTH)) < INVALID_SHARE] = np.nan
    rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    labels = rng.integers(0, 19, (HEIGHT, WIDTH), dtype=np.uint8)
    confidence = rng.random((HEIGHT, WIDTH), dtype=np.float32)
    header = Header(frame_id='camera_optical_frame')
    pixels = WIDTH * HEIGHT

    def ours(organized: bool) -> object:
        points = depth_to_points(depth, CAMERA)
        keep = (points[:, :, 2] < MAX_RANGE_M) & (confidence > 0.5)
        return points_to_cloud(points, header, rgb=rgb, labels=labels, confidence=confidence,
                               organized=organized, keep=keep)

    buffer = np.zeros(pixels * XYZRGB_POINT_STEP, np.uint8)
    copy_s = median_seconds(lambda: buffer.copy())
    points_s = median_seconds(lambda: depth_to_points(depth, CAMERA))
    organized_s = median_seconds(lambda: ours(True))
    unorganized_s = median_seconds(lambda: ours(False))
    subset = BASELINE_SUBSET
    lists = (depth.reshape(-1)[:subset].tolist(), rgb.reshape(-1, 3)[:subset].tolist(),
             labels.reshape(-1)[:subset].tolist(), confidence.reshape(-1)[:subset].tolist())
    python_s = median_seconds(lambda: python_cloud(*lists, subset), repeats=3) * pixels / subset

    print(f'{WIDTH}x{HEIGHT} = {pixels} points, x y z rgb label confidence '
          f'(point_step {XYZRGB_POINT_STEP}), median of {REPEATS} runs')
    print(f'Python baseline timed on {subset} points and scaled x{pixels / subset:.1f}')
    print(f'| {"step":46} | {"ms":>9} | {"vs copy":>7} | {"Python / this":>13} |')
    print(f'|{"-" * 48}|{"-" * 11}|{"-" * 9}|{"-" * 15}|')
    rows = [
        ('plain copy of the cloud bytes (13.7 MB)', copy_s),
        ('depth_to_points', points_s),
        ('depth_to_points + points_to_cloud, organized', organized_s),
        ('depth_to_points + points_to_cloud, unorganized', unorganized_s),
        ('per-point Python struct.pack (scaled)', python_s),
    ]
    for name, seconds in rows:
        print(f'| {name:46} | {seconds * 1e3:9.2f} | {seconds / copy_s:7.2f} | '
              f'{python_s / seconds:13.1f} |')


if __name__ == '__main__':
    main()
