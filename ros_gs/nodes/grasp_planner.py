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
from ros_gs.nodes.camera_set import CameraSetInput
from ros_gs.runtime.node_api import NodeContext
from ros_gs.runtime.params import NodeParams
from ros_gs.runtime.qos import LATCHED_QOS
from ros_gs.semantics.instances import instance_points
from ros_gs.sensors.poses import matrix_to_pose
from ros_gs.sensors.stamps import header_stamp_ns, make_header


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
        ctx.create_subscription("std_msgs/msg/String", p.labels_topic, self.on_labels, LATCHED_QOS)
        self.cameras = CameraSetInput(ctx, p.cameras, p.sync_slop_s, self.on_set)
        self.pub = ctx.create_publisher("geometry_msgs/msg/PoseArray", p.grasps_topic)
        ctx.create_service("ros_gs/srv/QueryGrasps", "~/query_grasps", self.on_query)
        self.labels: dict[int, str] = {}
        self.latest = None  # the newest complete camera set
        self.queries = 0
        if not p.cameras:
            ctx.logger.warning("no cameras configured (parameter 'cameras'): every query will be answered 'no camera set'")

    def on_labels(self, msg) -> None:
        try:
            raw = json.loads(msg.data)
            if not isinstance(raw, dict):
                raise TypeError(f"a JSON {type(raw).__name__}")
            items = [(int(k), v) for k, v in raw.items()]
        except (ValueError, TypeError, AttributeError) as exc:
            raise SensorDataError(f"{self.params.labels_topic}: not a JSON object of instance id -> label ({exc})") from None
        labels = {}
        for i, v in items:
            if isinstance(v, str) and v.strip():
                labels[i] = v.strip()
            else:  # one bad entry must not break every query
                self.ctx.count_skip("grasp_planner", InputError(f"{self.params.labels_topic}: instance {i} has no usable label ({v!r})"))
        self.labels = labels

    def on_set(self, msgs) -> None:
        self.latest = msgs

    def _scene(self) -> tuple[list[SceneObject], int]:
        views = self.cameras.views(self.latest, self.params.world_frame)
        points = instance_points([v for v, _ in views])
        objects = []
        for i, pts in points.items():
            if i not in self.labels:
                self.ctx.count_skip("grasp_planner", InputError(f"instance {i} has no label on {self.params.labels_topic}"))
                continue
            objects.append(SceneObject(self.labels[i], pts))
        return objects, header_stamp_ns(self.latest[0])

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
