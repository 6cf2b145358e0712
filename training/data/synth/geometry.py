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


def box_t(lo: np.ndarray, hi: np.ndarray, o: np.ndarray, d: np.ndarray,
          inside: bool = False) -> np.ndarray:
    """Axis-aligned box [lo, hi] by the slab method.

    ``inside=True`` intersects the box seen from within (a room's walls): the
    exit point is the hit. Works on columns: reductions over a length-3 axis
    are slow in numpy.
    """
    t_near = np.full(len(d), -np.inf, dtype=d.dtype)
    t_far = np.full(len(d), np.inf, dtype=d.dtype)
    for axis in range(3):
        inv = _safe_inverse(d[:, axis])
        t1 = (lo[axis] - o[:, axis]) * inv
        t2 = (hi[axis] - o[:, axis]) * inv
        np.maximum(t_near, np.minimum(t1, t2), out=t_near)
        np.minimum(t_far, np.maximum(t1, t2), out=t_far)
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
