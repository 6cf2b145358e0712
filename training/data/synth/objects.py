"""Builders of composite objects (trees, poles, signs, people) from primitives.

Each builder adds its materials to the table and returns primitives in the
world frame (x right, y down, z forward; ``ground`` is the y of the surface
the object stands on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.data.classes import CITYSCAPES_LABEL_IDS as IDS
from training.data.synth import textures
from training.data.synth.raycast import (
    BOX,
    CYLINDER,
    ELLIPSOID,
    Primitive,
    make_box,
)
from training.data.synth.shading import MaterialTable

SIGN_COLORS = ((0.02, 0.08, 0.45), (0.5, 0.03, 0.02), (0.7, 0.7, 0.68), (0.7, 0.55, 0.02))
WALL_TEXTURES = (1, textures.BRICKS, textures.BIG_TILES, textures.TILES)
CROWN_GAPS = (0.15, 0.4)  # sunlight through a crown's leaves: flecks in its shadow
SUNLIT_LEAVES = (0.2, 0.5)  # share of a crown's clusters in the brighter, yellower tone


@dataclass(frozen=True)
class TreeSize:
    """A kind of tree by its ranges: crown radius, the crown's lowest point over the ground
    (the trunk's top), trunk radius, and leaf clusters per crown (low, high + 1)."""

    crown_m: tuple[float, float]
    trunk_m: tuple[float, float]
    trunk_radius_m: tuple[float, float]
    clusters: tuple[int, int]


# A young street tree or a garden's; the old planes and limes of an avenue, whose crowns
# meet over the road (KITTI's Karlsruhe streets: the crown fills the top of the frame).
STREET_TREE = TreeSize(crown_m=(1.5, 4.0), trunk_m=(2.2, 4.0), trunk_radius_m=(0.1, 0.25),
                       clusters=(4, 10))
AVENUE_TREE = TreeSize(crown_m=(3.5, 7.0), trunk_m=(3.5, 5.5), trunk_radius_m=(0.2, 0.45),
                       clusters=(10, 22))


def jitter(rng: np.random.Generator, color: tuple[float, float, float], amount: float) -> np.ndarray:
    """The colour with each channel scaled by its own factor within 1 +- ``amount``."""
    return np.clip(np.asarray(color) * rng.uniform(1 - amount, 1 + amount, 3), 0.0, 1.0)


def tree(rng: np.random.Generator, materials: MaterialTable, x: float, z: float,
         ground: float, size: TreeSize = STREET_TREE, lean_m: float = 0.0) -> list[Primitive]:
    """A trunk and a crown of several lumpy, overlapping leaf clusters (a ragged silhouette),
    some in shade and some sunlit, whose shadow is dappled with sun flecks; the crown's
    centre stands ``lean_m`` to the side of the trunk in x (an avenue's trees lean over the
    road)."""
    bark = materials.add(jitter(rng, (0.06, 0.045, 0.03), 0.3), IDS['vegetation'], texture=6,
                         scale=1.0, amplitude=0.4)
    shade = jitter(rng, (0.035, 0.085, 0.02), 0.45)
    leaf_scale, leaf_amplitude = rng.uniform(0.3, 1.2), rng.uniform(0.7, 1.0)
    leaves = [materials.add(colour, IDS['vegetation'], texture=0, scale=leaf_scale,
                            amplitude=leaf_amplitude, reflectance=0.25)
              for colour in (shade, np.clip(shade * rng.uniform(1.6, 2.6) + (0.02, 0.02, 0.0), 0, 1))]
    sunlit = rng.uniform(*SUNLIT_LEAVES)
    trunk_h = rng.uniform(*size.trunk_m)
    trunk_r = rng.uniform(*size.trunk_radius_m)
    parts = [Primitive(CYLINDER, np.array([x - trunk_r, ground - trunk_h - 0.5, z - trunk_r]),
                       np.array([x + trunk_r, ground, z + trunk_r]), bark, axis=1)]
    crown_r = rng.uniform(*size.crown_m)
    dapple = rng.uniform(*CROWN_GAPS)
    centre = np.array([x + lean_m, ground - trunk_h - crown_r * 0.8, z])
    for _ in range(rng.integers(*size.clusters)):
        radii = crown_r * rng.uniform(0.3, 0.65, 3)
        blob = centre + rng.normal(0.0, crown_r * 0.35, 3)
        # No cluster hangs below the trunk's top: the crown clears people and cars.
        blob[1] = min(blob[1], ground - trunk_h - radii[1])
        parts.append(Primitive(ELLIPSOID, blob - radii, blob + radii,
                               leaves[int(rng.random() < sunlit)], dapple=dapple))
    return parts


def street_light(rng: np.random.Generator, materials: MaterialTable, x: float, z: float,
                 ground: float, towards_road: float) -> list[Primitive]:
    """A pole with an arm over the road (``towards_road`` is -1 or +1 in x)."""
    metal = materials.add(jitter(rng, (0.25, 0.25, 0.26), 0.3), IDS['pole'], texture=2,
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
    metal = materials.add(jitter(rng, (0.3, 0.3, 0.3), 0.3), IDS['pole'], texture=2,
                          amplitude=0.1, reflectance=0.4)
    height = rng.uniform(2.0, 3.2)
    parts = [Primitive(CYLINDER, np.array([x - 0.04, ground - height, z - 0.04]),
                       np.array([x + 0.04, ground, z + 0.04]), metal, axis=1)]
    if rng.random() < 0.7:
        color = SIGN_COLORS[rng.integers(len(SIGN_COLORS))]
        plate = materials.add(jitter(rng, color, 0.1), IDS['traffic sign'], texture=3,
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
    cloth = materials.add(jitter(rng, tuple(rng.uniform(0.02, 0.4, 3)), 0.2), IDS['person'],
                          texture=1, scale=0.5, amplitude=0.3)
    skin = materials.add(jitter(rng, (0.35, 0.22, 0.15), 0.4), IDS['person'], texture=4, amplitude=0.1)
    height, radius = rng.uniform(1.5, 1.9), rng.uniform(0.18, 0.25)
    head = 0.11
    return [Primitive(CYLINDER, np.array([x - radius, ground - height + 2 * head, z - radius]),
                      np.array([x + radius, ground, z + radius]), cloth, axis=1),
            Primitive(ELLIPSOID, np.array([x - head, ground - height, z - head]),
                      np.array([x + head, ground - height + 2 * head + 0.02, z + head]), skin)]


def hedge(rng: np.random.Generator, materials: MaterialTable, x0: float, x1: float, z0: float,
          z1: float, ground: float) -> list[Primitive]:
    """A hedge of segments with their own heights and depths, so its top is ragged."""
    leaves = materials.add(jitter(rng, (0.03, 0.07, 0.02), 0.4), IDS['vegetation'], texture=0,
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
        material = materials.add(jitter(rng, (0.2, 0.17, 0.12), 0.4), IDS['fence'], texture=5,
                                 scale=1.0, amplitude=0.3, pattern=fence_pattern,
                                 params=(rng.uniform(0.1, 0.3), rng.uniform(0.3, 0.7), 0.0, 0.0))
        thickness = 0.05
    else:
        height = rng.uniform(0.5, 2.5)
        texture = int(rng.choice(WALL_TEXTURES))
        material = materials.add(jitter(rng, (0.3, 0.28, 0.25), 0.5), IDS['wall'], texture=texture,
                                 scale=rng.uniform(0.5, 3.0) if texture != 1 else 2.0,
                                 amplitude=rng.uniform(0.3, 0.6))
        thickness = rng.uniform(0.2, 0.4)
    return [make_box((x - thickness / 2, ground - height, z0), (x + thickness / 2, ground, z1), material)]


__all__ = ['tree', 'street_light', 'sign', 'person', 'hedge', 'fence_or_wall', 'BOX']
