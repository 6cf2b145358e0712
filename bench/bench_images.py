"""Image conversion vs a plain copy of the same bytes (``python -m bench images``).

For each size and encoding: ``image_to_array`` (a view), ``image_to_rgb``
(what the node feeds the network) and ``array_to_image`` (building an
outgoing message), each as a ratio to ``np.copy`` of the message's bytes,
measured in the same run.
"""

from __future__ import annotations

import array
import time
from collections.abc import Callable

import numpy as np
from sensor_msgs.msg import Image

from mtdepth_ros.conversions.images import (
    array_to_image,
    bytes_to_message_array,
    image_to_array,
    image_to_rgb,
    new_message,
)

SIZES = ((1216, 352), (1920, 1080))  # KITTI network input, a 1080p camera
ENCODINGS = {'rgb8': 3, 'bgr8': 3, 'yuv422': 2}  # encoding -> bytes per pixel
REPEATS = 20
SEED = 0
FILL_SIZE = (1920, 1080)  # rgb8 image whose msg.data the fill comparison sets
SLOW_FILL_PIXELS = 20_000  # the per-element paths are timed on this many bytes and scaled


def median_seconds(function: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median wall time of ``repeats`` calls after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def fill_table(rng: np.random.Generator) -> None:
    """Ways to put a frame into ``Image.data``, each as a ratio to a plain copy."""
    width, height = FILL_SIZE
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    small = pixels.reshape(-1)[:SLOW_FILL_PIXELS]
    scale = pixels.size / small.size
    copy_s = median_seconds(lambda: pixels.copy())
    plain, checked = Image(), new_message(Image)

    def assign(msg: Image, value: object) -> None:
        msg.data = value

    ways = [
        ('array.array, check_fields=True message (ours)',
         median_seconds(lambda: assign(checked, bytes_to_message_array(pixels)))),
        ('array.array, default message (setter copies)',
         median_seconds(lambda: assign(plain, bytes_to_message_array(pixels)))),
        ('ndarray.tobytes(), default message',
         median_seconds(lambda: assign(plain, pixels.tobytes()))),
        ('ndarray.tobytes(), check_fields=True message (scaled)',
         median_seconds(lambda: assign(checked, small.tobytes()), repeats=3) * scale),
        ('memoryview, default message (scaled)',
         median_seconds(lambda: assign(plain, small.data), repeats=3) * scale),
        ('ndarray, default message (scaled)',
         median_seconds(lambda: assign(plain, small), repeats=3) * scale),
    ]
    print(f'\nfilling Image.data with a {width}x{height} rgb8 frame; ratio = time / plain copy; '
          f'"scaled": timed on {SLOW_FILL_PIXELS} bytes, scaled x{scale:.0f}')
    print(f'| {"way":54} | {"ms":>8} | {"ratio":>7} |')
    print(f'|{"-" * 56}|{"-" * 10}|{"-" * 9}|')
    for name, seconds in ways:
        print(f'| {name:54} | {seconds * 1e3:8.2f} | {seconds / copy_s:7.1f} |')
    assert isinstance(checked.data, array.array)


def main() -> None:
    rng = np.random.default_rng(SEED)
    print(f'median of {REPEATS} runs; ratio = time / plain copy of the same bytes')
    print(f'| {"size":>9} | {"encoding":8} | {"copy ms":>7} | {"to_array":>8} | '
          f'{"to_rgb ms":>9} | {"ratio":>6} | {"to_message ms":>13} | {"ratio":>6} |')
    print('|' + '|'.join('-' * width for width in (11, 10, 9, 10, 11, 8, 15, 8)) + '|')
    for width, height in SIZES:
        for encoding, channels in ENCODINGS.items():
            pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
            msg = array_to_image(pixels, encoding)
            raw = np.frombuffer(msg.data, np.uint8)
            copy_s = median_seconds(lambda: raw.copy())
            view_s = median_seconds(lambda: image_to_array(msg))
            rgb_s = median_seconds(lambda: image_to_rgb(msg))
            message_s = median_seconds(lambda: array_to_image(pixels, encoding))
            print(f'| {width:>4}x{height:<4} | {encoding:8} | {copy_s * 1e3:7.2f} | '
                  f'{view_s * 1e6:6.1f}us | {rgb_s * 1e3:9.2f} | {rgb_s / copy_s:6.2f} | '
                  f'{message_s * 1e3:13.2f} | {message_s / copy_s:6.2f} |')
    fill_table(rng)


if __name__ == '__main__':
    main()
