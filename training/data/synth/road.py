"""Procedural road scenes: a drive along a street, rendered like KITTI's left colour camera.

World frame = the nominal camera's at time 0: x right, y down, z forward
along the road; the road surface is the plane y = CAMERA_HEIGHT_M. Each drive
mounts the camera a little differently around KITTI's (height within
MOUNT_HEIGHT_JITTER_M of 1.65 m, pitch within MOUNT_PITCH_DEG, roll within
MOUNT_ROLL_DEG), and the body pitches by up to PITCH_BOUNCE_DEG more while it
drives, so the horizon is not always on the same row; the LiDAR moves with the
camera (a rigid rig). The depth of a road pixel is the camera height over the
camera-frame ray's drop towards the road (``CAMERA_HEIGHT_M * fy / (v - cy)``
for a level camera at 1.65 m). A drive is one street with its objects, light
and traffic; frame i is the camera ``i / FRAME_RATE_HZ`` seconds later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mtdepth_ros.conversions.geometry import resize_intrinsics
from training.data.classes import CITYSCAPES_LABEL_IDS as IDS
from training.data.synth import objects, textures
from training.data.synth.lidar_sim import AZIMUTH_STEP_DEG, Scan, scan
from training.data.synth.raycast import (
    BOX,
    PinholeGrid,
    Primitive,
    cast,
    make_box,
    shadowed,
    yaw_rotation,
)
from training.data.synth.shading import (
    CameraResponse,
    Lighting,
    MaterialTable,
    PatternFn,
    expose,
    shade,
)

CAMERA_HEIGHT_M = 1.65  # KITTI's colour cameras are about 1.65 m above the road
FRAME_RATE_HZ = 10.0
KITTI_WIDTH, KITTI_HEIGHT = 1242, 375
# P_rect_02 of the KITTI raw drives of 2011_09_26 (calib_cam_to_cam.txt).
KITTI_FX = KITTI_FY = 721.5377
KITTI_CX, KITTI_CY = 609.5593, 172.854
VIEW_AHEAD_M = 220.0  # objects farther ahead than this are not generated or cast
VIEW_BEHIND_M = 15.0
PATTERN_MARKINGS, PATTERN_WINDOWS, PATTERN_SLATS, PATTERN_SHOPS = 1, 2, 3, 4
# Camera mount, per drive, uniform within these bounds around KITTI's; plus a bounce per frame.
MOUNT_HEIGHT_JITTER_M = 0.08
MOUNT_PITCH_DEG = 1.0
MOUNT_ROLL_DEG = 0.5
PITCH_BOUNCE_DEG = 0.3
# Regular patterns (bricks, tiles, cobbles) on facades, walls, sidewalks and some roads:
# a random tile size per material keeps texture density from telling distance.
FACADE_TEXTURES = (1, 2, 3, 7, textures.BRICKS, textures.TILES, textures.PLANKS, textures.BIG_TILES)
WALK_TEXTURES = (1, 2, 7, textures.TILES, textures.COBBLES, textures.BRICKS, textures.TILES)
COBBLED_ROAD_SHARE = 0.12
PARKING_RIGHT_SHARE = 0.75  # streets with a parking lane on the camera's side (KITTI drives on the right)
BACK_ROW_SHARE = {'city': 0.8, 'suburb': 0.4, 'green': 0.1}  # a second row of taller buildings
STYLES = ('city', 'suburb', 'green')
# Probability of a building / green block per side, per style.
BUILDING_SHARE = {'city': 0.85, 'suburb': 0.5, 'green': 0.15}


def kitti_intrinsics(width: int = KITTI_WIDTH, height: int = KITTI_HEIGHT) -> np.ndarray:
    """(3, 3) K of KITTI's left colour camera, scaled to ``width`` x ``height``."""
    kitti = np.array([[KITTI_FX, 0.0, KITTI_CX], [0.0, KITTI_FY, KITTI_CY], [0.0, 0.0, 1.0]])
    return resize_intrinsics(kitti, (KITTI_HEIGHT, KITTI_WIDTH), (height, width))


@dataclass
class Marking:
    x: float  # centre of the line across the road
    width: float
    dash: float  # painted length of a dash (ignored when solid)
    period: float  # dash + gap; 0 = solid line


@dataclass
class RoadLayout:
    lane_width: float
    lanes: int  # lane 0 is the camera's, lanes grow to the left
    x_left: float  # curbs
    x_right: float
    curb: float  # curb height: sidewalks lie at y = CAMERA_HEIGHT_M - curb
    walk_left: float  # outer sidewalk edges
    walk_right: float
    markings: list[Marking]


@dataclass(frozen=True)
class Mount:
    """How a drive's camera sits: height over the road, pitch (+ looks up) and roll, and
    the body's pitch bounce while driving (amplitude, angular frequency, phase)."""

    height: float = CAMERA_HEIGHT_M
    pitch: float = 0.0  # radians
    roll: float = 0.0
    bounce: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def random(cls, rng: np.random.Generator) -> Mount:
        return cls(CAMERA_HEIGHT_M + rng.uniform(-MOUNT_HEIGHT_JITTER_M, MOUNT_HEIGHT_JITTER_M),
                   float(np.deg2rad(rng.uniform(-MOUNT_PITCH_DEG, MOUNT_PITCH_DEG))),
                   float(np.deg2rad(rng.uniform(-MOUNT_ROLL_DEG, MOUNT_ROLL_DEG))),
                   (float(np.deg2rad(rng.uniform(0.0, PITCH_BOUNCE_DEG))),
                    float(rng.uniform(2.0, 9.0)), float(rng.uniform(0.0, 2 * np.pi))))

    def pitch_at(self, t: float) -> float:
        amplitude, omega, phase = self.bounce
        return self.pitch + amplitude * float(np.sin(omega * t + phase))

    def rotation(self, t: float) -> np.ndarray:
        """(3, 3) camera -> vehicle rotation at time ``t``: pitch about x, then roll about z."""
        pitch, roll = self.pitch_at(t), self.roll
        cp, sp, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
        about_x = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
        about_z = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
        return about_x @ about_z


@dataclass
class Mover:
    primitives: list[Primitive]
    speed: float  # m/s along +z


@dataclass
class RoadDrive:
    """One street: static and moving primitives, materials, light and the camera path."""

    layout: RoadLayout
    materials: MaterialTable
    lighting: Lighting
    static: list[Primitive]
    movers: list[Mover]
    speed: float
    sway: tuple[float, float, float]  # lateral amplitude (m), angular frequency (rad/s), phase
    yaw0: float
    patterns: dict[int, PatternFn] = field(default_factory=dict)
    mount: Mount = field(default_factory=Mount)

    def camera_pose(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Camera centre (3,) and camera->world rotation (3, 3) at ``frame``."""
        t = frame / FRAME_RATE_HZ
        amplitude, omega, phase = self.sway
        x = amplitude * np.sin(omega * t + phase)
        heading = np.arctan2(amplitude * omega * np.cos(omega * t + phase), self.speed)
        rotation = yaw_rotation(self.yaw0 + heading) @ self.mount.rotation(t)
        return np.array([x, CAMERA_HEIGHT_M - self.mount.height, self.speed * t]), rotation

    def primitives(self, frame: int) -> list[Primitive]:
        """Everything near the camera at ``frame``, movers moved to their place."""
        t = frame / FRAME_RATE_HZ
        z = self.speed * t
        near = [p for p in self.static if p.hi[2] > z - VIEW_BEHIND_M and p.lo[2] < z + VIEW_AHEAD_M]
        for mover in self.movers:
            shift = np.array([0.0, 0.0, mover.speed * t])
            for p in mover.primitives:
                lo, hi = p.lo + shift, p.hi + shift
                if hi[2] > z - VIEW_BEHIND_M and lo[2] < z + VIEW_AHEAD_M:
                    near.append(Primitive(p.kind, lo, hi, p.material, p.axis, p.casts_shadow))
        return near

    def primitive_materials(self, primitives: list[Primitive]) -> np.ndarray:
        return np.array([p.material for p in primitives], dtype=np.int64)


@dataclass
class RoadFrame:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    depth: np.ndarray  # (H, W) float32 metres, camera z; 0 = sky
    label_ids: np.ndarray  # (H, W) uint8 Cityscapes label ids
    scan: Scan  # LiDAR points in the LiDAR's camera-axes frame
    intrinsics: np.ndarray  # (3, 3)


def _markings_pattern(layout: RoadLayout, paint: np.ndarray) -> PatternFn:
    def paint_markings(points: np.ndarray, normals: np.ndarray, params: np.ndarray,
                       albedo: np.ndarray) -> np.ndarray:
        x, z = points[:, 0], points[:, 2]
        for marking in layout.markings:
            on = np.abs(x - marking.x) < marking.width / 2
            if marking.period > 0:
                on &= np.mod(z, marking.period) < marking.dash
            albedo[on] = paint * (0.85 + 0.3 * albedo[on] / max(float(albedo.mean()), 1e-3))
        return albedo
    return paint_markings


def _windows_pattern(points: np.ndarray, normals: np.ndarray, params: np.ndarray,
                     albedo: np.ndarray) -> np.ndarray:
    """Rows of windows on vertical faces: params = (floor height, spacing, width, height share)."""
    floor_h, spacing, width_share, height_share = params.T
    along = np.where(np.abs(normals[:, 0]) > 0.5, points[:, 2], points[:, 0])
    up = CAMERA_HEIGHT_M - points[:, 1]
    cell_u = np.mod(along, spacing) / spacing
    cell_v = np.mod(up, floor_h) / floor_h
    window = (np.abs(cell_u - 0.5) < width_share / 2) & (np.abs(cell_v - 0.55) < height_share / 2)
    window &= (np.abs(normals[:, 1]) < 0.5) & (up > 1.0)
    # Each window gets its own brightness (curtains, lit rooms, reflections).
    cell = np.floor(along / spacing) * 7.31 + np.floor(up / floor_h) * 3.17
    tone = 0.25 + 0.75 * np.mod(np.sin(cell) * 43758.5453, 1.0)
    glass = np.array([0.05, 0.07, 0.09]) * tone[:, None] * 2.0
    albedo[window] = glass[window]
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


def _lighting(rng: np.random.Generator) -> Lighting:
    overcast = rng.random() < 0.3
    elevation = np.deg2rad(rng.uniform(12.0, 65.0))
    azimuth = rng.uniform(0.0, 2 * np.pi)
    to_sun = np.array([np.cos(elevation) * np.sin(azimuth), -np.sin(elevation),
                       np.cos(elevation) * np.cos(azimuth)])
    warm = np.array([1.0, rng.uniform(0.85, 0.97), rng.uniform(0.65, 0.9)])
    sun = warm * (rng.uniform(0.2, 0.6) if overcast else rng.uniform(1.5, 3.5))
    ambient = np.array([0.45, 0.5, 0.6]) * rng.uniform(0.5, 1.0) * (2.0 if overcast else 1.0)
    zenith = np.array([0.15, 0.3, 0.75]) if not overcast else np.array([0.55, 0.58, 0.62])
    horizon = np.array([0.6, 0.7, 0.85]) if not overcast else np.array([0.75, 0.76, 0.78])
    brightness = rng.uniform(0.7, 1.6)
    return Lighting(to_sun, sun, ambient, zenith * brightness, horizon * brightness)


def _layout(rng: np.random.Generator) -> RoadLayout:
    lane_width = rng.uniform(2.9, 3.75)
    lanes = int(rng.choice([2, 2, 3, 4]))
    parking_right = rng.uniform(2.0, 2.5) if rng.random() < PARKING_RIGHT_SHARE else rng.uniform(0.0, 0.5)
    parking_left = rng.uniform(2.0, 2.5) if rng.random() < 0.6 else rng.uniform(0.0, 0.5)
    x_right = lane_width / 2 + parking_right
    x_left = -(lane_width / 2 + (lanes - 1) * lane_width + parking_left)
    line = rng.uniform(0.1, 0.16)
    dash, period = (3.0, 9.0) if rng.random() < 0.6 else (6.0, 18.0)
    markings = [Marking(lane_width / 2 - k * lane_width, line, dash, period) for k in range(1, lanes)]
    if lanes == 4 and rng.random() < 0.5:
        markings[1].period = 0.0  # solid line between the directions
    if rng.random() < 0.5:  # edge lines
        markings += [Marking(lane_width / 2 + line, line, 0, 0),
                     Marking(-(lane_width / 2 + (lanes - 1) * lane_width) - line, line, 0, 0)]
    curb = rng.uniform(0.08, 0.18)
    return RoadLayout(lane_width, lanes, x_left, x_right, curb,
                      x_left - rng.uniform(1.5, 4.5), x_right + rng.uniform(1.5, 4.5), markings)


def _ground(rng: np.random.Generator, layout: RoadLayout, materials: MaterialTable) -> list[Primitive]:
    if rng.random() < COBBLED_ROAD_SHARE:
        asphalt = materials.add(np.full(3, rng.uniform(0.06, 0.15)) * rng.uniform(0.9, 1.1, 3),
                                IDS['road'], texture=textures.COBBLES, scale=rng.uniform(0.8, 2.5),
                                amplitude=rng.uniform(0.3, 0.6), pattern=PATTERN_MARKINGS,
                                reflectance=0.15)
    else:
        asphalt = materials.add(np.full(3, rng.uniform(0.04, 0.12)) * rng.uniform(0.95, 1.05, 3),
                                IDS['road'], texture=int(rng.choice([0, 1, 5])),
                                scale=rng.uniform(2.0, 8.0), amplitude=rng.uniform(0.2, 0.5),
                                pattern=PATTERN_MARKINGS, reflectance=0.15)
    walk_texture = int(rng.choice(WALK_TEXTURES))
    walk_scale = rng.uniform(0.6, 3.0) if walk_texture >= textures.NUM_NOISE else rng.uniform(1.0, 4.0)
    walk = materials.add(np.full(3, rng.uniform(0.12, 0.35)) * rng.uniform(0.85, 1.15, 3),
                         IDS['sidewalk'], texture=walk_texture, scale=walk_scale,
                         amplitude=rng.uniform(0.15, 0.5), reflectance=0.3)
    curb = materials.add(np.full(3, rng.uniform(0.25, 0.45)), IDS['sidewalk'], texture=2,
                         amplitude=0.2, reflectance=0.3)
    g, top = CAMERA_HEIGHT_M, CAMERA_HEIGHT_M - layout.curb
    inf = np.inf
    return [make_box((layout.x_left, g, -inf), (layout.x_right, g, inf), asphalt, casts_shadow=False),
            make_box((layout.x_left, top, -inf), (layout.x_left, g, inf), curb, casts_shadow=False),
            make_box((layout.x_right, top, -inf), (layout.x_right, g, inf), curb, casts_shadow=False),
            make_box((layout.walk_left, top, -inf), (layout.x_left, top, inf), walk, casts_shadow=False),
            make_box((layout.x_right, top, -inf), (layout.walk_right, top, inf), walk, casts_shadow=False)]


def _facade_material(rng: np.random.Generator, materials: MaterialTable) -> int:
    base = rng.uniform(0.1, 0.65) * np.array([1.0, rng.uniform(0.75, 1.0), rng.uniform(0.55, 1.0)])
    if rng.random() < 0.25:  # brick
        base = np.array([0.3, 0.1, 0.06]) * rng.uniform(0.6, 1.3)
    texture = int(rng.choice(FACADE_TEXTURES))
    # A pattern tile holds several bricks or tiles: 0.5-4 m per tile = 6-50 cm bricks.
    scale = rng.uniform(0.5, 4.0) if texture >= textures.NUM_NOISE else rng.uniform(2.0, 8.0)
    params = (rng.uniform(2.8, 4.0), rng.uniform(1.4, 4.5), rng.uniform(0.2, 0.7), rng.uniform(0.3, 0.7))
    return materials.add(base, IDS['building'], texture=texture, scale=scale,
                         amplitude=rng.uniform(0.1, 0.6),
                         pattern=PATTERN_SHOPS if rng.random() < 0.4 else PATTERN_WINDOWS,
                         params=params, reflectance=0.35)


def _building(rng: np.random.Generator, materials: MaterialTable, x_near: float, x_far: float,
              z0: float, z1: float, top: float, height: float) -> list[Primitive]:
    """A block, sometimes with a cornice along the top of its street face."""
    material = _facade_material(rng, materials)
    lo, hi = min(x_near, x_far), max(x_near, x_far)
    prims = [make_box((lo, top - height, z0), (hi, top, z1), material)]
    if rng.random() < 0.5:
        out = rng.uniform(0.15, 0.5) * np.sign(x_near - x_far)
        trim = materials.add(np.full(3, rng.uniform(0.2, 0.6)), IDS['building'], texture=2,
                             amplitude=0.2, reflectance=0.35)
        band = rng.uniform(0.2, 0.6)
        prims.append(make_box((min(x_near, x_near + out), top - height, z0),
                              (max(x_near, x_near + out), top - height + band, z1), trim))
    return prims


def _side(rng: np.random.Generator, layout: RoadLayout, materials: MaterialTable, side: int,
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
        if rng.random() < BUILDING_SHARE[style]:
            setback = 0.0 if style == 'city' and rng.random() < 0.7 else rng.uniform(0.5, 6.0)
            depth, height = rng.uniform(8.0, 18.0), rng.uniform(5.0, 26.0)
            gap = rng.uniform(0.0, 5.0) if rng.random() < 0.5 else 0.0
            x_near, x_far = edge + side * setback, edge + side * (setback + depth)
            prims += _building(rng, materials, x_near, x_far, z, z + length - gap, top, height)
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


def _street_furniture(rng: np.random.Generator, layout: RoadLayout, materials: MaterialTable,
                      side: int, z0: float, z1: float) -> list[Primitive]:
    top = CAMERA_HEIGHT_M - layout.curb
    curb_x = layout.x_right if side > 0 else layout.x_left
    walk_x = layout.walk_right if side > 0 else layout.walk_left
    prims: list[Primitive] = []
    spacing = rng.uniform(20.0, 45.0)
    for z in np.arange(z0 + rng.uniform(0, spacing), z1, spacing):
        prims += objects.street_light(rng, materials, curb_x + side * 0.5, z, top, -side)
    for z in rng.uniform(z0, z1, rng.poisson((z1 - z0) / 60.0)):
        prims += objects.sign(rng, materials, curb_x + side * 0.4, z, top)
    if abs(walk_x - curb_x) > 2.5 and rng.random() < 0.5:
        tree_spacing = rng.uniform(8.0, 16.0)
        for z in np.arange(z0 + rng.uniform(0, tree_spacing), z1, tree_spacing):
            prims += objects.tree(rng, materials, curb_x + side * 1.2, z, top)
    for z in rng.uniform(z0, z1, rng.poisson((z1 - z0) / 40.0)):
        prims += objects.person(rng, materials, curb_x + side * rng.uniform(0.8, abs(walk_x - curb_x)),
                                z, top)
    return prims


def _parked(rng: np.random.Generator, layout: RoadLayout, materials: MaterialTable, side: int,
            z0: float, z1: float) -> list[Primitive]:
    """A row of cars along the kerb, as on KITTI's residential streets: its fill and the
    gaps between bumpers are drawn per row, some rows almost bumper to bumper."""
    curb_x = layout.x_right if side > 0 else layout.x_left
    lane_edge = layout.lane_width / 2 if side > 0 else -(layout.lane_width / 2
                                                          + (layout.lanes - 1) * layout.lane_width)
    if abs(curb_x - lane_edge) < 1.8:
        return []
    fill = rng.uniform(0.5, 0.95)
    prims: list[Primitive] = []
    z = z0 + rng.uniform(0, 10)
    while z < z1:
        kind = 'car' if rng.random() < 0.9 else 'truck'
        length = rng.uniform(3.8, 4.9) if kind == 'car' else rng.uniform(5.0, 8.0)
        if rng.random() < fill:
            prims += objects.vehicle(rng, materials, curb_x - side * rng.uniform(0.9, 1.3),
                                     z + length / 2, CAMERA_HEIGHT_M, kind, length)
        z += length + rng.uniform(0.4, 2.5)
    return prims


def _traffic(rng: np.random.Generator, layout: RoadLayout, materials: MaterialTable,
             speed: float, length: float) -> list[Mover]:
    movers = []
    oncoming_from = (layout.lanes + 1) // 2
    for lane in range(layout.lanes):
        x = -lane * layout.lane_width
        oncoming = lane >= oncoming_from
        for _ in range(rng.poisson(length / 60.0 + 1.0)):
            kind = str(rng.choice(['car'] * 8 + ['truck', 'bus']))
            if oncoming:
                v = -rng.uniform(6.0, 15.0)
                z = rng.uniform(10.0, length + VIEW_AHEAD_M - v * length / max(speed, 1.0))
            elif lane == 0:  # ahead of the camera, never slower, so never reached
                v = speed * rng.uniform(1.0, 1.3)
                z = rng.uniform(14.0, VIEW_AHEAD_M)
            else:
                v = speed * rng.uniform(0.6, 1.3)
                z = rng.uniform(-20.0, VIEW_AHEAD_M + length)
            movers.append(Mover(objects.vehicle(rng, materials, x + rng.normal(0, 0.2), z,
                                                CAMERA_HEIGHT_M, kind), v))
    return movers


def make_drive(rng: np.random.Generator, frames: int) -> RoadDrive:
    """A street long enough for ``frames`` frames of driving, with its traffic and light."""
    layout = _layout(rng)
    materials = MaterialTable()
    materials.add((0, 0, 0), IDS['unlabeled'])  # row 0 unused: keeps ids of real rows > 0
    speed = rng.uniform(4.0, 14.0)
    length = speed * frames / FRAME_RATE_HZ
    z0, z1 = -VIEW_BEHIND_M - 20.0, length + VIEW_AHEAD_M
    style = str(rng.choice(STYLES))
    static = _ground(rng, layout, materials)
    for side in (-1, 1):
        static += _side(rng, layout, materials, side, z0, z1, style)
        static += _street_furniture(rng, layout, materials, side, z0, z1)
        static += _parked(rng, layout, materials, side, z0, z1)
    movers = _traffic(rng, layout, materials, speed, length)
    paint = np.array([0.7, 0.7, 0.68]) * rng.uniform(0.6, 1.0)
    if rng.random() < 0.15:
        paint = np.array([0.75, 0.6, 0.1])  # yellow construction-site lines
    patterns = {PATTERN_MARKINGS: _markings_pattern(layout, paint),
                PATTERN_WINDOWS: _windows_pattern, PATTERN_SLATS: _slats_pattern,
                PATTERN_SHOPS: _shops_pattern}
    sway = (rng.uniform(0.0, 0.4), rng.uniform(0.1, 0.5), rng.uniform(0, 2 * np.pi))
    return RoadDrive(layout, materials, _lighting(rng), static, movers, speed, sway,
                     float(np.deg2rad(rng.normal(0.0, 2.0))), patterns, Mount.random(rng))


def render_frame(drive: RoadDrive, frame: int, width: int, height: int, intrinsics: np.ndarray,
                 rng: np.random.Generator, velodyne_in_camera: np.ndarray) -> RoadFrame:
    """Image, dense depth, labels and a LiDAR sweep of one frame of a drive."""
    origin, rotation = drive.camera_pose(frame)
    primitives = drive.primitives(frame)
    grid = PinholeGrid(width, height, intrinsics, origin, rotation)
    hits = cast(grid, primitives)
    depth = np.where(hits.valid, hits.t, 0.0).astype(np.float32)
    material = drive.primitive_materials(primitives)
    labels = np.full((height, width), IDS['sky'], dtype=np.uint8)
    labels[hits.valid] = drive.materials.column('label')[material[hits.primitive[hits.valid]]]
    shadow = shadowed(grid, hits, primitives, drive.lighting.to_sun, CAMERA_HEIGHT_M)
    radiance = shade(hits, grid.dirs, depth, float(intrinsics[0, 0]), material, drive.materials,
                     drive.lighting, shadow, drive.patterns)
    image = expose(radiance, CameraResponse.random(rng, artefacts=True), rng)
    half_fov = float(np.arctan(max(intrinsics[0, 2], width - intrinsics[0, 2]) / intrinsics[0, 0]))
    reflectance = drive.materials.column('reflectance')[material] if len(material) else np.zeros(0)
    lidar_origin = origin + rotation @ velodyne_in_camera
    # Images rendered smaller than KITTI get proportionally coarser azimuth steps, so a
    # downscaled tree keeps about KITTI's share of pixels with a LiDAR point per row.
    azimuth_step = AZIMUTH_STEP_DEG * max(1.0, KITTI_WIDTH / width)
    sweep = scan(primitives, reflectance, lidar_origin, rotation, half_fov, rng, azimuth_step)
    return RoadFrame(image, depth, labels, sweep, intrinsics)


__all__ = ['BOX', 'Mount', 'RoadDrive', 'RoadFrame', 'make_drive', 'render_frame', 'kitti_intrinsics']
