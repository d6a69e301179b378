"""Per-instance 3D points from calibrated depth cameras with instance segmentation.

An instance detector labels pixels with instance ids; with depth and the camera's pose, each
instance becomes a cloud of world points, merged over cameras (:func:`instance_points`): the
physics tracker makes bodies of them and the grasp planner plans on them.  The same images
label the Gaussians of a map (:func:`label_gaussians`), so objects can be cut out of a map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ros_gs.errors import SensorDataError

if TYPE_CHECKING:
    from ros_gs.render.camera import Camera


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


def label_gaussians(gaussians, views: list[tuple["Camera", np.ndarray]], num_ids: int,
                    backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Instance id of every Gaussian from instance images: each view's one-hot ids are lifted
    onto the Gaussians that drew them (:func:`ros_gs.semantics.lifting.lift_features`) and
    summed over views.  ``views``: (camera, ids (H, W) in 0..num_ids-1, 0 = no object).
    Returns ``ids`` (N,) (the id with the most compositing weight; -1 for Gaussians no view
    saw) and ``confidence`` (N,) (that id's share of the weight)."""
    import torch

    from ros_gs.semantics.lifting import lift_features

    n = gaussians.means.shape[0]
    acc = torch.zeros(n, num_ids, dtype=torch.float64)
    total = torch.zeros(n, dtype=torch.float64)
    for camera, ids in views:
        ids_t = torch.as_tensor(np.asarray(ids), dtype=torch.int64)
        if ids_t.shape != (camera.height, camera.width):
            raise SensorDataError(f"instance image {tuple(ids_t.shape)} does not match its camera ({camera.height}, {camera.width})")
        if bool(((ids_t < 0) | (ids_t >= num_ids)).any()):
            raise SensorDataError(f"instance ids must lie in 0..{num_ids - 1}")
        onehot = torch.nn.functional.one_hot(ids_t, num_ids).to(gaussians.means.dtype)
        a, w = lift_features(gaussians, camera.to(dtype=gaussians.means.dtype), onehot, backend=backend)
        acc += a.detach().double().cpu()
        total += w.detach().double().cpu()
    best = acc.max(dim=1)
    seen = total > 1e-9
    ids_out = torch.where(seen, best.indices, torch.full_like(best.indices, -1))
    conf = torch.where(seen, best.values / total.clamp_min(1e-12), torch.zeros_like(total))
    return ids_out.numpy(), conf.numpy()
