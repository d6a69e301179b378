"""image_stats: per-image statistics, the smallest complete ros_gs node.

It exists to exercise every part of the node API end to end (typed parameters, a sensor-QoS
subscription, a custom message publisher, a timer, a service) and is what the replay tests
run.  It is also handy on a live robot: is the camera delivering, is depth valid?
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from ros_gs.runtime.node_api import NodeContext
from ros_gs.runtime.params import NodeParams
from ros_gs.runtime.qos import SENSOR_QOS
from ros_gs.sensors.image import image_to_numpy


class ImageStatsParams(NodeParams):
    image_topic: str = Field("/camera/color/image_raw", description="sensor_msgs/Image to summarise")
    stats_topic: str = Field("~/stats", description="where ros_gs/ImageStats is published")
    heartbeat_period_s: float = Field(1.0, ge=1e-3, le=3600.0, description="period of the frame-count heartbeat")
    heartbeat_topic: str = Field("~/frames", description="std_msgs/UInt64 total frames, on the timer")


class ImageStatsNode:
    NAME = "image_stats"
    Params = ImageStatsParams

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.params = ctx.get_params(ImageStatsParams)
        self.frames = 0
        self.last = None
        self.pub = ctx.create_publisher("ros_gs/msg/ImageStats", self.params.stats_topic)
        self.heartbeat = ctx.create_publisher("std_msgs/msg/UInt64", self.params.heartbeat_topic)
        ctx.create_subscription("sensor_msgs/msg/Image", self.params.image_topic, self.on_image, SENSOR_QOS)
        ctx.create_timer(self.params.heartbeat_period_s, self.on_timer)
        ctx.create_service("ros_gs/srv/GetImageStats", "~/get_stats", self.on_get_stats)

    def on_image(self, msg) -> None:
        pixels = image_to_numpy(msg)  # raises SensorDataError on a bad image: a counted skip
        values = pixels.astype(np.float64).reshape(pixels.shape[0], pixels.shape[1], -1)
        valid = np.isfinite(values).all(axis=2)
        if values.shape[2] == 1:  # depth/mono: zero means "no measurement" for depth encodings
            valid &= values[..., 0] != 0 if msg.encoding in ("16UC1", "32FC1") else True
        good = values[valid]
        self.frames += 1
        self.last = self.ctx.make(
            "ros_gs/msg/ImageStats",
            header=msg.header,
            width=msg.width,
            height=msg.height,
            encoding=msg.encoding,
            channel_mean=good.mean(axis=0) if len(good) else np.zeros(values.shape[2]),
            min_value=float(good.min()) if len(good) else 0.0,
            max_value=float(good.max()) if len(good) else 0.0,
            valid_fraction=float(valid.mean()),
            frame_count=self.frames,
        )
        self.pub.publish(self.last)

    def on_timer(self) -> None:
        self.heartbeat.publish(self.ctx.make("std_msgs/msg/UInt64", data=self.frames))

    def on_get_stats(self, request, response):
        if self.last is None:
            response.ok, response.message = False, "no image received yet"
        else:
            response.ok, response.message, response.stats = True, "", self.last
        return response
