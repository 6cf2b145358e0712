"""Fine texture on whole classes: image only, bounded, per class, reproducible."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

from mtdepth_ros.conversions.labels import IGNORE_INDEX
from training.data.base import Augment, DepthDataset, RawSample
from training.data.texture import textured

K = np.array([[100.0, 0.0, 32.0], [0.0, 100.0, 20.0], [0.0, 0.0, 1.0]])


def halves(left: int = 1, right: int = 2) -> np.ndarray:
    """(40, 64) labels: ``left`` on the left half, ``right`` on the right half."""
    labels = np.full((40, 64), right, np.uint8)
    labels[:, :32] = left
    return labels


class Grey(DepthDataset):
    """One mid-grey 40 x 64 frame, two classes side by side, depth 1 + column."""

    def __init__(self, labelled: bool = True, **augment: object) -> None:
        super().__init__(Augment(**augment))  # type: ignore[arg-type]
        self.labelled = labelled

    def __len__(self) -> int:
        return 1

    def read(self, index: int) -> RawSample:
        depth = np.broadcast_to(np.arange(1, 65, dtype=np.float32), (40, 64)).copy()
        return RawSample(np.full((40, 64, 3), 128, np.uint8), K.copy(), depth,
                         halves() if self.labelled else None)


def textured_classes(image: np.ndarray, out: np.ndarray, labels: np.ndarray) -> set[int]:
    return {int(c) for c in np.unique(labels) if not np.array_equal(image[labels == c],
                                                                   out[labels == c])}


def test_each_class_is_textured_or_left_whole() -> None:
    image, labels = np.full((40, 64, 3), 128, np.uint8), halves()
    seen = set()
    torch.manual_seed(0)
    for _ in range(40):
        out = textured(image, labels, 0.5)
        changed = textured_classes(image, out, labels)
        seen.add(frozenset(changed))
        for c in changed:  # a textured class: the gain stays within 1 -/+ 0.5, grey stays grey
            pixels = out[labels == c].astype(int)
            assert pixels.min() >= 64 and pixels.max() <= 192
            assert np.all(pixels[:, 0] == pixels[:, 1]) and np.all(pixels[:, 1] == pixels[:, 2])
    assert seen == {frozenset(), frozenset({1}), frozenset({2}), frozenset({1, 2})}


def test_the_pattern_is_fine_and_differs_between_classes() -> None:
    image, labels = np.full((40, 64, 3), 128, np.uint8), halves()
    torch.manual_seed(3)
    for _ in range(200):  # until both halves drew a strong pattern (amplitude near 1)
        out = textured(image, labels, 1.0)[..., 0].astype(int)
        left, right = out[:, :32], out[:, 32:]
        if left.std() > 30 and right.std() > 30:
            break
    else:
        pytest.fail('no frame with both classes strongly textured in 200 draws')
    assert len(np.unique(left)) > 20 and len(np.unique(right)) > 20  # noise, not a shade
    # cells of at most 4 pixels: a pixel differs from the one 5 to its right
    assert np.mean(left[:, :-5] != left[:, 5:]) > 0.8
    assert not np.array_equal(left, right[:, ::-1])


def test_ignored_pixels_stay_and_the_input_is_not_written() -> None:
    image = np.random.default_rng(0).integers(0, 256, (40, 64, 3), np.uint8)
    labels = np.full((40, 64), IGNORE_INDEX, np.uint8)
    labels[:, :10] = 3
    before = image.copy()
    torch.manual_seed(1)
    for _ in range(10):
        out = textured(image, labels, 0.8)
        assert np.array_equal(out[:, 10:], image[:, 10:])
    assert np.array_equal(image, before)


def test_no_labels_textures_the_whole_frame_or_nothing() -> None:
    image = np.full((40, 64, 3), 128, np.uint8)
    torch.manual_seed(2)
    outcomes = {bool(np.any(textured(image, None, 0.5) != 128)) for _ in range(20)}
    assert outcomes == {True, False}


def test_zero_amplitude_is_the_image_itself() -> None:
    image = np.random.default_rng(1).integers(0, 256, (40, 64, 3), np.uint8)
    assert np.array_equal(textured(image, halves(), 0.0), image)


def showing(image: np.ndarray) -> Callable[..., DepthDataset]:
    """:class:`Grey` with ``image`` (40, 64, 3) uint8 for its frame: depth, labels and
    intrinsics as Grey's, augmentation keyword arguments as Grey's."""
    class Showing(Grey):
        def read(self, index: int) -> RawSample:
            return replace(super().read(index), image=image.copy())

    return Showing


def seeded_samples(make: Callable[..., DepthDataset], **augment: object
                   ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``make()``'s sample, and six of ``make(**augment)``'s drawn twice from one seed:
    asserted the same images both times, and depth, labels and intrinsics ``make()``'s
    (an image-only augmentation that repeats with the seed). The plain sample and the
    first six."""
    plain = make()[0]
    batches = []
    for _ in range(2):
        torch.manual_seed(7)
        batches.append([make(**augment)[0] for _ in range(6)])
    for a, b in zip(*batches, strict=True):
        assert torch.equal(a['image'], b['image'])  # the same seed, the same change
        assert torch.equal(a['depth'], plain['depth']) and torch.equal(a['labels'], plain['labels'])
        assert torch.equal(a['intrinsics'], plain['intrinsics'])
    return plain, batches[0]


def test_through_a_dataset_only_the_image_changes_and_seeds_repeat() -> None:
    plain, samples = seeded_samples(Grey, texture=0.6)
    assert any(not torch.equal(a['image'], plain['image']) for a in samples)


@pytest.mark.parametrize('amplitude', [-0.1, 1.5])
def test_an_amplitude_outside_zero_to_one_is_refused(amplitude: float) -> None:
    with pytest.raises(ValueError, match='texture'):
        Augment(texture=amplitude)
