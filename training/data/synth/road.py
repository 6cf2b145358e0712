"""Procedural road scenes: a drive along a street, rendered like KITTI's left colour camera.

World frame = the nominal camera's at time 0: x right, y down, z forward
along the road; the road surface is the plane y = CAMERA_HEIGHT_M. Each drive
mounts the camera a little differently around KITTI's (height within
MOUNT_HEIGHT_JITTER_M of 1.65 m, pitch within MOUNT_PITCH_DEG, roll within
MOUNT_ROLL_DEG), and the body pitches by up to PITCH_BOUNCE_DEG more while it
drives (`rig.py`), so the horizon is not always on the same row; the LiDAR moves with the
camera (a rigid rig). The depth of a road pixel is the camera height over the
camera-frame ray's drop towards the road (``CAMERA_HEIGHT_M * fy / (v - cy)``
for a level camera at 1.65 m). A drive is one street with its objects, light
and traffic; frame i is the camera ``i / FRAME_RATE_HZ`` seconds later.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from training.data.classes import CITYSCAPES_LABEL_IDS as IDS
from training.data.synth import car, objects, textures
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
from training.data.synth.rig import (
    CAMERA_HEIGHT_M,
    FRAME_RATE_HZ,
    KITTI_WIDTH,
    Mount,
)
from training.data.synth.roadside import (
    PATTERNS,
    STREET_END_BEYOND_M,
    STREET_END_WALK_M,
    STYLES,
    sidewalk_material,
    street_end,
    street_side,
)
from training.data.synth.shading import (
    CameraResponse,
    Lighting,
    MaterialTable,
    PatternFn,
    expose,
    shade,
)

VIEW_AHEAD_M = 220.0  # objects farther ahead than this are not generated or cast
VIEW_BEHIND_M = 15.0
PATTERN_MARKINGS = 1  # before roadside.PATTERNS
SURROUNDINGS_ALBEDO = 0.2  # of the street that cars' paint and glass reflect
COBBLED_ROAD_SHARE = 0.12  # cobbles of a random size (sidewalks, facades: roadside.py)
PARKING_RIGHT_SHARE = 0.75  # streets with a parking lane on the camera's side (KITTI drives on the right)
# Narrow residential streets (one lane, parked cars both sides: much of KITTI's residential
# drives), and the share of their sides with a parking lane.
NARROW_STREET_SHARE = 0.2
NARROW_LANE_M = (3.0, 4.2)
NARROW_PARKING_SHARE = 0.9
# Streets that end ahead at a row of buildings across them (a T junction), the row this far
# beyond the camera's place at the drive's last frame.
STREET_END_SHARE = 0.3
# Avenues: rows of old trees along both kerbs, their crowns leaning over the road.
AVENUE_SHARE = 0.3
AVENUE_SPACING_M = (7.0, 13.0)
AVENUE_LEAN_M = (0.5, 3.0)  # towards the road
STREET_END_M = (12.0, 80.0)


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
                    near.append(replace(p, lo=lo, hi=hi))
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
    # The street in reflections: facades of a typical albedo lit by sky and (partly) sun.
    surroundings = SURROUNDINGS_ALBEDO * (ambient + 0.3 * sun) * rng.uniform(0.8, 1.25, 3)
    return Lighting(to_sun, sun, ambient, zenith * brightness, horizon * brightness,
                    surroundings=surroundings)


def _layout(rng: np.random.Generator) -> RoadLayout:
    if rng.random() < NARROW_STREET_SHARE:
        return _narrow_layout(rng)
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


def _narrow_layout(rng: np.random.Generator) -> RoadLayout:
    """A residential street of one unmarked lane between rows of parked cars, the camera
    driving down its middle, the cars a couple of metres from it on either side."""
    lane_width = rng.uniform(*NARROW_LANE_M)
    parking = [rng.uniform(2.0, 2.5) if rng.random() < NARROW_PARKING_SHARE else rng.uniform(0.0, 0.5)
               for _ in range(2)]
    x_left, x_right = -(lane_width / 2 + parking[0]), lane_width / 2 + parking[1]
    return RoadLayout(lane_width, 1, x_left, x_right, rng.uniform(0.08, 0.18),
                      x_left - rng.uniform(1.5, 3.5), x_right + rng.uniform(1.5, 3.5), [])


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
    walk = sidewalk_material(rng, materials)
    curb = materials.add(np.full(3, rng.uniform(0.25, 0.45)), IDS['sidewalk'], texture=2,
                         amplitude=0.2, reflectance=0.3)
    g, top = CAMERA_HEIGHT_M, CAMERA_HEIGHT_M - layout.curb
    inf = np.inf
    return [make_box((layout.x_left, g, -inf), (layout.x_right, g, inf), asphalt, casts_shadow=False),
            make_box((layout.x_left, top, -inf), (layout.x_left, g, inf), curb, casts_shadow=False),
            make_box((layout.x_right, top, -inf), (layout.x_right, g, inf), curb, casts_shadow=False),
            make_box((layout.walk_left, top, -inf), (layout.x_left, top, inf), walk, casts_shadow=False),
            make_box((layout.x_right, top, -inf), (layout.walk_right, top, inf), walk, casts_shadow=False)]


def _street_furniture(rng: np.random.Generator, layout: RoadLayout, materials: MaterialTable,
                      side: int, z0: float, z1: float, avenue: bool = False) -> list[Primitive]:
    """Street lights, signs, people and trees along one side's sidewalk: on an avenue a
    row of old trees along the kerb, else sometimes young ones where the sidewalk is wide."""
    top = CAMERA_HEIGHT_M - layout.curb
    curb_x = layout.x_right if side > 0 else layout.x_left
    walk_x = layout.walk_right if side > 0 else layout.walk_left
    prims: list[Primitive] = []
    spacing = rng.uniform(20.0, 45.0)
    for z in np.arange(z0 + rng.uniform(0, spacing), z1, spacing):
        prims += objects.street_light(rng, materials, curb_x + side * 0.5, z, top, -side)
    for z in rng.uniform(z0, z1, rng.poisson((z1 - z0) / 60.0)):
        prims += objects.sign(rng, materials, curb_x + side * 0.4, z, top)
    if avenue:
        tree_spacing = rng.uniform(*AVENUE_SPACING_M)
        for z in np.arange(z0 + rng.uniform(0, tree_spacing), z1, tree_spacing):
            prims += objects.tree(rng, materials, curb_x + side * rng.uniform(0.8, 1.5), z, top,
                                  objects.AVENUE_TREE, -side * rng.uniform(*AVENUE_LEAN_M))
    elif abs(walk_x - curb_x) > 2.5 and rng.random() < 0.5:
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
            prims += car.vehicle(rng, materials, curb_x - side * rng.uniform(0.9, 1.3),
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
            movers.append(Mover(car.vehicle(rng, materials, x + rng.normal(0, 0.2), z,
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
    avenue = bool(rng.random() < AVENUE_SHARE)
    static = _ground(rng, layout, materials)
    end = length + rng.uniform(*STREET_END_M) if rng.random() < STREET_END_SHARE else None
    if end is not None:
        static += street_end(rng, layout, materials, end)
        z1 = min(z1, end + STREET_END_BEYOND_M)
    for side in (-1, 1):
        static += street_side(rng, layout, materials, side, z0, z1, style)
        static += _street_furniture(rng, layout, materials, side, z0, z1, avenue)
        static += _parked(rng, layout, materials, side, z0, z1)
    movers = _traffic(rng, layout, materials, speed, length)
    if end is not None:  # no car drives into or out of the buildings across the street
        duration = frames / FRAME_RATE_HZ
        movers = [m for m in movers
                  if max(p.hi[2] for p in m.primitives) + max(m.speed, 0.0) * duration
                  < end - STREET_END_WALK_M[1] - 1.0]
    paint = np.array([0.7, 0.7, 0.68]) * rng.uniform(0.6, 1.0)
    if rng.random() < 0.15:
        paint = np.array([0.75, 0.6, 0.1])  # yellow construction-site lines
    patterns = {PATTERN_MARKINGS: _markings_pattern(layout, paint), **PATTERNS, **car.PATTERNS}
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


__all__ = ['BOX', 'RoadDrive', 'RoadFrame', 'make_drive', 'render_frame']
