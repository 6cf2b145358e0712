"""Image conversion vs a plain copy of the same bytes (``python -m bench images``).

For each size and encoding: ``image_to_array`` (a view), ``image_to_rgb``
(what the node feeds the network) and ``array_to_image`` (building an
outgoing message), each as a ratio to ``np.copy`` of the message's bytes,
measured in the same run. Then ``resize_image`` from camera frames to the
default model's input against OpenCV's area resize of the same frame, with
how far their pixels differ.
"""

from __future__ import annotations

import array

import cv2
import numpy as np
from sensor_msgs.msg import Image

from bench.rows import median_seconds, report
from mtdepth_ros.conversions.geometry import resize_image
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
NETWORK_INPUT = (192, 640)  # (height, width) of the bundled model's input
CAMERA_FRAMES = ((373, 1242), (352, 1216), (576, 1920))  # cropped to its aspect, as the node does
DETAIL_SIGMA = 2.0  # px: the frames are blurred noise, detail at a camera frame's scale


def fill_table(rng: np.random.Generator) -> None:
    """Ways to put a frame into ``Image.data``, each as a ratio to a plain copy."""
    width, height = FILL_SIZE
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    small = pixels.reshape(-1)[:SLOW_FILL_PIXELS]
    scale = pixels.size / small.size
    copy_s = median_seconds(lambda: pixels.copy(), REPEATS)
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
    assert isinstance(checked.data, array.array)
    print()
    report('images', [{'name': name, 'ms': seconds * 1e3, 'vs copy': seconds / copy_s}
                      for name, seconds in ways],
           note=f'filling Image.data with a {width}x{height} rgb8 frame; "scaled": timed on '
                f'{SLOW_FILL_PIXELS} bytes, scaled x{scale:.0f}')


def resize_table(rng: np.random.Generator) -> None:
    """``resize_image`` (block means, then bilinear) to the network input vs OpenCV's
    fractional area resize of the same frame, and the mean and largest pixel difference."""
    rows = []
    height, width = NETWORK_INPUT
    for frame in CAMERA_FRAMES:
        noise = rng.integers(0, 256, (*frame, 3), dtype=np.uint8)
        rgb = cv2.GaussianBlur(noise, (0, 0), DETAIL_SIGMA)
        def area(rgb: np.ndarray = rgb) -> np.ndarray:
            return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)

        def ours(rgb: np.ndarray = rgb) -> np.ndarray:
            return resize_image(rgb, NETWORK_INPUT)

        difference = np.abs(ours().astype(int) - area())
        ours_s, opencv_s = median_seconds(ours, REPEATS), median_seconds(area, REPEATS)
        rows.append({'name': f'{frame[1]}x{frame[0]} rgb8 -> {width}x{height}',
                     'cv2 area ms': opencv_s * 1e3, 'resize_image ms': ours_s * 1e3,
                     'cv2 / ours': opencv_s / ours_s, 'mean abs diff': difference.mean(),
                     'max abs diff': int(difference.max())})
    print()
    report('images', rows, note=f'resize to the network input; median of {REPEATS} runs')


def main() -> None:
    rng = np.random.default_rng(SEED)
    rows = []
    for width, height in SIZES:
        for encoding, channels in ENCODINGS.items():
            pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
            msg = array_to_image(pixels, encoding)
            raw = np.frombuffer(msg.data, np.uint8)
            copy_s = median_seconds(lambda: raw.copy(), REPEATS)
            rgb_s = median_seconds(lambda: image_to_rgb(msg), REPEATS)
            message_s = median_seconds(lambda: array_to_image(pixels, encoding), REPEATS)
            rows.append({'name': f'{width}x{height} {encoding}', 'copy ms': copy_s * 1e3,
                         'to_array us': median_seconds(lambda: image_to_array(msg)) * 1e6,
                         'to_rgb ms': rgb_s * 1e3, 'to_rgb vs copy': rgb_s / copy_s,
                         'to_message ms': message_s * 1e3,
                         'to_message vs copy': message_s / copy_s})
    report('images', rows, note=f'median of {REPEATS} runs; ratios to a plain copy of the '
                                'same bytes')
    fill_table(rng)
    resize_table(rng)
