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
Gaussian fields and saved as a PLY by ``~/save_map``.  With ``image_topic`` set, a camera colours
the Gaussians it sees (:meth:`ros_gs.mapping.LidarGaussianMapper.colourise`): an image waits
until a scan at or after its stamp has a pose, and its camera pose is the LiDAR trajectory
interpolated at the image stamp, times the static LiDAR -> camera transform.  Extrinsics come
from /tf_static only (the node's own odom -> LiDAR never enters that buffer).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from ros_gs.errors import InputError, SensorDataError
from ros_gs.gaussians.ply import write_ply
from ros_gs.mapping.imu_fusion import ImuFusionConfig
from ros_gs.mapping.lidar_inertial import LidarInertialOdometry
from ros_gs.mapping.lidar_map import LidarGaussianMapper, LidarMapConfig
from ros_gs.mapping.lidar_odometry import LidarOdometryConfig
from ros_gs.nodes.map_cloud import gaussian_cloud
from ros_gs.runtime.node_api import NodeContext
from ros_gs.runtime.params import NodeParams
from ros_gs.runtime.qos import SENSOR_QOS, TF_STATIC_QOS
from ros_gs.sensors.camera import camera_from_info
from ros_gs.sensors.image import image_to_numpy
from ros_gs.sensors.imu import imu_from_msg
from ros_gs.sensors.pointcloud2 import array_to_pointcloud2, scan_arrays
from ros_gs.sensors.poses import matrix_to_pose, matrix_to_transform_stamped, matrix_to_xyz_quat
from ros_gs.sensors.stamps import check_not_ahead, header_stamp_ns, make_header
from ros_gs.sensors.sync import ApproximateTimeSync
from ros_gs.sensors.tf_buffer import TfBuffer


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
    max_future_s: float = Field(1.0, gt=0.0, description="a scan stamped more than this ahead of the node's clock is a counted skip (one scan stamped in 2038 made the 9 after it 'older than the last')")
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
    image_topic: str = Field("", description="sensor_msgs/Image whose colours the Gaussian map takes ('' = none)")
    camera_info_topic: str = Field("", description="the sensor_msgs/CameraInfo of image_topic (a rectified or distortion-free camera)")
    colour_period_s: float = Field(0.0, ge=0.0, le=3600.0, description="colour with at most one image per this period (0 = every image)")

    @model_validator(mode="after")
    def _camera_needs_info(self) -> "LidarOdometryNodeParams":
        if self.image_topic and not self.camera_info_topic:
            raise ValueError("image_topic needs camera_info_topic (its intrinsics)")
        return self


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
        # static extrinsics only: the node's own odom -> LiDAR on /tf must not enter this buffer
        self._tf = TfBuffer()
        ctx.create_subscription("tf2_msgs/msg/TFMessage", "/tf_static", lambda m: self._tf.add_tf_message(m, static=True),
                                TF_STATIC_QOS)
        if p.imu_topic:
            ctx.create_subscription("sensor_msgs/msg/Imu", p.imu_topic, self.on_imu, SENSOR_QOS)
        self._trajectory = TfBuffer(cache_ns=10**10)  # odom -> LiDAR at each scan, interpolated at image stamps
        self._images: deque = deque()  # (image, info) waiting for a scan at or after their stamp
        self._last_colour: int | None = None
        self._lidar_frame = "lidar"
        self.coloured_images = 0
        if p.image_topic and self.mapper is not None:
            self._sync = ApproximateTimeSync(2, 1_000_000, queue_size=10)
            for i, (msgtype, topic) in enumerate((("sensor_msgs/msg/Image", p.image_topic),
                                                  ("sensor_msgs/msg/CameraInfo", p.camera_info_topic))):
                ctx.create_subscription(msgtype, topic, lambda m, i=i: self.on_camera(i, m), SENSOR_QOS)
        self._pending: _Scan | None = None  # the newest scan, waiting for the IMU to cover it
        self._last_stamp: int | None = None
        self.scans = 0
        self.unmapped_scans = 0
        self.imu_without_tf = 0  # scans processed without IMU help for want of the IMU -> LiDAR TF
        self.uncovered_scans = 0  # scans processed when the next arrived, the IMU never covering them

    # -- inputs ------------------------------------------------------------------------------------
    def diagnostics(self) -> dict[str, object]:
        """Figures for /diagnostics (see ros_gs.runtime.diagnostics)."""
        out: dict[str, object] = {"scans processed": self.scans, "scans without IMU help": self.imu_without_tf + self.uncovered_scans}
        if self.mapper is not None:
            out["gaussians"] = len(self.mapper.map)
        return out

    def on_imu(self, msg) -> None:
        sample = imu_from_msg(msg)
        self.imu_frame = sample.frame_id
        accel = sample.linear_acceleration if sample.has_linear_acceleration else None
        if not self.lio.add_imu(sample.stamp_ns, sample.angular_velocity, accel):
            raise SensorDataError(f"{self.params.imu_topic}: sample at {sample.stamp_ns} ns is not newer than the last or not finite")
        if self._pending is not None and self.lio.covers(self._pending.stamp, self._pending.t):
            self._process(self._pending)

    def on_scan(self, msg) -> None:
        p = self.params
        stamp = header_stamp_ns(msg)
        check_not_ahead(stamp, self.ctx.now_ns(), p.points_topic, p.max_future_s)
        newest = self._pending.stamp if self._pending is not None else self._last_stamp
        if newest is not None and stamp <= newest:
            raise SensorDataError(f"{p.points_topic}: scan at {stamp} ns is not newer than the last ({newest} ns)")
        pts, t, intensity = scan_arrays(msg, p.points_topic, p.max_points)
        if (msg.header.frame_id or "lidar") == p.odom_frame:
            raise SensorDataError(f"{p.points_topic}: the scan's frame {p.odom_frame!r} is also odom_frame: rename one")
        scan = _Scan(stamp, msg.header.frame_id or "lidar", pts, t, intensity)
        if self._pending is not None:  # the IMU never covered it: go on with what there is
            self.uncovered_scans += 1
            if self.uncovered_scans == 1:
                self.ctx.logger.warning("%s: the IMU did not reach the end of the scan at %d ns before the next scan; "
                                        "scans are processed one late (IMU stamps behind the LiDAR's?)", p.points_topic, self._pending.stamp)
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
        if bool(p.imu_topic) and self.imu_frame is not None and not use_imu:
            self.imu_without_tf += 1
            if self.imu_without_tf == 1:
                self.ctx.logger.warning("no /tf_static transform %s -> %s: scans are registered without the IMU",
                                        scan.frame, self.imu_frame)
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
        self._trajectory.set_transform(p.odom_frame, scan.frame, scan.stamp, *matrix_to_xyz_quat(T))
        self._lidar_frame = scan.frame
        if self.mapper is not None:  # the map comes after publishing: a map problem never withholds the pose
            self._map_scan(scan, T)
            self._colour_waiting()

    def _map_scan(self, scan: _Scan, T: np.ndarray) -> None:
        odo = self.odometry
        if self.scans > 1 and not (odo.last_registered and odo.last_fitness >= self.params.map.min_fitness):
            self.unmapped_scans += 1  # a scan whose pose is only predicted stays out of the map
            return
        intensity = None if scan.intensity is None else scan.intensity[odo.last_scan_index]
        self.mapper.integrate(odo.last_scan @ T[:3, :3].T + T[:3, 3], T[:3, 3], scan.stamp, intensity)

    # -- camera colours ----------------------------------------------------------------------------
    def on_camera(self, index: int, msg) -> None:
        for image, info in self._sync.add(index, header_stamp_ns(msg), msg):
            stamp = header_stamp_ns(image)
            period = int(self.params.colour_period_s * 1e9)
            if period and self._last_colour is not None and stamp - self._last_colour < period:
                continue  # rate limit: not a skip
            self._last_colour = stamp
            if len(self._images) >= 10:  # no scans for a while: the oldest image goes, counted
                self._images.popleft()
                self.ctx.count_skip(self.params.image_topic, InputError("image dropped: no LiDAR pose reached its stamp"))
            self._images.append((image, info))
            self._colour_waiting()

    def _colour_waiting(self) -> None:
        """Colour with the images whose stamp a scan's pose has reached (oldest first)."""
        newest = self._last_stamp
        while self._images and newest is not None and header_stamp_ns(self._images[0][0]) <= newest:
            image, info = self._images.popleft()
            self.ctx.guard(self.params.image_topic, self._colour)(image, info)

    def _colour(self, image, info) -> None:
        p = self.params
        stamp = header_stamp_ns(image)
        rgb = image_to_numpy(image)
        if rgb.ndim != 3:
            raise SensorDataError(f"{p.image_topic}: expected a colour image, got {image.encoding}")
        cam = camera_from_info(info)
        if rgb.shape[:2] != (cam.height, cam.width):
            raise SensorDataError(f"{p.image_topic}: image {rgb.shape[:2]} and its CameraInfo {(cam.height, cam.width)} differ in size")
        # raises TransformError (an InputError: a counted skip) before the first scan's stamp or without the extrinsic
        T_odom_lidar = self._trajectory.lookup(p.odom_frame, self._lidar_frame, stamp).matrix
        T_lidar_cam = self._tf.lookup(self._lidar_frame, image.header.frame_id or "camera").matrix
        if rgb.dtype == np.uint16:
            rgb = (rgb >> 8).astype(np.uint8)
        rgb8 = rgb if rgb.dtype == np.uint8 else (np.clip(np.nan_to_num(rgb), 0.0, 1.0) * 255).astype(np.uint8)
        self.mapper.colourise(rgb8, cam.K, T_odom_lidar @ T_lidar_cam, stamp)
        self.coloured_images += 1

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
