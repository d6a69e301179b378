"""physics_tracker: objects seen by static RGB-D cameras become particle bodies in a physics
world, and visual forces keep the simulation on what the cameras see (ros_gs.physics).
Publishes each object's pose, so a planner gets poses that obey physics between and through
frames.

Inputs, per camera namespace ``C`` in ``cameras``: ``C/depth/image_raw`` (metres or mm),
``C/color/image_raw`` and ``C/color/camera_info``; camera poses from /tf_static
(``world_frame`` -> the images' frame).  The objects are found in every set of depth and
colour (:mod:`ros_gs.objects`, ids kept across sets); with ``use_segmentation`` an upstream
detector's ``C/segmentation`` (16UC1 instance ids, 0 = no object) gives them instead.
On the first complete set each instance's depth pixels, from every camera, become its points
(again after a gap longer than ``restart_after_s``, time going backwards or a diverged world):
particles fill them down to ``world.ground_height`` (the support the objects rest on; an object
first seen in the air only down to its own lowest point), and Gaussians sit on them, coloured
with the instance's code colour (:class:`ros_gs.physics.tracker.ObjectTracker` does the work).  Every later set is the observation that
the visual forces pull the world towards, stepped by the time between the sets.  An instance
first seen later (put down, come into view) is added after ``appear_frames`` sets in a row; one
seen in no view for ``drop_after_s`` is dropped (the world is rebuilt with the others where they
are, as they move).

Outputs (``world_frame``, or ``support_frame`` for a lone camera):

* ``/ros_gs/objects`` (ros_gs/ObjectStateArray): per object its stable id, label and
  description, pose, twist, extents, particle and Gaussian counts, the last visual correction and
  the friction its predictions use (measured from its free slides: ``estimate_friction``);
* /tf ``world_frame`` -> ``object/<id>`` (the body frame: axes of the world, origin at the first
  points' centroid);
* ``/ros_gs/objects/predicted`` (ObjectStateArray): at every update, the states
  ``prediction_horizon_s`` ahead (the world rolled forward without visual forces), stamped with
  the time they predict;
* ``~/objects`` (geometry_msgs/PoseArray, for RViz): one pose per object in id order;
* service ``~/predict`` (ros_gs/PredictObjects): "what if": the states ahead after an optional push
  of one object (a velocity change and/or a force for a while).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import Field
from scipy.spatial import cKDTree

from ros_gs.errors import ConfigError, InputError
from ros_gs.nodes.camera_set import CameraPoseParams, CameraSetInput
from ros_gs.objects import ObjectFinder, ObjectFinderConfig, fit_support
from ros_gs.objects.description import describe
from ros_gs.objects.segmentation import backproject
from ros_gs.objects.support import SupportPlane
from ros_gs.physics import Observation, VisualForceConfig, WorldConfig
from ros_gs.physics.tracker import CODES, ObjectState, ObjectTracker, TrackerConfig
from ros_gs.render import Camera
from ros_gs.render.camera import render_K
from ros_gs.runtime.node_api import NodeContext
from ros_gs.runtime.params import NodeParams
from ros_gs.runtime.qos import LATCHED_QOS
from ros_gs.semantics.instances import DepthView, instance_points
from ros_gs.sensors.poses import matrix_to_pose, matrix_to_transform_stamped, vector3_from_msg, vector3_to_msg
from ros_gs.sensors.stamps import header_stamp_ns, make_header


class PhysicsTrackerParams(NodeParams, CameraPoseParams):
    cameras: list[str] = Field(default_factory=list, description="camera namespaces C: C/depth/image_raw, C/color/image_raw, C/color/camera_info")
    use_segmentation: bool = Field(False, description="take instances from an upstream detector's C/segmentation instead of finding them in depth and colour")
    finder: ObjectFinderConfig = Field(default_factory=ObjectFinderConfig, description="objects from the sensor data (without use_segmentation)")
    forces_max_width: int = Field(160, ge=16, le=8192, description="images wider than this are compared with the predicted scene at a stride (the visual-force gain was set on 160x120 images; rendering larger ones on a CPU is slow too)")
    assign_distance: float = Field(0.03, gt=0.0, description="without use_segmentation: an object pixel belongs to the body with a particle this close (m), else to none")
    world_frame: str = Field("world", description="the fixed frame the cameras' poses are in and, when it is levelled (world_up: z), poses are published in; empty: a lone camera without TF, and the node makes support_frame on the support it finds")
    support_frame: str = Field("ros_gs/support", description="with an empty world_frame or world_up: camera: the frame on the support found in the first set (z along its normal, the support at z = 0), published on /tf_static under world_frame (or the camera's frame)")
    sync_slop_s: float = Field(0.02, ge=0.0, le=1.0, description="max stamp difference within one set of all cameras' images")
    spacing: float = Field(0.02, gt=0.002, le=0.5, description="particle pitch (m); particles are spheres of half this radius")
    density: float = Field(500.0, gt=0.0, description="kg/m^3: a body's mass is its particle volume (spacing^3 each) times this")
    min_points: int = Field(30, ge=1, description="instances with fewer depth points on the first set are not tracked (a counted skip)")
    max_objects: int = Field(8, ge=1, le=len(CODES), description="at most this many instances (the lowest ids) are tracked")
    gaussian_spacing: float = Field(0.008, gt=0.0, description="the points become Gaussians on a voxel grid of this pitch (m)")
    objects_topic: str = Field("~/objects", description="geometry_msgs/PoseArray of the tracked objects (for RViz)")
    states_topic: str = Field("/ros_gs/objects", description="ros_gs/ObjectStateArray: the tracked objects with ids, descriptions, poses, twists")
    predicted_topic: str = Field("/ros_gs/objects/predicted", description="ros_gs/ObjectStateArray: the states prediction_horizon_s ahead, stamped with the time they predict")
    prediction_horizon_s: float = Field(0.5, ge=0.0, le=10.0, description="how far ahead every update predicts (s); 0: no prediction topic")
    frame_prefix: str = Field("object/", description="TF child frame of object <id>: <frame_prefix><id>")
    max_step_s: float = Field(0.05, gt=0.0, le=1.0, description="the time between two image sets is simulated in steps of at most this (s)")
    restart_after_s: float = Field(1.0, gt=0.0, description="a gap between image sets longer than this (s), time going backwards, or a diverged world: the objects are rebuilt from the next set")
    time_jump_s: float = Field(1.0, gt=0.0, description="an image this much older than the newest matched one means the clock jumped back (a looped bag, a restarted simulator): matching starts afresh")
    drag_to_seen: bool = Field(True, description="the visual forces' drag pulls each body's vertical velocity towards the one its points are seen moving at, not towards rest (see TrackerConfig.drag_to_seen)")
    appear_frames: int = Field(3, ge=1, description="an untracked instance seen (with min_points) in this many image sets in a row is added as a body")
    drop_after_s: float = Field(1.0, gt=0.0, description="a tracked object seen in no view for this long is dropped")
    estimate_friction: bool = Field(True, description="each object's friction on the support is measured from its free slides and predictions roll forward with it; tracking keeps world.friction (see TrackerConfig.estimate_friction); false: world.friction for predictions too")
    world: WorldConfig = Field(default_factory=WorldConfig, description="the physics world; world.ground_height is the support the objects rest on")
    forces: VisualForceConfig = Field(default_factory=VisualForceConfig, description="visual forces")


class PhysicsTrackerNode:
    NAME = "physics_tracker"
    Params = PhysicsTrackerParams

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.params = p = ctx.get_params(PhysicsTrackerParams)
        self.cameras = CameraSetInput(ctx, p.cameras, p.sync_slop_s, ctx.guard("physics_tracker", self.on_set), p.time_jump_s,
                                      segmentation=p.use_segmentation, colour=not p.use_segmentation, poses=p.camera_poses,
                                      pose_frame=p.world_frame)
        self.finder = ObjectFinder(p.finder)
        self.levelled = bool(p.world_frame) and p.world_up == "z"  # else the objects live in support_frame
        world = p.world if self.levelled else p.world.model_copy(update={"ground_height": 0.0})
        self.tracker = ObjectTracker(TrackerConfig(spacing=p.spacing, density=p.density, min_points=p.min_points,
                                                   max_objects=p.max_objects, gaussian_spacing=p.gaussian_spacing,
                                                   max_step_s=p.max_step_s, estimate_friction=p.estimate_friction,
                                                   appear_frames=p.appear_frames, drop_after_s=p.drop_after_s,
                                                   drag_to_seen=p.drag_to_seen,
                                                   world=world, forces=p.forces))
        self.pub = ctx.create_publisher("geometry_msgs/msg/PoseArray", p.objects_topic)
        self.states_pub = ctx.create_publisher("ros_gs/msg/ObjectStateArray", p.states_topic)
        self.predicted_pub = ctx.create_publisher("ros_gs/msg/ObjectStateArray", p.predicted_topic)
        self.tf = ctx.create_publisher("tf2_msgs/msg/TFMessage", "/tf")
        self.tf_static = ctx.create_publisher("tf2_msgs/msg/TFMessage", "/tf_static", LATCHED_QOS)
        ctx.create_service("ros_gs/srv/PredictObjects", "~/predict", self.on_predict)
        self._T_support_ref: np.ndarray | None = None  # see _in_world
        self._last_stamp: int | None = None
        self.frames = 0
        self.restarts = 0
        self.appeared = self.disappeared = 0  # objects added and dropped while tracking
        self._restarted_last = self._warned_slow = False
        if not p.cameras:
            ctx.logger.warning("no cameras configured (parameter 'cameras'): nothing to track")

    @property
    def ids(self) -> list[int]:
        return self.tracker.ids

    @property
    def world(self):
        return self.tracker.world

    def diagnostics(self) -> dict[str, object]:
        """Figures for /diagnostics (see ros_gs.runtime.diagnostics)."""
        return {"camera sets processed": self.frames, "objects tracked": len(self.ids) if self.tracker.started else 0,
                "objects appeared / dropped": f"{self.appeared} / {self.disappeared}", "restarts": self.restarts}

    def on_set(self, msgs) -> None:
        stamp = header_stamp_ns(msgs[0])
        ahead = (stamp - self._last_stamp) * 1e-9 if self._last_stamp is not None else 0.0
        views = self._views(msgs, min(max(ahead, 0.0), self.params.max_step_s))
        if self.tracker.started:
            gap = (stamp - self._last_stamp) * 1e-9
            if gap <= 0 or gap > self.params.restart_after_s:
                why = "time went backwards" if gap <= 0 else f"{gap:.2f} s without images"
                if gap > 0 and self._restarted_last and not self._warned_slow:
                    self._warned_slow = True
                    self.ctx.logger.warning("image sets come more than restart_after_s = %.2f s apart: the objects are "
                                            "rebuilt on every set (raise restart_after_s for slow cameras)", self.params.restart_after_s)
                self._restart(f"{why} (set at {stamp} ns after {self._last_stamp} ns)")
        self._restarted_last = not self.tracker.started and self._last_stamp is not None
        if not self.tracker.started:
            self._start([v for v, _ in views])
        else:
            obs = []
            for view, pin in views:
                # the forces' gain was set on 160x120 images: larger ones are compared at a stride
                # (the image error, and so the force, grows with the pixels an object covers)
                s = max(1, math.ceil(pin.width / self.params.forces_max_width))
                ids = view.instances[::s, ::s]
                K = np.array(pin.K, dtype=np.float64)
                K[:2] /= s
                cam = Camera.from_pose(torch.as_tensor(render_K(K), dtype=torch.float32),
                                       torch.as_tensor(view.T_world_cam, dtype=torch.float32), ids.shape[1], ids.shape[0])
                obs.append(Observation(cam, torch.as_tensor(self.tracker.code_image(ids))))
            seen = instance_points([v for v, _ in views])
            if not self.tracker.update(obs, (stamp - self._last_stamp) * 1e-9, seen):
                self._restart("the simulation diverged (non-finite poses)")
                self._last_stamp = stamp
                return
            added, dropped = self.tracker.refresh(seen, self._names)
            for i in added:
                self.ctx.logger.info("object %d appeared: tracked from now on (%s)", i, self.tracker.names[i][1] or "no description")
            for i in dropped:
                self.ctx.logger.info("object %d seen in no view for %.1f s: dropped", i, self.tracker.config.drop_after_s)
            self.appeared += len(added)
            self.disappeared += len(dropped)
            if not self.tracker.started:
                self._restart("every object is gone")
        self._last_stamp = stamp
        self.frames += 1
        self._publish(stamp)

    def _views(self, msgs, ahead_s: float = 0.0) -> list:
        """(DepthView with instance ids, camera model) per camera: the detector's masks, or the
        objects found in depth and colour.  Once bodies exist, each found object pixel takes the
        id of the body whose particles, moved ``ahead_s`` on at their velocities (to the set's
        time), are nearest to its point (within ``assign_distance``), so objects that touch or a
        hand that pushes them are kept apart by what physics predicts.  (Without moving them on,
        a box shoved at 0.9 m/s left its particles 3 cm behind every frame and was lost.)"""
        p = self.params
        if p.use_segmentation:
            return [(DepthView(v.depth, v.instances, v.K, self._in_world(msgs, v)), pin)
                    for v, pin in self.cameras.views(msgs, p.world_frame)]
        views = self.cameras.object_views(msgs, p.world_frame)
        for v in views:
            v.T_world_cam = self._in_world(msgs, v)
        objects = self.finder.update(views, np.array([0.0, 0.0, 1.0]))
        tree = None
        if self.tracker.started:
            pts, owner = self.tracker.particle_points(ahead_s)
            tree = cKDTree(pts)
        out = []
        for k, v in enumerate(views):
            ids = np.zeros(v.depth.shape, dtype=np.int64)
            for o in objects:
                if k in o.masks:
                    ids[o.masks[k]] = o.id
            if tree is not None:
                fg = ids > 0
                cam_pts = np.nan_to_num(backproject(v.depth, np.asarray(v.K, dtype=np.float64))[fg], nan=0.0)  # no depth: at the lens, far from any body
                world_pts = cam_pts @ v.T_world_cam[:3, :3].T + v.T_world_cam[:3, 3]
                d, j = tree.query(world_pts)
                # a found object none of whose pixels is near a body keeps its id (an object put
                # down or come into view, for refresh to add); one partly near a body is that
                # body's, running ahead of it (its far pixels are no object of their own)
                found = ids[fg]
                near = d < p.assign_distance
                explained = np.unique(found[near])
                ids[fg] = np.where(near, owner[j], np.where(np.isin(found, explained) | np.isin(found, self.tracker.ids), 0, found))
            out.append((DepthView(v.depth, ids, v.K, v.T_world_cam), self.cameras.camera_model(msgs, k)))
        return out

    def _in_world(self, msgs, view) -> np.ndarray:
        """The view's pose in the world: as calibrated in a levelled ``world_frame``, else in the
        support frame made from the first set's support plane (in the camera's frame for a lone
        camera, in ``world_frame`` for one that is not levelled), so gravity points down the
        support's normal."""
        p = self.params
        if self.levelled:
            return view.T_world_cam
        if self._T_support_ref is None:
            T = view.T_world_cam  # the camera in the reference frame (identity for a lone camera)
            P = backproject(np.asarray(view.depth, dtype=np.float64), np.asarray(view.K, dtype=np.float64)).reshape(-1, 3)[::4]
            P = P[np.isfinite(P).all(axis=1)] @ T[:3, :3].T + T[:3, 3]
            # not levelled with a world_frame: up is the camera's, roughly (see CameraPoseParams)
            config, up = (p.support_config(p.finder.support), p.up(T)) if p.world_frame else (p.finder.support, None)
            plane = fit_support(P, T[:3, 3], config, up)
            n = plane.normal
            x = np.array([1.0, 0.0, 0.0]) - n[0] * n
            x /= np.linalg.norm(x)
            T_ref_sup = np.eye(4)
            T_ref_sup[:3, :3] = np.stack([x, np.cross(n, x), n], axis=1)
            T_ref_sup[:3, 3] = T[:3, 3] - (n @ T[:3, 3] + plane.offset) * n  # the camera's foot on the support
            self._T_support_ref = np.linalg.inv(T_ref_sup)
            make = self.ctx.make
            parent = p.world_frame or msgs[0].header.frame_id
            header = make_header(make, header_stamp_ns(msgs[0]), parent)
            self.tf_static.publish(make("tf2_msgs/msg/TFMessage", transforms=[
                matrix_to_transform_stamped(make, T_ref_sup, header, p.support_frame)]))
            self.ctx.logger.info("objects are tracked in %s on the support found under %s (%d inliers)",
                                 p.support_frame, parent, plane.inliers)
        return self._T_support_ref @ view.T_world_cam

    def _restart(self, why: str) -> None:
        """Drop the world; the next image set builds the objects again (a counted skip says why)."""
        self.ctx.count_skip("physics_tracker", InputError(f"objects rebuilt: {why}"))
        self.tracker.reset()
        self.restarts += 1
        self.finder.reset()

    def _start(self, views: list[DepthView]) -> None:
        points = instance_points(views)
        self.tracker.start(points, self._names(points))
        for why in self.tracker.skipped:
            self.ctx.count_skip("physics_tracker", InputError(why))
        self.ctx.logger.info("tracking objects %s (%d particles)", self.tracker.ids, self.tracker.world.num_particles)

    def _names(self, points: dict[int, np.ndarray]) -> dict[int, tuple[str, str]]:
        """(label, description) per instance: of the objects found (with their colours), or of
        the upstream instances' points on the ground plane (no colours)."""
        if not self.params.use_segmentation and self.finder.support is not None:
            return {o.id: (o.label, describe(o.id, o.points, o.lab, self.finder.support, o.label).text())
                    for o in self.finder.objects if o.id in points}
        ground = SupportPlane(np.array([0.0, 0.0, 1.0]), -self.tracker.config.world.ground_height)
        return {i: ("", describe(i, pts, np.zeros((0, 3)), ground).text()) for i, pts in points.items() if len(pts) >= 5}

    # ------------------------------------------------------------------ outputs
    def _state_array(self, states: list[ObjectState], stamp: int):
        make = self.ctx.make
        header = make_header(make, stamp, self.params.world_frame if self.levelled else self.params.support_frame)
        objects = [make("ros_gs/msg/ObjectState", id=s.id, label=s.label, description=s.description,
                        pose=matrix_to_pose(make, s.pose),
                        twist=make("geometry_msgs/msg/Twist", linear=vector3_to_msg(make, s.twist[:3]),
                                   angular=vector3_to_msg(make, s.twist[3:])),
                        extents=vector3_to_msg(make, s.extents), particles=s.particles, gaussians=s.gaussians,
                        correction=s.correction, friction=s.friction) for s in states]
        return make("ros_gs/msg/ObjectStateArray", header=header, objects=objects)

    def _publish(self, stamp: int) -> None:
        p, make = self.params, self.ctx.make
        header = make_header(make, stamp, p.world_frame if self.levelled else p.support_frame)
        states = self.tracker.states()
        self.pub.publish(make("geometry_msgs/msg/PoseArray", header=header, poses=[matrix_to_pose(make, s.pose) for s in states]))
        self.tf.publish(make("tf2_msgs/msg/TFMessage", transforms=[
            matrix_to_transform_stamped(make, s.pose, header, f"{p.frame_prefix}{s.id}") for s in states]))
        self.states_pub.publish(self._state_array(states, stamp))
        if p.prediction_horizon_s > 0:
            r = self.tracker.predict(p.prediction_horizon_s)
            ahead = stamp + int(round(p.prediction_horizon_s * 1e9))
            self.predicted_pub.publish(self._state_array(self.tracker.states(r.poses[-1], r.velocities[-1]), ahead))

    def on_predict(self, request, response):
        """``~/predict``: the states ahead after an optional push (see srv/PredictObjects.srv)."""
        response.ok, response.states = False, []
        if not self.tracker.started or self._last_stamp is None:
            response.message = "no objects are tracked yet"
            return response
        try:
            r = self.tracker.predict(float(request.horizon_s), float(request.step_s) or None, int(request.object_id),
                                     vector3_from_msg(request.delta_linear), vector3_from_msg(request.delta_angular),
                                     vector3_from_msg(request.force), float(request.force_duration_s))
        except (ConfigError, InputError) as exc:
            response.message = str(exc)
            return response
        response.states = [self._state_array(self.tracker.states(P, V), self._last_stamp + int(round(t * 1e9)))
                           for t, P, V in zip(r.times, r.poses, r.velocities)]
        response.ok = True
        return response
