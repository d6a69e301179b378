"""grasp_planner: "the red box" -> ranked, collision-free parallel-jaw grasps, as a service.

Inputs, per camera namespace ``C`` in ``cameras``: ``C/depth/image_raw``,
``C/color/image_raw`` and ``C/color/camera_info``; camera poses from /tf_static.  Objects come
from the sensor data (:mod:`ros_gs.objects`: support plane, instances by geometry and colour,
attribute descriptions).  With ``use_segmentation`` an upstream detector's ``C/segmentation``
(16UC1 instance ids, 0 = no object) gives the instances instead, and ``labels_topic``
(std_msgs/String JSON ``{"1": "red box", ...}``, latched) their names.  The latest complete
camera set is kept; a query finds the objects in it (ids stay stable between queries),
grounds the text in their descriptions and labels, and asks :class:`ros_gs.grasping.GraspPlanner`.

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
from ros_gs.grasping import GraspPlanner, GraspPlannerConfig
from ros_gs.nodes.camera_set import CameraPoseParams, CameraSetInput
from ros_gs.objects import ObjectFinder, ObjectFinderConfig, ObjectScene, find_objects
from ros_gs.runtime.node_api import NodeContext
from ros_gs.runtime.params import NodeParams
from ros_gs.runtime.qos import LATCHED_QOS
from ros_gs.sensors.poses import matrix_to_pose
from ros_gs.sensors.stamps import header_stamp_ns, make_header


class GraspPlannerParams(NodeParams, CameraPoseParams):
    cameras: list[str] = Field(default_factory=list, description="camera namespaces C: C/depth/image_raw, C/color/image_raw, C/color/camera_info")
    use_segmentation: bool = Field(False, description="take instances from an upstream detector's C/segmentation (and names from labels_topic) instead of finding them")
    use_colour: bool = Field(True, description="subscribe to C/color/image_raw (colours describe objects and find thin ones)")
    labels_topic: str = Field("/segmentation/labels", description="std_msgs/String JSON {instance id: label}")
    world_frame: str = Field("world", description="the fixed frame of the cameras' poses and of the grasps; empty: the first camera's optical frame (a lone camera without TF)")
    finder: ObjectFinderConfig = Field(default_factory=ObjectFinderConfig, description="objects from the sensor data")
    sync_slop_s: float = Field(0.02, ge=0.0, le=1.0, description="max stamp difference within one camera set")
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
        self.cameras = CameraSetInput(ctx, p.cameras, p.sync_slop_s, self.on_set, segmentation=p.use_segmentation,
                                      colour=p.use_colour, poses=p.camera_poses,
                                      pose_frame=p.world_frame)
        self.finder = ObjectFinder(p.finder.model_copy(update={"support": p.support_config(p.finder.support)}))
        self.pub = ctx.create_publisher("geometry_msgs/msg/PoseArray", p.grasps_topic)
        ctx.create_service("ros_gs/srv/QueryGrasps", "~/query_grasps", self.on_query)
        self.labels: dict[int, str] = {}
        self.latest = None  # the newest complete camera set (with its cameras' poses known)
        self.queries = 0
        if not p.cameras:
            ctx.logger.warning("no cameras configured (parameter 'cameras'): every query will be answered 'no camera set'")

    def diagnostics(self) -> dict[str, object]:
        """Figures for /diagnostics (see ros_gs.runtime.diagnostics)."""
        return {"queries served": self.queries, "camera set ready": self.latest is not None}

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

    def _scene(self) -> tuple[ObjectScene, int]:
        p = self.params
        views = self.cameras.object_views(self.latest, p.world_frame, self.labels)
        up = p.up(views[0].T_world_cam) if p.world_frame else None  # a lone camera: its own frame, up unknown
        return find_objects(self.finder, views, up), header_stamp_ns(self.latest[0])

    def on_query(self, request, response):
        p = self.params
        self.queries += 1
        response.ok, response.label, response.similarity, response.object_id = False, "", 0.0, -1
        if self.latest is None:
            response.message = "no complete camera set received yet"
            return response
        max_grasps = request.max_grasps
        if isinstance(max_grasps, bool) or not isinstance(max_grasps, (int, np.integer)) or max_grasps < 0:
            response.message = f"max_grasps must be a whole number >= 0 (0: the planner's max_grasps), got {max_grasps!r}"
            self.ctx.count_skip("grasp_planner", InputError(response.message))
            return response
        try:
            scene, stamp = self._scene()
            if not scene.objects:
                response.message = "no object is in view"
                return response
            self.planner.set_objects(scene)
            result = self.planner.query(request.query)
        except (InputError, ValueError) as exc:  # ConfigError (bad query), SensorDataError, TransformError
            self.ctx.count_skip("grasp_planner", exc)
            response.message = str(exc)
            return response
        grasps = result.grasps[: int(max_grasps) or None]
        make = self.ctx.make
        frame = p.world_frame or self.latest[0].header.frame_id
        array = make("geometry_msgs/msg/PoseArray", header=make_header(make, stamp, frame),
                     poses=[matrix_to_pose(make, g.pose) for g in grasps])
        response.ok = bool(grasps)
        response.message = result.message
        if result.object_index >= 0:
            response.label, response.similarity = result.label, float(result.matches[0].score)
        response.object_id, response.description, response.ambiguous = result.object_id, result.description, result.ambiguous
        response.candidate_ids = np.array([c.id for c in result.candidates], dtype=np.int32)
        response.candidate_scores = np.array([c.score for c in result.candidates], dtype=np.float32)
        response.candidate_descriptions = [c.text for c in result.candidates]
        response.grasps = array
        response.scores = np.array([g.score for g in grasps], dtype=np.float32)
        response.openings = np.array([g.opening for g in grasps], dtype=np.float32)
        self.pub.publish(array)
        return response
