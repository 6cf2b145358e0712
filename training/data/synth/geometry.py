"""Ray / primitive intersection kernels, vectorised over many rays.

Each primitive has a ``*_t`` kernel and a ``*_normal`` kernel. ``*_t`` takes
ray origins ``o`` and directions ``d`` as (N, 3) arrays (or (1, 3) to
broadcast one origin or one direction) and returns the ray parameter of the
first hit in front of the origin, (N,) with ``inf`` on a miss. ``*_normal``
gives the unit normal facing the ray at hit points, and is only evaluated
where a hit wins the z-test. The world frame is the camera's: x right,
y down, z forward.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-4  # hits closer than this to the origin are the surface the ray leaves
_TINY = 1e-12  # replaces zero direction components so 1/d never divides by zero
FAR = 1e6  # a 'hit' beyond this is a ray parallel to a plane, not a hit


def _safe_inverse(d: np.ndarray) -> np.ndarray:
    return 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)


def _slabs(lo: np.ndarray, hi: np.ndarray, o: np.ndarray,
           d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ray parameters where each ray enters and leaves the box [lo, hi] (the slab
    method; entry > exit on a miss). Works on columns: reductions over a length-3 axis
    are slow in numpy."""
    t_near = np.full(len(d), -np.inf, dtype=d.dtype)
    t_far = np.full(len(d), np.inf, dtype=d.dtype)
    for axis in range(3):
        inv = _safe_inverse(d[:, axis])
        t1 = (lo[axis] - o[:, axis]) * inv
        t2 = (hi[axis] - o[:, axis]) * inv
        np.maximum(t_near, np.minimum(t1, t2), out=t_near)
        np.minimum(t_far, np.maximum(t1, t2), out=t_far)
    return t_near, t_far


def box_t(lo: np.ndarray, hi: np.ndarray, o: np.ndarray, d: np.ndarray,
          inside: bool = False) -> np.ndarray:
    """Axis-aligned box [lo, hi] by the slab method.

    ``inside=True`` intersects the box seen from within (a room's walls): the
    exit point is the hit.
    """
    t_near, t_far = _slabs(lo, hi, o, d)
    t = t_far if inside else t_near
    hit = (t_near <= t_far) & (t > EPSILON) & (t < FAR)
    return np.where(hit, t, np.inf)


def rect_t(axis: int, lo: np.ndarray, hi: np.ndarray, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Axis-aligned rectangle: the box [lo, hi] with lo[axis] == hi[axis] (cheaper than box_t)."""
    t = (lo[axis] - o[:, axis]) * _safe_inverse(d[:, axis])
    hit = (t > EPSILON) & (t < FAR)
    for other in ((axis + 1) % 3, (axis + 2) % 3):
        if np.isfinite(lo[other]) or np.isfinite(hi[other]):
            coordinate = o[:, other] + t * d[:, other]
            hit &= (coordinate >= lo[other]) & (coordinate <= hi[other])
    return np.where(hit, t, np.inf)


def box_normal(lo: np.ndarray, hi: np.ndarray, points: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Normal of the face each point lies on, turned towards the ray."""
    gaps = [np.minimum(np.abs(points[:, k] - lo[k]), np.abs(points[:, k] - hi[k])) for k in range(3)]
    axis = np.where(gaps[0] <= gaps[1], 0, 1)
    axis = np.where(gaps[2] < np.minimum(gaps[0], gaps[1]), 2, axis)
    d = np.broadcast_to(d, points.shape)
    normal = np.zeros(points.shape, dtype=np.float32)
    rows = np.arange(len(points))
    normal[rows, axis] = -np.sign(d[rows, axis])
    return normal


def ellipsoid_t(centre: np.ndarray, radii: np.ndarray, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Axis-aligned ellipsoid: the quadratic in the frame where it is a unit sphere."""
    a = np.zeros(len(d), dtype=d.dtype)
    b = np.zeros(len(d), dtype=d.dtype)
    c = np.full(len(d), -1.0, dtype=d.dtype)
    for axis in range(3):
        os_ = (o[:, axis] - centre[axis]) / radii[axis]
        ds = d[:, axis] / radii[axis]
        a += ds * ds
        b += 2.0 * os_ * ds
        c += os_ * os_
    disc = b * b - 4.0 * a * c
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * np.maximum(a, _TINY))
    return np.where((disc >= 0) & (t > EPSILON), t, np.inf)


def ellipsoid_normal(centre: np.ndarray, radii: np.ndarray, points: np.ndarray) -> np.ndarray:
    normal = (points - centre) / (radii * radii)
    return (normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), _TINY)).astype(np.float32)


def cylinder_t(centre: np.ndarray, radius: float, axis: int, lo: float, hi: float,
               o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Cylinder along coordinate ``axis`` through ``centre``, from ``lo`` to ``hi`` on it; caps included."""
    p, q = [k for k in range(3) if k != axis]
    ou, ov = o[:, p] - centre[p], o[:, q] - centre[q]  # origin in the cross-section
    du, dv = d[:, p], d[:, q]
    a = np.maximum(du * du + dv * dv, _TINY)
    b = 2.0 * (ou * du + ov * dv)
    c = ou * ou + ov * ov - radius * radius
    disc = b * b - 4.0 * a * c
    t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a)
    along = o[:, axis] + t_side * d[:, axis]
    t_side = np.where((disc >= 0) & (t_side > EPSILON) & (along >= lo) & (along <= hi), t_side, np.inf)
    inv = _safe_inverse(d[:, axis])
    t_lo = (lo - o[:, axis]) * inv
    t_hi = (hi - o[:, axis]) * inv
    t_cap = np.minimum(np.where(t_lo > EPSILON, t_lo, np.inf), np.where(t_hi > EPSILON, t_hi, np.inf))
    t_cap = np.where(t_cap < FAR, t_cap, np.inf)
    finite = np.where(np.isfinite(t_cap), t_cap, 0.0)
    cu, cv = ou + finite * du, ov + finite * dv
    t_cap = np.where(cu * cu + cv * cv <= radius * radius, t_cap, np.inf)
    return np.minimum(t_side, t_cap)


def cylinder_normal(centre: np.ndarray, radius: float, axis: int, lo: float, hi: float,
                    points: np.ndarray, d: np.ndarray) -> np.ndarray:
    plane = [k for k in range(3) if k != axis]
    radial = (points[:, plane] - centre[plane]) / radius
    on_cap = np.minimum(np.abs(points[:, axis] - lo), np.abs(points[:, axis] - hi)) < 1e-3 * max(radius, 0.1)
    on_cap &= (radial * radial).sum(axis=1) < (1.0 - 1e-3)
    normal = np.zeros(points.shape, dtype=np.float32)
    normal[:, plane[0]] = np.where(on_cap, 0.0, radial[:, 0])
    normal[:, plane[1]] = np.where(on_cap, 0.0, radial[:, 1])
    normal[:, axis] = np.where(on_cap, -np.sign(np.broadcast_to(d, points.shape)[:, axis]), 0.0)
    return normal


def gable_t(lo: np.ndarray, hi: np.ndarray, ridge: int, o: np.ndarray, d: np.ndarray,
            rise: float = 0.0) -> np.ndarray:
    """A gable roof: the prism inside the box [lo, hi] whose cross-section across the
    ridge is a triangle, base on the box's bottom face (``hi[1]``: y is down), apex
    on the top face (``lo[1]``) along the middle of the box. The ridge runs along
    coordinate ``ridge`` (0 or 2). A ``rise`` (metres over the base) taller than the
    box cuts the apex off at the box's top: a trapezoid (a car's cabin).

    The box's slabs and the two slope half-spaces, ``y >= apex + k |u - centre|``
    with ``k`` the rise over half the span ``u`` across the ridge, clipped the same way.
    """
    across = 2 - ridge
    apex, k = _gable_slopes(lo, hi, ridge, rise)
    centre = (lo[across] + hi[across]) / 2
    t_near, t_far = _slabs(lo, hi, o, d)
    for sign in (1.0, -1.0):  # inside: sign k u - y <= sign k centre - apex
        denom = sign * k * d[:, across] - d[:, 1]
        num = (sign * k * centre - apex) - (sign * k * o[:, across] - o[:, 1])
        t_plane = num * _safe_inverse(denom)
        np.maximum(t_near, np.where(denom < 0, t_plane, -np.inf), out=t_near)
        np.minimum(t_far, np.where(denom > 0, t_plane, np.inf), out=t_far)
        t_far = np.where((np.abs(denom) < _TINY) & (num < 0), -np.inf, t_far)  # parallel, outside
    hit = (t_near <= t_far) & (t_near > EPSILON) & (t_near < FAR)
    return np.where(hit, t_near, np.inf)


def gable_normal(lo: np.ndarray, hi: np.ndarray, ridge: int, points: np.ndarray,
                 d: np.ndarray, rise: float = 0.0) -> np.ndarray:
    """Normal of the face each point of a :func:`gable_t` roof lies on, turned towards the
    ray: a slope, the base, a gable end, or the flat top of a trapezoid."""
    across = 2 - ridge
    apex, k = _gable_slopes(lo, hi, ridge, rise)
    centre = (lo[across] + hi[across]) / 2
    norm = np.hypot(k, 1.0)
    side = np.sign(points[:, across] - centre)
    # distances to the nearer slope's plane, the base, the ends and the top
    slope = np.abs(points[:, 1] - apex - k * np.abs(points[:, across] - centre)) / norm
    base = np.abs(points[:, 1] - hi[1])
    end = np.minimum(np.abs(points[:, ridge] - lo[ridge]), np.abs(points[:, ridge] - hi[ridge]))
    top = np.abs(points[:, 1] - lo[1]) if apex < lo[1] else np.full(len(points), np.inf)
    face = np.argmin(np.stack([slope, base, end, top]), axis=0)
    normal = np.zeros(points.shape, dtype=np.float32)
    on_slope = face == 0
    normal[on_slope, across] = (side * k / norm)[on_slope]
    normal[on_slope, 1] = -1.0 / norm  # a slope faces up (y is down)
    normal[face == 1, 1] = 1.0
    normal[face == 2, ridge] = 1.0
    normal[face == 3, 1] = -1.0
    d = np.broadcast_to(d, points.shape)
    facing = (normal * d).sum(axis=1) > 0  # turned away from the ray: flip (seen from inside)
    normal[facing] *= -1.0
    return normal


def _gable_slopes(lo: np.ndarray, hi: np.ndarray, ridge: int, rise: float) -> tuple[float, float]:
    """The apex line's y and the slopes' rise per metre across the ridge."""
    across = 2 - ridge
    rise = float(rise) if rise > 0 else float(hi[1] - lo[1])
    return float(hi[1]) - rise, rise / max(float(hi[across] - lo[across]) / 2, _TINY)
