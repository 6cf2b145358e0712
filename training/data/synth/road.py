"""Procedural road scenes: a drive along a street, rendered like KITTI's left colour camera.

World frame = the camera's at time 0: x right, y down, z forward along the
road; the road surface is the plane y = CAMERA_HEIGHT_M, the camera is level
(no pitch or roll, as KITTI's rectified camera nearly is), so the depth of a
road pixel (u, v) is exactly ``CAMERA_HEIGHT_M * fy / (v - cy)``. A drive is
one street with its objects, light and traffic; frame i is the camera
``i / FRAME_RATE_HZ`` seconds later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mtdepth_ros.conversions.geometry import resize_intrinsics
from training.data.classes import CITYSCAPES_LABEL_IDS as IDS
from training.data.synth import objects
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
PATTERN_MARKINGS, PATTERN_WINDOWS, PATTERN_SLATS = 1, 2, 3
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

    def camera_pose(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Camera centre (3,) and camera->world rotation (3, 3) at ``frame``."""
        t = frame / FRAME_RATE_HZ
        amplitude, omega, phase = self.sway
        x = amplitude * np.sin(omega * t + phase)
        heading = np.arctan2(amplitude * omega * np.cos(omega * t + phase), self.speed)
        return np.array([x, 0.0, self.speed * t]), yaw_rotation(self.yaw0 + heading)

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
    parking_right = rng.uniform(2.0, 2.5) if rng.random() < 0.6 else rng.uniform(0.0, 0.5)
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
    asphalt = materials.add(np.full(3, rng.uniform(0.04, 0.12)) * rng.uniform(0.95, 1.05, 3),
                            IDS['road'], texture=int(rng.choice([0, 1, 5])), scale=rng.uniform(2.0, 8.0),
                            amplitude=rng.uniform(0.2, 0.5), pattern=PATTERN_MARKINGS, reflectance=0.15)
    walk = materials.add(np.full(3, rng.uniform(0.12, 0.35)) * rng.uniform(0.85, 1.15, 3),
                         IDS['sidewalk'], texture=int(rng.choice([1, 2, 7])), scale=rng.uniform(1.0, 4.0),
                         amplitude=rng.uniform(0.15, 0.45), reflectance=0.3)
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
    base = rng.uniform(0.15, 0.6) * np.array([1.0, rng.uniform(0.8, 1.0), rng.uniform(0.6, 1.0)])
    if rng.random() < 0.25:  # brick
        base = np.array([0.3, 0.1, 0.06]) * rng.uniform(0.6, 1.3)
    params = (rng.uniform(2.8, 3.6), rng.uniform(1.8, 4.0), rng.uniform(0.3, 0.6), rng.uniform(0.35, 0.6))
    return materials.add(base, IDS['building'], texture=int(rng.choice([1, 2, 3, 7])),
                         scale=rng.uniform(2.0, 8.0), amplitude=rng.uniform(0.1, 0.4),
                         pattern=PATTERN_WINDOWS, params=params, reflectance=0.35)


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
            prims.append(make_box((min(x_near, x_far), top - height, z),
                                  (max(x_near, x_far), top, z + length - gap),
                                  _facade_material(rng, materials)))
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
    curb_x = layout.x_right if side > 0 else layout.x_left
    lane_edge = layout.lane_width / 2 if side > 0 else -(layout.lane_width / 2
                                                          + (layout.lanes - 1) * layout.lane_width)
    if abs(curb_x - lane_edge) < 1.8:
        return []
    prims: list[Primitive] = []
    z = z0 + rng.uniform(0, 10)
    while z < z1:
        if rng.random() < 0.75:
            kind = 'car' if rng.random() < 0.9 else 'truck'
            prims += objects.vehicle(rng, materials, curb_x - side * rng.uniform(1.0, 1.3), z + 3.0,
                                     CAMERA_HEIGHT_M, kind)
        z += rng.uniform(5.5, 12.0)
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
                PATTERN_WINDOWS: _windows_pattern, PATTERN_SLATS: _slats_pattern}
    sway = (rng.uniform(0.0, 0.4), rng.uniform(0.1, 0.5), rng.uniform(0, 2 * np.pi))
    return RoadDrive(layout, materials, _lighting(rng), static, movers, speed, sway,
                     float(np.deg2rad(rng.normal(0.0, 2.0))), patterns)


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
    image = expose(radiance, CameraResponse.random(rng), rng)
    half_fov = float(np.arctan(max(intrinsics[0, 2], width - intrinsics[0, 2]) / intrinsics[0, 0]))
    reflectance = drive.materials.column('reflectance')[material] if len(material) else np.zeros(0)
    lidar_origin = origin + rotation @ velodyne_in_camera
    # Images rendered smaller than KITTI get proportionally coarser azimuth steps, so a
    # downscaled tree keeps about KITTI's share of pixels with a LiDAR point per row.
    azimuth_step = AZIMUTH_STEP_DEG * max(1.0, KITTI_WIDTH / width)
    sweep = scan(primitives, reflectance, lidar_origin, rotation, half_fov, rng, azimuth_step)
    return RoadFrame(image, depth, labels, sweep, intrinsics)


__all__ = ['BOX', 'RoadDrive', 'RoadFrame', 'make_drive', 'render_frame', 'kitti_intrinsics']
