"""Generated cars and what their paint and glass reflect: shapes by rays, looks by shading."""

from __future__ import annotations

import numpy as np

from training.data.classes import CITYSCAPES_LABEL_IDS
from training.data.synth import car, rig
from training.data.synth.raycast import (
    BOX,
    CYLINDER,
    GABLE,
    PinholeGrid,
    Primitive,
    cast,
    make_box,
    yaw_rotation,
)
from training.data.synth.shading import Lighting, MaterialTable, reflection_color, shade

GROUND = rig.CAMERA_HEIGHT_M
FROM_LEFT = (1.0, 0.0, 0.0)


def _car(seed: int) -> tuple[list[Primitive], MaterialTable]:
    materials = MaterialTable()
    return car.vehicle(np.random.default_rng(seed), materials, 0.0, 10.0, GROUND), materials


def _first_hit(parts: list[Primitive], origin: tuple, direction: tuple) -> tuple[int, np.ndarray]:
    """The material and normal where a ray from ``origin`` along ``direction`` meets the parts."""
    o = np.asarray([origin], np.float32)
    d = np.asarray([direction], np.float32)
    t, part = min((float(p.t(o, d)[0]), i) for i, p in enumerate(parts))
    assert np.isfinite(t)
    return parts[part].material, parts[part].normal(o + t * d, d)[0]


def _first_material(parts: list[Primitive], origin: tuple, direction: tuple) -> int:
    return _first_hit(parts, origin, direction)[0]


def _paint_glass_cabin(parts: list[Primitive], materials: MaterialTable) -> tuple[int, int, Primitive]:
    paint = parts[0].material
    cabin = next(p for p in parts if materials.glass[p.material] >= car.WINDOW_REFLECTION[0]
                 and p.kind in (BOX, GABLE) and p.material != paint)
    return paint, cabin.material, cabin


def _belt(parts: list[Primitive]) -> float:
    """The body's top (y down): the highest point of the body's parts."""
    return float(min(p.lo[1] for p in parts[:4]))


def test_a_car_has_a_painted_roof_over_its_windows() -> None:
    """From above, every car shows its paint (a roof), not the cabin's glass; from the side
    at window height, the glass: both cabin shapes."""
    shapes = set()
    for seed in range(20):
        parts, materials = _car(seed)
        paint, glass, cabin = _paint_glass_cabin(parts, materials)
        shapes.add(cabin.kind)
        assert materials.glass[glass] <= car.WINDOW_REFLECTION[1]
        assert _first_material(parts, (0.0, -5.0, 10.0), (0.0, 1.0, 0.0)) == paint  # the roof
        window = _belt(parts) - 0.05  # just above the body, inside the cabin's height
        centre_z = float((cabin.lo[2] + cabin.hi[2]) / 2)
        assert _first_material(parts, (-5.0, window, centre_z), FROM_LEFT) == glass
    assert shapes == {BOX, GABLE}  # both cabin shapes were drawn (upright, raked)


def test_a_wheel_shows_its_rim_in_a_dark_arch_and_a_b_pillar_parts_the_side_windows() -> None:
    for seed in range(10):
        parts, materials = _car(seed)
        paint, glass, cabin = _paint_glass_cabin(parts, materials)
        wheels = [p for p in parts if p.kind == CYLINDER and p.axis == 0]
        assert len(wheels) == 12  # four wheels: arch, tyre, rim
        arch, tyre, rim = wheels[:3]
        centre = (arch.lo + arch.hi) / 2
        assert _first_material(parts, (-5.0, centre[1], centre[2]), FROM_LEFT) == rim.material
        tyre_r = (tyre.hi[2] - tyre.lo[2]) / 2
        between = centre[1] - (tyre_r + (arch.hi[2] - arch.lo[2]) / 2) / 2  # over the tyre
        assert _first_material(parts, (-5.0, between, centre[2]), FROM_LEFT) == arch.material
        assert max(materials.albedo[arch.material]) < 0.02 < min(materials.albedo[rim.material])
        pillar = next(p for p in parts if p.kind == BOX and p.material == paint
                      and p.hi[1] == cabin.hi[1])
        window = _belt(parts) - 0.05
        pillar_z = float(pillar.lo[2] + pillar.hi[2]) / 2
        assert _first_material(parts, (-5.0, window, pillar_z), FROM_LEFT) == paint
        assert _first_material(parts, (-5.0, window, pillar_z - 0.2), FROM_LEFT) == glass


def test_a_cars_body_has_rounded_shoulders_over_flat_sides() -> None:
    """Seen from the side, the body's normal turns upwards towards its top (the paint
    reflects the sky there and the street lower down); from above, its edge drops away."""
    for seed in range(10):
        parts, materials = _car(seed)
        paint, _, cabin = _paint_glass_cabin(parts, materials)
        belt, left = _belt(parts), float(parts[0].lo[0])
        radius = float(parts[2].hi[0] - parts[2].lo[0]) / 2
        z = float(cabin.lo[2] + cabin.hi[2]) / 2 - 0.3  # clear of wheels, shut lines and handles
        lower = (-5.0, belt + 2 * radius + 0.05, z)  # the flat side, below the shoulder
        material, normal = _first_hit(parts, lower, FROM_LEFT)
        assert material == paint and np.allclose(normal, (-1.0, 0.0, 0.0))
        material, normal = _first_hit(parts, (-5.0, belt + 0.3 * radius, z), FROM_LEFT)
        assert material == paint and normal[1] < -0.3 and normal[0] < -0.3  # up and out
        down = (0.0, 1.0, 0.0)
        material, normal = _first_hit(parts, (left + 0.2 * radius, -5.0, z), down)
        assert material == paint and normal[1] < -0.5
        o = np.asarray([[left + 0.2 * radius, -5.0, z]], np.float32)
        assert min(float(p.t(o, np.float32([down]))[0]) for p in parts) > 5.0 + belt + 0.3 * radius


def test_doors_show_shut_lines_and_handles_and_the_ends_licence_plates() -> None:
    parts, materials = _car(3)
    paint = parts[0].material
    body = parts[0]
    decals = [p for p in parts if p.flat_axis == 0 and p.lo[0] < body.lo[0]]  # on the left side
    assert len(decals) == 5  # three shut lines, two handles
    seam = max(decals, key=lambda p: p.hi[1] - p.lo[1])
    middle = (float(seam.lo[1] + seam.hi[1]) / 2, float(seam.lo[2] + seam.hi[2]) / 2)
    assert _first_material(parts, (-5.0, middle[0], middle[1]), FROM_LEFT) == seam.material
    assert _first_material(parts, (-5.0, middle[0], middle[1] + 0.05), FROM_LEFT) == paint
    assert max(materials.albedo[seam.material]) < 0.2 * max(max(materials.albedo[paint]), 0.05)
    plates = [p for p in parts if materials.pattern[p.material] == car.PATTERN_PLATE]
    assert len(plates) == 2
    for plate in plates:  # each is the first thing a ray along the car meets at its centre
        centre = (plate.lo + plate.hi) / 2
        direction = (0.0, 0.0, -1.0) if centre[2] > 10.0 else (0.0, 0.0, 1.0)
        start = (float(centre[0]), float(centre[1]), 10.0 - 10.0 * direction[2])
        assert _first_material(parts, start, direction) == plate.material


def _lighting(surroundings: np.ndarray | None) -> Lighting:
    to_sun = np.array([0.0, -0.6, 0.8])
    return Lighting(to_sun, np.full(3, 3.0), np.full(3, 0.5), np.array([0.1, 0.2, 0.6]),
                    np.array([0.5, 0.6, 0.8]), surroundings=surroundings)


def test_reflections_show_the_street_below_a_skyline_the_road_below_and_the_suns_glint() -> None:
    street = np.array([0.05, 0.04, 0.03])
    lighting = _lighting(street)
    dirs = np.array([[0.0, -1.0, 0.0],  # straight up: sky
                     [0.0, 0.3, 1.0],  # below the horizon: the road
                     [1.0, -0.02, 0.0],  # just above the horizon: the street's buildings
                     lighting.to_sun], dtype=np.float32)
    lit = np.ones(4, dtype=bool)
    color = reflection_color(dirs, lighting, lit)
    assert color[0, 2] > 0.3 and color[0, 2] > 2 * color[0, 0]
    assert np.allclose(color[1], 0.5 * street, rtol=1e-5)
    assert color[2].max() <= street.max() + 1e-6 and color[2].min() > 0
    assert color[3].min() > 10.0  # the glint: brighter than anything lit
    unlit = reflection_color(dirs, lighting, np.zeros(4, dtype=bool))
    assert unlit[3].max() < 3.0 and np.allclose(unlit[:3], color[:3])


def _reflected_share(surroundings: np.ndarray | None, grazing: bool) -> np.ndarray:
    """The share of a wall's radiance that is reflection, per pixel, in a black world (sky,
    street, road and sun all black): 1 - radiance of paint with a clear coat / matte paint.
    The wall is at x = 2, seen head-on or along it (rays 74-86 degrees off its normal)."""
    black = np.zeros(3)
    lighting = Lighting(np.array([0.0, -0.6, 0.8]), black, np.full(3, 0.5), black, black,
                        surroundings=surroundings)
    narrow = np.array([[40.0, 0.0, 4.0], [0.0, 40.0, 4.0], [0.0, 0.0, 1.0]])  # 11 degrees wide
    rotation = yaw_rotation(np.deg2rad(10.0 if grazing else 90.0))
    grid = PinholeGrid(8, 8, narrow, np.zeros(3), rotation)
    radiance = []
    for glass in (0.0, 0.05):
        materials = MaterialTable()
        material = materials.add((0.3, 0.3, 0.3), CITYSCAPES_LABEL_IDS['car'], amplitude=0.0, glass=glass)
        hits = cast(grid, [make_box((2.0, -10.0, -100.0), (2.0, 10.0, 100.0), material)])
        assert hits.valid.all()
        radiance.append(shade(hits, grid.dirs, hits.t.astype(np.float32), 7.0, np.array([material]),
                              materials, lighting, np.zeros(grid.shape, dtype=bool), {}))
    return 1.0 - radiance[1] / radiance[0]


def test_outdoor_paint_reflects_more_at_grazing_and_rooms_keep_a_constant_share() -> None:
    """Fresnel (Schlick): outdoors a clear coat of 5 % reflects about that much head-on and
    most of the light along the wall; rooms (no surroundings) keep 5 % at every angle."""
    street = np.zeros(3)
    head_on = _reflected_share(street, grazing=False)
    assert np.allclose(head_on, 0.05, atol=0.01)
    assert _reflected_share(street, grazing=True).mean() > 0.3
    assert np.allclose(_reflected_share(None, grazing=True), 0.05, atol=1e-5)
