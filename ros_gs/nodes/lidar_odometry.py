"""lidar_odometry: PointCloud2 (+ optional IMU) in, odometry out (a thin wrapper over
ros_gs.mapping.LidarOdometry).

Each scan (x, y, z and, if present, per-point ``t`` in seconds after the stamp for deskewing) is
registered against a local map.  With an IMU topic and TF between the IMU and the LiDAR, the IMU
is fused with the registered poses (:class:`ros_gs.mapping.LidarInertialOdometry`: preintegration
in a fixed-lag factor graph): it gives each scan's initial guess and deskews its points, and it
carries the pose through scans that cannot be registered; until its gravity and velocity are
estimated (the first ``imu.init_scans`` scans), the gyroscope gives the rotation alone.  A scan
waits for the IMU samples up to its last point (at most until the next scan arrives).  One
``nav_msgs/Odometry`` per scan, stamped with the scan's stamp, in ``odom_frame`` (= the first
scan's LiDAR frame), and ``odom_frame -> lidar`` on /tf.  Each registered scan also grows a Gaussian map
(:class:`ros_gs.mapping.LidarGaussianMapper`: flat Gaussians on the scanned surfaces, grey from
the return intensity or coloured by height), published as a rate-limited PointCloud2 with the
Gaussian fields and saved as a PLY by ``~/save_map``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field

from ros_gs.errors import InputError, SensorDataError
from ros_gs.gaussians.ply import write_ply
from ros_gs.mapping.imu_fusion import ImuFusionConfig
from ros_gs.mapping.lidar_inertial import LidarInertialOdometry
from ros_gs.mapping.lidar_map import LidarGaussianMapper, LidarMapConfig
from ros_gs.mapping.lidar_odometry import LidarOdometryConfig
from ros_gs.nodes.map_cloud import gaussian_cloud
from ros_gs.runtime.node_api import NodeContext
from ros_gs.runtime.params import NodeParams
from ros_gs.runtime.qos import SENSOR_QOS
from ros_gs.sensors.imu import imu_from_msg
from ros_gs.sensors.pointcloud2 import array_to_pointcloud2, pointcloud2_to_array
from ros_gs.sensors.poses import matrix_to_pose, matrix_to_transform_stamped
from ros_gs.sensors.stamps import header_stamp_ns, make_header


@dataclass
class _Scan:
    stamp: int
    frame: str
    points: np.ndarray  # (N, 3) finite
    t: np.ndarray | None  # (N,) seconds after the stamp
    intensity: np.ndarray | None  # (N,)


class LidarOdometryNodeParams(NodeParams):
    points_topic: str = Field("/lidar/points", description="sensor_msgs/PointCloud2 with x, y, z (and t: seconds after the stamp)")
    imu_topic: str = Field("/imu/data", description="sensor_msgs/Imu fused with the scans ('' = LiDAR only)")
    odom_topic: str = Field("/ros_gs/odom", description="nav_msgs/Odometry, one per scan")
    odom_frame: str = Field("odom", description="frame of published poses (the first scan's LiDAR frame)")
    publish_tf: bool = Field(True, description="publish odom_frame -> LiDAR frame on /tf")
    max_points: int = Field(2_000_000, ge=100, description="larger scans are refused (counted skip) rather than stalling the node")
    lidar: LidarOdometryConfig = Field(default_factory=LidarOdometryConfig, description="registration (ros_gs.mapping.lidar_odometry)")
    imu: ImuFusionConfig = Field(default_factory=ImuFusionConfig, description="IMU fusion (ros_gs.mapping.imu_fusion)")
    gaussian_map: bool = Field(True, description="grow a Gaussian map from the registered scans")
    map_cloud_topic: str = Field("/ros_gs/lidar/map_points", description="the Gaussian map as PointCloud2 (centres, colour, opacity, scales, rotations)")
    map_cloud_period_s: float = Field(2.0, gt=0.0, le=3600.0, description="period of the map cloud")
    map: LidarMapConfig = Field(default_factory=LidarMapConfig, description="Gaussian map (ros_gs.mapping.lidar_map)")


class LidarOdometryNode:
    NAME = "lidar_odometry"
    Params = LidarOdometryNodeParams

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.params = p = ctx.get_params(LidarOdometryNodeParams)
        self.lio = LidarInertialOdometry(p.lidar, p.imu)
        self.odometry = self.lio.odometry
        self.odom = ctx.create_publisher("nav_msgs/msg/Odometry", p.odom_topic)
        self.tf = ctx.create_publisher("tf2_msgs/msg/TFMessage", "/tf")
        ctx.create_subscription("sensor_msgs/msg/PointCloud2", p.points_topic, self.on_scan, SENSOR_QOS)
        self.mapper = LidarGaussianMapper(p.map) if p.gaussian_map else None
        if self.mapper is not None:
            self.cloud = ctx.create_publisher("sensor_msgs/msg/PointCloud2", p.map_cloud_topic)
            ctx.create_timer(p.map_cloud_period_s, self.on_cloud_timer)
            ctx.create_service("ros_gs/srv/SaveMap", "~/save_map", self.on_save_map)
            self._cloud_version = -1
        self.imu_frame: str | None = None  # from the IMU's messages
        self._imu_extrinsic: str | None = None  # the LiDAR frame the fusion's extrinsic was looked up for
        if p.imu_topic:
            self._tf = ctx.tf_buffer()
            ctx.create_subscription("sensor_msgs/msg/Imu", p.imu_topic, self.on_imu, SENSOR_QOS)
        self._pending: _Scan | None = None  # the newest scan, waiting for the IMU to cover it
        self._last_stamp: int | None = None
        self.scans = 0
        self.unmapped_scans = 0
        self.imu_without_tf = 0  # scans processed without IMU help for want of the IMU -> LiDAR TF

    # -- inputs ------------------------------------------------------------------------------------
    def on_imu(self, msg) -> None:
        sample = imu_from_msg(msg)
        self.imu_frame = sample.frame_id
        if not self.lio.add_imu(sample.stamp_ns, sample.angular_velocity, sample.linear_acceleration):
            raise SensorDataError(f"{self.params.imu_topic}: sample at {sample.stamp_ns} ns is not newer than the last or not finite")
        if self._pending is not None and self.lio.covers(self._pending.stamp, self._pending.t):
            self._process(self._pending)

    def on_scan(self, msg) -> None:
        p = self.params
        stamp = header_stamp_ns(msg)
        newest = self._pending.stamp if self._pending is not None else self._last_stamp
        if newest is not None and stamp <= newest:
            raise SensorDataError(f"{p.points_topic}: scan at {stamp} ns is not newer than the last ({newest} ns)")
        if int(msg.width) * int(msg.height) > p.max_points:
            raise SensorDataError(f"{p.points_topic}: {msg.width * msg.height} points exceed max_points {p.max_points}")
        cloud = pointcloud2_to_array(msg)
        names = cloud.dtype.names or ()
        if not {"x", "y", "z"} <= set(names):
            raise SensorDataError(f"{p.points_topic}: PointCloud2 without x, y, z fields ({names})")
        pts = np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=1).astype(np.float64)
        t = cloud["t"].astype(np.float64) if "t" in names else None
        finite = np.isfinite(pts).all(axis=1) & (np.isfinite(t) if t is not None else True)
        intensity = None
        if "intensity" in names and cloud["intensity"].ndim == 1:
            intensity = cloud["intensity"].astype(np.float64)[finite]
        scan = _Scan(stamp, msg.header.frame_id or "lidar", pts[finite], t[finite] if t is not None else None, intensity)
        if self._pending is not None:  # the IMU never covered it: go on with what there is
            self._process(self._pending)
        waits = bool(p.imu_topic) and self.imu_frame is not None and self._set_extrinsic(scan.frame)
        if waits and not self.lio.covers(stamp, scan.t):
            self._pending = scan
        else:
            self._process(scan)

    def flush(self) -> None:
        """The input ended: the scan still waiting for IMU samples is processed with what there is."""
        if self._pending is not None:
            self._process(self._pending)

    def _set_extrinsic(self, frame: str) -> bool:
        """The fusion's IMU -> LiDAR extrinsic from TF (once per LiDAR frame); False without it."""
        if self._imu_extrinsic == frame:
            return True
        try:
            self.lio.fusion.T_sensor_imu = self._tf.lookup(frame, self.imu_frame).matrix
        except InputError:
            return False
        self._imu_extrinsic = frame
        return True

    def _process(self, scan: _Scan) -> None:
        self._pending = None
        p = self.params
        use_imu = bool(p.imu_topic) and self.imu_frame is not None and self._set_extrinsic(scan.frame)
        self.imu_without_tf += bool(p.imu_topic) and self.imu_frame is not None and not use_imu
        if use_imu:
            T = self.lio.register(scan.points, scan.t, scan.stamp)
        else:
            T = self.odometry.register(scan.points, scan.t, scan.stamp)
        self._last_stamp = scan.stamp
        self.scans += 1
        header = make_header(self.ctx.make, scan.stamp, p.odom_frame)
        pose = self.ctx.make("geometry_msgs/msg/PoseWithCovariance", pose=matrix_to_pose(self.ctx.make, T))
        self.odom.publish(self.ctx.make("nav_msgs/msg/Odometry", header=header, child_frame_id=scan.frame, pose=pose))
        if p.publish_tf:
            self.tf.publish(self.ctx.make("tf2_msgs/msg/TFMessage", transforms=[matrix_to_transform_stamped(self.ctx.make, T, header, scan.frame)]))
        # the map comes after publishing: a map problem never withholds the pose
        odo = self.odometry
        if self.mapper is None:
            return
        if self.scans > 1 and not (odo.last_registered and odo.last_fitness >= p.map.min_fitness):
            self.unmapped_scans += 1  # a scan whose pose is only predicted stays out of the map
            return
        intensity = None if scan.intensity is None else scan.intensity[odo.last_scan_index]
        self.mapper.integrate(odo.last_scan @ T[:3, :3].T + T[:3, 3], T[:3, 3], scan.stamp, intensity)

    # -- the Gaussian map --------------------------------------------------------------------------
    def on_cloud_timer(self) -> None:
        gmap = self.mapper.map
        if len(gmap) == 0 or self.scans == self._cloud_version:
            return
        self._cloud_version = self.scans
        self.cloud.publish(array_to_pointcloud2(self.ctx.make, gaussian_cloud(gmap), self.ctx.now_ns(), self.params.odom_frame))

    def on_save_map(self, request, response):
        try:
            Path(request.path).mkdir(parents=True, exist_ok=True)
            write_ply(self.mapper.map, Path(request.path) / "map.ply")
        except (OSError, InputError) as err:
            response.ok, response.message = False, f"cannot save to {request.path!r}: {err}"
            return response
        n = len(self.mapper.map)
        response.ok, response.message, response.num_gaussians = True, f"saved {n} Gaussians to map.ply", n
        return response
