"""A sampled pose track between its samples: interpolation and time-stamped points placed along it.

One implementation for the IMU fusion's propagated poses and per-point deskew motion and for the
mapper node's LiDAR points placed along the camera trajectory.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial.transform import Rotation, Slerp


def interpolate_poses(times: np.ndarray, poses: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotations (N, 3, 3) and translations (N, 3) of the track ``poses`` (K, 4, 4) sampled at
    increasing ``times`` (K,), at the ``query`` times (N,): slerp and linear interpolation,
    held at the track's ends.  Exact for constant rates between samples."""
    times = np.asarray(times, dtype=np.float64)
    poses = np.asarray(poses, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    if len(times) == 1:
        return np.repeat(poses[:1, :3, :3], len(q), 0), np.repeat(poses[:1, :3, 3], len(q), 0)
    R = Slerp(times, Rotation.from_matrix(poses[:, :3, :3]))(np.clip(q, times[0], times[-1])).as_matrix()
    p = np.stack([np.interp(q, times, poses[:, k, 3]) for k in range(3)], axis=1)
    return R, p


def place_points(points: np.ndarray, t: np.ndarray, pose_at: Callable[[float], np.ndarray],
                 T_carrier_points: np.ndarray, knots: int = 8) -> np.ndarray:
    """World coordinates of a scan's points, each placed with the pose at its own time.

    ``t`` (N,) seconds after the scan stamp; ``pose_at(dt)`` the 4x4 carrier pose (e.g. the
    camera in the map) ``dt`` seconds after the stamp; ``T_carrier_points`` maps point
    coordinates into the carrier's frame (e.g. camera <- LiDAR).  The pose is sampled at
    ``knots`` times across the scan and interpolated per point."""
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    if len(pts) == 0:
        return pts
    t = np.asarray(t, np.float64)
    lo, hi = float(t.min()), float(t.max())
    times = np.linspace(lo, hi, knots) if hi > lo else np.array([lo])
    R, p = interpolate_poses(times, np.array([pose_at(float(dt)) @ T_carrier_points for dt in times]), t)
    return np.einsum("nij,nj->ni", R, pts) + p
