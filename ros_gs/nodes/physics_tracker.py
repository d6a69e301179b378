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
particles fill them down to ``world.ground_height`` (the support the objects rest on), and Gaussians
sit on them, coloured with the instance's code colour.  Every later set is the observation that
the visual forces pull the world towards, stepped by the time between the sets.

Outputs: ``~/objects`` (geometry_msgs/PoseArray, in ``world_frame``, one pose per object in
instance order; ``header.frame_id`` = ``world_frame``) and /tf ``world_frame`` ->
``tracked/<instance id>`` (the body frame: axes of the world, origin at the first points' centroid).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree
from pydantic import Field

from ros_gs.errors import ConfigError, InputError
from ros_gs.gaussians.model import C0
from ros_gs.physics import (Appearance, GaussianBinding, Observation, VisualForceConfig, World, WorldConfig, drag_forces,
                            visual_forces)
from ros_gs.physics.bodies import voxel_particles
from ros_gs.render import Camera
from ros_gs.render.camera import render_K
from ros_gs.nodes.camera_set import CameraSetInput
from ros_gs.runtime.node_api import NodeContext
from ros_gs.runtime.params import NodeParams
from ros_gs.objects import ObjectFinder, ObjectFinderConfig, fit_support
from ros_gs.objects.segmentation import backproject
from ros_gs.runtime.qos import LATCHED_QOS
from ros_gs.semantics.instances import DepthView, instance_points
from ros_gs.sensors.poses import matrix_to_pose, matrix_to_transform_stamped
from ros_gs.sensors.stamps import header_stamp_ns, make_header

# code colours of instances 1, 2, ... (the renderer compares them with the segmentation)
CODES = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 0.5, 0], [0.5, 0, 1]], float)


def _merge_overlapping(points: dict[int, np.ndarray], spacing: float, share: float = 0.3) -> dict[int, np.ndarray]:
    """Instances whose points mostly lie within one particle pitch of another's become one body
    (two bodies in one place would push each other apart: the simulation explodes)."""
    ids = sorted(points)
    merged = {i: points[i] for i in ids}
    for a in ids:
        for b in ids:
            if a < b and a in merged and b in merged:
                small, big = (merged[a], merged[b]) if len(merged[a]) <= len(merged[b]) else (merged[b], merged[a])
                d, _ = cKDTree(big).query(small, distance_upper_bound=spacing)
                if np.isfinite(d).mean() > share:
                    merged[a] = np.concatenate([merged[a], merged.pop(b)])
    return merged


class PhysicsTrackerParams(NodeParams):
    cameras: list[str] = Field(default_factory=list, description="camera namespaces C: C/depth/image_raw, C/color/image_raw, C/color/camera_info")
    use_segmentation: bool = Field(False, description="take instances from an upstream detector's C/segmentation instead of finding them in depth and colour")
    finder: ObjectFinderConfig = Field(default_factory=ObjectFinderConfig, description="objects from the sensor data (without use_segmentation)")
    forces_max_width: int = Field(160, ge=16, le=8192, description="images wider than this are compared with the predicted scene at a stride (the visual-force gain was set on 160x120 images; rendering larger ones on a CPU is slow too)")
    assign_distance: float = Field(0.03, gt=0.0, description="without use_segmentation: an object pixel belongs to the body with a particle this close (m), else to none")
    world_frame: str = Field("world", description="the fixed frame (z up) the cameras are calibrated in (/tf_static) and poses are published in; empty: a lone camera without TF, and the node makes support_frame on the support it finds")
    support_frame: str = Field("ros_gs/support", description="with an empty world_frame: the frame on the support found in the first set (z along its normal, the support at z = 0), published on /tf_static under the camera's frame")
    sync_slop_s: float = Field(0.02, ge=0.0, le=1.0, description="max stamp difference within one set of all cameras' images")
    spacing: float = Field(0.02, gt=0.002, le=0.5, description="particle pitch (m); particles are spheres of half this radius")
    density: float = Field(500.0, gt=0.0, description="kg/m^3: a body's mass is its particle volume (spacing^3 each) times this")
    min_points: int = Field(30, ge=1, description="instances with fewer depth points on the first set are not tracked (a counted skip)")
    max_objects: int = Field(8, ge=1, le=len(CODES), description="at most this many instances (the lowest ids) are tracked")
    gaussian_spacing: float = Field(0.008, gt=0.0, description="the points become Gaussians on a voxel grid of this pitch (m)")
    objects_topic: str = Field("~/objects", description="geometry_msgs/PoseArray of the tracked objects")
    max_step_s: float = Field(0.05, gt=0.0, le=1.0, description="the time between two image sets is simulated in steps of at most this (s)")
    restart_after_s: float = Field(1.0, gt=0.0, description="a gap between image sets longer than this (s), time going backwards, or a diverged world: the objects are rebuilt from the next set")
    time_jump_s: float = Field(1.0, gt=0.0, description="an image this much older than the newest matched one means the clock jumped back (a looped bag, a restarted simulator): matching starts afresh")
    world: WorldConfig = Field(default_factory=WorldConfig, description="the physics world; world.ground_height is the support the objects rest on")
    forces: VisualForceConfig = Field(default_factory=VisualForceConfig, description="visual forces")


class PhysicsTrackerNode:
    NAME = "physics_tracker"
    Params = PhysicsTrackerParams

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.params = p = ctx.get_params(PhysicsTrackerParams)
        self.cameras = CameraSetInput(ctx, p.cameras, p.sync_slop_s, ctx.guard("physics_tracker", self.on_set), p.time_jump_s,
                                      segmentation=p.use_segmentation, colour=not p.use_segmentation)
        self.finder = ObjectFinder(p.finder)
        self.pub = ctx.create_publisher("geometry_msgs/msg/PoseArray", p.objects_topic)
        self.tf = ctx.create_publisher("tf2_msgs/msg/TFMessage", "/tf")
        self.world: World | None = None
        self.ids: list[int] = []
        self._T_support_cam0: np.ndarray | None = None
        self.tf_static = ctx.create_publisher("tf2_msgs/msg/TFMessage", "/tf_static", LATCHED_QOS)
        self._last_stamp: int | None = None
        self.frames = 0
        self.restarts = 0
        self._restarted_last = self._warned_slow = False
        if not p.cameras:
            ctx.logger.warning("no cameras configured (parameter 'cameras'): nothing to track")

    def on_set(self, msgs) -> None:
        stamp = header_stamp_ns(msgs[0])
        views = self._views(msgs)
        if self.world is not None:
            gap = (stamp - self._last_stamp) * 1e-9
            if gap <= 0 or gap > self.params.restart_after_s:
                why = "time went backwards" if gap <= 0 else f"{gap:.2f} s without images"
                if gap > 0 and self._restarted_last and not self._warned_slow:
                    self._warned_slow = True
                    self.ctx.logger.warning("image sets come more than restart_after_s = %.2f s apart: the objects are "
                                            "rebuilt on every set (raise restart_after_s for slow cameras)", self.params.restart_after_s)
                self._restart(f"{why} (set at {stamp} ns after {self._last_stamp} ns)")
        self._restarted_last = self.world is None and self._last_stamp is not None
        if self.world is None:
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
                code = np.zeros(ids.shape + (3,), np.float32)
                for j, i in enumerate(self.ids):
                    code[ids == i] = CODES[j]
                obs.append(Observation(cam, torch.as_tensor(code)))
            gap = (stamp - self._last_stamp) * 1e-9
            n = max(1, math.ceil(gap / self.params.max_step_s))
            # the image pulls once per set; the drag follows the velocity through the pieces
            pull, _ = visual_forces(self.world, self.binding, self.appearance, obs,
                                    self.params.forces.model_copy(update={"damping": 0.0}))
            for _ in range(n):
                forces = pull + drag_forces(self.world, self.params.forces.damping, gap / n)
                if not np.isfinite(forces).all():
                    break
                self.world.step(gap / n, forces)
            if not (np.isfinite(self.world.poses()).all() and np.isfinite(self.world.velocities()).all()):
                self._restart("the simulation diverged (non-finite poses)")
                self._last_stamp = stamp
                return
        self._last_stamp = stamp
        self.frames += 1
        self._publish(stamp)

    def _views(self, msgs) -> list:
        """(DepthView with instance ids, camera model) per camera: the detector's masks, or the
        objects found in depth and colour.  Once bodies exist, each found object pixel takes the
        id of the body whose particles are nearest to its point (within ``assign_distance``), so
        objects that touch or a hand that pushes them are kept apart by what physics predicts."""
        p = self.params
        if p.use_segmentation:
            return [(DepthView(v.depth, v.instances, v.K, self._in_world(msgs, v)), pin)
                    for v, pin in self.cameras.views(msgs, p.world_frame)]
        views = self.cameras.object_views(msgs, p.world_frame)
        for v in views:
            v.T_world_cam = self._in_world(msgs, v)
        objects = self.finder.update(views, np.array([0.0, 0.0, 1.0]))
        tree = None
        if self.world is not None:
            poses = self.world.poses()
            pts = [part @ T[:3, :3].T + T[:3, 3] for part, T in zip(self._parts, poses)]
            owner = np.concatenate([np.full(len(q), i) for q, i in zip(pts, self.ids)])
            tree = cKDTree(np.concatenate(pts))
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
                ids[fg] = np.where(d < p.assign_distance, owner[j], 0)
            out.append((DepthView(v.depth, ids, v.K, v.T_world_cam), self.cameras.camera_model(msgs, k)))
        return out

    def _in_world(self, msgs, view) -> np.ndarray:
        """The view's pose in the world: as calibrated, or (empty ``world_frame``) in the support
        frame made from the first set's support plane, so gravity points down the support's normal."""
        if self.params.world_frame:
            return view.T_world_cam
        if self._T_support_cam0 is None:
            P = backproject(np.asarray(view.depth, dtype=np.float64), np.asarray(view.K, dtype=np.float64)).reshape(-1, 3)
            plane = fit_support(P[::4], np.zeros(3), self.params.finder.support)
            T_cam_sup = np.eye(4)
            x = np.array([1.0, 0.0, 0.0]) - plane.normal[0] * plane.normal
            x /= np.linalg.norm(x)
            T_cam_sup[:3, :3] = np.stack([x, np.cross(plane.normal, x), plane.normal], axis=1)
            T_cam_sup[:3, 3] = -plane.offset * plane.normal  # the camera's foot on the support
            self._T_support_cam0 = np.linalg.inv(T_cam_sup)
            make = self.ctx.make
            header = make_header(make, header_stamp_ns(msgs[0]), msgs[0].header.frame_id)
            self.tf_static.publish(make("tf2_msgs/msg/TFMessage", transforms=[
                matrix_to_transform_stamped(make, T_cam_sup, header, self.params.support_frame)]))
            self.ctx.logger.info("no world frame: objects are tracked in %s on the support found (%d inliers)",
                                 self.params.support_frame, plane.inliers)
        return self._T_support_cam0 @ view.T_world_cam

    def _restart(self, why: str) -> None:
        """Drop the world; the next image set builds the objects again (a counted skip says why)."""
        self.ctx.count_skip("physics_tracker", InputError(f"objects rebuilt: {why}"))
        self.world, self.ids, self.restarts = None, [], self.restarts + 1
        self.finder.reset()

    def _start(self, views) -> None:
        p = self.params
        points = _merge_overlapping(instance_points(views), p.spacing)
        world = World(p.world if p.world_frame else p.world.model_copy(update={"ground_height": 0.0}))
        gauss, body, parts, ids, placed = [], [], [], [], []
        for i in sorted(points):
            pts = points[i]
            if len(ids) >= p.max_objects:
                self.ctx.count_skip("physics_tracker", InputError(f"instance {i}: more than max_objects={p.max_objects}"))
                continue
            if len(pts) < p.min_points:
                self.ctx.count_skip("physics_tracker", InputError(f"instance {i}: {len(pts)} depth points < min_points"))
                continue
            centre = pts.mean(axis=0)
            try:
                ground = p.world.ground_height if p.world_frame else 0.0
                # depth noise puts points below the support: particles there would start inside
                # the ground and be thrown out of it
                local = pts - centre
                local[:, 2] = np.maximum(local[:, 2], ground - centre[2])
                particles = voxel_particles(local, p.spacing, floor=ground - centre[2])
            except ConfigError as exc:  # e.g. a body too large for the particle budget
                self.ctx.count_skip("physics_tracker", InputError(f"instance {i}: {exc}"))
                continue
            if placed:  # filled down to the support, touching objects would overlap: carve them apart
                d, _ = cKDTree(np.concatenate(placed)).query(particles + centre)
                particles = particles[d >= p.spacing]
                if len(particles) == 0:
                    self.ctx.count_skip("physics_tracker", InputError(f"instance {i}: inside another object's particles"))
                    continue
            placed.append(particles + centre)
            T = np.eye(4)
            T[:3, 3] = centre
            world.add_body(particles, T, mass=p.density * len(particles) * p.spacing**3, radius=p.spacing / 2, name=f"tracked/{i}")
            keys = np.unique(np.floor(pts / p.gaussian_spacing).astype(np.int64), axis=0)
            gauss.append((keys + 0.5) * p.gaussian_spacing)
            body.append(np.full(len(keys), len(ids)))
            parts.append(particles)
            ids.append(i)
        if not ids:
            raise InputError("no instance with enough depth points in the first image set: waiting for the next")
        world.finalize()
        means = np.concatenate(gauss)
        n = len(means)
        cols = CODES[np.concatenate(body)]
        self.appearance = Appearance(scales=torch.full((n, 3), 0.6 * p.gaussian_spacing), opacities=torch.full((n,), 0.95),
                                     sh=torch.as_tensor((cols - 0.5) / C0, dtype=torch.float32)[:, None, :])
        self.binding = GaussianBinding(means, np.tile([1.0, 0, 0, 0], (n, 1)), np.concatenate(body), world.poses(), parts)
        self.world, self.ids, self._parts = world, ids, parts
        self.ctx.logger.info("tracking instances %s (%d particles, %d Gaussians)", ids, world.num_particles, n)

    def _publish(self, stamp: int) -> None:
        p, make = self.params, self.ctx.make
        header = make_header(make, stamp, p.world_frame or p.support_frame)
        poses = self.world.poses()
        self.pub.publish(make("geometry_msgs/msg/PoseArray", header=header, poses=[matrix_to_pose(make, T) for T in poses]))
        self.tf.publish(make("tf2_msgs/msg/TFMessage", transforms=[
            matrix_to_transform_stamped(make, T, header, f"tracked/{i}") for i, T in zip(self.ids, poses)]))
