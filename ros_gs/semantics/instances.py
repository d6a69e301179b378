"""Per-instance 3D points from calibrated depth cameras with instance segmentation.

An instance detector labels pixels with instance ids; with depth and the camera's pose, each
instance becomes a cloud of world points, merged over cameras.  The physics tracker makes bodies
of them and the grasp planner plans on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ros_gs.errors import SensorDataError


@dataclass
class DepthView:
    """One camera's view: ``depth`` (H, W) metres (0 or NaN = none), ``instances`` (H, W) ids
    (> 0 objects; 0 and below: none), OpenCV ``K`` (pixel centres at integers), ``T_world_cam``
    (OpenCV optical frame in the world)."""

    depth: np.ndarray
    instances: np.ndarray
    K: np.ndarray
    T_world_cam: np.ndarray


def instance_points(views: list[DepthView]) -> dict[int, np.ndarray]:
    """World points (N_i, 3) of every instance id seen with valid depth, over all views."""
    points: dict[int, list[np.ndarray]] = {}
    for view in views:
        depth, ids, K, T = view.depth, view.instances, np.asarray(view.K, float), np.asarray(view.T_world_cam, float)
        if ids.shape != depth.shape:
            raise SensorDataError(f"instance image {ids.shape} and depth {depth.shape} differ in size")
        v, u = np.nonzero((ids > 0) & np.isfinite(depth) & (depth > 0))
        z = depth[v, u].astype(np.float64)
        xyz = np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z], axis=1)
        world = xyz @ T[:3, :3].T + T[:3, 3]
        seen = ids[v, u].astype(np.int64)
        for i in np.unique(seen):
            points.setdefault(int(i), []).append(world[seen == i])
    return {i: np.concatenate(p) for i, p in sorted(points.items())}
