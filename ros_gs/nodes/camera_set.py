"""The input both object nodes share: static RGB-D cameras, with or without instance masks.

Per camera namespace ``C``: ``C/depth/image_raw`` (metres or millimetres), optionally
``C/segmentation`` (16UC1 instance ids, 0 = no object, from an upstream detector),
``C/color/camera_info`` and optionally ``C/color/image_raw`` (registered to depth), matched
across all cameras by approximate time; camera poses from /tf_static (``world_frame`` -> the
depth image's frame; an empty ``world_frame`` is the first camera's optical frame, for a lone
camera without a TF tree), or, for cameras that move, from /tf at each depth image's stamp
(``poses="tf"``: e.g. the mapper's map -> camera).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Literal

import numpy as np
from pydantic import BaseModel, Field

from ros_gs.errors import ConfigError, SensorDataError
from ros_gs.objects.discovery import View
from ros_gs.objects.support import SupportConfig
from ros_gs.runtime.node_api import NodeContext
from ros_gs.runtime.qos import LATCHED_QOS, SENSOR_QOS, TF_QOS, TF_STATIC_QOS
from ros_gs.semantics.instances import DepthView
from ros_gs.sensors.camera import PinholeCamera, camera_from_info
from ros_gs.sensors.image import depth_to_metres, image_to_numpy
from ros_gs.sensors.stamps import check_not_ahead, header_stamp_ns
from ros_gs.sensors.sync import ApproximateTimeSync
from ros_gs.sensors.tf_buffer import TfBuffer


class CameraPoseParams(BaseModel):
    """Where the cameras' poses come from and which way is up: parameters both object nodes take."""

    camera_poses: Literal["tf_static", "tf"] = Field("tf_static", description="where the cameras' poses in world_frame come from: tf_static (fixed cameras) or tf at each image's stamp (a camera that moves, e.g. map -> camera from the mapper); a camera set then waits until its pose is known")
    world_up: Literal["z", "camera"] = Field("z", description="which way is up in world_frame: z (REP 103, the support's normal within finder.support.max_tilt_deg of it), or camera: world_frame is not levelled (the mapper's map is its first camera's frame), so up is roughly the camera's image up (-y of its optical frame: a camera held upright, a head, a hand), within camera_up_tilt_deg; the support is the nearest large plane facing up (the table, not the floor), and physics_tracker tracks in support_frame made on it. Without a world_frame (a lone camera) up is unknown and the support is the largest plane facing the camera")
    camera_up_tilt_deg: float = Field(60.0, gt=0.0, lt=90.0, description="with world_up: camera, how far the support's normal may lie from the camera's image up (a head camera looking down at a table pitches 30-50 degrees)")

    def up(self, T_world_cam: np.ndarray) -> np.ndarray:
        """Up in world_frame, for a camera at ``T_world_cam``."""
        return np.array([0.0, 0.0, 1.0]) if self.world_up == "z" else -np.asarray(T_world_cam)[:3, 1]

    def support_config(self, config: SupportConfig) -> SupportConfig:
        """``config`` with the tilt a rough up needs."""
        return config if self.world_up == "z" else config.model_copy(update={"max_tilt_deg": self.camera_up_tilt_deg})


class CameraSetInput:
    """Subscribes to the cameras and calls ``on_set(msgs)`` with each matched set (3 per camera).
    A message more than ``jump_back_s`` older than the newest matched one means the clock
    jumped back: matching starts afresh (smaller disorder is dropped as stale by the sync, so a
    bag looped faster than ``jump_back_s`` needs a smaller one)."""

    def __init__(self, ctx: NodeContext, cameras: list[str], sync_slop_s: float, on_set: Callable[[tuple[Any, ...]], None],
                 jump_back_s: float = 1.0, segmentation: bool = True, colour: bool = False, poses: str = "tf_static",
                 pose_frame: str = "", max_waiting: int = 30) -> None:
        if poses not in ("tf_static", "tf"):
            raise ConfigError(f"camera poses come from 'tf_static' or 'tf', not {poses!r}")
        # poses from /tf: a matched set waits until its cameras' poses in pose_frame are known at
        # its stamp (a mapper publishes a frame's pose after it has processed the frame), at most
        # max_waiting sets; an older set still waiting when a newer one is ready is dropped, counted
        self.pose_frame, self.max_waiting = pose_frame, max_waiting
        self._waiting: deque = deque()
        self.jump_back_ns = int(jump_back_s * 1e9)
        self.time_jumps = 0
        self.old_timeline_drops = 0
        self._fence: int | None = None  # while set: the newest stamp of the timeline before a jump back
        self._new_max = 0
        self.moving = poses == "tf"
        if self.moving:  # /tf and /tf_static, looked up at each image's stamp
            self.poses = ctx.tf_buffer()
            ctx.create_subscription("tf2_msgs/msg/TFMessage", "/tf", lambda m: self._release(), TF_QOS)
        else:
            self.poses = TfBuffer()
            ctx.create_subscription("tf2_msgs/msg/TFMessage", "/tf_static", lambda m: self.poses.add_tf_message(m, static=True),
                                    TF_STATIC_QOS)
        self.segmentation, self.colour = segmentation, colour
        inputs = []
        for cam in cameras:
            c = cam.rstrip("/")
            inputs += [("sensor_msgs/msg/Image", f"{c}/depth/image_raw"), ("sensor_msgs/msg/CameraInfo", f"{c}/color/camera_info")]
            if segmentation:
                inputs.append(("sensor_msgs/msg/Image", f"{c}/segmentation"))
            if colour:
                inputs.append(("sensor_msgs/msg/Image", f"{c}/color/image_raw"))
        self.per_camera = 2 + segmentation + colour
        # an optional workspace mask per camera (mono8, non-zero where objects may be; GraspNet
        # frames carry one): not part of the matched set, the latest one is used
        self.roi: dict[int, Any] = {}
        for k, cam in enumerate(cameras):
            ctx.create_subscription("sensor_msgs/msg/Image", f"{cam.rstrip('/')}/workspace_mask",
                                    lambda m, k=k: self.roi.__setitem__(k, m), LATCHED_QOS)
        self._ctx, self._topics = ctx, [topic for _, topic in inputs]
        # every image the sync drops (stale, duplicate, superseded, overflow) is counted under its topic
        self.sync = ApproximateTimeSync(max(1, len(inputs)), int(sync_slop_s * 1e9), queue_size=10,
                                        on_drop=lambda i, why: ctx.count_skip(self._topics[i], f"dropped by the time sync: {why}"))
        self._on_set = on_set
        for i, (msgtype, topic) in enumerate(inputs):
            ctx.create_subscription(msgtype, topic, lambda m, i=i: self._on_message(i, m), SENSOR_QOS)

    def _on_message(self, index: int, msg) -> None:
        stamp = header_stamp_ns(msg)
        check_not_ahead(stamp, self._ctx.now_ns(), self._topics[index])
        newest = self.sync.newest_emitted_ns
        if self._fence is not None:
            # after a jump back, late messages of the old timeline (far ahead of the new one) would
            # sit in the queues and match among themselves: drop them until the new timeline
            # has passed where the old one ended
            if stamp > self._new_max + self.jump_back_ns:
                self.old_timeline_drops += 1
                self._ctx.count_skip(self._topics[index], "dropped: from before the clock jumped back")
                return
            self._new_max = max(self._new_max, stamp)
            if self._new_max >= self._fence:
                self._fence = None
        elif newest is not None and stamp < newest - self.jump_back_ns:
            # the clock jumped back (a bag looped, a simulator restarted): start matching afresh,
            # else every message would be dropped as stale until time caught up
            self.sync.reset()
            self.time_jumps += 1
            self._fence, self._new_max = newest, stamp
        for msgs in self.sync.add(index, stamp, msg):
            if not self.moving:
                self._on_set(msgs)
                continue
            self._waiting.append(msgs)
            if len(self._waiting) > self.max_waiting:
                self._drop(self._waiting.popleft(), f"more than {self.max_waiting} camera sets wait for their pose on /tf")
            self._release()

    def _pose_known(self, msgs) -> bool:
        frame = self.pose_frame or msgs[0].header.frame_id
        return all(self.poses.can_transform(frame, m.header.frame_id, header_stamp_ns(m))
                   for m in msgs[:: self.per_camera])

    def _drop(self, msgs, why: str) -> None:
        self._ctx.count_skip(self._topics[0], f"camera set at {header_stamp_ns(msgs[0])} ns dropped: {why}")

    def _release(self) -> None:
        """Hand on the waiting sets whose camera poses are known, oldest first."""
        while self._waiting:
            ready = next((k for k, msgs in enumerate(self._waiting) if self._pose_known(msgs)), None)
            if ready is None:
                return
            for _ in range(ready):
                self._drop(self._waiting.popleft(), "no camera pose for it, and a newer set has one")
            self._on_set(self._waiting.popleft())

    def _camera(self, msgs, k: int, world_frame: str):
        """(depth m, CameraInfo model, segmentation or None, rgb or None, T_world_cam) of camera k."""
        group = list(msgs[k * self.per_camera: (k + 1) * self.per_camera])
        depth_msg, info = group[0], group[1]
        seg_msg = group[2] if self.segmentation else None
        rgb_msg = group[-1] if self.colour else None
        pin = camera_from_info(info)
        depth = depth_to_metres(depth_msg)
        if depth.shape != (pin.height, pin.width):
            raise SensorDataError(f"depth {depth.shape} and CameraInfo {pin.height}x{pin.width} must agree")
        seg = rgb = None
        if seg_msg is not None:
            seg = image_to_numpy(seg_msg)
            if seg.ndim != 2 or seg.shape != depth.shape:
                raise SensorDataError(f"segmentation {seg.shape} and depth {depth.shape} must agree")
            seg = seg.astype("int64")
        if rgb_msg is not None:
            rgb = image_to_numpy(rgb_msg)  # RGB order whatever the encoding
            if rgb.ndim != 3 or rgb.shape[:2] != depth.shape:
                raise SensorDataError(f"colour image {rgb.shape} must be registered to depth {depth.shape}")
            if rgb.dtype != "uint8":
                raise SensorDataError(f"colour image must be 8-bit, got {rgb.dtype}")
        frame = world_frame or msgs[0].header.frame_id
        stamp = header_stamp_ns(depth_msg) if self.moving else None
        T = self.poses.lookup(frame, depth_msg.header.frame_id, stamp).matrix
        return depth, pin, seg, rgb, T

    def camera_model(self, msgs, k: int) -> PinholeCamera:
        """Camera k's model (from its CameraInfo) in a matched set."""
        return camera_from_info(msgs[k * self.per_camera + 1])

    def views(self, msgs, world_frame: str) -> list[tuple[DepthView, PinholeCamera]]:
        """Arrays of a matched set with masks: a :class:`DepthView` and the camera model per
        camera (SensorDataError for inconsistent images, TransformError without the camera's pose)."""
        if not self.segmentation:
            raise SensorDataError("these cameras have no segmentation topic")
        out = []
        for k in range(len(msgs) // self.per_camera):
            depth, pin, seg, _, T = self._camera(msgs, k, world_frame)
            out.append((DepthView(depth, seg, pin.K, T), pin))
        return out

    def object_views(self, msgs, world_frame: str, labels: dict[int, str] | None = None) -> list[View]:
        """A matched set as the object finder's views (colour and masks where subscribed)."""
        out = []
        for k in range(len(msgs) // self.per_camera):
            depth, pin, seg, rgb, T = self._camera(msgs, k, world_frame)
            roi = None
            if k in self.roi:
                roi = image_to_numpy(self.roi[k])
                if roi.shape[:2] != depth.shape:
                    raise SensorDataError(f"workspace mask {roi.shape} and depth {depth.shape} must agree")
                roi = (roi.reshape(depth.shape + (-1,))[..., 0] > 0)
            out.append(View(depth, pin.K, T, rgb=rgb, instances=seg, labels=dict(labels or {}), roi=roi))
        return out
