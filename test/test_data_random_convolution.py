"""Random convolutions: new texture and colour, the same shapes and exposure, image only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_data_sharpness import edges
from test_data_texture import seeded_samples, showing

from training.data.base import Augment
from training.data.random_convolution import (KERNEL_SIZES, convolved, mixed, random_convolution,
                                              random_kernel)


def scene() -> np.ndarray:
    """(40, 64, 3) uint8 whose channels draw different things (no colour matrix maps the
    frame to itself): red two halves, green stripes, blue a ramp down the rows."""
    image = np.empty((40, 64, 3), np.uint8)
    image[..., 0] = np.where(np.arange(64) < 32, 90, 200)
    image[..., 1] = edges()[..., 0]
    image[..., 2] = np.linspace(20, 220, 40, dtype=np.uint8)[:, None]
    return image


def two_halves() -> np.ndarray:
    """(40, 64, 3) uint8: a dark reddish left half, a pale bluish right half."""
    image = np.empty((40, 64, 3), np.uint8)
    image[:, :32] = (90, 40, 30)
    image[:, 32:] = (150, 170, 210)
    return image


def identity(size: int) -> np.ndarray:
    kernel = np.zeros((3, 3, size, size), np.float32)
    for c in range(3):
        kernel[c, c, size // 2, size // 2] = 1.0
    return kernel


def test_an_identity_kernel_or_a_full_share_gives_the_frame_back() -> None:
    image = scene()
    for size in KERNEL_SIZES:
        assert np.array_equal(mixed(image, identity(size), 0.0), image)
    kernel = random_kernel(5, np.random.default_rng(0))
    assert np.array_equal(mixed(image, kernel, 1.0), image)


def test_the_kernel_is_he_normal_for_its_size() -> None:
    rng = np.random.default_rng(1)
    for size in (3, 7):
        weights = np.concatenate([random_kernel(size, rng).ravel() for _ in range(200)])
        assert weights.std() == pytest.approx(1 / np.sqrt(3 * size * size), rel=0.05)
        assert abs(weights.mean()) < 0.02


def test_the_convolved_frame_keeps_its_exposure_and_the_shapes_where_they_were() -> None:
    image = two_halves()
    rng = np.random.default_rng(2)
    changed = 0
    for _ in range(20):
        kernel = random_kernel(int(rng.choice((3, 5))), rng)
        out = convolved(image, kernel)
        np.testing.assert_allclose(out.mean(axis=(0, 1)), image.mean(axis=(0, 1)), atol=1e-2)
        np.testing.assert_allclose(out.std(axis=(0, 1)), image.std(axis=(0, 1)), rtol=1e-3)
        # the boundary between the halves stays at column 32: every column step of the
        # output is within the kernel's reach of it
        steps = np.abs(np.diff(out, axis=1)).max(axis=(0, 2))
        assert np.all(steps[np.r_[0:29, 34:63]] < 1e-3)
        changed += not np.array_equal(mixed(scene(), kernel, 0.3), scene())
    assert changed == 20  # texture and colour do change


def test_a_flat_channel_stays_flat_and_the_input_is_not_written() -> None:
    image = np.full((40, 64, 3), 77, np.uint8)
    before = image.copy()
    kernel = random_kernel(3, np.random.default_rng(3))
    assert np.array_equal(mixed(image, kernel, 0.2), image)
    colourful = scene()
    copy = colourful.copy()
    mixed(colourful, kernel, 0.5)
    assert np.array_equal(image, before) and np.array_equal(colourful, copy)


def test_the_probability_decides_how_many_frames_change() -> None:
    image = scene()
    torch.manual_seed(4)
    assert all(np.array_equal(random_convolution(image, 0.0), image) for _ in range(20))
    assert not any(np.array_equal(random_convolution(image, 1.0), image) for _ in range(20))
    changed = sum(not np.array_equal(random_convolution(image, 0.5), image) for _ in range(200))
    assert 70 < changed < 130


def test_through_a_dataset_only_the_image_changes_and_seeds_repeat() -> None:
    plain, samples = seeded_samples(showing(scene()), random_convolution=1.0)
    # a share near 1 rounds back to the frame itself
    assert sum(not torch.equal(a['image'], plain['image']) for a in samples) >= 4


@pytest.mark.parametrize('probability', [-0.1, 1.5])
def test_a_probability_outside_zero_to_one_is_refused(probability: float) -> None:
    with pytest.raises(ValueError, match='random_convolution is a probability'):
        Augment(random_convolution=probability)
