"""Primitives, ray grids and a z-buffered ray caster over them.

A scene is a list of :class:`Primitive` (boxes, rooms seen from inside,
ellipsoids, cylinders, gable roofs; all axis-aligned in the world frame). A ray grid is a
2-D array of rays from one origin: the camera's pixels
(:class:`PinholeGrid`) or a spinning LiDAR's beams and azimuth steps
(:class:`SphericalGrid`). Each primitive is intersected only with the rays in
the window of the grid its bounding box can reach, so a small far object
costs little. The Python loop is over primitives, never over rays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from training.data.synth import geometry, textures

BOX, ROOM, ELLIPSOID, CYLINDER, GABLE = range(5)
NEAR = 0.05  # metres; bounding-box corners closer to the sensor plane than this disable culling
_WINDOW_MARGIN = 1  # grid cells added around a projected bounding box
SHADOW_RANGE_M = 90.0  # casters farther from the camera than this cast no shadow (a few pixels)
# Sun flecks under leaves: where a shadow ray enters a crown, a blotchy noise texture
# (tiles of this many metres) decides whether it passes through a gap.
LEAF_GAP_TEXTURE = 2  # textures.TEXTURE_KINDS[2]: 1/f^1.6 noise, blotches of decimetres
LEAF_GAP_TILE_M = 3.0
# Corner pairs of the 12 box edges (corners are numbered by their (x, y, z) bits, x = 4).
_CORNER_BITS = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
_EDGES = np.array([(a, a | bit) for bit in (1, 2, 4) for a in range(8) if not a & bit])


@dataclass
class Primitive:
    kind: int  # BOX, ROOM, ELLIPSOID, CYLINDER or GABLE
    lo: np.ndarray  # (3,) bounding box, world frame
    hi: np.ndarray  # (3,)
    material: int  # row of the scene's material table
    axis: int = 1  # cylinder axis (0 x, 1 y, 2 z); a gable roof's ridge (0 x, 2 z)
    casts_shadow: bool = True
    rise: float = 0.0  # a gable's slopes' rise over its base (0: to the box's top)
    dapple: float = 0.0  # share of sunlight let through gaps (leaves); 0: a solid caster

    def __post_init__(self) -> None:
        # float32 copies: the rays are float32 and mixing would promote every ray array.
        self.lo32 = self.lo.astype(np.float32)
        self.hi32 = self.hi.astype(np.float32)
        flat = np.flatnonzero(self.lo == self.hi)
        self.flat_axis = int(flat[0]) if self.kind == BOX and len(flat) else -1

    def t(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        """(N,) ray parameter of the first hit, inf on a miss."""
        o, d = np.broadcast_arrays(o, d)
        if self.flat_axis >= 0:
            return geometry.rect_t(self.flat_axis, self.lo32, self.hi32, o, d)
        if self.kind in (BOX, ROOM):
            return geometry.box_t(self.lo32, self.hi32, o, d, inside=self.kind == ROOM)
        if self.kind == GABLE:
            return geometry.gable_t(self.lo32, self.hi32, self.axis, o, d, self.rise)
        centre = (self.lo32 + self.hi32) / 2
        if self.kind == ELLIPSOID:
            return geometry.ellipsoid_t(centre, (self.hi32 - self.lo32) / 2, o, d)
        return geometry.cylinder_t(centre, self._radius(), self.axis, float(self.lo[self.axis]),
                                   float(self.hi[self.axis]), o, d)

    def normal(self, points: np.ndarray, d: np.ndarray) -> np.ndarray:
        """(N, 3) unit normals at hit points (N, 3), facing the rays."""
        if self.flat_axis >= 0:  # a rectangle: one normal, turned towards each ray
            normal = np.zeros(points.shape, dtype=np.float32)
            normal[:, self.flat_axis] = -np.sign(np.broadcast_to(d, points.shape)[:, self.flat_axis])
            return normal
        if self.kind in (BOX, ROOM):
            return geometry.box_normal(self.lo, self.hi, points, d)
        if self.kind == GABLE:
            return geometry.gable_normal(self.lo, self.hi, self.axis, points, d, self.rise)
        centre = (self.lo + self.hi) / 2
        if self.kind == ELLIPSOID:
            return geometry.ellipsoid_normal(centre, (self.hi - self.lo) / 2, points)
        return geometry.cylinder_normal(centre, self._radius(), self.axis, float(self.lo[self.axis]),
                                        float(self.hi[self.axis]), points, d)

    def _radius(self) -> float:
        return float((self.hi - self.lo)[(self.axis + 1) % 3]) / 2

    def corners(self) -> np.ndarray:
        """(8, 3) corners of the bounding box (infinite extents clipped far away); computed
        once: a static primitive is culled against every frame's camera and shadow rays."""
        cached: np.ndarray | None = self.__dict__.get('_corners')
        if cached is None:
            lo = np.clip(self.lo, -1e4, 1e4)
            hi = np.clip(self.hi, -1e4, 1e4)
            cached = np.where(_CORNER_BITS == 0, lo, hi)
            self.__dict__['_corners'] = cached
        return cached


def make_box(lo: tuple[float, float, float] | np.ndarray, hi: tuple[float, float, float] | np.ndarray,
             material: int, kind: int = BOX, axis: int = 1, casts_shadow: bool = True) -> Primitive:
    return Primitive(kind, np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64),
                     material, axis, casts_shadow)


def yaw_rotation(yaw: float) -> np.ndarray:
    """(3, 3) rotation about the vertical (y) axis; positive yaw turns the view to the right."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


class PinholeGrid:
    """One ray per pixel centre; direction scaled so its camera-frame z is 1 (t = depth)."""

    def __init__(self, width: int, height: int, intrinsics: np.ndarray, origin: np.ndarray,
                 rotation: np.ndarray) -> None:
        self.width, self.height = width, height
        self.intrinsics = intrinsics
        self.origin = np.asarray(origin, dtype=np.float64)
        self.rotation = rotation  # camera -> world
        fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
        u = (np.arange(width, dtype=np.float64) - cx) / fx
        v = (np.arange(height, dtype=np.float64) - cy) / fy
        cam = np.empty((height, width, 3))
        cam[..., 0] = u[None, :]
        cam[..., 1] = v[:, None]
        cam[..., 2] = 1.0
        self.dirs = (cam @ rotation.T).astype(np.float32)  # (H, W, 3) world

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    def to_sensor(self, points: np.ndarray) -> np.ndarray:
        return (points - self.origin) @ self.rotation

    def window(self, corners: np.ndarray) -> tuple[slice, slice] | None:
        """Rows and columns whose rays can reach the box with these (8, 3) corners."""
        cam = front_part(self.to_sensor(corners))
        if cam is None:
            return None
        k = self.intrinsics
        u = k[0, 0] * cam[:, 0] / cam[:, 2] + k[0, 2]
        v = k[1, 1] * cam[:, 1] / cam[:, 2] + k[1, 2]
        return _slices(v.min(), v.max(), self.height, u.min(), u.max(), self.width)

    def min_t(self, points: np.ndarray) -> float:
        """A lower bound of t (= camera z) over the convex hull of ``points``."""
        return float(self.to_sensor(points)[:, 2].min())


class SphericalGrid:
    """A spinning scanner's rays: beams (rows, elevation descending) x azimuth steps."""

    def __init__(self, elevations: np.ndarray, azimuths: np.ndarray, origin: np.ndarray,
                 rotation: np.ndarray) -> None:
        self.elevations = np.asarray(elevations, dtype=np.float64)  # (B,) radians, descending
        self.azimuths = np.asarray(azimuths, dtype=np.float64)  # (A,) radians, ascending, 0 = +z
        self.origin = np.asarray(origin, dtype=np.float64)
        self.rotation = rotation  # sensor (camera-like axes) -> world
        el, az = np.meshgrid(self.elevations, self.azimuths, indexing='ij')
        sensor = np.stack([np.cos(el) * np.sin(az), -np.sin(el), np.cos(el) * np.cos(az)], axis=-1)
        self.dirs = (sensor @ rotation.T).astype(np.float32)  # (B, A, 3) world, unit (t = range)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.elevations), len(self.azimuths)

    def to_sensor(self, points: np.ndarray) -> np.ndarray:
        return (points - self.origin) @ self.rotation

    def window(self, corners: np.ndarray) -> tuple[slice, slice] | None:
        sensor = front_part(self.to_sensor(corners))
        if sensor is None:
            return None
        # x/z and -y/z are projective, so their ranges over the corners bound the
        # hull exactly; tan(elevation) = (-y/z) * f with f in [f_min, 1].
        tan_az = sensor[:, 0] / sensor[:, 2]
        rise = -sensor[:, 1] / sensor[:, 2]
        f_min = 1.0 / np.sqrt(1.0 + (tan_az ** 2).max())
        candidates = np.array([rise.min(), rise.max(), rise.min() * f_min, rise.max() * f_min])
        el_lo, el_hi = np.arctan(candidates.min()), np.arctan(candidates.max())
        az_lo, az_hi = np.arctan(tan_az.min()), np.arctan(tan_az.max())
        cols = np.searchsorted(self.azimuths, [az_lo, az_hi])
        rows = np.searchsorted(-self.elevations, [-el_hi, -el_lo])
        return _slices(rows[0] - 1, rows[1], len(self.elevations),
                       cols[0] - 1, cols[1], len(self.azimuths))

    def min_t(self, points: np.ndarray) -> float:
        """A lower bound of t (= range): the distance from the origin to the points' bounding box."""
        gap = np.maximum(np.maximum(points.min(axis=0) - self.origin, self.origin - points.max(axis=0)), 0)
        return float(np.linalg.norm(gap))


def front_part(corners: np.ndarray) -> np.ndarray | None:
    """Vertices of the part of a box (8 corners, sensor frame) in front of the plane z = NEAR.

    The corners in front plus the points where the box edges cross the plane:
    their projection bounds the visible part exactly, where clipping nothing
    would make every box beside the camera fill the whole grid.
    """
    front = corners[:, 2] > NEAR
    if front.all():
        return corners
    if not front.any():
        return None
    a, b = corners[_EDGES[:, 0]], corners[_EDGES[:, 1]]
    crossing = (a[:, 2] > NEAR) != (b[:, 2] > NEAR)
    a, b = a[crossing], b[crossing]
    share = (NEAR - a[:, 2]) / (b[:, 2] - a[:, 2])
    return np.concatenate([corners[front], a + share[:, None] * (b - a)])


def _slices(r_lo: float, r_hi: float, rows: int, c_lo: float, c_hi: float,
            cols: int) -> tuple[slice, slice] | None:
    r0 = max(int(np.floor(r_lo)) - _WINDOW_MARGIN, 0)
    r1 = min(int(np.ceil(r_hi)) + _WINDOW_MARGIN + 1, rows)
    c0 = max(int(np.floor(c_lo)) - _WINDOW_MARGIN, 0)
    c1 = min(int(np.ceil(c_hi)) + _WINDOW_MARGIN + 1, cols)
    if r0 >= r1 or c0 >= c1:
        return None
    return slice(r0, r1), slice(c0, c1)


Grid = PinholeGrid | SphericalGrid


@dataclass
class Hits:
    """The first hit of every ray of a grid."""

    t: np.ndarray  # (R, C) float64 ray parameter; inf = nothing hit
    primitive: np.ndarray  # (R, C) int32 index into the primitive list; -1 = nothing
    normal: np.ndarray  # (R, C, 3) float32 unit normal facing the ray
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3)))  # (R, C, 3) world

    @property
    def valid(self) -> np.ndarray:
        return self.primitive >= 0


def cast(grid: Grid, primitives: list[Primitive]) -> Hits:
    """Nearest hit per ray over all primitives (a z-buffer over the culled windows).

    Primitives are visited near to far and each is tested only against rays
    whose current hit is farther than the primitive's nearest possible hit,
    so what hides behind a building costs almost nothing.
    """
    rows, cols = grid.shape
    t = np.full(rows * cols, np.inf, dtype=np.float32)
    index = np.full(rows * cols, -1, dtype=np.int32)
    normal = np.zeros((rows * cols, 3), dtype=np.float32)  # filled once the winners are known
    t2d = t.reshape(rows, cols)
    dirs = grid.dirs.reshape(-1, 3)
    origin = grid.origin[None, :].astype(np.float32)
    corners = [p.corners() for p in primitives]
    bounds = [grid.min_t(c) for c in corners]
    for k in np.argsort(bounds, kind='stable'):
        window = grid.window(corners[k])
        if window is None:
            continue
        # Flat indices and take(): boolean masks over (H, W, 3) arrays are several times slower.
        r, c = np.nonzero(t2d[window] > bounds[k])
        flat = (r + window[0].start) * cols + (c + window[1].start)
        primitive = primitives[k]
        if primitive.flat_axis >= 0:  # a plane is only reached by rays heading towards it
            towards = np.float32(primitive.lo[primitive.flat_axis] - grid.origin[primitive.flat_axis])
            flat = flat[dirs[flat, primitive.flat_axis] * towards > 0]
        if not len(flat):
            continue
        ray_dirs = dirs.take(flat, axis=0)  # (M, 3)
        t_new = primitive.t(origin, ray_dirs).astype(np.float32)
        closer = t_new < t[flat]
        if not closer.any():
            continue
        winners = flat[closer]
        t[winners] = t_new[closer]
        index[winners] = k
    t = t.reshape(rows, cols)
    points = grid.origin.astype(np.float32) + np.where(np.isfinite(t), t, 0.0)[..., None] * grid.dirs
    _fill_normals(normal, index, points.reshape(-1, 3), dirs, primitives)
    return Hits(t, index.reshape(rows, cols), normal.reshape(rows, cols, 3), points)


def _fill_normals(normal: np.ndarray, index: np.ndarray, points: np.ndarray, dirs: np.ndarray,
                  primitives: list[Primitive]) -> None:
    """Normals of the visible points, one call per primitive that owns any (no overdraw)."""
    # int16 ids make numpy's stable argsort a radix sort; -1 (nothing hit) sorts first.
    small = index.astype(np.int16) if len(primitives) < np.iinfo(np.int16).max else index
    order = np.argsort(small, kind='stable')
    starts = np.searchsorted(small[order], np.arange(len(primitives) + 1))
    for k in np.flatnonzero(np.diff(starts)):
        pixels = order[starts[k]:starts[k + 1]]
        normal[pixels] = primitives[k].normal(points.take(pixels, axis=0), dirs.take(pixels, axis=0))


def shadowed(grid: PinholeGrid, hits: Hits, primitives: list[Primitive], to_light: np.ndarray,
             ground_y: float) -> np.ndarray:
    """(R, C) bool: the visible point lies in the shadow of another primitive.

    ``to_light`` is the unit direction towards a distant light. A point can
    only be shadowed by a caster if its projection along the light onto the
    ground plane ``y = ground_y`` falls inside the caster's projected
    footprint, a cheap test that spares most shadow rays.
    """
    shadow = np.zeros(grid.shape, dtype=bool)
    if to_light[1] >= -1e-3:  # light at or below the horizon: handled by the shading
        return shadow
    buckets = _GroundBuckets(hits, to_light, ground_y, grid.origin)
    light = to_light[None, :].astype(np.float32)
    in_shadow = np.zeros(len(buckets.points), dtype=bool)
    for k, primitive in enumerate(primitives):
        if not primitive.casts_shadow:
            continue
        corners = primitive.corners()
        if np.linalg.norm(np.clip(grid.origin, primitive.lo, primitive.hi) - grid.origin) > SHADOW_RANGE_M:
            continue
        sweep = np.maximum((ground_y - corners[:, 1]) / -to_light[1], 0.0)
        footprint = np.concatenate([corners, corners - sweep[:, None] * to_light])[:, [0, 2]]
        chosen = buckets.inside(footprint.min(axis=0), footprint.max(axis=0))
        chosen = chosen[(buckets.owner[chosen] != k) & ~in_shadow[chosen]]
        if len(chosen):
            points = buckets.points[chosen]
            t = primitive.t(points, light)
            blocked = np.isfinite(t)
            if primitive.dapple > 0 and blocked.any():
                blocked &= ~leaf_gaps(points + np.where(blocked, t, 0.0)[:, None] * light,
                                      primitive.dapple)
            in_shadow[chosen] = blocked
    shadow.reshape(-1)[buckets.pixels[in_shadow]] = True
    return shadow


def leaf_gaps(points: np.ndarray, share: float) -> np.ndarray:
    """(N,) bool: a ray entering a crown at ``points`` (N, 3) passes through a gap in its
    leaves; about ``share`` of the crown's surface is gaps, in blotches of a few
    decimetres (1/f noise over the surface, so neighbouring rays agree)."""
    u = points[:, 0] + 0.5 * points[:, 1]
    v = points[:, 2] - 0.5 * points[:, 1]
    count = len(points)
    noise = textures.sample(np.full(count, LEAF_GAP_TEXTURE), u, v,
                            np.full(count, LEAF_GAP_TILE_M, dtype=np.float32), np.zeros(count))
    return noise > _gap_threshold(round(float(share), 3))


@lru_cache(maxsize=64)
def _gap_threshold(share: float) -> float:
    """The noise value that ``share`` of the gap texture's texels exceed."""
    return float(np.quantile(textures.texture_bank()[0][LEAF_GAP_TEXTURE], 1.0 - share))


class _GroundBuckets:
    """Visible points sorted into ground-plane cells by their projection along the light."""

    CELL_M = 2.0
    REACH_M = 120.0  # 120 cells of 2 m per side: ids fit int16  # points whose shadow foot is farther from the camera get no shadow

    def __init__(self, hits: Hits, to_light: np.ndarray, ground_y: float, origin: np.ndarray) -> None:
        pixels = np.flatnonzero(hits.valid.reshape(-1))
        points = hits.points.reshape(-1, 3).take(pixels, axis=0)
        drop = (np.float32(ground_y) - points[:, 1]) / np.float32(-to_light[1])
        foot = points[:, [0, 2]] - drop[:, None] * to_light[[0, 2]].astype(np.float32)
        self.origin = origin[[0, 2]] - self.REACH_M
        self.cells = int(2 * self.REACH_M / self.CELL_M)
        cell = np.floor((foot - self.origin) / self.CELL_M).astype(np.int64)
        keep = ((cell >= 0) & (cell < self.cells)).all(axis=1)
        # z-major: a run of x cells is contiguous. int16 ids make numpy's stable sort a radix sort.
        flat = (cell[keep, 1] * self.cells + cell[keep, 0]).astype(np.int16)
        order = np.argsort(flat, kind='stable')
        kept = np.flatnonzero(keep).take(order)
        self.pixels = pixels.take(kept)
        self.points = points.take(kept, axis=0)
        self.owner = hits.primitive.reshape(-1)[self.pixels]
        self.starts = np.searchsorted(flat[order], np.arange(self.cells * self.cells + 1))

    def inside(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Indices of the points whose foot may lie in the rectangle [lo, hi] (x, z)."""
        c0 = np.clip(np.floor((lo - self.origin) / self.CELL_M).astype(int), 0, self.cells - 1)
        c1 = np.clip(np.floor((hi - self.origin) / self.CELL_M).astype(int), 0, self.cells - 1)
        if (hi < self.origin).any() or (lo > self.origin + self.cells * self.CELL_M).any():
            return np.zeros(0, dtype=np.int64)
        runs = [np.arange(self.starts[z * self.cells + c0[0]], self.starts[z * self.cells + c1[0] + 1])
                for z in range(c0[1], c1[1] + 1)]
        return np.concatenate(runs) if runs else np.zeros(0, dtype=np.int64)
