"""grasp_planner: "the red box" -> ranked, collision-free parallel-jaw grasps, as a service.

Inputs, per camera namespace ``C`` in ``cameras``: ``C/depth/image_raw``, ``C/segmentation``
(16UC1 instance ids, 0 = no object) and ``C/color/camera_info``; camera poses from /tf_static;
instance labels from ``labels_topic`` (std_msgs/String JSON ``{"1": "red box", ...}``, latched,
as an instance detector publishes).  The latest complete camera set is kept; a query builds the
scene from it (each labelled instance's depth points, from every camera, in ``world_frame``)
and asks :class:`ros_gs.grasping.GraspPlanner`.

Service ``~/query_grasps`` (ros_gs/srv/QueryGrasps); the grasps of every answered query are
also published on ``~/grasps`` (geometry_msgs/PoseArray, for RViz/Foxglove; empty when the
answer has none, which clears the display).  A bad query (empty, not text) is a counted skip
answered with ok = false and the reason.
"""

from __future__ import annotations

import json

import numpy as np
from pydantic import Field

from ros_gs.errors import InputError, SensorDataError
from ros_gs.grasping import GraspPlanner, GraspPlannerConfig, SceneObject
from ros_gs.runtime.node_api import NodeContext
from ros_gs.runtime.params import NodeParams
from ros_gs.runtime.qos import LATCHED_QOS, SENSOR_QOS, TF_STATIC_QOS
from ros_gs.sensors.camera import camera_from_info
from ros_gs.sensors.image import depth_to_metres, image_to_numpy
from ros_gs.sensors.poses import matrix_to_pose
from ros_gs.sensors.stamps import header_stamp_ns, make_header
from ros_gs.sensors.sync import ApproximateTimeSync
from ros_gs.sensors.tf_buffer import TfBuffer


class GraspPlannerParams(NodeParams):
    cameras: list[str] = Field(default_factory=list, description="camera namespaces C: C/depth/image_raw, C/segmentation, C/color/camera_info")
    labels_topic: str = Field("/segmentation/labels", description="std_msgs/String JSON {instance id: label}")
    world_frame: str = Field("world", description="the fixed frame of the cameras' /tf_static poses and of the grasps")
    sync_slop_s: float = Field(0.02, ge=0.0, le=1.0, description="max stamp difference within one camera set")
    support_height: float = Field(0.0, description="height (m, z up) of the support plane the gripper must stay above")
    use_support: bool = Field(True, description="keep the gripper above support_height")
    grasps_topic: str = Field("~/grasps", description="geometry_msgs/PoseArray of the last query's grasps")
    planner: GraspPlannerConfig = Field(default_factory=GraspPlannerConfig, description="grasp planner")


class GraspPlannerNode:
    NAME = "grasp_planner"
    Params = GraspPlannerParams

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.params = p = ctx.get_params(GraspPlannerParams)
        self.planner = GraspPlanner(p.planner)
        self._tf_static = TfBuffer()
        ctx.create_subscription("tf2_msgs/msg/TFMessage", "/tf_static", lambda m: self._tf_static.add_tf_message(m, static=True),
                                TF_STATIC_QOS)
        ctx.create_subscription("std_msgs/msg/String", p.labels_topic, self.on_labels, LATCHED_QOS)
        inputs = []
        for cam in p.cameras:
            c = cam.rstrip("/")
            inputs += [("sensor_msgs/msg/Image", f"{c}/depth/image_raw"), ("sensor_msgs/msg/Image", f"{c}/segmentation"),
                       ("sensor_msgs/msg/CameraInfo", f"{c}/color/camera_info")]
        self.sync = ApproximateTimeSync(max(1, len(inputs)), int(p.sync_slop_s * 1e9), queue_size=10)
        for i, (msgtype, topic) in enumerate(inputs):
            ctx.create_subscription(msgtype, topic, lambda m, i=i: self.on_message(i, m), SENSOR_QOS)
        self.pub = ctx.create_publisher("geometry_msgs/msg/PoseArray", p.grasps_topic)
        ctx.create_service("ros_gs/srv/QueryGrasps", "~/query_grasps", self.on_query)
        self.labels: dict[int, str] = {}
        self.latest = None  # the newest complete camera set
        self.queries = 0

    def on_labels(self, msg) -> None:
        try:
            raw = json.loads(msg.data)
            self.labels = {int(k): str(v) for k, v in raw.items()}
        except (ValueError, TypeError, AttributeError) as exc:
            raise SensorDataError(f"{self.params.labels_topic}: not a JSON object of instance id -> label ({exc})") from None

    def on_message(self, index: int, msg) -> None:
        for msgs in self.sync.add(index, header_stamp_ns(msg), msg):
            self.latest = msgs

    def _scene(self) -> tuple[list[SceneObject], int]:
        points: dict[int, list[np.ndarray]] = {}
        msgs = self.latest
        for k in range(0, len(msgs), 3):
            depth_msg, seg_msg, info = msgs[k: k + 3]
            K = camera_from_info(info).K
            depth = depth_to_metres(depth_msg)
            seg = image_to_numpy(seg_msg)
            if seg.shape != depth.shape:
                raise SensorDataError(f"segmentation {seg.shape} and depth {depth.shape} differ")
            T = self._tf_static.lookup(self.params.world_frame, depth_msg.header.frame_id).matrix
            v, u = np.nonzero((seg > 0) & np.isfinite(depth) & (depth > 0))
            z = depth[v, u].astype(np.float64)
            xyz = np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z], axis=1)
            world = xyz @ T[:3, :3].T + T[:3, 3]
            ids = seg[v, u].astype(np.int64)
            for i in np.unique(ids):
                points.setdefault(int(i), []).append(world[ids == i])
        objects = []
        for i in sorted(points):
            if i not in self.labels:
                self.ctx.count_skip("grasp_planner", InputError(f"instance {i} has no label on {self.params.labels_topic}"))
                continue
            objects.append(SceneObject(self.labels[i], np.concatenate(points[i])))
        return objects, header_stamp_ns(msgs[0])

    def on_query(self, request, response):
        p = self.params
        self.queries += 1
        response.ok, response.label, response.similarity = False, "", 0.0
        if self.latest is None:
            response.message = "no complete camera set received yet"
            return response
        try:
            objects, stamp = self._scene()
            if not objects:
                response.message = "no labelled object is in view"
                return response
            self.planner.set_scene(objects, p.support_height if p.use_support else None)
            result = self.planner.query(request.query)
        except (InputError, ValueError) as exc:  # ConfigError (bad query), SensorDataError, TransformError
            self.ctx.count_skip("grasp_planner", exc)
            response.message = str(exc)
            return response
        grasps = result.grasps[: request.max_grasps or None]
        make = self.ctx.make
        array = make("geometry_msgs/msg/PoseArray", header=make_header(make, stamp, p.world_frame),
                     poses=[matrix_to_pose(make, g.pose) for g in grasps])
        response.ok = bool(grasps)
        response.message = result.message
        if result.object_index >= 0:
            response.label, response.similarity = result.label, float(result.matches[0].score)
        response.grasps = array
        response.scores = np.array([g.score for g in grasps], dtype=np.float32)
        response.openings = np.array([g.opening for g in grasps], dtype=np.float32)
        self.pub.publish(array)
        return response
