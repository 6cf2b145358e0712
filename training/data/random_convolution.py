"""Random convolutions over a training frame: new local texture and colour, the same shapes.

Xu, Liu, Yang, Raffel and Niethammer, "Robust and Generalizable Visual
Representation Learning via Random Convolutions" (RandConv), ICLR 2021: a
convolution with random weights keeps the shapes in an image and replaces its
local texture and colour, so a network trained through it cannot lean on the
texture and colour statistics of its training domain; their "mix" variant,
kept here, blends the convolved image with the original by a random share.
A network trained on rendered frames only meets real ones with another
texture and colour everywhere (docs/training.md, "Random convolutions").

Each frame, with probability ``probability``: a kernel size drawn from
KERNEL_SIZES, a 3 x 3 x k x k kernel with He-normal weights (standard
deviation 1 / sqrt(3 k^2), as the paper), the convolution brought back to the
frame's own per-channel mean and spread (the frame keeps its exposure: the
network's input normalisation assumes images, not filter responses), then
``alpha * frame + (1 - alpha) * convolved`` with ``alpha`` uniform in [0, 1].
Image only: depth and labels stay. Randomness from torch's generator, as every
augmentation here.
"""

from __future__ import annotations

import cv2
import numpy as np

from training.data.texture import torch_seeded_rng

KERNEL_SIZES = (1, 3, 5, 7)  # the paper's
SPREAD_FLOOR = 1e-3  # a convolved channel flatter than this (of 255) is not stretched


def random_kernel(size: int, rng: np.random.Generator) -> np.ndarray:
    """(3 out, 3 in, size, size) float32 He-normal weights: std 1 / sqrt(3 size^2)."""
    return rng.normal(0.0, 1.0 / np.sqrt(3 * size * size), (3, 3, size, size)).astype(np.float32)


def convolved(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``image`` (H, W, 3) uint8 convolved with ``kernel`` (3, 3, k, k), each output
    channel brought to the input channel's mean and standard deviation: (H, W, 3) float32
    in the image's units (not clipped). Borders reflected."""
    pixels = image.astype(np.float32)
    out = np.zeros_like(pixels)
    for o in range(3):
        for i in range(3):
            out[..., o] += cv2.filter2D(pixels[..., i], -1, kernel[o, i],
                                        borderType=cv2.BORDER_REFLECT)
    mean, spread = pixels.mean(axis=(0, 1)), pixels.std(axis=(0, 1))
    got_mean, got_spread = out.mean(axis=(0, 1)), out.std(axis=(0, 1))
    stretch = np.where(got_spread > SPREAD_FLOOR, spread / np.maximum(got_spread, SPREAD_FLOOR),
                       0.0)
    return ((out - got_mean) * stretch + mean).astype(np.float32)


def mixed(image: np.ndarray, kernel: np.ndarray, alpha: float) -> np.ndarray:
    """``alpha * image + (1 - alpha) * convolved(image, kernel)``, rounded and clipped to
    uint8; a new array, the input is not written."""
    out = alpha * image.astype(np.float32) + (1.0 - alpha) * convolved(image, kernel)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def random_convolution(image: np.ndarray, probability: float) -> np.ndarray:
    """``image`` (H, W, 3) uint8 through a random convolution, mixed with itself at a
    random share, with ``probability`` (module docstring); otherwise a copy."""
    rng = torch_seeded_rng()
    if rng.random() >= probability:
        return image.copy()
    size = int(rng.choice(KERNEL_SIZES))
    kernel = random_kernel(size, rng)
    return mixed(image, kernel, float(rng.random()))
