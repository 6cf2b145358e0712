"""Fine texture laid on whole classes of a training frame, at random: no depth in it.

Measured on 2026-12-01 (docs/training.md, "Texture is not distance"): laying a
fine multiplicative pattern (gain 0.5-1.5 in blocks of 1-3 pixels) on the
building, wall, fence and vegetation pixels of generated validation frames
made the bundled model put buildings 1.25x farther (median over 32 frames)
and walls 1.1x, with the cars beside them unchanged. Generated surfaces near
the camera are smooth and cluttered far ones are fine, so the network had
learned fine texture as distance; real facades and foliage are fine at every
distance, and on real frames the model puts buildings 1.2x too far. This
augmentation draws a pattern per class and frame, independent of depth, so
that texture says nothing about it.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import torch

from mtdepth_ros.conversions.labels import IGNORE_INDEX

BLOCK_SIZES = (1, 2, 3, 4)  # pixels per noise cell at the network's input resolution
CLASS_PROBABILITY = 0.5  # each class present is textured with this probability
# The pattern the measurements lay on generated frames (texture-probe, real-check
# --textured): (cell size in pixels, weight) of a fixed mix of cell noise.
PROBE_NOISE_MIX = ((1, 0.5), (2, 0.3), (3, 0.2))
PROBE_CLASSES = ('building', 'wall', 'fence', 'vegetation')  # where the cue was measured
PROBE_AMPLITUDE = 0.5


def textured(image: np.ndarray, labels: np.ndarray | None, amplitude: float) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with a fine pattern on some of its classes.

    Each class in ``labels`` (IGNORE_INDEX aside; the whole frame as one region
    when there are no labels) is textured with probability 1/2: its pixels are
    multiplied by ``1 + a (2 n - 1)``, where n is :func:`cell_noise` in cells of a
    random size from BLOCK_SIZES and a is uniform in [0, ``amplitude``]; all three
    channels by the same gain (a pattern of light and shade, not of colour).
    Randomness from torch's generator, as every augmentation here (a DataLoader
    seeds it per worker). A new array; the input is not written.
    """
    rng = torch_seeded_rng()
    height, width = image.shape[:2]
    gain = np.ones((height, width), np.float32)
    for region in drawn_regions(labels, (height, width), rng):
        noise = cell_noise((height, width), int(rng.choice(BLOCK_SIZES)), rng)
        gain[region] = 1.0 + amplitude * rng.random() * (2.0 * noise[region] - 1.0)
    return shaded(image, gain)


def torch_seeded_rng() -> np.random.Generator:
    """A numpy generator seeded from torch's: a DataLoader seeds torch per worker, so every
    per-class augmentation repeats with ``torch.manual_seed``."""
    return np.random.default_rng(int(torch.randint(2**62, ())))


def drawn_regions(labels: np.ndarray | None, shape: tuple[int, int], rng: np.random.Generator
                  ) -> Iterator[np.ndarray]:
    """The (H, W) bool regions a per-class augmentation changes: each class in ``labels``
    (IGNORE_INDEX aside; the whole frame as one region when there are none) with
    probability CLASS_PROBABILITY, one ``rng.random()`` per class in id order. Lazy: the
    caller's own draws for a region come before the next class's."""
    classes = [None] if labels is None else [c for c in np.unique(labels) if c != IGNORE_INDEX]
    for class_id in classes:
        if rng.random() >= CLASS_PROBABILITY:
            continue  # the class's mask is made only for the classes drawn
        yield np.ones(shape, np.bool_) if labels is None else labels == class_id


def cell_noise(shape: tuple[int, int], block: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W) float32 uniform noise in [0, 1), constant over ``block`` x ``block`` cells,
    the grid at a random offset."""
    height, width = shape
    rows, cols = height // block + 2, width // block + 2
    noise = rng.random((rows, cols), np.float32)
    cells = cv2.resize(noise, (cols * block, rows * block), interpolation=cv2.INTER_NEAREST)
    top, left = (int(v) for v in rng.integers(block, size=2))
    return cells[top:top + height, left:left + width]


def pattern_gain(shape: tuple[int, int], amplitude: float, rng: np.random.Generator
                 ) -> np.ndarray:
    """(H, W) float32 gain ``1 + amplitude (2 n - 1)``, n the PROBE_NOISE_MIX of cell noise:
    the measurements' pattern, the same for every model given the same ``rng``."""
    noise = sum(weight * cell_noise(shape, block, rng) for block, weight in PROBE_NOISE_MIX)
    return (1.0 + amplitude * (2.0 * np.asarray(noise, np.float32) - 1.0)).astype(np.float32)


def probe_pattern(image: np.ndarray, region: np.ndarray, amplitude: float,
                  rng: np.random.Generator) -> np.ndarray:
    """``image`` with the measurements' pattern (:func:`pattern_gain`) on the pixels of
    ``region`` (H, W) bool, the rest as it was: what texture-probe and real-check
    --textured lay, the same for every model given the same ``rng``."""
    gain = np.where(region, pattern_gain(region.shape, amplitude, rng), np.float32(1.0))
    return shaded(image, gain)


def shaded(image: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """``image`` (H, W, 3) uint8 times ``gain`` (H, W), rounded and clipped: a new array."""
    if np.all(gain == 1.0):
        return image.copy()
    return np.clip(np.rint(image.astype(np.float32) * gain[..., None]), 0, 255).astype(np.uint8)
