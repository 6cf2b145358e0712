"""Road vehicles from primitives: cars, vans and trucks, buses.

A car is a body with rounded shoulders (the upper side edges are quarter
cylinders along the car, so paint shades and reflects from sky-bright at the
top to street-dark at the sill), a cabin of dark glass under a painted roof,
B pillars and side mirrors, door seams and handles, bumpers with lights and
licence plates, wheels with rims in dark arches, and the dark contact patch
on the road under it. The world frame is x right, y down, z forward; the
front of a vehicle is +z.
"""

from __future__ import annotations

import numpy as np

from training.data.classes import CITYSCAPES_LABEL_IDS as IDS
from training.data.synth.objects import jitter
from training.data.synth.raycast import CYLINDER, GABLE, Primitive, make_box
from training.data.synth.shading import MaterialTable, PatternFn

PATTERN_PLATE = 5  # after roadside's patterns
# Linear-RGB car paints, drawn by how common they are on European roads: white, black,
# silver, grey, dark blue, red, blue, green, beige, yellow, and saturated red, orange, blue.
CAR_PAINTS = ((0.62, 0.62, 0.6), (0.02, 0.02, 0.022), (0.32, 0.33, 0.35), (0.12, 0.12, 0.13),
              (0.02, 0.03, 0.1), (0.4, 0.03, 0.02), (0.05, 0.1, 0.35), (0.04, 0.15, 0.06),
              (0.45, 0.38, 0.25), (0.6, 0.45, 0.03), (0.6, 0.015, 0.01), (0.7, 0.2, 0.01),
              (0.02, 0.15, 0.6))
PAINT_WEIGHTS = np.array([20, 18, 18, 14, 6, 5, 5, 3, 2, 1, 4, 2, 2], dtype=float)
CLEAR_COAT = (0.03, 0.12)  # the paint's reflection facing the viewer (Fresnel adds at grazing)
WHEEL_RADIUS = (0.28, 0.36)  # metres
RIM_SHARE = (0.55, 0.7)  # a wheel's metal rim, of the tyre's radius
ARCH_SHARE = 1.18  # the dark wheel arch around a tyre, of its radius
B_PILLAR_AT = (0.56, 0.64)  # along a car's cabin from its back (the front is +z)
B_PILLAR_M = 0.1
SHOULDER_M = (0.1, 0.22)  # radius of the rounded upper edges of a car's body
SLOPED_CABIN_SHARE = 0.6  # cars whose cabin has a raked windscreen and rear window
RAKE_SHARE = (0.3, 0.55)  # a rake's run along the car, of half the cabin's length
# Car windows: dark glass reflecting the sky by this share (real windows read dark from the
# road; a cabin all of sky-reflecting glass read as a dome). The roof over them is paint:
# a slab this share of the cabin's height over the cabin's flat top.
WINDOW_REFLECTION = (0.08, 0.3)
ROOF_SHARE = 0.3
CONTACT_MARGIN_M = 0.05  # the dark patch under a car reaches this far beyond its body
PLATE_M = (0.52, 0.11)  # an EU licence plate's width and height
SEAM_M = 0.008  # the width of a door's shut line
DECAL_OFFSET_M = 0.003  # shut lines and handles stand this far off a car's side
MIRROR_M = (0.16, 0.12, 0.1)  # a side mirror's reach beyond the body, height and length


def vehicle(rng: np.random.Generator, materials: MaterialTable, x: float, z: float, ground: float,
            kind: str = 'car', length: float | None = None) -> list[Primitive]:
    """A car, van/truck or bus aligned with the road, centred at (x, z).

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
    color = CAR_PAINTS[rng.choice(len(CAR_PAINTS), p=PAINT_WEIGHTS / PAINT_WEIGHTS.sum())]
    paint = materials.add(jitter(rng, color, 0.15), label, texture=3, scale=3.0, amplitude=0.08,
                          glass=rng.uniform(*CLEAR_COAT), reflectance=0.5)
    glass = materials.add((0.02, 0.025, 0.03), label, texture=3, amplitude=0.1,
                          glass=rng.uniform(*WINDOW_REFLECTION), reflectance=0.0)
    tyre = materials.add((0.015, 0.015, 0.015), label, texture=2, amplitude=0.2, reflectance=0.1)
    bottom = ground - clearance
    belt = bottom - body_h  # the body's top: the windows' lower edge
    if kind == 'car':
        parts = _car_body(rng, materials, paint, glass, x, z, width, length, belt, bottom, cabin_h)
    else:  # a box of a body with a windscreen band at its front
        parts = [make_box((x - width / 2, belt, z - length / 2), (x + width / 2, bottom, z + length / 2), paint),
                 make_box((x - width / 2 + 0.05, belt + 0.1, z + length / 2 - 0.02),
                          (x + width / 2 - 0.05, bottom - body_h * 0.45, z + length / 2 + 0.01), glass)]
    parts += _bumpers(rng, materials, label, x, z, width, length, bottom, body_h)
    parts += _wheels(rng, materials, label, tyre, x, z, width, length, ground)
    # Sky light cannot reach the road under a car: a dark patch marks where it touches the road.
    under = materials.add(np.full(3, rng.uniform(0.005, 0.02)), IDS['road'], texture=0, scale=1.0,
                          amplitude=0.2, reflectance=0.15)
    parts.append(make_box((x - width / 2 - CONTACT_MARGIN_M, ground - 0.002, z - length / 2 - CONTACT_MARGIN_M),
                          (x + width / 2 + CONTACT_MARGIN_M, ground - 0.002, z + length / 2 + CONTACT_MARGIN_M),
                          under, casts_shadow=False))
    return parts


def _car_body(rng: np.random.Generator, materials: MaterialTable, paint: int, glass: int, x: float,
              z: float, width: float, length: float, belt: float, bottom: float,
              cabin_h: float) -> list[Primitive]:
    """A car's body with rounded shoulders, door shut lines and handles, its cabin, roof,
    B pillars and side mirrors."""
    back, front = z - length / 2, z + length / 2
    radius = rng.uniform(*SHOULDER_M)
    left, right = x - width / 2, x + width / 2
    sill = belt + radius  # the shoulders' axes: the body's sides are flat below
    parts = [make_box((left, sill, back), (right, bottom, front), paint),
             make_box((left + radius, belt, back), (right - radius, sill, front), paint),
             Primitive(CYLINDER, np.array([left, belt, back]), np.array([left + 2 * radius, sill + radius, front]),
                       paint, axis=2),
             Primitive(CYLINDER, np.array([right - 2 * radius, belt, back]),
                       np.array([right, sill + radius, front]), paint, axis=2)]
    inset = radius + rng.uniform(0.0, 0.06)
    lo = np.array([left + inset, belt - cabin_h, back + rng.uniform(0.5, 0.9)])
    hi = np.array([right - inset, belt, front - rng.uniform(0.9, 1.3)])
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
    reach, tall, long = MIRROR_M
    # Shut lines and handles are dark decals just off the flat sides (a pattern would slide
    # on a moving car: patterns see world coordinates).
    trim = materials.add(np.asarray(materials.albedo[paint]) * 0.12, materials.label[paint],
                         texture=0, amplitude=0.1, reflectance=0.3)
    for side in (-1, 1):
        edge = x + side * width / 2
        face = edge + side * DECAL_OFFSET_M
        a, b = sorted((edge - side * 0.05, edge + side * reach))  # a side mirror
        parts.append(make_box((a, belt - 0.05 - tall, hi[2] - long), (b, belt - 0.05, hi[2]), paint))
        for edge in (hi[2] + 0.05, pillar, lo[2] + 0.2):  # the doors' front and rear edges
            parts.append(make_box((face, sill, edge - SEAM_M / 2), (face, bottom - 0.05, edge + SEAM_M / 2),
                                  trim, casts_shadow=False))
        for door_back in (pillar, lo[2] + 0.2):  # a handle near each door's rear edge
            parts.append(make_box((face, sill + 0.03, door_back + 0.1), (face, sill + 0.06, door_back + 0.28),
                                  trim, casts_shadow=False))
    return parts


def _plate_pattern(points: np.ndarray, normals: np.ndarray, params: np.ndarray,
                   albedo: np.ndarray) -> np.ndarray:
    """An EU licence plate: a blue band at the left, dark characters on white, a dark
    rim. params = (centre x, centre y, seed, 0)."""
    cx, cy, seed = params[:, 0], params[:, 1], params[:, 2]
    u = (points[:, 0] - cx) / PLATE_M[0] + 0.5  # 0..1 left to right as seen from behind
    u = np.where(normals[:, 2] > 0, 1.0 - u, u)  # seen from the front, the left is +x
    v = (points[:, 1] - cy) / PLATE_M[1] + 0.5
    column, row = np.floor((u - 0.12) * 28.0), np.floor((v - 0.2) * 5.0 / 0.6)
    stroke = np.mod(np.sin(column * 12.9898 + row * 78.233 + seed) * 43758.5453, 1.0) > 0.45
    characters = (u > 0.12) & (u < 0.95) & (v > 0.2) & (v < 0.8) & stroke
    rim = (u < 0.02) | (u > 0.98) | (v < 0.08) | (v > 0.92)
    albedo[characters | rim] *= 0.04
    band = (u < 0.1) & ~rim
    albedo[band] = np.array([0.01, 0.03, 0.3], dtype=albedo.dtype)
    return albedo


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
    """Dark bumpers across both ends, each with a licence plate, and a light band above
    each: white-ish at the front (+z), red at the back."""
    trim = materials.add(np.full(3, rng.uniform(0.02, 0.12)), label, texture=2, amplitude=0.2,
                         reflectance=0.4)
    front = materials.add(jitter(rng, (0.6, 0.6, 0.55), 0.2), label, texture=3, amplitude=0.1,
                          glass=0.1, reflectance=0.9)
    rear = materials.add(jitter(rng, (0.45, 0.03, 0.02), 0.3), label, texture=3, amplitude=0.1,
                         glass=0.1, reflectance=0.9)
    band = body_h * rng.uniform(0.15, 0.3)
    plate_y = bottom - band - PLATE_M[1] / 2 - 0.02
    parts = []
    for end, light in ((1, front), (-1, rear)):
        face = z + end * length / 2
        parts.append(make_box((x - width / 2 - 0.02, bottom - band, min(face, face + end * 0.06)),
                              (x + width / 2 + 0.02, bottom, max(face, face + end * 0.06)), trim))
        top = bottom - body_h * rng.uniform(0.55, 0.75)
        parts.append(make_box((x - width / 2 + 0.05, top - 0.12, min(face, face + end * 0.02)),
                              (x + width / 2 - 0.05, top, max(face, face + end * 0.02)), light))
        plate = materials.add(jitter(rng, (0.62, 0.62, 0.58), 0.1), label, texture=3, amplitude=0.05,
                              pattern=PATTERN_PLATE, params=(x, plate_y, rng.uniform(0.0, 100.0), 0.0),
                              glass=0.05, reflectance=0.95)
        parts.append(make_box((x - PLATE_M[0] / 2, plate_y - PLATE_M[1] / 2, min(face, face + end * 0.03)),
                              (x + PLATE_M[0] / 2, plate_y + PLATE_M[1] / 2, max(face, face + end * 0.03)),
                              plate))
    return parts


PATTERNS: dict[int, PatternFn] = {PATTERN_PLATE: _plate_pattern}

__all__ = ['vehicle', 'CAR_PAINTS', 'PATTERNS', 'PATTERN_PLATE']
