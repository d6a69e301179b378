"""mapper: RGB-D in, camera pose and a Gaussian map out (a thin wrapper over ros_gs.mapping).

Subscribes to colour, depth and CameraInfo, pairs them with approximate time sync, hands each
frame to :class:`ros_gs.mapping.Mapper` and publishes one ``nav_msgs/Odometry`` per processed
frame, stamped with the images' stamp, plus ``map -> camera`` on /tf.  Depth that is not
registered to colour (``depth_info_topic`` set) brings its own CameraInfo; the colour image is
then resampled onto the depth grid using the depth -> colour extrinsic from /tf_static, and the
pose published is the depth camera's.  An external odometry (``odom_prior_topic``; frames wait
for it to reach their stamp, at most ``odom_wait_frames``) or the IMU
(``imu_topic``) predicts each frame's pose in place of constant velocity: the IMU is fused with
the tracked poses (:class:`ros_gs.mapping.ImuFusion`, preintegration in a fixed-lag smoother)
and its motion between frames is the prediction; until the fusion has aligned gravity and
velocity (the first ``imu.init_scans`` tracked frames), and after a pose jumped away from
the IMU's prediction (a relocalisation: the fusion aligns again), the gyroscope's rotation with
constant-velocity translation.  The map goes out as a rate-limited PointCloud2 of the resident
Gaussians (those of keyframes beyond ``mapper.offload_radius`` wait on disk); services save the
whole map (PLY + keyframes) and render it, off-loaded parts included, from any camera.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from pydantic import Field

from ros_gs.errors import InputError, SensorDataError
from ros_gs.mapping import Mapper, MapperConfig, RgbdFrame
from ros_gs.mapping.imu_fusion import ImuFusion, ImuFusionConfig
from ros_gs.mapping.trajectory import place_points
from ros_gs.nodes.gyro_rotation import GyroRotation
from ros_gs.nodes.map_cloud import gaussian_cloud
from ros_gs.runtime.node_api import NodeContext
from ros_gs.runtime.params import NodeParams
from ros_gs.runtime.qos import SENSOR_QOS, TF_STATIC_QOS
from ros_gs.sensors.camera import camera_from_info
from ros_gs.sensors.image import depth_to_metres, image_to_numpy, numpy_to_image
from ros_gs.sensors.pointcloud2 import array_to_pointcloud2, scan_arrays
from ros_gs.sensors.poses import matrix_to_pose, matrix_to_transform_stamped, matrix_to_xyz_quat, pose_msg_to_matrix
from ros_gs.sensors.stamps import check_not_ahead, header_stamp_ns, make_header
from ros_gs.sensors.sync import ApproximateTimeSync
from ros_gs.sensors.tf_buffer import TfBuffer



#: render_view's largest image side (pixels): a 4096x4096 view is 200 MB of rendering buffers on
#: the CPU; 100000x100000 would be 100 GB
MAX_RENDER_SIDE = 4096

class MapperNodeParams(NodeParams):
    rgb_topic: str = Field("/camera/color/image_raw", description="sensor_msgs/Image colour")
    depth_topic: str = Field("/camera/depth/image_raw", description="sensor_msgs/Image depth (16UC1 mm or 32FC1 m)")
    info_topic: str = Field("/camera/color/camera_info", description="sensor_msgs/CameraInfo of the colour camera")
    depth_info_topic: str = Field("", description="sensor_msgs/CameraInfo of the depth camera when depth is not registered to colour (colour is then registered to depth with the TF between their frames); '' = registered, depth uses info_topic")
    depth_scale: float = Field(0.001, gt=0.0, description="metres per unit of 16UC1 depth")
    sync_slop_s: float = Field(0.02, ge=0.0, le=1.0, description="max stamp difference of a colour/depth/info set")
    map_frame: str = Field("map", description="frame of the map and of published poses")
    odom_topic: str = Field("/ros_gs/odom", description="nav_msgs/Odometry, one per processed frame")
    publish_tf: bool = Field(True, description="publish map -> camera optical frame on /tf (or map -> the root of the camera's /tf_static tree, e.g. its rig, so that no frame has two parents)")
    map_cloud_topic: str = Field("/ros_gs/map_points", description="Gaussian centres as PointCloud2")
    map_cloud_period_s: float = Field(2.0, gt=0.0, le=3600.0, description="period of the map cloud")
    odom_wait_frames: int = Field(10, ge=0, le=100, description="with odom_prior_topic: a frame waits for the odometry to reach its stamp while at most this many frames wait (a LiDAR odometry publishes a scan's pose after the scan)")
    odom_prior_topic: str = Field("", description="nav_msgs/Odometry of an external odometry (wheels, VIO, LiDAR): its motion between two frames, moved into the camera frame by the static TF from its child_frame_id, replaces the constant-velocity prediction; '' = none")
    imu_topic: str = Field("", description="sensor_msgs/Imu: without odom_prior_topic, the IMU's motion between frames (fused with the tracked poses; extrinsic from /tf_static) replaces constant velocity; '' = none")
    imu: ImuFusionConfig = Field(default_factory=ImuFusionConfig, description="IMU fusion (ros_gs.mapping.imu_fusion; init_scans counts tracked frames)")
    points_topic: str = Field("", description="sensor_msgs/PointCloud2 (x, y, z, optional t: seconds after the stamp) of a LiDAR whose returns complete the map where the cameras did not look (grey Gaussians, see Mapper.add_points); each point is placed with the camera pose interpolated at its time and the static TF camera -> LiDAR; '' = none")
    points_range: tuple[float, float] = Field((0.3, 20.0), description="LiDAR returns outside [min, max] metres from the sensor are not mapped")
    max_points: int = Field(2_000_000, ge=100, description="larger clouds are refused (counted skip)")
    map_path: str = Field("", description="a map folder saved by ~/save_map to start from: the first frame is relocalised in it and poses are published in its frame (set mapper.update_map false to localise only)")
    mapper: MapperConfig = Field(default_factory=MapperConfig, description="mapping and tracking (ros_gs.mapping)")


class MapperNode:
    NAME = "mapper"
    Params = MapperNodeParams

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.params = p = ctx.get_params(MapperNodeParams)
        # a damaged map folder raises DatasetError here: the runtime reports it, no node starts
        self.mapper = Mapper.load(p.map_path, p.mapper) if p.map_path else Mapper(p.mapper)
        inputs = [("sensor_msgs/msg/Image", p.rgb_topic), ("sensor_msgs/msg/Image", p.depth_topic),
                  ("sensor_msgs/msg/CameraInfo", p.info_topic)]
        if p.depth_info_topic:
            inputs.append(("sensor_msgs/msg/CameraInfo", p.depth_info_topic))
        # static extrinsics only: the node's own map -> camera on /tf must not enter this buffer
        self._tf_static = TfBuffer()
        ctx.create_subscription("tf2_msgs/msg/TFMessage", "/tf_static", lambda m: self._tf_static.add_tf_message(m, static=True),
                                TF_STATIC_QOS)
        self._prior = TfBuffer(cache_ns=60 * 10**9)  # the external odometry's poses, interpolated at image stamps
        self._prior_frames: tuple[str, str] | None = None
        self._prior_latest: int | None = None  # newest odometry stamp
        self._waiting: deque = deque()  # synced (rgb, depth, info[, depth_info]) waiting for the odometry
        self._prev_stamp: int | None = None
        self.priors = {"used": 0, "missing": 0, "imu": 0}  # imu: of the used, from the fused IMU
        if p.odom_prior_topic:
            ctx.create_subscription("nav_msgs/msg/Odometry", p.odom_prior_topic, self.on_odom_prior, SENSOR_QOS)
        self.imu = GyroRotation(p.imu_topic)
        self.fusion = ImuFusion(p.imu)
        self._fusion_frame: str | None = None  # the camera frame the fusion's extrinsic is for
        if p.imu_topic and not p.odom_prior_topic:
            ctx.create_subscription("sensor_msgs/msg/Imu", p.imu_topic, self.on_imu, SENSOR_QOS)
        self._camera = TfBuffer(cache_ns=60 * 10**9)  # map -> camera at processed frames, for LiDAR points
        self._camera_frame: str | None = None
        self._camera_latest: int | None = None
        self._scans: deque = deque()  # (stamp, frame, points, t) waiting for the camera poses around them
        self.points = {"scans": 0, "gaussians": 0}
        if p.points_topic:
            ctx.create_subscription("sensor_msgs/msg/PointCloud2", p.points_topic, self.on_points, SENSOR_QOS)
        self.sync_topics = topics = [topic for _, topic in inputs]  # every frame the sync drops is counted under its topic
        self.sync = ApproximateTimeSync(len(inputs), int(p.sync_slop_s * 1e9), queue_size=10,
                                        on_drop=lambda i, why: ctx.count_skip(topics[i], f"dropped by the time sync: {why}"))
        self.odom = ctx.create_publisher("nav_msgs/msg/Odometry", p.odom_topic)
        self.tf = ctx.create_publisher("tf2_msgs/msg/TFMessage", "/tf")
        self.cloud = ctx.create_publisher("sensor_msgs/msg/PointCloud2", p.map_cloud_topic)
        for i, (msgtype, topic) in enumerate(inputs):
            ctx.create_subscription(msgtype, topic, lambda m, i=i: self.on_message(i, m), SENSOR_QOS)
        ctx.create_timer(p.map_cloud_period_s, self.on_cloud_timer)
        ctx.create_service("ros_gs/srv/SaveMap", "~/save_map", self.on_save_map)
        ctx.create_service("ros_gs/srv/RenderView", "~/render_view", self.on_render_view)
        self._cloud_version = -1
        self.frames = 0

    # -- input ---------------------------------------------------------------------------------
    def on_message(self, index: int, msg) -> None:
        stamp = header_stamp_ns(msg)
        check_not_ahead(stamp, self.ctx.now_ns(), self.sync_topics[index])
        for msgs in self.sync.add(index, stamp, msg):
            if not self.params.odom_prior_topic:
                self.on_frame(*msgs)
                continue
            # a frame waits for the odometry to reach its stamp (a LiDAR odometry publishes a
            # scan's pose after the scan ends), at most odom_wait_frames frames
            self._waiting.append(msgs)
            while len(self._waiting) > self.params.odom_wait_frames:
                self._guarded_frame(self._waiting.popleft())
            self._frames_with_odometry()

    def _guarded_frame(self, msgs) -> None:
        self.ctx.guard(self.params.rgb_topic, self.on_frame)(*msgs)

    def _frames_with_odometry(self) -> None:
        latest = self._prior_latest
        while self._waiting and latest is not None and header_stamp_ns(self._waiting[0][0]) <= latest:
            self._guarded_frame(self._waiting.popleft())

    def flush(self) -> None:
        """The input ended: frames still waiting for the odometry are processed with what there is;
        LiDAR scans the camera poses never reached are counted skips; the final map goes out on
        the map cloud (if it changed since the last one)."""
        while self._waiting:
            self._guarded_frame(self._waiting.popleft())
        self._map_scans()
        for stamp, *_ in self._scans:
            self.ctx.count_skip(self.params.points_topic, InputError(f"scan at {stamp} ns: no camera pose after it"))
        self._scans.clear()
        self.on_cloud_timer()

    def on_points(self, msg) -> None:
        p = self.params
        pts, t, _ = scan_arrays(msg, p.points_topic, p.max_points)
        if t is not None and len(t) and (t.min() < -1.0 or t.max() > 1.0):
            raise SensorDataError(f"{p.points_topic}: point times {t.min():.3g}..{t.max():.3g} s are not seconds within 1 s of the stamp")
        r = np.linalg.norm(pts, axis=1)
        keep = (r >= p.points_range[0]) & (r <= p.points_range[1])
        self._scans.append((header_stamp_ns(msg), msg.header.frame_id or "lidar", pts[keep].astype(np.float32),
                            t[keep] if t is not None else None))
        # the camera is far behind: the oldest scans go, counted (at most 50 scans, 5M points wait)
        while len(self._scans) > 50 or sum(len(s[2]) for s in self._scans) > 5_000_000:
            self.ctx.count_skip(p.points_topic, InputError(f"scan at {self._scans.popleft()[0]} ns dropped: no camera pose reached it"))
        self._map_scans()

    def _restart_camera_track(self, why: str) -> None:
        """Forget the camera poses (lost tracking, time going back, a new camera frame): scans
        are never placed with poses interpolated across such a break; waiting scans are skipped."""
        self._camera = TfBuffer(cache_ns=60 * 10**9)
        self._camera_latest = None
        for stamp, *_ in self._scans:
            self.ctx.count_skip(self.params.points_topic, InputError(f"scan at {stamp} ns: {why}"))
        self._scans.clear()

    def _map_scans(self) -> None:
        """Map the waiting scans that the camera trajectory now covers."""
        while self._scans and self._camera_latest is not None:
            stamp, frame, pts, t = self._scans[0]
            end = stamp + (int(t.max() * 1e9) if t is not None and len(t) else 0)
            if end > self._camera_latest:
                return
            self._scans.popleft()
            self.ctx.guard(self.params.points_topic, self._map_scan)(stamp, frame, pts, t)

    def _map_scan(self, stamp: int, frame: str, pts: np.ndarray, t: np.ndarray | None) -> None:
        cam = self._camera_frame
        T_cam_lidar = self._tf_static.lookup(cam, frame).matrix  # TransformError: a counted skip
        rel = np.zeros(len(pts)) if t is None else t

        def pose_at(dt: float) -> np.ndarray:  # before the first pose: TransformError, a counted skip
            return self._camera.lookup(self.params.map_frame, cam, stamp + int(round(dt * 1e9))).matrix

        world = place_points(pts, rel, pose_at, T_cam_lidar)
        self.points["scans"] += 1
        self.points["gaussians"] += self.mapper.add_points(world)

    def on_frame(self, rgb_msg, depth_msg, info_msg, depth_info_msg=None) -> None:
        rgb = image_to_numpy(rgb_msg)
        if rgb.ndim != 3:
            raise SensorDataError(f"{self.params.rgb_topic}: expected a colour image, got {rgb_msg.encoding}")
        depth = depth_to_metres(depth_msg, depth_scale=self.params.depth_scale)
        cam = camera_from_info(info_msg)
        stamp = header_stamp_ns(rgb_msg)
        child = rgb_msg.header.frame_id or "camera"
        if depth_info_msg is None:
            if depth.shape != rgb.shape[:2]:
                raise SensorDataError(f"depth {depth.shape} and colour {rgb.shape[:2]} differ in size: set depth_info_topic for unregistered depth")
            frame = RgbdFrame(stamp_ns=stamp, rgb=rgb, depth=depth, K=cam.K)
        else:
            dcam = camera_from_info(depth_info_msg)
            if depth.shape != (dcam.height, dcam.width) or rgb.shape[:2] != (cam.height, cam.width):
                raise SensorDataError(f"image sizes {rgb.shape[:2]} / {depth.shape} differ from their CameraInfo")
            one_camera = depth.shape == rgb.shape[:2] and np.allclose(dcam.K, cam.K)
            try:  # T_color_depth; lookup raises TransformError (an InputError) for unknown or empty frames
                T = self._tf_static.lookup(rgb_msg.header.frame_id, depth_msg.header.frame_id).matrix
            except InputError:
                if not one_camera:  # a counted skip until the static TF arrives
                    raise
                T = np.eye(4)  # depth published registered, under its own frame name
            child = depth_msg.header.frame_id or child
            frame = RgbdFrame(stamp_ns=stamp, rgb=rgb, depth=depth, K=dcam.K, color_K=cam.K, T_color_depth=T)
        estimate = self.mapper.process(frame, motion_prior=self._motion_prior(stamp, child))
        self._prev_stamp = stamp
        self._fuse(stamp, child, estimate)
        if not estimate.ok:
            what = "not relocalised in the map" if self.mapper.lost else "tracking lost"
            if self.params.points_topic:
                self._restart_camera_track(f"the camera was {what} at {stamp} ns")
            self.ctx.count_skip(self.params.rgb_topic, InputError(f"{what} at {stamp} ns (fitness {estimate.fitness:.3f})"))
            return
        self.frames += 1
        header = make_header(self.ctx.make, stamp, self.params.map_frame)
        pose = self.ctx.make("geometry_msgs/msg/PoseWithCovariance", pose=matrix_to_pose(self.ctx.make, estimate.T_world_cam))
        self.odom.publish(self.ctx.make("nav_msgs/msg/Odometry", header=header, child_frame_id=child, pose=pose))
        if self.params.publish_tf:
            # a frame has one parent: where the camera hangs in a static tree (rig -> camera on
            # /tf_static), the map holds the tree's root, placed so that the camera lands where
            # it was tracked (REP 105: map -> the robot's base, not -> a sensor)
            root = child
            while (up := self._tf_static.parent(root)) is not None and up != self.params.map_frame:
                root = up
            T = estimate.T_world_cam
            if root != child:
                T = T @ np.linalg.inv(self._tf_static.lookup(root, child).matrix)
            tf = matrix_to_transform_stamped(self.ctx.make, T, header, root)
            self.tf.publish(self.ctx.make("tf2_msgs/msg/TFMessage", transforms=[tf]))
        if self.params.points_topic and child != self.params.map_frame:  # LiDAR scans this pose covers
            if self._camera_frame not in (None, child):
                self._restart_camera_track(f"the camera frame changed to {child!r}")
            elif self._camera_latest is not None and stamp <= self._camera_latest:
                self._restart_camera_track("camera time went back")
            self._camera_frame, self._camera_latest = child, stamp
            self._camera.set_transform(self.params.map_frame, child, stamp, *matrix_to_xyz_quat(estimate.T_world_cam))
            self._map_scans()

    def on_odom_prior(self, msg) -> None:
        parent, child = msg.header.frame_id or "odom", msg.child_frame_id or "base_link"
        T = pose_msg_to_matrix(msg.pose.pose)
        xyz, q = matrix_to_xyz_quat(T)
        self._prior.set_transform(parent, child, header_stamp_ns(msg), xyz, q)
        self._prior_frames = (parent, child)
        self._prior_latest = max(self._prior_latest or 0, header_stamp_ns(msg))
        self._frames_with_odometry()

    def on_imu(self, msg) -> None:
        sample = self.imu.on_imu(msg)
        if sample.has_linear_acceleration:  # else the gyro rotation only
            self.fusion.add_imu(sample.stamp_ns, sample.angular_velocity, sample.linear_acceleration)

    def _fuse(self, stamp: int, camera_frame: str, estimate) -> None:
        """Hand a tracked pose to the IMU fusion (restarting it when the poses jumped)."""
        if not self.params.imu_topic or self.params.odom_prior_topic or not self.fusion.config.enabled or self.imu.frame is None:
            return
        if not estimate.ok or estimate.fitness < self.fusion.config.min_fitness:
            return  # the IMU carries on; a pose that then jumps restarts the fusion (ImuFusion.update)
        if self._fusion_frame != camera_frame:
            try:
                self.fusion.T_sensor_imu = self._tf_static.lookup(camera_frame, self.imu.frame).matrix
            except InputError:
                return  # no extrinsic (yet): the gyro prior says so too
            self._fusion_frame = camera_frame
            self.fusion.reset()
        self.fusion.update(stamp, estimate.T_world_cam)

    def _imu_prior(self, stamp: int) -> np.ndarray | None:
        """The fused IMU's camera motion from the previous frame to ``stamp``."""
        if not self.fusion.ready or self.fusion.stamp_ns is None or self._prev_stamp < self.fusion.stamp_ns:
            return None
        a, b = self.fusion.predict(self._prev_stamp), self.fusion.predict(stamp)
        if a is None or b is None:
            return None
        self.priors["imu"] += 1
        self.priors["used"] += 1
        return np.linalg.inv(a) @ b

    def _gyro_prior(self, stamp: int, camera_frame: str) -> np.ndarray | None:
        """Constant-velocity translation with the gyroscope's rotation since the previous frame."""
        if self.imu.frame is None or len(self.mapper.trajectory) < 2:
            return None
        R = self.imu.rotation(self._prev_stamp, stamp, camera_frame, self._tf_static)
        if R is None:
            self.priors["missing"] += 1
            return None
        rel = np.linalg.inv(self.mapper.current_pose(-2)) @ self.mapper.current_pose(-1)  # last motion
        rel[:3, :3] = R
        self.priors["used"] += 1
        return rel

    def _motion_prior(self, stamp: int, camera_frame: str) -> np.ndarray | None:
        """Camera motion since the previous frame from the external odometry (its child frame
        moved into the camera frame with the static TF) or the gyroscope, or None (constant
        velocity then)."""
        if self._prev_stamp is None:
            return None
        if self._prior_frames is None:
            rel = self._imu_prior(stamp) if camera_frame == self._fusion_frame else None
            return rel if rel is not None else self._gyro_prior(stamp, camera_frame)
        parent, child = self._prior_frames
        try:
            rel = np.linalg.inv(self._prior.lookup(parent, child, self._prev_stamp).matrix) @ self._prior.lookup(parent, child, stamp).matrix
            X = np.eye(4) if child == camera_frame else self._tf_static.lookup(child, camera_frame).matrix  # T_child_camera
        except InputError:
            self.priors["missing"] += 1  # no odometry around this stamp yet, or no extrinsic
            return None
        self.priors["used"] += 1
        return np.linalg.inv(X) @ rel @ X

    def diagnostics(self) -> dict[str, object]:
        """Figures for /diagnostics (see ros_gs.runtime.diagnostics)."""
        return {"frames processed": self.frames, "keyframes": len(self.mapper.keyframes), "gaussians": len(self.mapper.map),
                "odometry priors used / missing": f"{self.priors['used']} / {self.priors['missing']}"}

    # -- output --------------------------------------------------------------------------------
    def on_cloud_timer(self) -> None:
        gmap = self.mapper.map
        if len(gmap) == 0 or (len(gmap), self.frames) == self._cloud_version:
            return
        self._cloud_version = (len(gmap), self.frames)
        self.cloud.publish(array_to_pointcloud2(self.ctx.make, gaussian_cloud(gmap), self.ctx.now_ns(), self.params.map_frame))

    def on_save_map(self, request, response):
        path = request.path
        if not isinstance(path, str) or not path.strip() or "\x00" in path:
            response.ok, response.message = False, f"save_map needs a folder path (not empty, no NUL byte), got {path!r}"
            self.ctx.count_skip("save_map", InputError(response.message))
            return response
        try:
            self.mapper.save(path)
        except (OSError, InputError) as err:
            response.ok, response.message = False, f"cannot save to {request.path!r}: {err}"
            return response
        n = self.mapper.map.num_gaussians + self.mapper.offloaded.num_gaussians
        response.ok, response.message, response.num_gaussians = True, f"saved {n} Gaussians", n
        return response

    def on_render_view(self, request, response):
        try:
            cam = camera_from_info(request.camera_info)
            T = pose_msg_to_matrix(request.pose)
            if cam.width > MAX_RENDER_SIDE or cam.height > MAX_RENDER_SIDE:  # checked before allocating
                raise InputError(f"render_view at most {MAX_RENDER_SIDE}x{MAX_RENDER_SIDE}, asked {cam.width}x{cam.height}")
        except InputError as err:
            response.ok, response.message = False, str(err)
            return response
        out = self.mapper.render(T, cam.K, cam.width, cam.height, everything=True)
        stamp = self.ctx.now_ns()
        rgb = (out.rgb.detach().clamp(0, 1) * 255).round().byte().cpu().numpy()
        response.image = numpy_to_image(self.ctx.make, rgb, "rgb8", stamp, self.params.map_frame)
        response.depth = numpy_to_image(self.ctx.make, out.depth.detach().float().cpu().numpy(), "32FC1", stamp, self.params.map_frame)
        response.ok, response.message = True, ""
        return response
