"""What lines a generated street: blocks of buildings with patterned facades (rows of
windows, shop fronts, cornices, a back row of taller blocks), houses with gable roofs
set back behind front gardens, a small town's row houses of pale plaster at the
sidewalk, greenery, hedges, fences."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from training.data.classes import CITYSCAPES_LABEL_IDS as IDS
from training.data.synth import objects, textures
from training.data.synth.raycast import GABLE, Primitive, make_box
from training.data.synth.rig import CAMERA_HEIGHT_M
from training.data.synth.shading import MaterialTable, PatternFn

if TYPE_CHECKING:  # the street's layout is the road's
    from training.data.synth.road import RoadLayout

PATTERN_WINDOWS, PATTERN_SLATS, PATTERN_SHOPS = 2, 3, 4  # after road.PATTERN_MARKINGS
# Regular patterns (bricks, tiles, planks, cobbles) on facades and sidewalks: a random
# tile size per material keeps texture density from telling distance.
FACADE_TEXTURES = (1, 2, 3, 7, textures.BRICKS, textures.TILES, textures.PLANKS, textures.BIG_TILES)
WALK_TEXTURES = (1, 2, 7, textures.TILES, textures.COBBLES, textures.BRICKS, textures.TILES)
STYLES = ('city', 'suburb', 'green', 'town')
# Probability of a building / green block per side, per style.
BUILDING_SHARE = {'city': 0.85, 'suburb': 0.7, 'green': 0.15, 'town': 0.9}
# a second row of taller buildings
BACK_ROW_SHARE = {'city': 0.8, 'suburb': 0.4, 'green': 0.1, 'town': 0.3}
# Of the building plots, houses (one or two floors under a gable roof, behind a front
# garden; in a town, a row of them at the sidewalk) rather than blocks; and of the city's
# blocks, those with a gable roof on top.
HOUSE_SHARE = {'city': 0.0, 'suburb': 0.75, 'green': 0.8, 'town': 1.0}
ROOFED_BLOCK_SHARE = 0.25
HOUSE_SETBACK_M = (3.0, 16.0)  # sidewalk edge to the front wall
# A town's row houses (the old streets of KITTI's Karlsruhe suburbs): most stand on the
# sidewalk's edge, the rest behind a yard of a few metres; two or three floors, each house
# of the row its own width, height and facade, most of them pale plaster.
ROW_HOUSE_AT_WALK_SHARE = 0.6
ROW_HOUSE_YARD_M = (0.5, 3.0)
ROW_HOUSE_WIDTH_M = (6.0, 14.0)
# Smooth render in pale tints (white, cream, ochre, rose, grey) with faint noise: a facade
# whose texture tells nothing of its distance.
PLASTER_SHARE = {'city': 0.3, 'suburb': 0.4, 'green': 0.4, 'town': 0.8}
PLASTER_ALBEDO = (0.45, 0.8)
PLASTER_AMPLITUDE = (0.02, 0.12)
FLOOR_M = (2.6, 3.2)
STREET_END_BEYOND_M = 40.0  # buildings across a street's end reach this far past its sidewalks
STREET_END_WALK_M = (1.5, 4.0)  # the sidewalk in front of them
ROOF_PITCH_DEG = (25.0, 50.0)
# Linear-RGB roof colours: terracotta, brown, anthracite, grey slate.
ROOF_COLORS = ((0.3, 0.08, 0.04), (0.16, 0.08, 0.05), (0.05, 0.05, 0.055), (0.13, 0.13, 0.14))


# A window as a real facade shows it: a frame (white, or dark wood on one facade in four)
# around the glass, a mullion and a transom in windows wider than WINDOW_MULLION_FROM_M, a
# sill below, the top of the glass in the reveal's shade, and glass that mirrors the sky
# as much as it shows the dark room (on real frames flat dark rectangles read as none of
# this; docs/training.md, "Scenes version 8, towns").
WINDOW_FRAME_M = 0.07
WINDOW_MULLION_FROM_M = 1.0
WINDOW_SILL_M = (0.06, 0.05)  # height, overhang each side
WINDOW_REVEAL_M = 0.12  # the shaded band under the lintel
WINDOW_WHITE_FRAME, WINDOW_WOOD_FRAME = (0.62, 0.62, 0.6), (0.12, 0.08, 0.05)
WINDOW_DARK_GLASS, WINDOW_SKY_GLASS = (0.05, 0.07, 0.09), (0.3, 0.36, 0.44)
WINDOW_SILL = (0.42, 0.42, 0.4)


def _windows_pattern(points: np.ndarray, normals: np.ndarray, params: np.ndarray,
                     albedo: np.ndarray) -> np.ndarray:
    """Rows of windows on vertical faces: params = (floor height, spacing, width share,
    height share), each window framed, with a sill, its glass dark or mirroring the sky."""
    floor_h, spacing, width_share, height_share = params.T
    along = np.where(np.abs(normals[:, 0]) > 0.5, points[:, 2], points[:, 0])
    up = CAMERA_HEIGHT_M - points[:, 1]
    du = (np.mod(along, spacing) / spacing - 0.5) * spacing  # metres from the window's centre
    dv = (np.mod(up, floor_h) / floor_h - 0.55) * floor_h
    half_w, half_h = width_share * spacing / 2, height_share * floor_h / 2
    facade = (np.abs(normals[:, 1]) < 0.5) & (up > 1.0)
    opening = facade & (np.abs(du) < half_w) & (np.abs(dv) < half_h)
    pane = opening & (np.abs(du) < half_w - WINDOW_FRAME_M) & (np.abs(dv) < half_h - WINDOW_FRAME_M)
    pane &= ~((half_w > WINDOW_MULLION_FROM_M / 2) & (np.abs(du) < WINDOW_FRAME_M / 2))
    pane &= np.abs(dv - half_h * 0.4) >= WINDOW_FRAME_M / 2  # the transom
    sill = facade & (np.abs(du) < half_w + WINDOW_SILL_M[1]) & (dv < -half_h) \
        & (dv >= -half_h - WINDOW_SILL_M[0])
    # Each window gets its own glass (curtains, lit rooms, the sky mirrored); each facade
    # its frames' colour, from its own pattern parameters.
    cell = np.floor(along / spacing) * 7.31 + np.floor(up / floor_h) * 3.17
    tone = np.mod(np.sin(cell) * 43758.5453, 1.0)
    sky = (0.8 * tone ** 2)[:, None]
    glass = (np.array(WINDOW_DARK_GLASS) * (0.5 + tone[:, None]) * (1 - sky)
             + np.array(WINDOW_SKY_GLASS) * sky)
    reveal = pane & (dv > half_h - WINDOW_FRAME_M - WINDOW_REVEAL_M)
    glass[reveal] *= 0.5
    white = np.mod(np.sin(spacing * 91.7 + floor_h * 37.3) * 24634.6345, 1.0) < 0.75
    frame = np.where(white[:, None], np.array(WINDOW_WHITE_FRAME), np.array(WINDOW_WOOD_FRAME))
    albedo[opening & ~pane] = frame[opening & ~pane]
    albedo[pane] = glass[pane]
    albedo[sill] = np.array(WINDOW_SILL)
    return albedo


def _shops_pattern(points: np.ndarray, normals: np.ndarray, params: np.ndarray,
                   albedo: np.ndarray) -> np.ndarray:
    """Windows above a ground floor of shop fronts: wide dark glass between pillars."""
    albedo = _windows_pattern(points, normals, params, albedo)
    floor_h, spacing = params[:, 0], params[:, 1]
    along = np.where(np.abs(normals[:, 0]) > 0.5, points[:, 2], points[:, 0])
    up = CAMERA_HEIGHT_M - points[:, 1]
    bay = np.mod(along, spacing * 2) / (spacing * 2)
    glass = (up > 0.4) & (up < floor_h * 0.85) & (np.abs(bay - 0.5) < 0.4) & (np.abs(normals[:, 1]) < 0.5)
    sign = (up >= floor_h * 0.85) & (up < floor_h) & (np.abs(normals[:, 1]) < 0.5)
    cell = np.floor(along / (spacing * 2)) * 5.17
    tone = 0.3 + 0.7 * np.mod(np.sin(cell) * 24634.6345, 1.0)
    albedo[glass] = np.array([0.03, 0.035, 0.04]) * tone[glass, None] * 2.0
    albedo[sign] = albedo[sign] * (0.3 + 1.4 * tone[sign, None])
    return albedo


def _slats_pattern(points: np.ndarray, normals: np.ndarray, params: np.ndarray,
                   albedo: np.ndarray) -> np.ndarray:
    period, share = params[:, 0], params[:, 1]
    along = np.where(np.abs(normals[:, 0]) > 0.5, points[:, 2], points[:, 0])
    gap = np.mod(along, period) / period > share
    albedo[gap] *= 0.3
    return albedo


def _facade_material(rng: np.random.Generator, materials: MaterialTable,
                     shops: bool = True, plaster: float = 0.0) -> int:
    """A facade: windows (and, with ``shops``, sometimes shop fronts) on a wall of a random
    colour and texture, or, with probability ``plaster``, on pale, smooth plaster."""
    params = (rng.uniform(2.8, 4.0), rng.uniform(1.4, 4.5), rng.uniform(0.2, 0.7), rng.uniform(0.3, 0.7))
    if rng.random() < plaster:
        base = rng.uniform(*PLASTER_ALBEDO) * np.array([1.0, rng.uniform(0.85, 1.0), rng.uniform(0.7, 1.0)])
        return materials.add(base * rng.uniform(0.92, 1.08, 3), IDS['building'],
                             texture=int(rng.integers(textures.NUM_NOISE)), scale=rng.uniform(2.0, 8.0),
                             amplitude=rng.uniform(*PLASTER_AMPLITUDE), pattern=PATTERN_WINDOWS,
                             params=params, reflectance=0.35)
    base = rng.uniform(0.1, 0.65) * np.array([1.0, rng.uniform(0.75, 1.0), rng.uniform(0.55, 1.0)])
    if rng.random() < 0.25:  # brick
        base = np.array([0.3, 0.1, 0.06]) * rng.uniform(0.6, 1.3)
    texture = int(rng.choice(FACADE_TEXTURES))
    # A pattern tile holds several bricks or tiles: 0.5-4 m per tile = 6-50 cm bricks.
    scale = rng.uniform(0.5, 4.0) if texture >= textures.NUM_NOISE else rng.uniform(2.0, 8.0)
    return materials.add(base, IDS['building'], texture=texture, scale=scale,
                         amplitude=rng.uniform(0.1, 0.6),
                         pattern=PATTERN_SHOPS if shops and rng.random() < 0.4 else PATTERN_WINDOWS,
                         params=params, reflectance=0.35)


def _building(rng: np.random.Generator, materials: MaterialTable, x_near: float, x_far: float,
              z0: float, z1: float, top: float, height: float, plaster: float = 0.0) -> list[Primitive]:
    """A block, sometimes with a cornice along the top of its street face (``plaster``:
    _facade_material's)."""
    material = _facade_material(rng, materials, plaster=plaster)
    lo, hi = min(x_near, x_far), max(x_near, x_far)
    prims = [make_box((lo, top - height, z0), (hi, top, z1), material)]
    if rng.random() < 0.5:
        out = rng.uniform(0.15, 0.5) * np.sign(x_near - x_far)
        trim = materials.add(np.full(3, rng.uniform(0.2, 0.6)), IDS['building'], texture=2,
                             amplitude=0.2, reflectance=0.35)
        band = rng.uniform(0.2, 0.6)
        prims.append(make_box((min(x_near, x_near + out), top - height, z0),
                              (max(x_near, x_near + out), top - height + band, z1), trim))
    elif rng.random() < ROOFED_BLOCK_SHARE:  # an old town's block: a gable roof on top
        prims += _gable_roof(rng, materials, material, (lo, top - height, z0), (hi, z1), ridge=2)
    return prims


def _gable_roof(rng: np.random.Generator, materials: MaterialTable, wall: int,
                eaves: tuple[float, float, float], far: tuple[float, float],
                ridge: int) -> list[Primitive]:
    """A gable roof over the walls from ``eaves`` = (x_lo, y of the wall tops, z_lo) to
    ``far`` = (x_hi, z_hi), its ridge along ``ridge`` (0 x, 2 z): the roof overhangs the
    walls under it at the eaves; its gable ends are wall (a wall-coloured prism a little
    lower and a little longer than the roof fills the triangle under each end)."""
    x_lo, wall_top, z_lo = eaves
    x_hi, z_hi = far
    lo, hi = np.array([x_lo, 0.0, z_lo]), np.array([x_hi, wall_top, z_hi])
    across = 2 - ridge
    half = (hi[across] - lo[across]) / 2
    rise = half * np.tan(np.radians(rng.uniform(*ROOF_PITCH_DEG)))
    eave = rng.uniform(0.2, 0.6)
    tiles = materials.add(objects.jitter(rng, ROOF_COLORS[rng.integers(len(ROOF_COLORS))], 0.3),
                          IDS['building'], texture=int(rng.choice((textures.TILES, textures.BIG_TILES, 2))),
                          scale=rng.uniform(0.5, 2.0), amplitude=rng.uniform(0.2, 0.5),
                          reflectance=0.3)
    roof_lo, roof_hi = lo.copy(), hi.copy()
    roof_lo[across] -= eave
    roof_hi[across] += eave
    roof_lo[1] = wall_top - rise * (half + eave) / half  # the same pitch out to the eaves
    gable_lo, gable_hi = lo.copy(), hi.copy()
    gable_lo[1] = wall_top - rise + 0.15
    gable_lo[ridge] -= 0.03
    gable_hi[ridge] += 0.03
    return [Primitive(GABLE, roof_lo, roof_hi, tiles, axis=ridge),
            Primitive(GABLE, gable_lo, gable_hi, wall, axis=ridge)]


def _house_walls_m(rng: np.random.Generator, floors: tuple[int, int] = (1, 2)) -> float:
    """A house's wall height: ``floors`` (fewest, most) floors and a plinth."""
    count = rng.integers(floors[0], floors[1] + 1)
    return sum(rng.uniform(*FLOOR_M) for _ in range(count)) + rng.uniform(0.3, 0.8)


def _house_plot(rng: np.random.Generator, materials: MaterialTable, edge: float, side: int,
                z0: float, z1: float, top: float, plaster: float = 0.0) -> list[Primitive]:
    """A house of one or two floors under a gable roof, set back behind a front garden
    (a tree or two, sometimes a hedge or a fence along the sidewalk), on the plot from
    ``z0`` to ``z1`` beside the sidewalk edge at ``edge`` (``plaster``: _facade_material's)."""
    setback = rng.uniform(*HOUSE_SETBACK_M)
    length = min(z1 - z0 - 1.0, rng.uniform(8.0, 16.0))
    start = z0 + rng.uniform(0.5, max(z1 - z0 - length - 0.5, 0.5))
    depth = rng.uniform(7.0, 12.0)
    walls = _house_walls_m(rng)
    x_near, x_far = edge + side * setback, edge + side * (setback + depth)
    lo, hi = min(x_near, x_far), max(x_near, x_far)
    wall = _facade_material(rng, materials, shops=False, plaster=plaster)
    prims = [make_box((lo, top - walls, start), (hi, top, start + length), wall)]
    ridge = 2 if rng.random() < 0.65 else 0  # eaves along the street, or a gable facing it
    prims += _gable_roof(rng, materials, wall, (lo, top - walls, start), (hi, start + length), ridge)
    for _ in range(rng.integers(0, 3)):  # the front garden's trees
        prims += objects.tree(rng, materials, edge + side * rng.uniform(1.5, max(setback - 1.0, 1.6)),
                              rng.uniform(z0, z1), top)
    if rng.random() < 0.6:
        if rng.random() < 0.5:
            near, far_x = sorted((edge + side * 0.2, edge + side * 1.0))
            prims += objects.hedge(rng, materials, near, far_x, z0, z1, top)
        else:
            prims += objects.fence_or_wall(rng, materials, edge + side * 0.3, z0, z1, top,
                                           PATTERN_SLATS)
    return prims


def _row_houses(rng: np.random.Generator, materials: MaterialTable, edge: float, side: int,
                z0: float, z1: float, top: float) -> list[Primitive]:
    """A town's row of houses from ``z0`` to ``z1``, wall to wall, under gable roofs (most
    ridges along the street), two or three floors, each its own width and facade (most
    pale plaster); on the sidewalk's edge at ``edge`` or, the whole row, behind a yard
    with a low wall, a fence or a hedge along the sidewalk."""
    at_walk = rng.random() < ROW_HOUSE_AT_WALK_SHARE
    setback = 0.0 if at_walk else rng.uniform(*ROW_HOUSE_YARD_M)
    prims: list[Primitive] = []
    z = z0
    while z1 - z > 2.0:
        width = min(rng.uniform(*ROW_HOUSE_WIDTH_M), z1 - z)
        depth, walls = rng.uniform(8.0, 12.0), _house_walls_m(rng, floors=(2, 3))
        x_near = edge + side * (setback + rng.uniform(0.0, 0.3))  # facades not quite in line
        x_far = x_near + side * depth
        lo, hi = min(x_near, x_far), max(x_near, x_far)
        wall = _facade_material(rng, materials, shops=False, plaster=PLASTER_SHARE['town'])
        prims.append(make_box((lo, top - walls, z), (hi, top, z + width), wall))
        ridge = 2 if rng.random() < 0.8 else 0
        prims += _gable_roof(rng, materials, wall, (lo, top - walls, z), (hi, z + width), ridge)
        z += width
    if not at_walk and rng.random() < 0.7:
        if rng.random() < 0.5:
            near, far_x = sorted((edge + side * 0.1, edge + side * min(0.8, setback - 0.1)))
            prims += objects.hedge(rng, materials, near, far_x, z0, z1, top)
        else:
            prims += objects.fence_or_wall(rng, materials, edge + side * 0.2, z0, z1, top,
                                           PATTERN_SLATS)
    return prims


def street_side(rng: np.random.Generator, layout: RoadLayout, materials: MaterialTable, side: int,
          z0: float, z1: float, style: str) -> list[Primitive]:
    """Blocks of buildings or greenery along one side (-1 left, +1 right) between z0 and z1."""
    top = CAMERA_HEIGHT_M - layout.curb
    edge = layout.walk_right if side > 0 else layout.walk_left
    grass = materials.add(np.array([0.06, 0.11, 0.03]) * rng.uniform(0.7, 1.4, 3), IDS['terrain'],
                          texture=0, scale=rng.uniform(1.0, 3.0), amplitude=0.6, reflectance=0.3)
    far = edge + side * 1e4
    prims = [make_box((min(edge, far), top, -np.inf), (max(edge, far), top, np.inf), grass,
                      casts_shadow=False)]
    z = z0
    while z < z1:
        length = rng.uniform(8.0, 35.0)
        building = rng.random() < BUILDING_SHARE[style]
        if building and style == 'town':
            prims += _row_houses(rng, materials, edge, side, z, z + length, top)
        elif building and rng.random() < HOUSE_SHARE[style]:
            prims += _house_plot(rng, materials, edge, side, z, z + length, top, PLASTER_SHARE[style])
        elif building:
            setback = 0.0 if style == 'city' and rng.random() < 0.7 else rng.uniform(0.5, 6.0)
            depth, height = rng.uniform(8.0, 18.0), rng.uniform(5.0, 26.0)
            gap = rng.uniform(0.0, 5.0) if rng.random() < 0.5 else 0.0
            x_near, x_far = edge + side * setback, edge + side * (setback + depth)
            prims += _building(rng, materials, x_near, x_far, z, z + length - gap, top, height,
                               PLASTER_SHARE[style])
            if rng.random() < BACK_ROW_SHARE[style]:
                back = x_far + side * rng.uniform(3.0, 25.0)
                prims += _building(rng, materials, back, back + side * rng.uniform(8.0, 20.0),
                                   z + rng.uniform(-5.0, 5.0), z + length + rng.uniform(0.0, 15.0),
                                   top, height + rng.uniform(3.0, 20.0))
            if setback > 1.5 and rng.random() < 0.5:
                near, far_x = sorted((edge + side * 0.2, edge + side * 1.0))
                prims += objects.hedge(rng, materials, near, far_x, z, z + length - gap, top)
        else:
            for _ in range(rng.integers(0, 5)):
                prims += objects.tree(rng, materials, edge + side * rng.uniform(2.0, 15.0),
                                      z + rng.uniform(0, length), top)
            if rng.random() < 0.4:
                prims += objects.fence_or_wall(rng, materials, edge + side * 0.3, z, z + length, top,
                                               PATTERN_SLATS)
            elif rng.random() < 0.3:
                near, far_x = sorted((edge + side * 0.2, edge + side * 1.2))
                prims += objects.hedge(rng, materials, near, far_x, z, z + length, top)
        z += length
    return prims


def sidewalk_material(rng: np.random.Generator, materials: MaterialTable) -> int:
    """A sidewalk's paving: grey, noise or a regular pattern with a random tile size."""
    texture = int(rng.choice(WALK_TEXTURES))
    scale = rng.uniform(0.6, 3.0) if texture >= textures.NUM_NOISE else rng.uniform(1.0, 4.0)
    return materials.add(np.full(3, rng.uniform(0.12, 0.35)) * rng.uniform(0.85, 1.15, 3),
                         IDS['sidewalk'], texture=texture, scale=scale,
                         amplitude=rng.uniform(0.15, 0.5), reflectance=0.3)


def street_end(rng: np.random.Generator, layout: RoadLayout, materials: MaterialTable,
               z: float) -> list[Primitive]:
    """A row of buildings across the street at ``z`` (a T junction ahead), their facades
    facing the camera behind a sidewalk a kerb high, wide enough to close the view."""
    top = CAMERA_HEIGHT_M - layout.curb
    walk = sidewalk_material(rng, materials)
    x, x1 = layout.walk_left - STREET_END_BEYOND_M, layout.walk_right + STREET_END_BEYOND_M
    prims = [make_box((x, top, z - rng.uniform(*STREET_END_WALK_M)), (x1, CAMERA_HEIGHT_M, z), walk)]
    while x < x1:
        width = rng.uniform(6.0, 25.0)
        setback = 0.0 if rng.random() < 0.6 else rng.uniform(0.5, 4.0)
        near, depth = z + setback, rng.uniform(8.0, 15.0)
        if rng.random() < 0.3:  # a house: its gable roof's ridge along the facade
            walls = _house_walls_m(rng)
            wall = _facade_material(rng, materials, shops=False)
            prims.append(make_box((x, top - walls, near), (x + width, top, near + depth), wall))
            prims += _gable_roof(rng, materials, wall, (x, top - walls, near), (x + width, near + depth),
                                 ridge=0)
        else:
            height = rng.uniform(5.0, 22.0)
            prims.append(make_box((x, top - height, near), (x + width, top, near + depth),
                                  _facade_material(rng, materials)))
        x += width
    return prims


PATTERNS: dict[int, PatternFn] = {PATTERN_WINDOWS: _windows_pattern, PATTERN_SLATS: _slats_pattern,
                                  PATTERN_SHOPS: _shops_pattern}
