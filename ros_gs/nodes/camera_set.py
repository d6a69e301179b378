"""The input both object nodes share: static RGB-D cameras with instance segmentation.

Per camera namespace ``C``: ``C/depth/image_raw`` (metres or millimetres),
``C/segmentation`` (16UC1 instance ids, 0 = no object) and ``C/color/camera_info``, matched
across all cameras by approximate time; camera poses from /tf_static (``world_frame`` -> the
depth image's frame).
"""

from __future__ import annotations

from typing import Any, Callable

from ros_gs.errors import SensorDataError
from ros_gs.runtime.node_api import NodeContext
from ros_gs.runtime.qos import SENSOR_QOS, TF_STATIC_QOS
from ros_gs.semantics.instances import DepthView
from ros_gs.sensors.camera import PinholeCamera, camera_from_info
from ros_gs.sensors.image import depth_to_metres, image_to_numpy
from ros_gs.sensors.stamps import header_stamp_ns
from ros_gs.sensors.sync import ApproximateTimeSync
from ros_gs.sensors.tf_buffer import TfBuffer


class CameraSetInput:
    """Subscribes to the cameras and calls ``on_set(msgs)`` with each matched set (3 per camera).
    A message more than ``jump_back_s`` older than the newest matched one means the clock
    jumped back: matching starts afresh (smaller disorder is dropped as stale by the sync, so a
    bag looped faster than ``jump_back_s`` needs a smaller one)."""

    def __init__(self, ctx: NodeContext, cameras: list[str], sync_slop_s: float, on_set: Callable[[tuple[Any, ...]], None],
                 jump_back_s: float = 1.0) -> None:
        self.jump_back_ns = int(jump_back_s * 1e9)
        self.time_jumps = 0
        self.old_timeline_drops = 0
        self._fence: int | None = None  # while set: the newest stamp of the timeline before a jump back
        self._new_max = 0
        self.tf_static = TfBuffer()
        ctx.create_subscription("tf2_msgs/msg/TFMessage", "/tf_static", lambda m: self.tf_static.add_tf_message(m, static=True),
                                TF_STATIC_QOS)
        inputs = []
        for cam in cameras:
            c = cam.rstrip("/")
            inputs += [("sensor_msgs/msg/Image", f"{c}/depth/image_raw"), ("sensor_msgs/msg/Image", f"{c}/segmentation"),
                       ("sensor_msgs/msg/CameraInfo", f"{c}/color/camera_info")]
        self.sync = ApproximateTimeSync(max(1, len(inputs)), int(sync_slop_s * 1e9), queue_size=10)
        self._on_set = on_set
        for i, (msgtype, topic) in enumerate(inputs):
            ctx.create_subscription(msgtype, topic, lambda m, i=i: self._on_message(i, m), SENSOR_QOS)

    def _on_message(self, index: int, msg) -> None:
        stamp = header_stamp_ns(msg)
        newest = self.sync.newest_emitted_ns
        if self._fence is not None:
            # after a jump back, late messages of the old timeline (far ahead of the new one) would
            # sit in the queues and match among themselves: drop them until the new timeline
            # has passed where the old one ended
            if stamp > self._new_max + self.jump_back_ns:
                self.old_timeline_drops += 1
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
            self._on_set(msgs)

    def views(self, msgs, world_frame: str) -> list[tuple[DepthView, PinholeCamera]]:
        """Arrays of a matched set: a :class:`DepthView` and the camera model per camera
        (SensorDataError for inconsistent images, TransformError without the camera's pose)."""
        out = []
        for k in range(0, len(msgs), 3):
            depth_msg, seg_msg, info = msgs[k: k + 3]
            pin = camera_from_info(info)
            depth = depth_to_metres(depth_msg)
            seg = image_to_numpy(seg_msg)
            if seg.ndim != 2 or seg.shape != depth.shape or seg.shape != (pin.height, pin.width):
                raise SensorDataError(f"segmentation {seg.shape}, depth {depth.shape} and CameraInfo "
                                      f"{pin.height}x{pin.width} must agree")
            T = self.tf_static.lookup(world_frame, depth_msg.header.frame_id).matrix
            out.append((DepthView(depth, seg.astype("int64"), pin.K, T), pin))
        return out
