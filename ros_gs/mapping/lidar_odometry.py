"""Small LiDAR odometry: scan-to-local-map point-to-plane ICP (open3d), CPU.

``LidarOdometry(config).register(points, t, stamp_ns) -> T_world_sensor`` (4x4, at ``stamp_ns``).

Per scan:

1. range crop, optional deskew of each point to the scan stamp with the constant-velocity motion
   of the last two registered scans (``t`` = per-point seconds after ``stamp_ns``),
2. voxel downsampling,
3. initial guess = last pose advanced by the constant velocity over the stamp difference,
4. coarse-to-fine point-to-plane ICP against a local map (the last ``local_map_scans`` registered
   scans in the world frame, voxel-downsampled, normals estimated on the map),
5. the registered scan joins the local map; the first scan defines the world frame
   (``initial_pose``, identity by default).

No ROS imports: this is plain numpy/scipy/open3d.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import open3d as o3d
from pydantic import BaseModel, ConfigDict, Field
from scipy.spatial.transform import Rotation

__all__ = ["LidarOdometry", "LidarOdometryConfig", "PointMotion", "se3_exp", "se3_log"]

# per input point: rotation (N, 3, 3) and translation (N, 3) into the sensor frame at the stamp
PointMotion = tuple[np.ndarray, np.ndarray]


class LidarOdometryConfig(BaseModel):
    """Every knob of :class:`LidarOdometry`."""

    model_config = ConfigDict(extra="forbid")

    min_range: float = Field(1.0, ge=0.0, description="points closer than this (m) are dropped (sensor body, operator)")
    max_range: float = Field(100.0, gt=0.0, description="points further than this (m) are dropped")
    voxel_size: float = Field(0.25, gt=0.0, description="scan voxel downsampling (m)")
    map_voxel_size: float = Field(0.2, gt=0.0, description="local map voxel downsampling (m)")
    local_map_scans: int = Field(10, ge=1, description="local map = this many last registered scans")
    normal_radius: float = Field(1.0, gt=0.0, description="map normal estimation search radius (m)")
    normal_max_nn: int = Field(20, ge=3, description="map normal estimation neighbours")
    icp_max_distances: tuple[float, ...] = Field((1.0, 0.5, 0.25), min_length=1, description="correspondence distance (m) of each coarse-to-fine ICP stage")
    icp_max_iterations: int = Field(30, ge=1, description="ICP iterations per stage")
    robust_kernel_k: float | None = Field(0.1, gt=0.0, description="Tukey kernel scale (m) for point-to-plane residuals; None = plain least squares")
    constant_velocity: bool = Field(True, description="predict the pose with the last motion before ICP")
    deskew: bool = Field(True, description="undistort each point to the scan stamp with the constant-velocity motion (needs per-point t)")
    deskew_passes: int = Field(2, ge=1, description="register, re-estimate the velocity from the result, deskew again and re-register this many times in all; the first scan is deskewed retroactively once the second gives a velocity")
    min_points: int = Field(50, ge=3, description="a downsampled scan with fewer points is not registered: the prediction is returned")
    initial_pose: list[list[float]] | None = Field(None, description="T_world_sensor of the first scan (4x4); identity if None")


def se3_log(T: np.ndarray) -> np.ndarray:
    """(rotvec, translation) 6-vector of a rigid 4x4 (decoupled, fine for small inter-scan motion)."""
    return np.concatenate([Rotation.from_matrix(T[:3, :3]).as_rotvec(), T[:3, 3]])


def se3_exp(xi: np.ndarray) -> np.ndarray:
    """Inverse of :func:`se3_log`."""
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(xi[:3]).as_matrix()
    T[:3, 3] = xi[3:]
    return T


class LidarOdometry:
    """Scan-to-local-map LiDAR odometry; see the module docstring."""

    def __init__(self, config: LidarOdometryConfig | None = None) -> None:
        self.config = config or LidarOdometryConfig()
        self._map: deque[np.ndarray] = deque(maxlen=self.config.local_map_scans)
        self._last_T: np.ndarray | None = None
        self._last_stamp: int | None = None
        self._velocity: np.ndarray | None = None  # se3_log(T_prev^-1 T_cur) per second
        self._first_raw: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.trajectory: list[tuple[int, np.ndarray]] = []
        self.last_fitness: float = 0.0
        self.last_rmse: float = 0.0
        # the last scan at full density, deskewed to its stamp (sensor frame), and which input
        # points it holds (range crop): what a map integrates at the returned pose
        self.last_scan: np.ndarray = np.zeros((0, 3))
        self.last_scan_index: np.ndarray = np.zeros(0, np.int64)
        self.last_registered = False  # ICP placed the last scan (False: the first scan, or too few points: predicted)

    # ------------------------------------------------------------------ helpers
    def _relative_motion(self, dt: float) -> np.ndarray:
        if self._velocity is None or not self.config.constant_velocity:
            return np.eye(4)
        return se3_exp(self._velocity * dt)

    @staticmethod
    def _deskew(pts: np.ndarray, t: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Express each point (taken at stamp + t) in the sensor frame at the stamp (velocity v /s)."""
        xi = t[:, None] * v[None, :]
        R = Rotation.from_rotvec(xi[:, :3]).as_matrix()
        return np.einsum("nij,nj->ni", R, pts) + xi[:, 3:]

    def _local_map(self) -> o3d.geometry.PointCloud:
        cfg = self.config
        pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.concatenate(list(self._map))))
        pc = pc.voxel_down_sample(cfg.map_voxel_size)
        pc.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=cfg.normal_radius, max_nn=cfg.normal_max_nn))
        return pc

    def _icp(self, src: o3d.geometry.PointCloud, tgt: o3d.geometry.PointCloud, T0: np.ndarray) -> np.ndarray:
        cfg = self.config
        loss = o3d.pipelines.registration.TukeyLoss(k=cfg.robust_kernel_k) if cfg.robust_kernel_k else None
        est = (o3d.pipelines.registration.TransformationEstimationPointToPlane(loss) if loss is not None
               else o3d.pipelines.registration.TransformationEstimationPointToPlane())
        crit = o3d.pipelines.registration.ICPConvergenceCriteria(
            relative_fitness=1e-6, relative_rmse=1e-6, max_iteration=cfg.icp_max_iterations)
        T = T0
        for d in cfg.icp_max_distances:
            res = o3d.pipelines.registration.registration_icp(src, tgt, d, T, est, crit)
            T = np.asarray(res.transformation).copy()
            self.last_fitness, self.last_rmse = float(res.fitness), float(res.inlier_rmse)
        return T

    # ------------------------------------------------------------------ API
    def register(self, points: np.ndarray, t: np.ndarray | None, stamp_ns: int,
                 rotation_prior: np.ndarray | None = None, pose_prior: np.ndarray | None = None,
                 point_motion: PointMotion | None = None) -> np.ndarray:
        """Register one scan (Nx3, sensor frame) and return T_world_sensor at ``stamp_ns``.

        ``rotation_prior``: the sensor's rotation since the previous scan (3x3, ``R_prev_now``
        in the sensor frame), e.g. integrated from a gyroscope; it replaces the constant-velocity
        guess of the rotation in the ICP initial guess (sudden turns are where constant velocity
        is worst).  Deskewing keeps the velocity estimated from registered poses: mixing the
        newer gyro rotation with the older translation velocity made it worse (measured).

        ``pose_prior`` (T_world_sensor at ``stamp_ns``, e.g. IMU-propagated) replaces the whole
        initial guess, and is the pose returned when the scan cannot be registered.
        ``point_motion`` = ``(R, p)``, one rotation (N,3,3) and translation (N,3) per input point
        taking it from the sensor frame at its own time into the frame at ``stamp_ns``: deskewing
        from a known motion (e.g. the IMU's) instead of the constant velocity, and without the
        re-deskewing passes."""
        cfg = self.config
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        rng = np.linalg.norm(pts, axis=1)
        keep = np.isfinite(rng) & (rng >= cfg.min_range) & (rng <= cfg.max_range)
        index = np.nonzero(keep)[0]
        pts = pts[keep]
        tt = None if t is None else np.asarray(t, dtype=np.float64).reshape(-1)[keep]

        if self._last_T is None:
            T_pred = np.asarray(cfg.initial_pose, dtype=np.float64) if cfg.initial_pose is not None else np.eye(4)
        else:
            dt = (int(stamp_ns) - int(self._last_stamp)) * 1e-9
            rel = self._relative_motion(dt)
            if rotation_prior is not None and dt > 0:
                rel[:3, :3] = np.asarray(rotation_prior, dtype=np.float64).reshape(3, 3)
            T_pred = self._last_T @ rel
        if pose_prior is not None:
            T_pred = np.asarray(pose_prior, dtype=np.float64).reshape(4, 4)

        def down(p: np.ndarray) -> o3d.geometry.PointCloud:
            return o3d.geometry.PointCloud(o3d.utility.Vector3dVector(p)).voxel_down_sample(cfg.voxel_size)

        use_t = cfg.deskew and tt is not None and len(pts) > 0
        dt = 0.0 if self._last_stamp is None else (int(stamp_ns) - int(self._last_stamp)) * 1e-9
        v = self._velocity
        known = point_motion is not None and use_t
        if known:
            R_m, p_m = (np.asarray(a, dtype=np.float64)[keep] for a in point_motion)
            full = np.einsum("nij,nj->ni", R_m, pts) + p_m
        else:
            full = self._deskew(pts, tt, v) if use_t and v is not None else pts
        scan = down(full)
        self.last_registered = False
        if self._last_T is None or len(scan.points) < cfg.min_points:
            T = T_pred
            if self._last_T is None and use_t:
                self._first_raw = (pts, tt, T)
        else:
            T = self._icp(scan, self._local_map(), T_pred)
            self.last_registered = True
            for _ in range(cfg.deskew_passes - 1 if use_t and dt > 0 and not known else 0):
                v = se3_log(np.linalg.inv(self._last_T) @ T) / dt
                if self._first_raw is not None and len(self._map) == 1:
                    # second scan: the first velocity is known now, deskew the first scan too
                    p0, t0, T0 = self._first_raw
                    P0 = np.asarray(down(self._deskew(p0, t0, v)).points)
                    self._map[0] = P0 @ T0[:3, :3].T + T0[:3, 3]
                full = self._deskew(pts, tt, v)
                scan = down(full)
                T = self._icp(scan, self._local_map(), T)
        self._first_raw = None if len(self._map) >= 1 and self._last_T is not None else self._first_raw

        if len(scan.points):
            P = np.asarray(scan.points)
            self._map.append(P @ T[:3, :3].T + T[:3, 3])
        if self._last_T is not None:
            dt = (int(stamp_ns) - int(self._last_stamp)) * 1e-9
            if dt > 0:
                self._velocity = se3_log(np.linalg.inv(self._last_T) @ T) / dt
        self._last_T, self._last_stamp = T, int(stamp_ns)
        self.last_scan, self.last_scan_index = full, index
        self.trajectory.append((int(stamp_ns), T.copy()))
        return T.copy()
