"""Procedural indoor rooms, rendered like NYU Depth v2's Kinect colour camera.

A room is a box (floor, ceiling, four walls as separate rectangles) with
furniture and objects: beds with pillows, tables, desks, chairs, sofas,
cabinets, dressers, bookshelves with books, televisions, pictures, windows,
doors, curtains, lamps, boxes, floor mats. Light comes from ceiling lamps
(point lights) and a directional light that casts shadows. Labels are NYU's
894-class ids for those names (the ids of the real labelled set), so the
40- and 13-class maps apply unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtdepth_ros.conversions.geometry import resize_intrinsics
from training.data.synth.raycast import (
    CYLINDER,
    ELLIPSOID,
    PinholeGrid,
    Primitive,
    cast,
    make_box,
    shadowed,
)
from training.data.synth.shading import (
    CameraResponse,
    Lighting,
    MaterialTable,
    PointLight,
    expose,
    shade,
)

NYU_WIDTH, NYU_HEIGHT = 640, 480
# Kinect colour camera of NYU Depth v2 (the toolbox's camera_params.m: fx_rgb, fy_rgb, cx_rgb, cy_rgb).
NYU_FX, NYU_FY, NYU_CX, NYU_CY = 518.857901, 519.469611, 325.582449, 253.736166
KINECT_MAX_DEPTH_M = 10.0  # NYU's depth maps are clipped at 10 m
WHITE_BORDER_PX = 8  # the registered RGB frames have a white border (no colour there)
# NYU 894-class ids (the labelled .mat's ``names``, 1-based) of what the rooms contain.
NYU_IDS = {'wall': 21, 'floor': 11, 'ceiling': 4, 'bed': 157, 'chair': 5, 'sofa': 83, 'table': 19,
           'door': 28, 'window': 59, 'bookshelf': 88, 'picture': 64, 'counter': 7, 'desk': 36,
           'curtain': 89, 'dresser': 169, 'pillow': 119, 'floor mat': 143, 'books': 85,
           'television': 172, 'box': 26, 'night stand': 158, 'lamp': 144, 'cabinet': 3,
           'whiteboard': 45, 'mirror': 122, 'plant': 82, 'cup': 35, 'bottle': 2}
# The 40-class (Gupta et al.) each of those falls into, as classMapping40.mat maps it.
NYU_40_OF = {'plant': 'otherprop', 'cup': 'otherprop', 'bottle': 'otherprop'}
SCENE_TYPES = ('bedroom', 'living_room', 'office', 'kitchen', 'classroom')
PATTERN_SHELVES = 4


def nyu_intrinsics(width: int = NYU_WIDTH, height: int = NYU_HEIGHT) -> np.ndarray:
    """(3, 3) K of NYU's Kinect colour camera for frames of ``width`` x ``height``."""
    kinect = np.array([[NYU_FX, 0.0, NYU_CX], [0.0, NYU_FY, NYU_CY], [0.0, 0.0, 1.0]])
    return resize_intrinsics(kinect, (NYU_HEIGHT, NYU_WIDTH), (height, width))


@dataclass
class Room:
    primitives: list[Primitive]
    materials: MaterialTable
    lighting: Lighting
    instance: list[int]  # per primitive: instance number within its class (1-based)
    camera_origin: np.ndarray
    camera_rotation: np.ndarray
    scene_type: str


@dataclass
class RoomFrame:
    image: np.ndarray  # (H, W, 3) uint8 RGB, white border
    depth: np.ndarray  # (H, W) float32 metres, dense ("depths")
    raw_depth: np.ndarray  # (H, W) float32 metres, Kinect-like holes = 0 ("rawDepths")
    labels: np.ndarray  # (H, W) uint16 NYU 894-class ids, 0 = void
    instances: np.ndarray  # (H, W) uint8 instance number within the class
    intrinsics: np.ndarray
    scene_type: str


def _color(rng: np.random.Generator, lo: float = 0.1, hi: float = 0.7) -> np.ndarray:
    base = rng.uniform(lo, hi)
    return np.clip(base * rng.uniform(0.7, 1.3, 3), 0.0, 1.0)


class _Builder:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.materials = MaterialTable()
        self.materials.add((0, 0, 0), 0)  # row 0: void
        self.primitives: list[Primitive] = []
        self.instance: list[int] = []
        self.counts: dict[str, int] = {}

    def material(self, name: str, color: np.ndarray | None = None, texture: int | None = None,
                 scale: float | None = None, amplitude: float | None = None, glass: float = 0.0) -> int:
        """A material labelled ``name``; what is not given is drawn at random."""
        rng = self.rng
        return self.materials.add(
            _color(rng) if color is None else color, NYU_IDS[name],
            texture=int(rng.integers(0, 8)) if texture is None else texture,
            scale=float(rng.uniform(0.3, 2.0)) if scale is None else scale,
            amplitude=float(rng.uniform(0.05, 0.4)) if amplitude is None else amplitude, glass=glass)

    def add(self, name: str, parts: list[Primitive]) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1
        for part in parts:
            self.primitives.append(part)
            self.instance.append(self.counts[name])

    def box(self, name: str, lo: tuple[float, float, float], hi: tuple[float, float, float],
            color: np.ndarray | None = None, texture: int | None = None, amplitude: float | None = None,
            glass: float = 0.0) -> Primitive:
        return make_box(lo, hi, self.material(name, color, texture=texture, amplitude=amplitude, glass=glass))


def make_room(rng: np.random.Generator) -> Room:
    """One furnished room and a camera inside it (x right, y down, z forward; floor at y = 0)."""
    b = _Builder(rng)
    width, length, height = rng.uniform(3.0, 7.0), rng.uniform(3.0, 8.0), rng.uniform(2.4, 3.1)
    x0, x1, z0, z1 = -width / 2, width / 2, 0.0, length
    top = -height  # y of the ceiling (y points down)
    wall = b.material('wall', _color(rng, 0.35, 0.85), amplitude=0.1)
    wall2 = b.material('wall', _color(rng, 0.35, 0.85), amplitude=0.1) if rng.random() < 0.3 else wall
    floor = b.material('floor', _color(rng, 0.1, 0.5), texture=int(rng.choice([5, 6, 1])),
                       amplitude=rng.uniform(0.2, 0.5))
    ceiling = b.material('ceiling', _color(rng, 0.6, 0.9), amplitude=0.05)
    surfaces = [('floor', make_box((x0, 0, z0), (x1, 0, z1), floor)),
                ('ceiling', make_box((x0, top, z0), (x1, top, z1), ceiling)),
                ('wall', make_box((x0, top, z0), (x0, 0, z1), wall)),
                ('wall', make_box((x1, top, z0), (x1, 0, z1), wall2)),
                ('wall', make_box((x0, top, z1), (x1, 0, z1), wall)),
                ('wall', make_box((x0, top, z0), (x1, 0, z0), wall2))]
    for name, part in surfaces:
        part.casts_shadow = False
        b.add(name, [part])
    scene_type = str(rng.choice(SCENE_TYPES))
    _furnish(b, scene_type, x0, x1, z0, z1, top)
    _decorate_walls(b, x0, x1, z1, top)
    lamps = [PointLight(np.array([rng.uniform(x0 * 0.6, x1 * 0.6), top + 0.3, rng.uniform(z1 * 0.2, z1 * 0.8)]),
                        np.full(3, rng.uniform(1.0, 4.0)) * np.array([1.0, rng.uniform(0.85, 1.0),
                                                                       rng.uniform(0.6, 0.95)]))
             for _ in range(rng.integers(1, 3))]
    elevation, azimuth = np.deg2rad(rng.uniform(25, 70)), rng.uniform(0, 2 * np.pi)
    to_light = np.array([np.cos(elevation) * np.sin(azimuth), -np.sin(elevation),
                         np.cos(elevation) * np.cos(azimuth)])
    lighting = Lighting(to_light, np.full(3, rng.uniform(0.1, 0.8)), np.full(3, rng.uniform(0.2, 0.5)),
                        np.full(3, 0.8), np.full(3, 0.8), lamps)
    eye = np.array([rng.uniform(x0 * 0.5, x1 * 0.5), -rng.uniform(1.0, 1.7), rng.uniform(0.2, 0.6)])
    yaw, pitch, roll = rng.normal(0, 0.25), np.deg2rad(rng.uniform(-20, 5)), np.deg2rad(rng.normal(0, 3))
    rotation = _rotation(yaw, pitch, roll)
    return Room(b.primitives, b.materials, lighting, b.instance, eye, rotation, scene_type)


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera -> world: roll about z, then pitch about x (negative looks down), then yaw about y."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_pitch = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
    r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return r_yaw @ r_pitch @ r_roll


def _against_wall(rng: np.random.Generator, x0: float, x1: float, z1: float, w: float,
                  d: float) -> tuple[float, float, float, float]:
    """A footprint (xa, xb, za, zb) of w x d against the left, right or back wall."""
    side = rng.integers(0, 3)
    if side == 0:
        z = rng.uniform(1.0, max(z1 - w, 1.1))
        return x0, x0 + d, z, z + w
    if side == 1:
        z = rng.uniform(1.0, max(z1 - w, 1.1))
        return x1 - d, x1, z, z + w
    x = rng.uniform(x0, max(x1 - w, x0 + 0.01))
    return x, x + w, z1 - d, z1


def _table(b: _Builder, name: str, xa: float, xb: float, za: float, zb: float, h: float) -> None:
    wood = b.material(name, _color(b.rng, 0.1, 0.6), texture=6, scale=0.8)
    leg = 0.05
    parts = [make_box((xa, -h, za), (xb, -h + 0.04, zb), wood)]
    for x, z in ((xa, za), (xb - leg, za), (xa, zb - leg), (xb - leg, zb - leg)):
        parts.append(make_box((x, -h + 0.04, z), (x + leg, 0, z + leg), wood))
    b.add(name, parts)
    for _ in range(b.rng.integers(0, 4)):  # things on the table
        kind = str(b.rng.choice(['books', 'box', 'cup', 'bottle', 'lamp']))
        cx, cz = b.rng.uniform(xa + 0.1, xb - 0.1), b.rng.uniform(za + 0.1, zb - 0.1)
        size = b.rng.uniform(0.05, 0.2)
        tall = b.rng.uniform(0.05, 0.3)
        if kind in ('cup', 'bottle'):
            b.add(kind, [Primitive(CYLINDER, np.array([cx - size / 3, -h - tall, cz - size / 3]),
                                   np.array([cx + size / 3, -h, cz + size / 3]), b.material(kind), axis=1)])
        else:
            b.add(kind, [b.box(kind, (cx - size, -h - tall, cz - size), (cx + size, -h, cz + size))])


def _chair(b: _Builder, x: float, z: float, facing: int) -> None:
    m = b.material('chair', _color(b.rng, 0.05, 0.5))
    s, h = 0.22, b.rng.uniform(0.42, 0.5)
    parts = [make_box((x - s, -h, z - s), (x + s, -h + 0.05, z + s), m)]
    for dx, dz in ((-s, -s), (s - 0.04, -s), (-s, s - 0.04), (s - 0.04, s - 0.04)):
        parts.append(make_box((x + dx, -h + 0.05, z + dz), (x + dx + 0.04, 0, z + dz + 0.04), m))
    back_z = z + facing * s
    parts.append(make_box((x - s, -h - b.rng.uniform(0.35, 0.5), min(back_z, back_z - facing * 0.05)),
                          (x + s, -h, max(back_z, back_z - facing * 0.05)), m))
    b.add('chair', parts)


def _furnish(b: _Builder, scene: str, x0: float, x1: float, z0: float, z1: float, top: float) -> None:
    rng = b.rng
    if scene == 'bedroom':
        xa, xb, za, zb = _against_wall(rng, x0, x1, z1, rng.uniform(1.4, 2.0), rng.uniform(1.9, 2.1))
        h = rng.uniform(0.4, 0.6)
        b.add('bed', [b.box('bed', (xa, -h, za), (xb, 0, zb), texture=1, amplitude=0.3)])
        for _ in range(rng.integers(1, 3)):
            px = rng.uniform(xa + 0.1, max(xb - 0.6, xa + 0.11))
            pz = rng.uniform(za + 0.1, max(zb - 0.5, za + 0.11))
            b.add('pillow', [make_box((px, -h - 0.15, pz), (px + 0.5, -h, pz + 0.35), b.material('pillow'))])
        xa, xb, za, zb = _against_wall(rng, x0, x1, z1, 0.5, 0.45)
        b.add('night stand', [b.box('night stand', (xa, -0.55, za), (xb, 0, zb))])
    if scene in ('living_room', 'bedroom'):
        xa, xb, za, zb = _against_wall(rng, x0, x1, z1, rng.uniform(1.6, 2.4), 0.9)
        m = b.material('sofa', _color(rng, 0.05, 0.5), texture=0, scale=0.4)
        b.add('sofa', [make_box((xa, -0.45, za), (xb, 0, zb), m),
                       make_box((xa, -0.85, za), (xb, -0.45, za + 0.2), m)])
        xa, xb, za, zb = _against_wall(rng, x0, x1, z1, rng.uniform(0.9, 1.6), 0.45)
        b.add('dresser', [b.box('dresser', (xa, -0.5, za), (xb, 0, zb), texture=6)])
        b.add('television', [b.box('television', ((xa + xb) / 2 - 0.4, -1.05, (za + zb) / 2 - 0.03),
                                   ((xa + xb) / 2 + 0.4, -0.55, (za + zb) / 2 + 0.03),
                                   color=np.full(3, 0.02), glass=0.3, texture=3, amplitude=0.05)])
    if scene in ('office', 'classroom', 'kitchen', 'living_room'):
        for _ in range(rng.integers(1, 4 if scene == 'classroom' else 2)):
            w, d = rng.uniform(0.8, 1.6), rng.uniform(0.6, 0.9)
            cx, cz = rng.uniform(x0 + 0.5, x1 - 0.5 - w), rng.uniform(1.2, max(z1 - d - 0.3, 1.3))
            _table(b, 'desk' if scene == 'office' else 'table', cx, cx + w, cz, cz + d, rng.uniform(0.7, 0.78))
            _chair(b, cx + w / 2, cz - 0.35, -1)
    if scene == 'kitchen':
        xa, xb, za, zb = _against_wall(rng, x0, x1, z1, rng.uniform(1.5, 3.0), 0.6)
        b.add('counter', [b.box('counter', (xa, -0.9, za), (xb, 0, zb), texture=2)])
        b.add('cabinet', [b.box('cabinet', (xa, -2.2, za), (xb, -1.5, za + 0.35 if za > 0.5 else zb))])
    for _ in range(rng.integers(0, 3)):
        kind = str(rng.choice(['cabinet', 'bookshelf', 'box']))
        if kind == 'box':
            cx, cz, s = rng.uniform(x0 + 0.3, x1 - 0.3), rng.uniform(1.0, z1 - 0.3), rng.uniform(0.2, 0.5)
            b.add('box', [b.box('box', (cx - s / 2, -s, cz - s / 2), (cx + s / 2, 0, cz + s / 2))])
            continue
        xa, xb, za, zb = _against_wall(rng, x0, x1, z1, rng.uniform(0.6, 1.2), 0.4)
        h = rng.uniform(1.0, 2.0)
        b.add(kind, [b.box(kind, (xa, -h, za), (xb, 0, zb), texture=6)])
        if kind == 'bookshelf':
            for level in np.arange(0.3, h - 0.2, 0.4):
                books = b.material('books', _color(rng, 0.1, 0.6), texture=7, scale=0.3, amplitude=0.6)
                b.add('books', [make_box((xa + 0.02, -level - 0.25, za - 0.01 if za > 0.5 else za),
                                         (xb - 0.02, -level, zb + 0.01 if za <= 0.5 else zb), books)])
    if rng.random() < 0.5:
        cx, cz = rng.uniform(x0 + 1, x1 - 1), rng.uniform(1.5, z1 - 1)
        b.add('floor mat', [b.box('floor mat', (cx - 0.8, -0.01, cz - 0.6), (cx + 0.8, 0, cz + 0.6),
                                  texture=1, amplitude=0.5)])
    if rng.random() < 0.5:  # a floor lamp
        cx, cz = rng.uniform(x0 + 0.3, x1 - 0.3), rng.uniform(1.0, z1 - 0.3)
        m = b.material('lamp')
        b.add('lamp', [Primitive(CYLINDER, np.array([cx - 0.02, -1.4, cz - 0.02]), np.array([cx + 0.02, 0, cz + 0.02]), m),
                       Primitive(ELLIPSOID, np.array([cx - 0.2, -1.7, cz - 0.2]), np.array([cx + 0.2, -1.35, cz + 0.2]), m)])


def _decorate_walls(b: _Builder, x0: float, x1: float, z1: float, top: float) -> None:
    rng = b.rng
    for _ in range(rng.integers(0, 4)):
        kind = str(rng.choice(['picture', 'picture', 'window', 'door', 'whiteboard', 'mirror']))
        w = {'door': 0.9, 'window': rng.uniform(0.8, 2.0), 'whiteboard': rng.uniform(1.2, 2.4)}.get(kind, rng.uniform(0.3, 1.0))
        h = {'door': 2.05, 'window': rng.uniform(0.8, 1.5)}.get(kind, rng.uniform(0.3, 1.0))
        bottom = {'door': 0.0, 'window': rng.uniform(0.8, 1.0)}.get(kind, rng.uniform(1.0, 1.5))
        depth = 0.03
        color = {'window': np.array([0.75, 0.8, 0.9]) * rng.uniform(0.7, 1.2), 'whiteboard': np.full(3, 0.85),
                 'mirror': np.full(3, 0.3)}.get(kind)
        m = b.material(kind, color, glass=0.4 if kind == 'mirror' else 0.0)
        side = rng.integers(0, 3)
        if side == 2:  # back wall
            x = rng.uniform(x0, max(x1 - w, x0 + 0.01))
            part = make_box((x, -bottom - h, z1 - depth), (x + w, -bottom, z1), m)
        else:
            wall_x = x0 if side == 0 else x1 - depth
            z = rng.uniform(0.5, max(z1 - w, 0.6))
            part = make_box((wall_x, -bottom - h, z), (wall_x + depth, -bottom, z + w), m)
        part.casts_shadow = False
        b.add(kind, [part])
        if kind == 'window' and rng.random() < 0.6:
            curtain = b.material('curtain', texture=5, scale=0.3, amplitude=0.4)
            lo, hi = part.lo.copy(), part.hi.copy()
            lo[1], hi[1] = -bottom - h - 0.2, min(-bottom + 0.5, 0)
            axis = 0 if side == 2 else 2
            lo[axis], hi[axis] = lo[axis] - 0.3, lo[axis]
            lo[2 - axis if axis == 0 else 0] -= 0.05 if side != 0 else -0.05
            b.add('curtain', [make_box(lo, hi, curtain)])


def render_room(room: Room, width: int, height: int, intrinsics: np.ndarray,
                rng: np.random.Generator) -> RoomFrame:
    """Image, dense and Kinect-like raw depth, 894-class labels and instances of one room."""
    grid = PinholeGrid(width, height, intrinsics, room.camera_origin, room.camera_rotation)
    hits = cast(grid, room.primitives)
    depth = np.where(hits.valid, hits.t, 0.0).astype(np.float32)
    material = np.array([p.material for p in room.primitives])
    labels = np.zeros((height, width), dtype=np.uint16)
    labels[hits.valid] = room.materials.column('label')[material[hits.primitive[hits.valid]]]
    instances = np.zeros((height, width), dtype=np.uint8)
    instances[hits.valid] = np.minimum(np.array(room.instance)[hits.primitive[hits.valid]], 255)
    shadow = shadowed(grid, hits, room.primitives, room.lighting.to_sun, 0.0)
    radiance = shade(hits, grid.dirs, depth, float(intrinsics[0, 0]), material, room.materials,
                     room.lighting, shadow, {})
    image = expose(radiance, CameraResponse.random(rng), rng)
    depth = np.minimum(depth, KINECT_MAX_DEPTH_M)
    border = max(1, round(WHITE_BORDER_PX * width / NYU_WIDTH))
    image[:border], image[-border:], image[:, :border], image[:, -border:] = 255, 255, 255, 255
    labels[:border], labels[-border:], labels[:, :border], labels[:, -border:] = 0, 0, 0, 0
    raw = kinect_raw_depth(depth, labels, rng, border)
    return RoomFrame(image, depth, raw, labels, instances, intrinsics, room.scene_type)


def kinect_raw_depth(depth: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                     border: int) -> np.ndarray:
    """Holes where a Kinect loses depth: object edges, shiny or dark glass, the border, specks.

    Kept depth gets the structured-light noise that grows with z^2 (Khoshelham &
    Elberink 2012: about 1.5 mm at 1 m, 7 cm at 5 m) and millimetre steps.
    """
    raw = depth * (1.0 + rng.normal(0.0, 0.0015, depth.shape).astype(np.float32) * depth)
    raw = np.round(raw * 1000.0) / 1000.0
    edge = np.zeros(depth.shape, dtype=bool)
    jump_x = np.abs(np.diff(depth, axis=1)) > 0.05 * depth[:, 1:]
    jump_y = np.abs(np.diff(depth, axis=0)) > 0.05 * depth[1:, :]
    edge[:, 1:] |= jump_x
    edge[:, :-1] |= jump_x
    edge[1:, :] |= jump_y
    edge[:-1, :] |= jump_y
    lost = edge | np.isin(labels, [NYU_IDS['window'], NYU_IDS['mirror'], NYU_IDS['television']])
    lost |= rng.random(depth.shape) < 0.01
    raw[lost] = 0.0
    raw[:border], raw[-border:], raw[:, :border], raw[:, -border:] = 0.0, 0.0, 0.0, 0.0
    return raw.astype(np.float32)
