"""Cast shadows of the ray-cast scenes: solid casters, and crowns that let sun flecks through."""

from __future__ import annotations

import numpy as np

from training.data.synth.raycast import (
    ELLIPSOID,
    PinholeGrid,
    Primitive,
    cast,
    leaf_gaps,
    make_box,
    shadowed,
)

GROUND_Y = 0.0
SUN_OVERHEAD = np.array([0.0, -1.0, 0.0])  # y is down


def _ground_under_a_crown(dapple: float) -> np.ndarray:
    """(N,) bool shadow of the ground points right under a 6 m crown 5 m up, sun overhead,
    seen by a wide camera 1 m over the ground looking straight down."""
    ground = make_box((-50.0, GROUND_Y, -50.0), (50.0, GROUND_Y, 50.0), 0, casts_shadow=False)
    crown = Primitive(ELLIPSOID, np.array([-3.0, -8.0, -3.0]), np.array([3.0, -5.0, 3.0]), 1,
                      dapple=dapple)
    down = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # camera z -> world +y
    intrinsics = np.array([[40.0, 0.0, 64.0], [0.0, 40.0, 64.0], [0.0, 0.0, 1.0]])
    grid = PinholeGrid(128, 128, intrinsics, np.array([0.0, -1.0, 0.0]), down)
    hits = cast(grid, [ground, crown])
    shadow = shadowed(grid, hits, [ground, crown], SUN_OVERHEAD, GROUND_Y)
    points = hits.points[hits.primitive == 0]
    under = (points[:, 0] ** 2 + points[:, 2] ** 2) < 1.5 ** 2  # well inside the crown's outline
    return shadow[hits.primitive == 0][under]


def test_a_solid_crown_shades_all_the_ground_under_it() -> None:
    shade = _ground_under_a_crown(0.0)
    assert len(shade) > 1000 and shade.all()


def test_a_dappled_crown_lets_about_its_share_of_sun_through_in_blotches() -> None:
    shade = _ground_under_a_crown(0.3)
    assert 0.15 < 1.0 - shade.mean() < 0.45  # sun flecks
    grid = _ground_under_a_crown(0.3)
    assert np.array_equal(grid, shade)  # deterministic


def test_leaf_gaps_come_in_blotches_not_speckle() -> None:
    """Neighbouring rays 2 cm apart mostly agree; the share follows the argument."""
    rng = np.random.default_rng(0)
    points = rng.uniform(-20.0, 20.0, (20000, 3)).astype(np.float32)
    gaps = leaf_gaps(points, 0.3)
    assert abs(gaps.mean() - 0.3) < 0.05
    assert abs(leaf_gaps(points, 0.1).mean() - 0.1) < 0.05
    nearby = leaf_gaps(points + np.float32([0.02, 0.0, 0.0]), 0.3)
    assert (gaps != nearby).mean() < 0.1
