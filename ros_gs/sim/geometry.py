"""Analytic geometry of MuJoCo primitives: signed distances, lowest points, pose helpers.

Why: the recorder's images and scans come from MuJoCo's renderer and ray caster; to *check*
them (and anything built on them) we need the surfaces they should lie on, computed without
MuJoCo's renderer: here the primitives are written out from their definitions.  Sizes follow
MuJoCo's geom ``size`` semantics:

* ``box``: half-extents ``(hx, hy, hz)``
* ``sphere``: ``(r,)``
* ``cylinder``: ``(r, h)``, half-height ``h`` along local z
* ``capsule``: ``(r, h)``, a segment of half-length ``h`` along local z swept by radius ``r``
* ``ellipsoid``: semi-axes ``(a, b, c)``
* ``plane``: the local z = 0 plane (infinite here; MuJoCo's size only bounds its rendering)
* ``mug``: ``(r, h)`` like an upright cylinder, but hollow (open top, thin wall) with a handle
  on local +x: not a MuJoCo primitive, a compound of them (:func:`mug_parts`); its distance is
  the minimum of its parts' (exact outside, a lower bound on the depth inside)

Distances are signed: negative inside.  All are exact except inside an ellipsoid, where the
first-order ``k0 (k0 - 1) / k1`` is used (exact on the surface, error O(d^2) below it).

Poses are 4x4 homogeneous matrices ``T_a_b`` (maps points of frame b into frame a).
Quaternions are MuJoCo's ``(w, x, y, z)``.
"""

from __future__ import annotations

import numpy as np

from ros_gs.errors import ConfigError

SHAPES = ("box", "sphere", "cylinder", "capsule", "ellipsoid", "plane", "mug")

#: a mug's proportions (m): wall and floor thickness, the handle's bar and how far it reaches out
MUG_WALL, MUG_FLOOR, MUG_BAR, MUG_REACH = 0.005, 0.008, 0.01, 0.03


def mug_parts(radius: float, half_height: float, segments: int = 20) -> list[tuple[str, tuple, np.ndarray]]:
    """The MuJoCo primitives of a mug ``(shape, size, T_mug_part)``, in the frame of an upright
    cylinder of the same ``(radius, half_height)``: a floor disc, ``segments`` wall boxes whose
    outer faces meet on the outer circle (a polygon within ``r (1 - cos(pi / segments))``, 0.5 mm
    at 4 cm, of the round wall), and a handle of three boxes (two arms and a grip bar) on +x
    between 20 % and 80 % of the height.  Why a compound: a solid cylinder as wide as a gripper
    opens cannot be grasped at all, a real mug by its rim or handle."""
    r, h = float(radius), float(half_height)
    parts: list[tuple[str, tuple, np.ndarray]] = [("cylinder", (r, MUG_FLOOR / 2), pose(np.eye(3), (0.0, 0.0, -h + MUG_FLOOR / 2)))]
    half_w = r * np.tan(np.pi / segments)
    for k in range(segments):
        th = 2 * np.pi * k / segments
        c, s = np.cos(th), np.sin(th)
        R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        parts.append(("box", (MUG_WALL / 2, half_w, h), pose(R, ((r - MUG_WALL / 2) * c, (r - MUG_WALL / 2) * s, 0.0))))
    lo, hi, out = -0.6 * h, 0.6 * h, r + MUG_REACH
    for x0, x1, z0, z1 in ((r - 0.002, out, hi - MUG_BAR, hi), (r - 0.002, out, lo, lo + MUG_BAR), (out - MUG_BAR, out, lo, hi)):
        parts.append(("box", ((x1 - x0) / 2, MUG_BAR / 2, (z1 - z0) / 2), pose(np.eye(3), ((x0 + x1) / 2, 0.0, (z0 + z1) / 2))))
    return parts



def quat_to_matrix(q) -> np.ndarray:
    """Rotation matrix of a unit quaternion ``(w, x, y, z)`` (normalised first)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(R) -> np.ndarray:
    """Unit quaternion ``(w, x, y, z)`` with ``w >= 0`` of a rotation matrix."""
    R = np.asarray(R, dtype=np.float64)
    tr = np.trace(R)
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = np.array([0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s])
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + R[i, i] - R[j, j] - R[k, k])
        q = np.empty(4)
        q[0] = (R[k, j] - R[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (R[j, i] + R[i, j]) / s
        q[1 + k] = (R[k, i] + R[i, k]) / s
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


def pose(R, t) -> np.ndarray:
    """4x4 pose from a rotation matrix and a translation."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


def invert(T) -> np.ndarray:
    """Inverse of a rigid 4x4 pose."""
    R, t = T[:3, :3], T[:3, 3]
    return pose(R.T, -R.T @ t)


def transform_points(T, points) -> np.ndarray:
    """Apply a 4x4 pose to ``(N, 3)`` points."""
    p = np.asarray(points, dtype=np.float64)
    return p @ T[:3, :3].T + T[:3, 3]


def so3_log(R) -> np.ndarray:
    """Rotation vector (axis * angle) of a rotation matrix."""
    R = np.asarray(R, dtype=np.float64)
    cos = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    if angle < 1e-7:
        return 0.5 * w
    if np.pi - angle < 1e-4:  # near pi: axis from the symmetric part
        A = (R + np.eye(3)) / 2.0
        i = int(np.argmax(np.diag(A)))
        axis = A[:, i] / np.sqrt(max(A[i, i], 1e-300))
        if axis @ w < 0:
            axis = -axis
        return axis * angle
    return w * (angle / (2.0 * np.sin(angle)))


def so3_exp(v) -> np.ndarray:
    """Rotation matrix of a rotation vector (Rodrigues)."""
    v = np.asarray(v, dtype=np.float64)
    angle = np.linalg.norm(v)
    K = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    if angle < 1e-9:
        return np.eye(3) + K + 0.5 * K @ K
    return np.eye(3) + np.sin(angle) / angle * K + (1 - np.cos(angle)) / angle**2 * K @ K


def interpolate_pose(T0, T1, alpha: float) -> np.ndarray:
    """Pose a fraction ``alpha`` of the way from ``T0`` to ``T1`` (linear translation, slerp)."""
    R = T0[:3, :3] @ so3_exp(alpha * so3_log(T0[:3, :3].T @ T1[:3, :3]))
    return pose(R, (1 - alpha) * T0[:3, 3] + alpha * T1[:3, 3])


def _check(shape: str, size) -> np.ndarray:
    if shape not in SHAPES:
        raise ConfigError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    return np.asarray(size, dtype=np.float64)


def sdf_local(shape: str, size, p) -> np.ndarray:
    """Signed distance of ``(N, 3)`` points given in the primitive's own frame."""
    s = _check(shape, size)
    p = np.asarray(p, dtype=np.float64).reshape(-1, 3)
    if shape == "plane":
        return p[:, 2].copy()
    if shape == "mug":
        return np.min([sdf(part, psize, T, p) for part, psize, T in mug_parts(s[0], s[1])], axis=0)
    if shape == "sphere":
        return np.linalg.norm(p, axis=1) - s[0]
    if shape == "box":
        q = np.abs(p) - s[:3]
        outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
        inside = np.minimum(q.max(axis=1), 0.0)
        return outside + inside
    if shape == "capsule":
        r, h = s[0], s[1]
        z = np.clip(p[:, 2], -h, h)
        return np.linalg.norm(p - np.stack([np.zeros_like(z), np.zeros_like(z), z], axis=1), axis=1) - r
    if shape == "cylinder":
        r, h = s[0], s[1]
        d = np.stack([np.linalg.norm(p[:, :2], axis=1) - r, np.abs(p[:, 2]) - h], axis=1)
        return np.minimum(d.max(axis=1), 0.0) + np.linalg.norm(np.maximum(d, 0.0), axis=1)
    return _ellipsoid_sdf(s[:3], p)


def _ellipsoid_sdf(a: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Ellipsoid with semi-axes ``a``: exact distance outside (the closest point is
    ``a^2 p / (t + a^2)`` with ``t >= 0`` the root of ``sum (a p / (t + a^2))^2 = 1``, found by
    bisection), first-order ``k0 (k0 - 1) / k1`` inside (exact on the surface)."""
    k0 = np.linalg.norm(p / a, axis=1)
    k1 = np.linalg.norm(p / (a * a), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(k1 > 0, k0 * (k0 - 1.0) / k1, -a.min())
    out = k0 > 1.0
    if np.any(out):
        q = np.abs(p[out])
        lo = np.zeros(len(q))
        hi = np.linalg.norm(q, axis=1) * a.max()
        a2 = a * a
        for _ in range(64):
            t = 0.5 * (lo + hi)
            f = np.sum((a * q / (t[:, None] + a2)) ** 2, axis=1) - 1.0
            lo = np.where(f > 0, t, lo)
            hi = np.where(f > 0, hi, t)
        t = 0.5 * (lo + hi)
        x = a2 * q / (t[:, None] + a2)
        d[out] = np.linalg.norm(q - x, axis=1)
    return d


def sdf(shape: str, size, T_world_obj, points) -> np.ndarray:
    """Signed distance of world points ``(N, 3)`` to a primitive at pose ``T_world_obj``."""
    return sdf_local(shape, size, transform_points(invert(np.asarray(T_world_obj, float)), points))


def lowest_z(shape: str, size, T_world_obj) -> float:
    """World z of the primitive's lowest point (its support point along -z)."""
    s = _check(shape, size)
    if shape == "plane":
        raise ConfigError("a plane has no lowest point")
    T = np.asarray(T_world_obj, dtype=np.float64)
    r = T[2, :3]  # world z-axis expressed in the object frame
    z = T[2, 3]
    if shape == "mug":
        return min(lowest_z(part, psize, T @ Tp) for part, psize, Tp in mug_parts(s[0], s[1]))
    if shape == "sphere":
        return z - s[0]
    if shape == "box":
        return z - float(np.abs(r) @ s[:3])
    if shape == "capsule":
        return z - s[0] - abs(r[2]) * s[1]
    if shape == "cylinder":
        return z - abs(r[2]) * s[1] - s[0] * np.sqrt(max(0.0, 1.0 - r[2] ** 2))
    return z - float(np.sqrt(np.sum((r * s[:3]) ** 2)))  # ellipsoid
