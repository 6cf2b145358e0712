"""The dataset base class: intrinsics through every step, depth resizing, the batch dictionary."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, Subset

from mtdepth_ros.conversions.geometry import flip_intrinsics, resize_intrinsics
from mtdepth_ros.conversions.labels import IGNORE_INDEX
from training.data import base
from training.data.base import Augment, DepthDataset, RawSample
from training.data.classes import ClassList
from training.datamodule import _mean_depth

K = np.array([[100.0, 0.0, 30.0], [0.0, 90.0, 20.0], [0.0, 0.0, 1.0]])


class Marked(DepthDataset):
    """One 40 x 64 image whose pixel (v, u) holds depth 1 + u + 100 v: where a pixel went is readable."""

    def __init__(self, **augment: object) -> None:
        super().__init__(Augment(**augment))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return 1

    def read(self, index: int) -> RawSample:
        v, u = np.mgrid[0:40, 0:64]
        depth = (1.0 + u + 100.0 * v).astype(np.float32)
        image = np.zeros((40, 64, 3), np.uint8)
        return RawSample(image, K.copy(), depth, (u % 7).astype(np.uint8))


def test_batch_has_every_key_with_its_dtype_and_shape() -> None:
    batch = Marked()[0]
    assert set(batch) == set(base.BATCH_KEYS)
    assert batch['image'].shape == (3, 40, 64) and batch['image'].dtype == torch.float32
    assert batch['depth'].shape == (1, 40, 64) and batch['depth_valid'].dtype == torch.bool
    assert batch['labels'].dtype == torch.int64
    assert batch['intrinsics'].dtype == torch.float32 and bool(batch['has_depth'])


def test_crop_moves_the_principal_point_by_the_offset() -> None:
    torch.manual_seed(1)
    batch = Marked(crop=(16, 24))[0]
    depth = batch['depth'][0].numpy()
    top, left = divmod(int(depth[0, 0]) - 1, 100)
    assert np.allclose(batch['intrinsics'].numpy()[:2, 2], [30.0 - left, 20.0 - top])


def test_bottom_crop_is_the_bottom_centre_window() -> None:
    batch = Marked(bottom_crop=(20, 40))[0]
    assert float(batch['depth'][0, 0, 0]) == 1 + 12 + 100 * 20  # top 20, left (64 - 40) // 2
    assert np.allclose(batch['intrinsics'].numpy()[:2, 2], [30.0 - 12, 20.0 - 20])


def test_flip_mirrors_the_principal_point_with_the_pixels() -> None:
    assert np.isclose(flip_intrinsics(K, 64)[0, 2], 64 - 1 - 30.0)
    torch.manual_seed(3)
    batches = [Marked(flip=True)[0] for _ in range(8)]
    flipped = [b for b in batches if float(b['depth'][0, 0, 0]) == 64.0]  # column 63 came first
    kept = [b for b in batches if float(b['depth'][0, 0, 0]) == 1.0]
    assert flipped and kept
    assert float(flipped[0]['intrinsics'][0, 2]) == 33.0 and float(kept[0]['intrinsics'][0, 2]) == 30.0


def test_resize_scales_focal_lengths_and_keeps_pixel_centres() -> None:
    k = resize_intrinsics(K, (40, 64), (20, 32))
    assert np.allclose([k[0, 0], k[1, 1]], [50.0, 45.0])
    assert np.isclose(k[0, 2], (30.0 + 0.5) * 0.5 - 0.5)
    assert Marked(resize=(20, 32))[0]['intrinsics'][0, 0] == 50.0


def test_invalid_depth_is_zero_and_not_valid() -> None:
    class Holes(Marked):
        def read(self, index: int) -> RawSample:
            sample = super().read(index)
            assert sample.depth is not None
            sample.depth[:5] = 0.0
            return sample

    batch = Holes()[0]
    assert not batch['depth_valid'][0, :5].any() and (batch['depth'][0, :5] == 0).all()
    assert batch['depth_valid'][0, 5:].all()


def test_a_sample_without_labels_says_so() -> None:
    class DepthOnly(Marked):
        def read(self, index: int) -> RawSample:
            sample = super().read(index)
            return RawSample(sample.image, sample.intrinsics, sample.depth, None)

    batch = DepthOnly()[0]
    assert not bool(batch['has_labels']) and (batch['labels'] == IGNORE_INDEX).all()


def test_bad_crop_size_is_refused() -> None:
    with pytest.raises(ValueError, match='crop must be'):
        Augment(crop=(0, 5))


class Skyline(DepthDataset):
    """A 4 x 6 frame: the top two rows are sky (label 1) without depth but one pixel; the rest road at 5 m."""

    classes = ClassList(names=('road', 'sky'), palette=((128, 64, 128), (70, 130, 180)))

    def __init__(self, **augment: object) -> None:
        super().__init__(Augment(**augment))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return 1

    def read(self, index: int) -> RawSample:
        labels = np.zeros((4, 6), np.uint8)
        labels[:2] = 1
        depth = np.full((4, 6), 5.0, np.float32)
        depth[:2] = 0.0
        depth[0, 0] = 60.0  # a measured sky pixel (a cloud, a LiDAR ghost) keeps its measurement
        return RawSample(np.zeros((4, 6, 3), np.uint8), K.copy(), depth, labels)


def test_far_classes_mark_unmeasured_sky_as_beyond_range() -> None:
    batch = Skyline(far_classes=('sky',))[0]
    depth, valid = batch['depth'][0].numpy(), batch['depth_valid'][0].numpy()
    assert valid.all()
    assert depth[0, 0] == 60.0 and np.all(np.isposinf(depth[0, 1:])) and np.all(np.isposinf(depth[1]))
    assert np.all(depth[2:] == 5.0)
    assert np.all(Skyline(far_classes=('sky',), far_depth=80.0)[0]['depth'][0, 1].numpy() == 80.0)


def test_without_far_classes_unmeasured_sky_stays_invalid() -> None:
    batch = Skyline()[0]
    valid = batch['depth_valid'][0].numpy()
    assert valid[:2].sum() == 1 and valid[2:].all()
    assert np.all(batch['depth'][0, 1].numpy() == 0)


def test_far_classes_must_be_classes_of_the_dataset() -> None:
    with pytest.raises(ValueError, match=r"far_classes \['clouds'\] are not classes of Skyline"):
        Skyline(far_classes=('clouds',))[0]
    with pytest.raises(ValueError, match='far_depth'):
        Augment(far_depth=-1.0)


def test_trivial_mean_depth_counts_measurements_only() -> None:
    # The card's train_mean_depth_m (the demo's trivial predictor): the sky that
    # far_classes fills in at 125 m is not a measurement and must not pull it up.
    measured = (60.0 + 5.0 * 12) / 13
    assert _mean_depth(Skyline(far_classes=('sky',), crop=(2, 3))) == pytest.approx(measured, abs=1e-3)
    assert _mean_depth(Subset(Skyline(), [0])) == pytest.approx(measured, abs=1e-3)
    # several trees mixed (training.data.mixed.MixedSources concatenates them): the same
    mixed = ConcatDataset([Skyline(far_classes=('sky',)), Subset(Skyline(far_classes=('sky',)), [0])])
    assert _mean_depth(mixed) == pytest.approx(measured, abs=1e-3)


class Road(DepthDataset):
    """A flat road 1.65 m under a camera with K: every pixel below the horizon has the
    depth at which its ray meets the road."""

    def __init__(self, **augment: object) -> None:
        super().__init__(Augment(**augment))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return 1

    def read(self, index: int) -> RawSample:
        v, u = np.mgrid[0:40, 0:64].astype(np.float64)
        below = v > K[1, 2] + 0.5
        depth = np.where(below, K[1, 1] * 1.65 / np.maximum(v - K[1, 2], 1e-9), 0.0)
        return RawSample(np.zeros((40, 64, 3), np.uint8), K.copy(), depth.astype(np.float32),
                         (u % 7).astype(np.uint8))


def back_projected(batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y (metres) and z of the batch's valid pixels at least 9 rows under the horizon
    (nearer it, the nearest-pixel resize's half-pixel steps are large in depth), through
    the batch's own intrinsics."""
    depth, k = batch['depth'][0].numpy().astype(np.float64), batch['intrinsics'].numpy()
    v, u = np.nonzero(batch['depth_valid'][0].numpy())
    v, u = v[v - k[1, 2] >= 9], u[v - k[1, 2] >= 9]
    z = depth[v, u]
    return (u - k[0, 2]) * z / k[0, 0], (v - k[1, 2]) * z / k[1, 1], z


def test_zoom_divides_depth_and_keeps_the_road_at_the_camera_height() -> None:
    plain = Road()[0]
    zoomed = Road(zoom=(1.5, 1.5))[0]
    assert zoomed['depth'].shape == (1, 60, 96)
    assert np.allclose(zoomed['intrinsics'].numpy()[[0, 1], [0, 1]], [K[0, 0], K[1, 1]])
    _, height, z = back_projected(zoomed)
    assert height.size and np.allclose(height, 1.65, rtol=0.1)  # the road stays put
    depth, plain_depth = zoomed['depth'][0].numpy(), plain['depth'][0].numpy()
    assert np.isclose(depth[59, 0], plain_depth[39, 0] / 1.5)  # the bottom row, a third nearer


def test_zoom_then_crop_gives_the_crop_size_and_keeps_geometry() -> None:
    torch.manual_seed(5)
    heights = []
    for _ in range(6):
        batch = Road(zoom=(1.0, 1.4), crop=(16, 24))[0]
        assert batch['depth'].shape == (1, 16, 24)
        heights.append(back_projected(batch)[1])
    assert np.concatenate(heights).size and np.allclose(np.concatenate(heights), 1.65, rtol=0.1)


def test_zoom_one_leaves_the_sample_as_it_was() -> None:
    plain, same = Marked()[0], Marked(zoom=(1.0, 1.0))[0]
    assert torch.equal(plain['depth'], same['depth'])
    assert torch.equal(plain['intrinsics'], same['intrinsics'])


@pytest.mark.parametrize('zoom', [(0.8, 1.2), (1.3, 1.1)])
def test_zoom_below_one_or_reversed_is_refused(zoom: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match='zoom'):
        Augment(zoom=zoom)


def test_native_validation_does_not_zoom() -> None:
    with pytest.raises(ValueError, match='zoom'):
        Augment(native_depth=True, zoom=(1.0, 1.2))
