"""Sharpness on whole classes: image only, from blurred to sharpened, per class, reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_data_texture import halves, seeded_samples, showing

from mtdepth_ros.conversions.labels import IGNORE_INDEX
from training.data.base import Augment
from training.data.sharpness import sharpened, with_detail_gain


def edges() -> np.ndarray:
    """(40, 64, 3) uint8: vertical stripes 4 pixels wide, 80 and 176 (detail everywhere)."""
    stripes = np.where((np.arange(64) // 4) % 2 == 0, 80, 176).astype(np.uint8)
    return np.repeat(np.broadcast_to(stripes, (40, 64))[..., None], 3, axis=2).copy()


def contrast(image: np.ndarray) -> float:
    return float(image.astype(float).std())


def test_a_gain_of_one_is_the_image_and_the_gain_orders_the_detail() -> None:
    image = edges()
    assert np.array_equal(with_detail_gain(image, np.ones((40, 64), np.float32)), image)
    blurred = with_detail_gain(image, np.zeros((40, 64), np.float32))
    sharp = with_detail_gain(image, np.full((40, 64), 3.0, np.float32))
    assert contrast(blurred) < contrast(image) < contrast(sharp)
    assert sharp.min() == 0 or sharp.max() == 255 or contrast(sharp) > 1.5 * contrast(image)
    flat = np.full((40, 64, 3), 128, np.uint8)  # no detail: no gain changes it
    assert np.array_equal(with_detail_gain(flat, np.full((40, 64), 3.0, np.float32)), flat)


def test_each_class_keeps_its_detail_or_gets_its_own_gain() -> None:
    image, labels = edges(), halves()
    seen = set()
    torch.manual_seed(0)
    for _ in range(40):
        out = sharpened(image, labels, 2.0)
        changed = {c for c in (1, 2) if not np.array_equal(out[labels == c], image[labels == c])}
        seen.add(frozenset(changed))
        for c in changed:  # softer or sharper, never beyond the largest gain, grey stays grey
            pixels = out[labels == c]
            assert np.all(pixels[:, 0] == pixels[:, 1]) and np.all(pixels[:, 1] == pixels[:, 2])
        assert contrast(out) <= contrast(with_detail_gain(image, np.full((40, 64), 3.0,
                                                                          np.float32))) + 1e-6
    assert seen == {frozenset(), frozenset({1}), frozenset({2}), frozenset({1, 2})}


def test_ignored_pixels_stay_and_the_input_is_not_written() -> None:
    image = edges()
    labels = np.full((40, 64), IGNORE_INDEX, np.uint8)
    labels[:, :10] = 3
    before = image.copy()
    torch.manual_seed(1)
    for _ in range(10):
        assert np.array_equal(sharpened(image, labels, 3.0)[:, 10:], image[:, 10:])
    assert np.array_equal(image, before)


def test_through_a_dataset_only_the_image_changes_and_seeds_repeat() -> None:
    plain, samples = seeded_samples(showing(edges()), sharpness=2.0)
    assert any(not torch.equal(a['image'], plain['image']) for a in samples)


@pytest.mark.parametrize('sharpness', [-0.5, 4.5])
def test_a_sharpness_outside_zero_to_four_is_refused(sharpness: float) -> None:
    with pytest.raises(ValueError, match='sharpness'):
        Augment(sharpness=sharpness)
