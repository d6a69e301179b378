"""The support surface (table top, floor) that objects stand on, found by RANSAC plane fitting.

Why open3d: its ``segment_plane`` is a well-kept RANSAC; we only choose among its planes.  The
support is the largest plane whose normal points to the camera and, when the world's up is
known, lies within ``max_tilt_deg`` of it (a wall or a box side is a plane too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ros_gs.errors import SensorDataError


class SupportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    voxel: float = Field(0.005, gt=0.0, description="points are thinned to this voxel (m) before RANSAC")
    distance: float = Field(0.006, gt=0.0, description="RANSAC inlier distance (m); a RealSense at 0.5 m has ~2-3 mm noise")
    iterations: int = Field(500, ge=10, le=100_000, description="RANSAC iterations per plane")
    max_planes: int = Field(4, ge=1, le=20, description="planes tried, largest first, until one is a support")
    max_tilt_deg: float = Field(35.0, gt=0.0, le=90.0, description="a support's normal lies this close to the world's up (when known)")
    min_inliers: int = Field(200, ge=3, description="a smaller plane is no support")
    min_share: float = Field(0.2, gt=0.0, le=1.0, description="a plane with fewer inliers than this share of the largest one's is no support (a box top)")
    seed: int = Field(0, description="RANSAC seed (open3d's global random seed)")


@dataclass
class SupportPlane:
    """``normal`` (3,) unit, pointing up (away from the support, towards the objects); points p
    on the plane satisfy ``normal @ p + offset == 0``; ``height(p)`` is the signed distance."""

    normal: np.ndarray
    offset: float
    inliers: int = 0

    def height(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) @ self.normal + self.offset

    def basis(self) -> np.ndarray:
        """(3, 3) rows u, v, n: an orthonormal frame with n the plane normal."""
        n = self.normal
        u = np.cross(n, [1.0, 0.0, 0.0] if abs(n[0]) < 0.9 else [0.0, 1.0, 0.0])
        u /= np.linalg.norm(u)
        return np.stack([u, np.cross(n, u), n])


def _refine(points: np.ndarray, n: np.ndarray, off: float, distance: float) -> tuple[np.ndarray, float]:
    """Least-squares plane through RANSAC's inliers until they stop changing: open3d's RANSAC runs on several
    threads and its pick varies from run to run; the refined plane does not (to ~0.1 mm)."""
    used = None
    for _ in range(10):
        keep = np.abs(points @ n + off) < distance
        if used is not None and np.array_equal(keep, used):
            break
        used, inl = keep, points[keep]
        if len(inl) < 3:
            break
        c = inl.mean(axis=0)
        n_new = np.linalg.svd(inl - c, full_matrices=False)[2][-1]
        n = n_new if n_new @ n > 0 else -n_new
        off = float(-n @ c)
    return n, off


def fit_support(points: np.ndarray, viewpoint: np.ndarray, config: SupportConfig | None = None,
                up: np.ndarray | None = None) -> SupportPlane:
    """The support plane of ``points`` (N, 3) seen from ``viewpoint`` (3,), in their frame;
    ``up`` (3,) is the world's up in that frame when known.  SensorDataError when none is found."""
    import open3d as o3d

    cfg = config or SupportConfig()
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) < cfg.min_inliers:
        raise SensorDataError(f"only {len(pts)} valid depth points: too few to find a support plane")
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts)).voxel_down_sample(cfg.voxel)
    o3d.utility.random.seed(cfg.seed)
    cos_tilt = np.cos(np.radians(cfg.max_tilt_deg))
    vp = np.asarray(viewpoint, dtype=np.float64)
    found: list[SupportPlane] = []
    for _ in range(cfg.max_planes):
        if len(cloud.points) < cfg.min_inliers:
            break
        (a, b, c, d), inl = cloud.segment_plane(cfg.distance, 3, cfg.iterations)
        if len(inl) < cfg.min_inliers:
            break
        n, off = _refine(np.asarray(cloud.points), np.array([a, b, c]) / np.linalg.norm([a, b, c]),
                         d / np.linalg.norm([a, b, c]), cfg.distance)
        if n @ vp + off < 0:  # the camera must be above the support
            n, off = -n, -off
        if up is None or n @ (np.asarray(up, float) / np.linalg.norm(up)) > cos_tilt:
            found.append(SupportPlane(n, float(off), len(inl)))
        cloud = cloud.select_by_index(inl, invert=True)
    if not found:
        raise SensorDataError("no support plane (table top, floor) facing the camera was found")
    big = max(p.inliers for p in found)
    if up is None:  # a lone camera without a world frame: box sides and walls are planes too
        return max(found, key=lambda p: p.inliers)
    return min((p for p in found if p.inliers >= cfg.min_share * big), key=lambda p: p.normal @ vp + p.offset)
