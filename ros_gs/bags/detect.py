"""Find the sensor topics of a bag by message type, so `ros-gs replay BAG` needs no topic names.

Colour and depth are both ``sensor_msgs/Image``; they are told apart by the encoding of their
first message (colour: rgb8/bgr8/rgba8/bgra8; depth: 16UC1/32FC1/mono16), preferring topics
named like depth (a 16UC1 segmentation or IR image is not depth).  The colour/depth/CameraInfo
triple shares the longest topic prefix (one camera's namespace); CameraInfo prefers the colour
camera's; without depth, the colour camera and its CameraInfo alone.  LiDAR =
``sensor_msgs/PointCloud2`` (the busiest), IMU = ``sensor_msgs/Imu``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ros_gs.bags.reader import BagReader

COLOR_ENCODINGS = {"rgb8", "bgr8", "rgba8", "bgra8"}
DEPTH_ENCODINGS = {"16UC1", "32FC1", "mono16"}
_NOT_DEPTH_PREFIXES = ("seg", "label", "mask", "infra", "confidence")


@dataclass
class SensorTopics:
    rgb: str | None = None
    depth: str | None = None
    info: str | None = None
    depth_info: str | None = None  # the depth camera's own CameraInfo (depth not registered to colour)
    points: str | None = None
    imu: str | None = None

    @property
    def rgbd(self) -> bool:
        return bool(self.rgb and self.depth and self.info)


def _common_prefix(a: str, b: str) -> int:
    return len(os.path.commonprefix([a.split("/"), b.split("/")]))


def _looks_like_depth(topic: str) -> int:
    """2: named depth; 1: neutral; 0: named like something else stored as 16-bit."""
    tokens = [t for t in re.split(r"[/_.\-]", topic.lower()) if t]
    if any("depth" in t for t in tokens):
        return 2
    return 0 if any(t == "ir" or t.startswith(_NOT_DEPTH_PREFIXES) for t in tokens) else 1


def detect_sensor_topics(bag: Path | str) -> SensorTopics:
    """The bag's colour, depth, CameraInfo, PointCloud2 and Imu topics (None where absent)."""
    with BagReader(bag) as reader:
        summary = [s for s in reader.summary() if s.count > 0]
        images = [s.topic for s in summary if s.msgtype == "sensor_msgs/msg/Image"]
        encodings: dict[str, str] = {}
        for topic in images:
            for _, msg in reader.messages([topic]):
                encodings[topic] = str(msg.encoding)
                break
    colour = sorted(t for t in images if encodings.get(t) in COLOR_ENCODINGS)
    depth = sorted(t for t in images if encodings.get(t) in DEPTH_ENCODINGS and _looks_like_depth(t))
    infos = sorted(s.topic for s in summary if s.msgtype == "sensor_msgs/msg/CameraInfo")
    out = SensorTopics()
    if colour and depth and infos:
        # the pair from one camera namespace (longest shared prefix), depth-named first
        _, out.rgb, out.depth = max(((_common_prefix(c, d), _looks_like_depth(d)), c, d) for c in colour for d in depth)
        out.info = max(infos, key=lambda i: (_common_prefix(i, out.rgb), "color" in i or "rgb" in i, -len(i)))
        own = [i for i in infos if i != out.info and _common_prefix(i, out.depth) > _common_prefix(i, out.rgb)]
        if own:
            out.depth_info = max(own, key=lambda i: (_common_prefix(i, out.depth), -len(i)))
    elif colour and infos:  # a colour camera without depth (it can still colour a LiDAR map)
        out.rgb = colour[0]
        out.info = max(infos, key=lambda i: (_common_prefix(i, out.rgb), "color" in i or "rgb" in i, -len(i)))
    clouds = sorted((s for s in summary if s.msgtype == "sensor_msgs/msg/PointCloud2"), key=lambda s: -s.count)
    if clouds:
        out.points = clouds[0].topic
    imus = sorted((s for s in summary if s.msgtype == "sensor_msgs/msg/Imu"), key=lambda s: -s.count)
    if imus:
        out.imu = imus[0].topic
    return out


@dataclass
class ObjectCameras:
    """The static RGB-D cameras of a bag as the object nodes read them (namespaces ``C`` with
    ``C/depth/image_raw`` and ``C/color/camera_info``), whether every one has colour and
    ``C/segmentation``, whether instance labels are there, and the fixed frame: ``world`` when
    /tf_static knows it, else "" (the first camera's optical frame)."""

    cameras: list[str]
    colour: bool
    segmentation: bool
    labels: bool
    world_frame: str


def detect_object_cameras(bag: Path | str, labels_topic: str = "/segmentation/labels") -> ObjectCameras:
    """Static cameras for the grasp planner and physics tracker, by topic name."""
    with BagReader(bag) as reader:
        topics = reader.topics()
        frames: set[str] = set()
        if "/tf_static" in topics:
            for _, msg in reader.messages(["/tf_static"]):
                for t in msg.transforms:
                    frames.update((t.header.frame_id.lstrip("/"), t.child_frame_id.lstrip("/")))
    cams = sorted(t[: -len("/depth/image_raw")] for t in topics
                  if t.endswith("/depth/image_raw") and f"{t[: -len('/depth/image_raw')]}/color/camera_info" in topics)
    return ObjectCameras(
        cams,
        bool(cams) and all(f"{c}/color/image_raw" in topics for c in cams),
        bool(cams) and all(f"{c}/segmentation" in topics for c in cams),
        labels_topic in topics,
        "world" if "world" in frames else "",
    )
