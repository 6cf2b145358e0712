"""Builders of composite objects (cars, trees, poles, signs, people) from primitives.

Each builder adds its materials to the table and returns primitives in the
world frame (x right, y down, z forward; ``ground`` is the y of the surface
the object stands on).
"""

from __future__ import annotations

import numpy as np

from training.data.classes import CITYSCAPES_LABEL_IDS as IDS
from training.data.synth import textures
from training.data.synth.raycast import (
    BOX,
    CYLINDER,
    ELLIPSOID,
    GABLE,
    Primitive,
    make_box,
)
from training.data.synth.shading import MaterialTable

# Linear-RGB car paints: white, black, silver, grey, red, blue, dark blue, green, beige, yellow.
CAR_PAINTS = ((0.62, 0.62, 0.6), (0.02, 0.02, 0.022), (0.32, 0.33, 0.35), (0.12, 0.12, 0.13),
              (0.4, 0.03, 0.02), (0.05, 0.1, 0.35), (0.02, 0.03, 0.1), (0.04, 0.15, 0.06),
              (0.45, 0.38, 0.25), (0.6, 0.45, 0.03))
SIGN_COLORS = ((0.02, 0.08, 0.45), (0.5, 0.03, 0.02), (0.7, 0.7, 0.68), (0.7, 0.55, 0.02))
WHEEL_RADIUS = (0.28, 0.36)  # metres
RIM_SHARE = (0.55, 0.7)  # a wheel's metal rim, of the tyre's radius
ARCH_SHARE = 1.18  # the dark wheel arch around a tyre, of its radius
B_PILLAR_AT = (0.56, 0.64)  # along a car's cabin from its back (the front is +z)
B_PILLAR_M = 0.1
SLOPED_CABIN_SHARE = 0.6  # cars whose cabin has a raked windscreen and rear window
RAKE_SHARE = (0.3, 0.55)  # a rake's run along the car, of half the cabin's length
# Car windows: dark glass reflecting the sky by this share (real windows read dark from the
# road; a cabin all of sky-reflecting glass read as a dome). The roof over them is paint:
# a slab this share of the cabin's height over the cabin's flat top.
WINDOW_REFLECTION = (0.08, 0.3)
ROOF_SHARE = 0.3
CONTACT_MARGIN_M = 0.05  # the dark patch under a car reaches this far beyond its body
WALL_TEXTURES = (1, textures.BRICKS, textures.BIG_TILES, textures.TILES)
CROWN_CLUSTERS = (4, 10)  # leaf clusters per tree crown (low, high + 1)
TRUNK_HEIGHT_M = (2.2, 4.0)  # the crown's lowest point over the ground


def _jitter(rng: np.random.Generator, color: tuple[float, float, float], amount: float) -> np.ndarray:
    return np.clip(np.asarray(color) * rng.uniform(1 - amount, 1 + amount, 3), 0.0, 1.0)


def vehicle(rng: np.random.Generator, materials: MaterialTable, x: float, z: float, ground: float,
            kind: str = 'car', length: float | None = None) -> list[Primitive]:
    """A car, van/truck or bus aligned with the road, centred at (x, z): body, cabin, wheels,
    bumpers with lights, and the dark contact shadow on the road under it.

    ``length`` (metres) overrides the random length of the kind (a parking row places
    cars by their length)."""
    if kind == 'car':
        length_range, width, body_h, cabin_h = (3.8, 4.9), rng.uniform(1.65, 1.9), \
            rng.uniform(0.7, 0.95), rng.uniform(0.45, 0.65)
    elif kind == 'truck':
        length_range, width, body_h, cabin_h = (5.0, 8.0), rng.uniform(2.0, 2.4), \
            rng.uniform(1.6, 2.6), rng.uniform(0.0, 0.01)
    else:  # bus
        length_range, width, body_h, cabin_h = (10.0, 12.5), 2.5, rng.uniform(2.4, 2.8), 0.01
    length = rng.uniform(*length_range) if length is None else length
    label = IDS[kind]
    clearance = rng.uniform(0.15, 0.3)
    paint = materials.add(_jitter(rng, CAR_PAINTS[rng.integers(len(CAR_PAINTS))], 0.15), label,
                          texture=3, scale=3.0, amplitude=0.08, glass=rng.uniform(0.03, 0.25),
                          reflectance=0.5)
    glass = materials.add((0.02, 0.025, 0.03), label, texture=3, amplitude=0.1,
                          glass=rng.uniform(*WINDOW_REFLECTION), reflectance=0.0)
    tyre = materials.add((0.015, 0.015, 0.015), label, texture=2, amplitude=0.2, reflectance=0.1)
    bottom = ground - clearance
    parts = [make_box((x - width / 2, bottom - body_h, z - length / 2),
                      (x + width / 2, bottom, z + length / 2), paint)]
    if kind == 'car':
        inset = rng.uniform(0.08, 0.15)
        front, back = rng.uniform(0.9, 1.3), rng.uniform(0.5, 0.9)
        lo = np.array([x - width / 2 + inset, bottom - body_h - cabin_h, z - length / 2 + back])
        hi = np.array([x + width / 2 - inset, bottom - body_h, z + length / 2 - front])
        top = lo[2] + 0.1, hi[2] - 0.1  # the roof's extent along the car
        if rng.random() < SLOPED_CABIN_SHARE:
            # raked windscreen and rear window: a trapezoid across the car (a gable along x
            # whose slopes would meet above the cabin, cut flat at its top)
            half = (hi[2] - lo[2]) / 2
            rake = half * rng.uniform(*RAKE_SHARE)
            parts.append(Primitive(GABLE, lo, hi, glass, axis=0, rise=cabin_h * half / rake))
            top = lo[2] + rake + 0.05, hi[2] - rake - 0.05
        else:
            parts.append(make_box(lo, hi, glass))
        # the roof: a painted slab over the cabin's flat top, overhanging its sides a little
        parts.append(make_box((lo[0] - 0.01, lo[1] - 0.01, top[0]),
                              (hi[0] + 0.01, lo[1] + cabin_h * ROOF_SHARE, top[1]), paint))
        # the B pillars: paint between the front and rear side windows
        pillar = lo[2] + (hi[2] - lo[2]) * rng.uniform(*B_PILLAR_AT)
        parts.append(make_box((lo[0] - 0.01, lo[1], pillar - B_PILLAR_M / 2),
                              (hi[0] + 0.01, hi[1], pillar + B_PILLAR_M / 2), paint))
    else:  # a windscreen band at the front of the body
        parts.append(make_box((x - width / 2 + 0.05, bottom - body_h + 0.1, z + length / 2 - 0.02),
                              (x + width / 2 - 0.05, bottom - body_h * 0.45, z + length / 2 + 0.01), glass))
    parts += _bumpers(rng, materials, label, x, z, width, length, bottom, body_h)
    parts += _wheels(rng, materials, label, tyre, x, z, width, length, ground)
    # Sky light cannot reach the road under a car: a dark patch marks where it touches the road.
    under = materials.add(np.full(3, rng.uniform(0.005, 0.02)), IDS['road'], texture=0, scale=1.0,
                          amplitude=0.2, reflectance=0.15)
    parts.append(make_box((x - width / 2 - CONTACT_MARGIN_M, ground - 0.002, z - length / 2 - CONTACT_MARGIN_M),
                          (x + width / 2 + CONTACT_MARGIN_M, ground - 0.002, z + length / 2 + CONTACT_MARGIN_M),
                          under, casts_shadow=False))
    return parts


def _wheels(rng: np.random.Generator, materials: MaterialTable, label: int, tyre: int, x: float,
            z: float, width: float, length: float, ground: float) -> list[Primitive]:
    """Four wheels, each a tyre with a metal rim in front of it, in a dark wheel arch (a
    disc a little larger than the tyre on the body's side)."""
    rim = materials.add(np.full(3, rng.uniform(0.05, 0.3)), label, texture=2, amplitude=0.3,
                        glass=0.05, reflectance=0.6)
    arch = materials.add(np.full(3, rng.uniform(0.004, 0.012)), label, texture=0, amplitude=0.2,
                         reflectance=0.05)
    radius = rng.uniform(*WHEEL_RADIUS)
    rim_radius = radius * rng.uniform(*RIM_SHARE)
    parts = []
    for side in (-1, 1):
        face = x + side * width / 2  # the body's side
        for axle in (-1, 1):
            wz = z + axle * (length / 2 - radius * 1.6)
            centre_y = ground - radius
            for r, inner, outer, material in ((radius * ARCH_SHARE, -0.05, 0.005, arch),
                                              (radius, -0.22, 0.02, tyre),
                                              (rim_radius, -0.05, 0.025, rim)):
                a, b = sorted((face + side * inner, face + side * outer))
                parts.append(Primitive(CYLINDER, np.array([a, centre_y - r, wz - r]),
                                       np.array([b, centre_y + r, wz + r]), material, axis=0))
    return parts


def _bumpers(rng: np.random.Generator, materials: MaterialTable, label: int, x: float, z: float,
             width: float, length: float, bottom: float, body_h: float) -> list[Primitive]:
    """Dark bumpers across both ends and a light band above each: white-ish at the
    front (+z), red at the back."""
    trim = materials.add(np.full(3, rng.uniform(0.02, 0.12)), label, texture=2, amplitude=0.2,
                         reflectance=0.4)
    front = materials.add(_jitter(rng, (0.6, 0.6, 0.55), 0.2), label, texture=3, amplitude=0.1,
                          glass=0.1, reflectance=0.9)
    rear = materials.add(_jitter(rng, (0.45, 0.03, 0.02), 0.3), label, texture=3, amplitude=0.1,
                         glass=0.1, reflectance=0.9)
    band = body_h * rng.uniform(0.15, 0.3)
    parts = []
    for end, light in ((1, front), (-1, rear)):
        face = z + end * length / 2
        parts.append(make_box((x - width / 2 - 0.02, bottom - band, min(face, face + end * 0.06)),
                              (x + width / 2 + 0.02, bottom, max(face, face + end * 0.06)), trim))
        top = bottom - body_h * rng.uniform(0.55, 0.75)
        parts.append(make_box((x - width / 2 + 0.05, top - 0.12, min(face, face + end * 0.02)),
                              (x + width / 2 - 0.05, top, max(face, face + end * 0.02)), light))
    return parts


def tree(rng: np.random.Generator, materials: MaterialTable, x: float, z: float,
         ground: float) -> list[Primitive]:
    """A trunk and a crown of several lumpy, overlapping leaf clusters (a ragged silhouette)."""
    bark = materials.add(_jitter(rng, (0.06, 0.045, 0.03), 0.3), IDS['vegetation'], texture=6,
                         scale=1.0, amplitude=0.4)
    leaves = materials.add(_jitter(rng, (0.035, 0.085, 0.02), 0.45), IDS['vegetation'], texture=0,
                           scale=rng.uniform(0.3, 1.2), amplitude=rng.uniform(0.7, 1.0),
                           reflectance=0.25)
    trunk_h = rng.uniform(*TRUNK_HEIGHT_M)
    trunk_r = rng.uniform(0.1, 0.25)
    parts = [Primitive(CYLINDER, np.array([x - trunk_r, ground - trunk_h - 0.5, z - trunk_r]),
                       np.array([x + trunk_r, ground, z + trunk_r]), bark, axis=1)]
    crown_r = rng.uniform(1.5, 4.0)
    centre = np.array([x, ground - trunk_h - crown_r * 0.8, z])
    for _ in range(rng.integers(*CROWN_CLUSTERS)):
        radii = crown_r * rng.uniform(0.3, 0.65, 3)
        blob = centre + rng.normal(0.0, crown_r * 0.35, 3)
        # No cluster hangs below the trunk's top: the crown clears people and cars.
        blob[1] = min(blob[1], ground - trunk_h - radii[1])
        parts.append(Primitive(ELLIPSOID, blob - radii, blob + radii, leaves))
    return parts


def street_light(rng: np.random.Generator, materials: MaterialTable, x: float, z: float,
                 ground: float, towards_road: float) -> list[Primitive]:
    """A pole with an arm over the road (``towards_road`` is -1 or +1 in x)."""
    metal = materials.add(_jitter(rng, (0.25, 0.25, 0.26), 0.3), IDS['pole'], texture=2,
                          amplitude=0.15, reflectance=0.4)
    height, radius = rng.uniform(6.0, 9.0), rng.uniform(0.07, 0.14)
    arm = rng.uniform(0.8, 2.5)
    x_end = x + towards_road * arm
    return [Primitive(CYLINDER, np.array([x - radius, ground - height, z - radius]),
                      np.array([x + radius, ground, z + radius]), metal, axis=1),
            make_box((min(x, x_end), ground - height - 0.12, z - 0.08),
                     (max(x, x_end), ground - height, z + 0.08), metal)]


def sign(rng: np.random.Generator, materials: MaterialTable, x: float, z: float,
         ground: float) -> list[Primitive]:
    """A traffic sign (plate facing the road) or a traffic light on a thin pole."""
    metal = materials.add(_jitter(rng, (0.3, 0.3, 0.3), 0.3), IDS['pole'], texture=2,
                          amplitude=0.1, reflectance=0.4)
    height = rng.uniform(2.0, 3.2)
    parts = [Primitive(CYLINDER, np.array([x - 0.04, ground - height, z - 0.04]),
                       np.array([x + 0.04, ground, z + 0.04]), metal, axis=1)]
    if rng.random() < 0.7:
        color = SIGN_COLORS[rng.integers(len(SIGN_COLORS))]
        plate = materials.add(_jitter(rng, color, 0.1), IDS['traffic sign'], texture=3,
                              amplitude=0.15, reflectance=0.9)
        size = rng.uniform(0.5, 0.9)
        parts.append(make_box((x - size / 2, ground - height - size * 0.8, z - 0.03),
                              (x + size / 2, ground - height + size * 0.2, z), plate))
    else:
        housing = materials.add((0.02, 0.02, 0.02), IDS['traffic light'], texture=2, amplitude=0.2)
        parts.append(make_box((x - 0.17, ground - height - 0.9, z - 0.15),
                              (x + 0.17, ground - height + 0.1, z + 0.15), housing))
    return parts


def person(rng: np.random.Generator, materials: MaterialTable, x: float, z: float,
           ground: float) -> list[Primitive]:
    """A standing pedestrian: legs and torso as one cylinder, a head."""
    cloth = materials.add(_jitter(rng, tuple(rng.uniform(0.02, 0.4, 3)), 0.2), IDS['person'],
                          texture=1, scale=0.5, amplitude=0.3)
    skin = materials.add(_jitter(rng, (0.35, 0.22, 0.15), 0.4), IDS['person'], texture=4, amplitude=0.1)
    height, radius = rng.uniform(1.5, 1.9), rng.uniform(0.18, 0.25)
    head = 0.11
    return [Primitive(CYLINDER, np.array([x - radius, ground - height + 2 * head, z - radius]),
                      np.array([x + radius, ground, z + radius]), cloth, axis=1),
            Primitive(ELLIPSOID, np.array([x - head, ground - height, z - head]),
                      np.array([x + head, ground - height + 2 * head + 0.02, z + head]), skin)]


def hedge(rng: np.random.Generator, materials: MaterialTable, x0: float, x1: float, z0: float,
          z1: float, ground: float) -> list[Primitive]:
    """A hedge of segments with their own heights and depths, so its top is ragged."""
    leaves = materials.add(_jitter(rng, (0.03, 0.07, 0.02), 0.4), IDS['vegetation'], texture=0,
                           scale=rng.uniform(0.3, 1.2), amplitude=rng.uniform(0.7, 1.0))
    height = rng.uniform(0.7, 2.2)
    parts = []
    z = z0
    while z < z1:
        step = min(rng.uniform(1.0, 4.0), z1 - z)
        h = height * rng.uniform(0.8, 1.15)
        wobble = (x1 - x0) * rng.uniform(-0.15, 0.15)
        parts.append(make_box((x0 + wobble, ground - h, z), (x1 + wobble, ground, z + step), leaves))
        z += step
    return parts


def fence_or_wall(rng: np.random.Generator, materials: MaterialTable, x: float, z0: float, z1: float,
                  ground: float, fence_pattern: int) -> list[Primitive]:
    if rng.random() < 0.5:
        height = rng.uniform(1.0, 2.0)
        material = materials.add(_jitter(rng, (0.2, 0.17, 0.12), 0.4), IDS['fence'], texture=5,
                                 scale=1.0, amplitude=0.3, pattern=fence_pattern,
                                 params=(rng.uniform(0.1, 0.3), rng.uniform(0.3, 0.7), 0.0, 0.0))
        thickness = 0.05
    else:
        height = rng.uniform(0.5, 2.5)
        texture = int(rng.choice(WALL_TEXTURES))
        material = materials.add(_jitter(rng, (0.3, 0.28, 0.25), 0.5), IDS['wall'], texture=texture,
                                 scale=rng.uniform(0.5, 3.0) if texture != 1 else 2.0,
                                 amplitude=rng.uniform(0.3, 0.6))
        thickness = rng.uniform(0.2, 0.4)
    return [make_box((x - thickness / 2, ground - height, z0), (x + thickness / 2, ground, z1), material)]


__all__ = ['vehicle', 'tree', 'street_light', 'sign', 'person', 'hedge', 'fence_or_wall', 'BOX']
