"""lidar_odometry: PointCloud2 (+ optional IMU) in, odometry out (a thin wrapper over
ros_gs.mapping.LidarOdometry).

Each scan (x, y, z and, if present, per-point ``t`` in seconds after the stamp for deskewing) is
registered against a local map; the gyroscope, when an IMU topic is set and TF gives the
IMU-to-LiDAR rotation, supplies the rotation since the last scan.  One ``nav_msgs/Odometry`` per
scan, stamped with the scan's stamp, in ``odom_frame`` (= the first scan's LiDAR frame), and
``odom_frame -> lidar`` on /tf.  Each registered scan also grows a Gaussian map
(:class:`ros_gs.mapping.LidarGaussianMapper`: flat Gaussians on the scanned surfaces, grey from
the return intensity or coloured by height), published as a rate-limited PointCloud2 with the
Gaussian fields and saved as a PLY by ``~/save_map``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from ros_gs.errors import InputError, SensorDataError
from ros_gs.gaussians.ply import write_ply
from ros_gs.mapping.lidar_map import LidarGaussianMapper, LidarMapConfig
from ros_gs.mapping.lidar_odometry import LidarOdometry, LidarOdometryConfig
from ros_gs.nodes.gyro_rotation import GyroRotation
from ros_gs.nodes.map_cloud import gaussian_cloud
from ros_gs.runtime.node_api import NodeContext
from ros_gs.runtime.params import NodeParams
from ros_gs.runtime.qos import SENSOR_QOS
from ros_gs.sensors.pointcloud2 import array_to_pointcloud2, pointcloud2_to_array
from ros_gs.sensors.poses import matrix_to_pose, matrix_to_transform_stamped
from ros_gs.sensors.stamps import header_stamp_ns, make_header


class LidarOdometryNodeParams(NodeParams):
    points_topic: str = Field("/lidar/points", description="sensor_msgs/PointCloud2 with x, y, z (and t: seconds after the stamp)")
    imu_topic: str = Field("/imu/data", description="sensor_msgs/Imu whose gyroscope gives the rotation prior ('' = none)")
    odom_topic: str = Field("/ros_gs/odom", description="nav_msgs/Odometry, one per scan")
    odom_frame: str = Field("odom", description="frame of published poses (the first scan's LiDAR frame)")
    publish_tf: bool = Field(True, description="publish odom_frame -> LiDAR frame on /tf")
    max_points: int = Field(2_000_000, ge=100, description="larger scans are refused (counted skip) rather than stalling the node")
    lidar: LidarOdometryConfig = Field(default_factory=LidarOdometryConfig, description="registration (ros_gs.mapping.lidar_odometry)")
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
        self.odometry = LidarOdometry(p.lidar)
        self.odom = ctx.create_publisher("nav_msgs/msg/Odometry", p.odom_topic)
        self.tf = ctx.create_publisher("tf2_msgs/msg/TFMessage", "/tf")
        ctx.create_subscription("sensor_msgs/msg/PointCloud2", p.points_topic, self.on_scan, SENSOR_QOS)
        self.mapper = LidarGaussianMapper(p.map) if p.gaussian_map else None
        if self.mapper is not None:
            self.cloud = ctx.create_publisher("sensor_msgs/msg/PointCloud2", p.map_cloud_topic)
            ctx.create_timer(p.map_cloud_period_s, self.on_cloud_timer)
            ctx.create_service("ros_gs/srv/SaveMap", "~/save_map", self.on_save_map)
            self._cloud_version = -1
        self.imu = GyroRotation(p.imu_topic)
        if p.imu_topic:
            self._tf = ctx.tf_buffer()
            ctx.create_subscription("sensor_msgs/msg/Imu", p.imu_topic, self.imu.on_imu, SENSOR_QOS)
        self._last_stamp: int | None = None
        self.scans = 0
        self.unmapped_scans = 0
        self.imu_priors = 0

    def _rotation_prior(self, frame: str, stamp: int) -> np.ndarray | None:
        if self._last_stamp is None:
            return None
        R = self.imu.rotation(self._last_stamp, stamp, frame, self._tf)
        self.imu_priors += R is not None
        return R

    def on_scan(self, msg) -> None:
        p = self.params
        stamp = header_stamp_ns(msg)
        if self._last_stamp is not None and stamp <= self._last_stamp:
            raise SensorDataError(f"{p.points_topic}: scan at {stamp} ns is not newer than the last ({self._last_stamp} ns)")
        if int(msg.width) * int(msg.height) > p.max_points:
            raise SensorDataError(f"{p.points_topic}: {msg.width * msg.height} points exceed max_points {p.max_points}")
        cloud = pointcloud2_to_array(msg)
        names = cloud.dtype.names or ()
        if not {"x", "y", "z"} <= set(names):
            raise SensorDataError(f"{p.points_topic}: PointCloud2 without x, y, z fields ({names})")
        pts = np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=1).astype(np.float64)
        t = cloud["t"].astype(np.float64) if "t" in names else None
        finite = np.isfinite(pts).all(axis=1) & (np.isfinite(t) if t is not None else True)
        pts, t = pts[finite], (t[finite] if t is not None else None)
        frame = msg.header.frame_id or "lidar"
        prior = self._rotation_prior(frame, stamp) if p.imu_topic else None
        T = self.odometry.register(pts, t, stamp, rotation_prior=prior)
        self._last_stamp = stamp
        self.scans += 1
        header = make_header(self.ctx.make, stamp, p.odom_frame)
        pose = self.ctx.make("geometry_msgs/msg/PoseWithCovariance", pose=matrix_to_pose(self.ctx.make, T))
        self.odom.publish(self.ctx.make("nav_msgs/msg/Odometry", header=header, child_frame_id=frame, pose=pose))
        if p.publish_tf:
            self.tf.publish(self.ctx.make("tf2_msgs/msg/TFMessage", transforms=[matrix_to_transform_stamped(self.ctx.make, T, header, frame)]))
        # the map comes after publishing: a map problem never withholds the pose
        odo = self.odometry
        if self.mapper is None:
            return
        if self.scans > 1 and not (odo.last_registered and odo.last_fitness >= p.map.min_fitness):
            self.unmapped_scans += 1  # a scan whose pose is only predicted stays out of the map
            return
        intensity = None
        if "intensity" in names and cloud["intensity"].ndim == 1:
            intensity = cloud["intensity"].astype(np.float64)[finite][odo.last_scan_index]
        self.mapper.integrate(odo.last_scan @ T[:3, :3].T + T[:3, 3], T[:3, 3], stamp, intensity)

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
