"""LiDAR odometry with an IMU: :class:`LidarOdometry` guided by :class:`ImuFusion`.

``LidarInertialOdometry(lidar_config, imu_config).register(points, t, stamp_ns)`` after
``add_imu`` samples.  Until the fusion has its gravity and velocity (the first
``imu.init_scans`` registered scans), the gyroscope gives the rotation since the last scan and
deskewing uses the registered poses' constant velocity; afterwards every scan's ICP initial guess
is the IMU-propagated pose and its points are deskewed along the IMU trajectory.  Each scan that
ICP placed well (fitness >= ``imu.min_fitness``) is fused back; a scan too small to register
(fewer than ``lidar.min_points`` after downsampling: an outage, a blocked sensor) gets the
IMU-propagated pose, which is what bridges LiDAR outages.  A scan ICP registered poorly keeps
ICP's pose but is not fused.

Scans should be registered once the IMU covers them (:meth:`covers`): a driver stamps a scan at
its first point and IMU samples up to its last point are needed to deskew it.

No ROS imports.
"""

from __future__ import annotations

import numpy as np

from ros_gs.mapping.imu_fusion import ImuFusion, ImuFusionConfig
from ros_gs.mapping.imu_rotation import GyroIntegrator
from ros_gs.mapping.lidar_odometry import LidarOdometry, LidarOdometryConfig

__all__ = ["LidarInertialOdometry"]


class LidarInertialOdometry:
    """See the module docstring.  ``T_sensor_imu``: the IMU's pose in the LiDAR frame (may be set
    later through ``fusion.T_sensor_imu``, before the first scan)."""

    def __init__(self, lidar: LidarOdometryConfig | None = None, imu: ImuFusionConfig | None = None,
                 T_sensor_imu: np.ndarray | None = None) -> None:
        self.odometry = LidarOdometry(lidar)
        self.fusion = ImuFusion(imu, T_sensor_imu)
        self.gyro = GyroIntegrator()
        self.imu_predicted = 0  # scans whose initial guess came from the fusion
        self.gyro_predicted = 0  # ... from the gyroscope rotation alone
        self._last_stamp: int | None = None

    def add_imu(self, stamp_ns: int, gyro: np.ndarray, accel: np.ndarray | None) -> bool:
        """One IMU sample (its own frame); False (counted) when older than the last or not finite.
        ``accel`` None (an IMU without accelerometer): the gyroscope's rotation only."""
        ok = accel is None or self.fusion.add_imu(stamp_ns, gyro, accel)
        return self.gyro.add(stamp_ns, gyro) and ok

    def covers(self, stamp_ns: int, t: np.ndarray | None) -> bool:
        """The IMU samples reach the scan's last point (or the stamp, without per-point times)."""
        newest = self.fusion.newest_sample_ns
        end = int(stamp_ns) + (int(np.max(t) * 1e9) if t is not None and len(t) else 0)
        return newest is not None and newest >= end

    def register(self, points: np.ndarray, t: np.ndarray | None, stamp_ns: int) -> np.ndarray:
        """T_world_sensor at ``stamp_ns`` (see the module docstring)."""
        fusion, odo = self.fusion, self.odometry
        prior = motion = rotation = None
        if fusion.config.enabled and fusion.ready:
            prior = fusion.predict(stamp_ns)
            if prior is not None and t is not None:
                motion = fusion.point_motion(stamp_ns, t)
        if prior is None and self._last_stamp is not None:
            R = self.gyro.rotation(self._last_stamp, int(stamp_ns))
            if R is not None:
                R_si = fusion.T_sensor_imu[:3, :3]
                rotation = R_si @ R @ R_si.T
        self.imu_predicted += prior is not None
        self.gyro_predicted += rotation is not None
        T = odo.register(points, t, stamp_ns, rotation_prior=rotation, pose_prior=prior, point_motion=motion)
        first = self._last_stamp is None
        self._last_stamp = int(stamp_ns)
        if fusion.config.enabled and (first or (odo.last_registered and odo.last_fitness >= fusion.config.min_fitness)):
            fusion.update(stamp_ns, T)
        return T
