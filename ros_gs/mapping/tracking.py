"""Camera tracking: open3d RGB-D odometry (tensor API) of a frame against a target RGB-D image
(the last keyframe, or the Gaussian map rendered at the predicted pose)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

_METHODS = {
    "hybrid": o3d.t.pipelines.odometry.Method.Hybrid,
    "point_to_plane": o3d.t.pipelines.odometry.Method.PointToPlane,
    "intensity": o3d.t.pipelines.odometry.Method.Intensity,
}


@dataclass
class OdometryOut:
    T_target_source: np.ndarray  # 4x4: source camera -> target camera
    fitness: float
    inlier_rmse: float


def to_o3d_rgbd(rgb: np.ndarray, depth: np.ndarray) -> o3d.t.geometry.RGBDImage:
    """rgb (H, W, 3) uint8 or float [0, 1]; depth (H, W) float32 metres (0 = invalid)."""
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.float32) / 255.0
    color = o3d.t.geometry.Image(o3d.core.Tensor(np.ascontiguousarray(rgb, dtype=np.float32)))
    d = o3d.t.geometry.Image(o3d.core.Tensor(np.ascontiguousarray(depth, dtype=np.float32)[..., None]))
    return o3d.t.geometry.RGBDImage(color, d)


def rgbd_odometry(
    source: o3d.t.geometry.RGBDImage,
    target: o3d.t.geometry.RGBDImage,
    K: np.ndarray,
    init_T_target_source: np.ndarray,
    *,
    method: str = "hybrid",
    iterations: tuple[int, ...] = (10, 6, 4),
    depth_max: float = 4.0,
    depth_outlier_trunc: float = 0.07,
) -> OdometryOut:
    """Multi-scale RGB-D odometry (open3d).  ``K`` in the OpenCV convention."""
    crit = [o3d.t.pipelines.odometry.OdometryConvergenceCriteria(int(n)) for n in iterations]
    params = o3d.t.pipelines.odometry.OdometryLossParams(depth_outlier_trunc, 0.05, 0.1)
    try:
        res = o3d.t.pipelines.odometry.rgbd_odometry_multi_scale(
            source,
            target,
            o3d.core.Tensor(np.asarray(K, np.float64)),
            o3d.core.Tensor(np.asarray(init_T_target_source, np.float64)),
            1.0,
            float(depth_max),
            crit,
            _METHODS[method],
            params,
        )
    except RuntimeError:  # singular system: too few correspondences
        return OdometryOut(np.asarray(init_T_target_source, np.float64), 0.0, float("inf"))
    T = res.transformation.numpy().astype(np.float64)
    return OdometryOut(T, float(res.fitness), float(res.inlier_rmse))


def information_matrix(source: o3d.t.geometry.RGBDImage, target: o3d.t.geometry.RGBDImage, K: np.ndarray,
                       T_target_source: np.ndarray, config) -> np.ndarray:
    """6x6 information matrix of a registration (open3d: from the point-to-point correspondences
    closer than ``config.depth_outlier_trunc``), for the pose graph."""
    try:
        info = o3d.t.pipelines.odometry.compute_odometry_information_matrix(
            source.depth, target.depth, o3d.core.Tensor(np.asarray(K, np.float64)),
            o3d.core.Tensor(np.asarray(T_target_source, np.float64)), float(config.depth_outlier_trunc), 1.0,
            float(config.depth_max))
        out = info.numpy().astype(np.float64)
    except RuntimeError:
        out = np.zeros((6, 6))
    if not np.isfinite(out).all() or np.trace(out) <= 0:
        out = np.eye(6)  # no overlap measured: a weak, isotropic constraint
    return out
