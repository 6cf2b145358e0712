"""The ground-contact prior: standing runs take the depth of the ground beneath them."""

from __future__ import annotations

import numpy as np
import pytest

from mtdepth_ros.inference.ground_contact import (
    GroundContactError,
    ground_contact_classes,
    ground_contact_depth,
)

ROAD, SIDEWALK, CAR, BUILDING, SKY, POLE = 0, 1, 2, 3, 4, 5
STANDING = (CAR, BUILDING, POLE)
GROUND = (ROAD, SIDEWALK)


def column(labels: list[int], depth: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """One image column as (h, 1) labels and float32 depth."""
    return (np.array(labels, np.uint8)[:, None], np.array(depth, np.float32)[:, None])


def test_a_car_on_the_road_takes_the_road_depth_beneath_its_foot() -> None:
    labels, depth = column([SKY, CAR, CAR, CAR, ROAD, ROAD], [np.inf, 30, 20, 12, 6, 4])
    out = ground_contact_depth(depth, labels, STANDING, GROUND)
    np.testing.assert_array_equal(out[:, 0], [np.inf, 6, 6, 6, 6, 4])


def test_a_building_behind_a_car_keeps_its_depth() -> None:
    # the building's run ends on the car, not on ground: only the car moves
    labels, depth = column([BUILDING, BUILDING, CAR, CAR, SIDEWALK], [25, 22, 15, 9, 5])
    out = ground_contact_depth(depth, labels, STANDING, GROUND)
    np.testing.assert_array_equal(out[:, 0], [25, 22, 5, 5, 5])


def test_a_run_cut_by_the_bottom_edge_keeps_its_depth() -> None:
    labels, depth = column([ROAD, CAR, CAR], [8, 3, 2])
    out = ground_contact_depth(depth, labels, STANDING, GROUND)
    np.testing.assert_array_equal(out[:, 0], [8, 3, 2])


def test_ground_without_an_estimate_lends_nothing() -> None:
    for missing in (np.nan, np.inf, -np.inf):
        labels, depth = column([CAR, CAR, ROAD], [20, 10, missing])
        out = ground_contact_depth(depth, labels, STANDING, GROUND)
        np.testing.assert_array_equal(out[:2, 0], [20, 10])


def test_each_column_and_each_run_stands_on_its_own_ground() -> None:
    # two columns: a pole on the road over a car on the pavement; a building on the road
    labels = np.array([[POLE, BUILDING],
                       [ROAD, BUILDING],
                       [CAR, ROAD],
                       [SIDEWALK, ROAD]], np.uint8)
    depth = np.array([[40, 50], [30, 12], [20, 9], [7, 8]], np.float32)
    out = ground_contact_depth(depth, labels, STANDING, GROUND)
    np.testing.assert_array_equal(out, [[30, 9], [30, 9], [7, 9], [7, 8]])


def test_sky_ground_and_unlisted_classes_are_left_alone() -> None:
    other = 9
    labels, depth = column([SKY, other, ROAD, SIDEWALK, ROAD], [np.inf, 14, 11, 7, 5])
    out = ground_contact_depth(depth, labels, STANDING, GROUND)
    np.testing.assert_array_equal(out, depth)


def test_the_input_is_not_changed_and_the_dtype_is_kept() -> None:
    labels, depth = column([CAR, ROAD], [10, 5])
    before = depth.copy()
    out = ground_contact_depth(depth, labels, STANDING, GROUND)
    np.testing.assert_array_equal(depth, before)
    assert out.dtype == np.float32 and out[0, 0] == 5


def test_maps_of_different_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match=r'one \(h, w\)'):
        ground_contact_depth(np.zeros((4, 5), np.float32), np.zeros((4, 6), np.uint8),
                             STANDING, GROUND)


def test_the_classes_come_from_the_names() -> None:
    standing, ground = ground_contact_classes(['road', 'sidewalk', 'building', 'sky', 'car'])
    assert standing == (2, 4) and ground == (0, 1)


@pytest.mark.parametrize('names, lacking', [
    (['wall', 'floor', 'ceiling'], 'a ground class'),
    (['road', 'sky'], 'a standing class'),
])
def test_classes_without_both_groups_are_refused_by_name(names: list[str], lacking: str) -> None:
    with pytest.raises(GroundContactError, match=lacking) as error:
        ground_contact_classes(names)
    assert names[0] in str(error.value)


def reference(depth: np.ndarray, labels: np.ndarray, standing: tuple[int, ...],
              ground: tuple[int, ...]) -> np.ndarray:
    """The prior pixel by pixel: walk down to the end of the pixel's run, look beneath."""
    out = depth.copy()
    height, width = depth.shape
    for row in range(height):
        for col in range(width):
            if labels[row, col] not in standing:
                continue
            end = row
            while end + 1 < height and labels[end + 1, col] == labels[row, col]:
                end += 1
            if end + 1 < height and labels[end + 1, col] in ground \
                    and np.isfinite(depth[end + 1, col]):
                out[row, col] = depth[end + 1, col]
    return out


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16, np.int64])
def test_random_maps_match_the_pixel_by_pixel_reference(dtype: type) -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        # runs of a few rows, as a segmentation has them, and some missing depth
        labels = np.repeat(rng.integers(0, 6, (6, 9)), rng.integers(1, 4), axis=0).astype(dtype)
        depth = rng.uniform(1, 50, labels.shape).astype(np.float32)
        depth[rng.random(labels.shape) < 0.1] = np.nan
        np.testing.assert_array_equal(ground_contact_depth(depth, labels, STANDING, GROUND),
                                      reference(depth, labels, STANDING, GROUND))
