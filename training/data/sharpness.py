"""Sharpness laid on whole classes of a training frame, at random: no depth in it.

Measured on 2026-12-02 (docs/training.md, "Sharpness is not distance"): an
unsharp mask (detail gain 3 over a Gaussian of 1 pixel) on the building,
wall, fence and vegetation pixels of generated validation frames makes the
bundled model put vegetation 1.10x and buildings 1.07x farther (median log2
+0.144 and +0.094 over 32 frames), the road and the cars beside them
unchanged (``texture-probe --change sharpen``); on the real frames, where it
puts buildings 1.5x too far, the same model reads a blurred frame nearer and
better (a diagnosis, never a setting: the real frames choose nothing). Real
foliage and facades are sharp at every distance. This augmentation draws a
detail gain per class and frame, independent of depth, from softer to
sharper than rendered, so that sharpness says nothing about it.
"""

from __future__ import annotations

import cv2
import numpy as np

from training.data.texture import drawn_regions, torch_seeded_rng

DETAIL_SIGMA_PX = 1.0  # the Gaussian the detail is measured against, network pixels
PROBE_DETAIL_GAIN = 3.0  # what the measurements lay on the probe classes


def with_detail_gain(image: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with its detail scaled by ``gain`` (H, W) per pixel.

    The detail is the image minus its Gaussian blur (DETAIL_SIGMA_PX): a gain
    of 0 is the blurred image, 1 the image itself, above 1 an unsharp mask.
    Rounded and clipped; a new array, the input is not written.
    """
    if np.all(gain == 1.0):
        return image.copy()
    pixels = image.astype(np.float32)
    blurred = cv2.GaussianBlur(pixels, (0, 0), DETAIL_SIGMA_PX, borderType=cv2.BORDER_REFLECT)
    out = blurred + np.asarray(gain, np.float32)[..., None] * (pixels - blurred)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def sharpened(image: np.ndarray, labels: np.ndarray | None, sharpness: float) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with the detail of some of its classes scaled.

    Each class in ``labels`` (IGNORE_INDEX aside; the whole frame as one region
    when there are no labels) gets, with probability 1/2
    (:func:`~training.data.texture.drawn_regions`), a detail gain
    uniform in [0, 1 + ``sharpness``]: from blurred through as rendered to
    sharpened. Randomness from torch's generator, as every augmentation here.
    """
    rng = torch_seeded_rng()
    gain = np.ones(image.shape[:2], np.float32)
    for region in drawn_regions(labels, image.shape[:2], rng):
        gain[region] = (1.0 + sharpness) * rng.random()
    return with_detail_gain(image, gain)
