"""The object tracker: objects seen by calibrated depth cameras become particle bodies, visual
forces keep them on the images, and the world predicts them ahead.

One entry per capability, like the rest of the core: :meth:`ObjectTracker.start` (bodies from
the instances' depth points), :meth:`ObjectTracker.update` (one image set: pull towards it and
step), :meth:`ObjectTracker.states` (what a robot subscribes to) and
:meth:`ObjectTracker.predict` (the world ahead without visual forces, optionally after a push).
The ROS node (:mod:`ros_gs.nodes.physics_tracker`) turns messages into the arguments and the
results into messages.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from ros_gs.errors import ConfigError, InputError
from ros_gs.gaussians.model import C0
from ros_gs.physics.binding import GaussianBinding
from ros_gs.physics.bodies import voxel_particles
from ros_gs.physics.estimation import FrictionEstimator, sliding_friction
from ros_gs.physics.prediction import Push, Rollout, rollout
from ros_gs.physics.visual_forces import Appearance, Observation, VisualForceConfig, drag_forces, visual_forces
from ros_gs.physics.world import World, WorldConfig

GAIN_DENSITY = 500.0  # kg/m^3: the density the visual-force gain was set at (push seed 0)

# code colours of bodies 0, 1, ... (the renderer compares them with the instance images)
CODES = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 0.5, 0], [0.5, 0, 1]], float)


class TrackerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spacing: float = Field(0.02, gt=0.002, le=0.5, description="particle pitch (m); particles are spheres of half this radius")
    density: float = Field(500.0, gt=0.0, description="kg/m^3: a body's mass is its particle volume (spacing^3 each) times this")
    mass_scaled_forces: bool = Field(True, description="the visual forces scale with density / 500 (the density the gain was set at), so the images correct the bodies' motion by acceleration whatever mass they are given: with the density x3 the push was lost (26 cm) without this")
    min_points: int = Field(30, ge=1, description="instances with fewer depth points on the first set are not tracked (a counted skip)")
    max_objects: int = Field(8, ge=1, le=len(CODES), description="at most this many instances (the lowest ids) are tracked")
    gaussian_spacing: float = Field(0.008, gt=0.0, description="the points become Gaussians on a voxel grid of this pitch (m)")
    max_step_s: float = Field(0.05, gt=0.0, le=1.0, description="the time between two image sets is simulated in steps of at most this (s)")
    in_air_above: float = Field(0.08, gt=0.0, description="an instance whose lowest depth point is higher than this above the support (m) is in the air (falling, held) and is not filled down to it; a camera looking down on a table misses up to ~5 cm of an object's foot (GraspNet's frame), so less would float standing objects")
    velocity_window_s: float = Field(0.1, ge=0.0, le=2.0, description="velocities reported and predicted from are fitted to the tracked poses of this last stretch (s; 0.1 s: 3 frames at 30 Hz); the simulation's own are damped by the visual forces' drag; 0: the simulation's")
    estimate_friction: bool = Field(True, description="each object's friction on the support is measured from its free slides (physics.estimation) and predictions roll forward with it; tracking keeps world.friction (its drag steadies the visual correction: with a measured 0.16 a pushed box was left 5 deg off, with 0.5 1 deg). False: world.friction for predictions too")
    friction_window_s: float = Field(0.15, gt=0.0, le=2.0, description="the stretch of seen track one friction reading fits (s; 0.15 s: 5 frames at 30 Hz, set on push seed 1)")
    drag_to_seen: bool = Field(True, description="the visual forces' drag pulls each body's vertical velocity towards the one its points are seen moving at, not towards rest: a falling body was held to g / damping = 0.33 m/s (drop seed 1: tracking 1.3-8.2 cm -> 0.9-2.5 cm, prediction 1.8x -> 2.9x the baselines). Not horizontally: the seen velocity, a fit over velocity_window_s, lags a stop, and a box shoved into a cylinder overshot by 4 cm")
    appear_frames: int = Field(3, ge=1, description="an untracked instance seen (with min_points) in this many image sets in a row is added as a body (refresh)")
    drop_after_s: float = Field(1.0, gt=0.0, description="a tracked object seen in no view for this long is dropped (refresh)")
    world: WorldConfig = Field(default_factory=WorldConfig, description="the physics world; world.ground_height is the support the objects rest on")
    forces: VisualForceConfig = Field(default_factory=VisualForceConfig, description="visual forces")


@dataclass
class ObjectState:
    """One tracked object as :meth:`ObjectTracker.states` reports it (world frame)."""

    id: int
    label: str
    description: str
    pose: np.ndarray  # (4, 4) T_world_object
    twist: np.ndarray  # (6,) linear velocity of the centre of mass, angular velocity
    extents: np.ndarray  # (3,) m, the particles' box along the object's axes
    particles: int
    gaussians: int
    correction: float  # N: the total visual force of the last update
    friction: float  # its friction on the support in predictions (measured, or world.friction)


@dataclass
class _BodySpec:
    """What a body is made of when a world is (re)built: its particles and Gaussians in its own
    frame, where it is and how it moves, its friction (None: the world's)."""

    id: int
    particles: np.ndarray  # (P, 3) body frame
    gaussians: np.ndarray  # (G, 3) body frame
    T: np.ndarray  # (4, 4) T_world_body
    velocity: np.ndarray  # (6,) linear (centre of mass), angular; world frame
    friction: float | None


def merge_overlapping(points: dict[int, np.ndarray], spacing: float, share: float = 0.3) -> dict[int, np.ndarray]:
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


class ObjectTracker:
    """Bodies from instances, kept on the images by visual forces, predicted ahead."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.world: World | None = None
        self.ids: list[int] = []
        self.parts: list[np.ndarray] = []  # each body's particle centres, body frame
        self.names: dict[int, tuple[str, str]] = {}  # id -> (label, description)
        self.corrections: np.ndarray = np.zeros(0)
        self._gaussians: list[int] = []
        self.skipped: list[str] = []  # why instances of the last start were not tracked
        self._history: deque = deque(maxlen=64)  # (world time, (B, 4, 4) poses) after each update
        self._seen: deque = deque(maxlen=64)  # (world time, {body index: centroid of its seen points})
        self._last_seen: dict[int, float] = {}  # id -> world time it was last seen with min_points
        self._streak: dict[int, int] = {}  # untracked id -> image sets in a row it was seen

    @property
    def started(self) -> bool:
        return self.world is not None

    def reset(self) -> None:
        self.world, self.ids, self.parts = None, [], []

    # ------------------------------------------------------------------ building
    def start(self, points: dict[int, np.ndarray], names: dict[int, tuple[str, str]] | None = None) -> None:
        """Bodies from each instance's world points (id -> (N, 3)): particles fill them down to
        the ground (``world.ground_height``) when they stand on it, down to their own lowest
        seen point when they are in the air (``in_air_above``: a falling object is no column down
        to the table); Gaussians sit on them coloured with the body's code colour.  ``names``:
        id -> (label, description) to report.  Raises InputError when no instance is big enough;
        the reasons for the instances left out are in ``skipped``."""
        self.skipped = []
        points = merge_overlapping(points, self.config.spacing)
        specs = self._specs_from_points(points, [])
        if not specs:
            raise InputError("no instance with enough depth points in the first image set: waiting for the next")
        self.names = {}
        self._last_seen, self._streak = {s.id: 0.0 for s in specs}, {}
        self._assemble(specs, 0.0, names or {}, {})
        self._seen.append((0.0, {k: points[i].mean(axis=0) for k, i in enumerate(self.ids)}))

    def _specs_from_points(self, points: dict[int, np.ndarray], placed: list[np.ndarray]) -> list[_BodySpec]:
        """A body per instance with enough points (at most ``max_objects`` with ``placed``, the
        particles already in the world): filled (see :meth:`start`) and carved out of
        ``placed``; the reasons for the others go to ``skipped``."""
        cfg = self.config
        ground = cfg.world.ground_height
        placed = list(placed)
        specs = []
        for i in sorted(points):
            pts = points[i]
            if len(placed) >= cfg.max_objects:
                self.skipped.append(f"instance {i}: more than max_objects={cfg.max_objects}")
                continue
            if len(pts) < cfg.min_points:
                self.skipped.append(f"instance {i}: {len(pts)} depth points < min_points")
                continue
            centre = pts.mean(axis=0)
            try:
                local = pts - centre
                if pts[:, 2].min() - ground < cfg.in_air_above:  # standing on the support: filled down to it
                    # depth noise puts points below the support: particles there would start
                    # inside the ground and be thrown out of it
                    local[:, 2] = np.maximum(local[:, 2], ground - centre[2])
                    floor = ground - centre[2]
                else:  # first seen in the air (falling, held): filled down to its own lowest seen point only
                    floor = local[:, 2].min()
                particles = voxel_particles(local, cfg.spacing, floor=floor)
            except ConfigError as exc:  # e.g. a body too large for the particle budget
                self.skipped.append(f"instance {i}: {exc}")
                continue
            if placed:  # filled down to the support, touching objects would overlap: carve them apart
                d, _ = cKDTree(np.concatenate(placed)).query(particles + centre)
                particles = particles[d >= cfg.spacing]
                if len(particles) == 0:
                    self.skipped.append(f"instance {i}: inside another object's particles")
                    continue
            placed.append(particles + centre)
            T = np.eye(4)
            T[:3, 3] = centre
            keys = np.unique(np.floor(pts / cfg.gaussian_spacing).astype(np.int64), axis=0)
            specs.append(_BodySpec(i, particles, (keys + 0.5) * cfg.gaussian_spacing - centre, T, np.zeros(6), None))
        return specs

    def _assemble(self, specs: list[_BodySpec], time: float, names: dict[int, tuple[str, str]],
                  readings: dict[int, list[float]]) -> None:
        """A new world of these bodies at their poses and velocities, at ``time``; the Gaussians
        in their code colours (by position), friction readings kept by id."""
        cfg = self.config
        world = World(cfg.world)
        for s in specs:
            world.add_body(s.particles, s.T, mass=cfg.density * len(s.particles) * cfg.spacing**3, radius=cfg.spacing / 2,
                           velocity=s.velocity[:3], angular_velocity=s.velocity[3:], name=f"object/{s.id}", friction=s.friction)
        world.finalize()
        world.time = time
        means = np.concatenate([s.gaussians @ s.T[:3, :3].T + s.T[:3, 3] for s in specs])
        body = np.concatenate([np.full(len(s.gaussians), k) for k, s in enumerate(specs)])
        n = len(means)
        cols = CODES[body]
        self.appearance = Appearance(scales=torch.full((n, 3), 0.6 * cfg.gaussian_spacing), opacities=torch.full((n,), 0.95),
                                     sh=torch.as_tensor((cols - 0.5) / C0, dtype=torch.float32)[:, None, :])
        self.binding = GaussianBinding(means, np.tile([1.0, 0, 0, 0], (n, 1)), body, world.poses(), [s.particles for s in specs])
        self.world, self.ids, self.parts = world, [s.id for s in specs], [s.particles for s in specs]
        self._gaussians = [len(s.gaussians) for s in specs]
        self.corrections = np.zeros(len(specs))
        self._history.clear()
        self._history.append((world.time, world.poses()))
        self._seen.clear()
        self.friction = FrictionEstimator(len(specs))
        for k, s in enumerate(specs):
            self.friction.readings[k] = list(readings.get(s.id, []))
        self.names = {s.id: names.get(s.id, self.names.get(s.id, ("", ""))) for s in specs}

    def refresh(self, seen: dict[int, np.ndarray], describe=None) -> tuple[list[int], list[int]]:
        """After an update: objects that appeared are added and objects gone are dropped, the
        others going on where they are, as they move.  ``seen``: id -> (N, 3) world points of
        this set (as :meth:`update`).  An untracked id seen with ``min_points`` in
        ``appear_frames`` sets in a row is added (built like :meth:`start`'s, carved out of the
        bodies there); a tracked one not seen for ``drop_after_s`` is dropped.  ``describe``:
        points -> id -> (label, description) for the new ones.  Returns (added, dropped) ids;
        when every object is gone the tracker is reset (:attr:`started` False)."""
        cfg = self.config
        now = self.world.time
        big = {i: p for i, p in seen.items() if i > 0 and len(p) >= cfg.min_points}
        for i in big:
            self._last_seen[i] = now
        self._streak = {i: self._streak.get(i, 0) + 1 for i in big if i not in self.ids}
        gone = [i for i in self.ids if now - self._last_seen.get(i, now) > cfg.drop_after_s]
        new = {i: big[i] for i, n in self._streak.items() if n >= cfg.appear_frames}
        if not gone and not new:
            return [], []
        poses, vel = self.world.poses(), self.velocities()
        means_local = self.binding.means_local.numpy()
        body = self.binding.body.numpy()
        kept = [_BodySpec(i, self.parts[k], means_local[body == k], poses[k], vel[k], self.world.bodies[k].friction)
                for k, i in enumerate(self.ids) if i not in gone]
        readings = {i: self.friction.readings[k] for k, i in enumerate(self.ids)}
        self.skipped = []
        placed = [s.particles @ s.T[:3, :3].T + s.T[:3, 3] for s in kept]
        added = self._specs_from_points(new, placed) if new else []
        for s in added:
            self._streak.pop(s.id, None)
            self._last_seen[s.id] = now
        for i in gone:
            self._last_seen.pop(i, None)
        if not kept and not added:
            self.reset()
            return [], gone
        names = describe({s.id: new[s.id] for s in added}) if describe is not None and added else {}
        self._assemble(kept + added, now, names, readings)
        return [s.id for s in added], gone

    def code_image(self, instances: np.ndarray) -> np.ndarray:
        """(H, W, 3) float32: the code colour of each pixel's body (instance ids -> colours)."""
        code = np.zeros(instances.shape + (3,), np.float32)
        for j, i in enumerate(self.ids):
            code[instances == i] = CODES[j]
        return code

    # ------------------------------------------------------------------ tracking
    def update(self, observations: list[Observation], dt: float, seen: dict[int, np.ndarray] | None = None) -> bool:
        """One image set ``dt`` seconds after the last: the image pulls once, then the world
        steps ``dt`` (in steps of at most ``max_step_s``) with the drag.  ``seen``: id -> (N, 3)
        world points of the object in this set (its depth pixels), whose centroids give the
        velocities and friction readings (see :meth:`velocities`).  False when the simulation
        diverged (non-finite poses): the caller restarts."""
        if self.world is None:
            raise ConfigError("ObjectTracker.update before start()")
        cfg = self.config
        n = max(1, math.ceil(dt / cfg.max_step_s))
        pull, _ = visual_forces(self.world, self.binding, self.appearance, observations,
                                cfg.forces.model_copy(update={"damping": 0.0}))
        if cfg.mass_scaled_forces:
            pull = pull * (cfg.density / GAIN_DENSITY)
        self.corrections = np.array([np.linalg.norm(pull[bd.start:bd.stop].sum(axis=0)) for bd in self.world.bodies])
        reference = None
        if cfg.drag_to_seen:  # along gravity only: see drag_to_seen
            reference = np.zeros((len(self.ids), 3))
            reference[:, 2] = self._seen_velocities()[0][:, 2]
        for _ in range(n):
            forces = pull + drag_forces(self.world, cfg.forces.damping, dt / n, reference)
            if not np.isfinite(forces).all():
                break
            self.world.step(dt / n, forces)
        poses = self.world.poses()  # one read (on CUDA each is a copy from the device)
        ok = bool(np.isfinite(poses).all() and np.isfinite(self.world.velocities()).all())
        if ok:
            self._history.append((self.world.time, poses))
            self._seen.append((self.world.time, {k: seen[i].mean(axis=0) for k, i in enumerate(self.ids)
                                                 if seen is not None and len(seen.get(i, ())) >= cfg.min_points}))
            if cfg.estimate_friction:
                self._measure_friction()
        return ok

    def _seen_velocities(self) -> tuple[np.ndarray, np.ndarray]:
        """(B, 3) each body's velocity seen over ``velocity_window_s`` (the least-squares slope
        of its points' centroid) and (B,) whether it was seen in 3 or more sets, every set of
        the stretch (zero velocity where not)."""
        out, seen = np.zeros((len(self.ids), 3)), np.zeros(len(self.ids), bool)
        for k in range(len(self.ids)):
            track = self._seen_track(k, self.config.velocity_window_s)
            if track is not None and len(track[0]) >= 3:
                ts = track[0] - track[0].mean()
                out[k], seen[k] = ts @ (track[1] - track[1].mean(axis=0)) / float(ts @ ts), True
        return out, seen

    def _seen_track(self, body: int, window_s: float) -> tuple[np.ndarray, np.ndarray] | None:
        """(times, (T, 3) centroids) of the body's seen points over the last ``window_s``, when
        it was seen in every set of that stretch."""
        latest = self._seen[-1][0] if self._seen else 0.0
        recent = [(t, c) for t, c in self._seen if t >= latest - window_s - 1e-9]
        if len(recent) < 2 or any(body not in c for _, c in recent):
            return None
        return np.array([t for t, _ in recent]), np.stack([c[body] for _, c in recent])

    def _measure_friction(self) -> None:
        """A friction reading for every body seen sliding on the support touching no other body
        over the last ``friction_window_s`` (its seen centroids: the simulated body's own track
        slows as the simulation's friction says, so it cannot measure it)."""
        cfg = self.config
        pts, owner = self.particle_points()
        vel = self.velocities()
        for k, i in enumerate(self.ids):
            track = self._seen_track(k, cfg.friction_window_s)
            if track is None or len(track[0]) < 4:
                continue
            mine = pts[owner == i]
            if mine[:, 2].min() - cfg.world.ground_height > cfg.spacing:  # not on the support
                continue
            # rolling (a ball, a can on its side, a tumbling box) slows by less than friction:
            # its turn about a horizontal axis carries its foot along (v = w r when it rolls)
            half_height = 0.5 * (np.ptp(mine[:, 2]) + cfg.spacing)
            if np.linalg.norm(vel[k, 3:5]) * half_height > 0.3 * np.linalg.norm(vel[k, :2]):
                continue
            others = pts[owner != i]
            if len(others) and np.isfinite(cKDTree(others).query(mine, distance_upper_bound=1.5 * cfg.spacing)[0]).any():
                continue  # touching another body: its deceleration is not friction alone
            self.friction.add(k, sliding_friction(*track, gravity=cfg.world.gravity))

    def prediction_friction(self) -> list[float]:
        """Each body's friction on the support for predictions: measured (``estimate_friction``)
        once it has slid, else the world's."""
        measured = [self.friction.estimate(k) if self.config.estimate_friction else None for k in range(len(self.ids))]
        return [bd.friction if mu is None else mu for bd, mu in zip(self.world.bodies, measured)]

    def velocities(self) -> np.ndarray:
        """(B, 6) each body's velocity (centre of mass, angular; world frame) over the last
        ``velocity_window_s``: the least-squares slope of the centroid of its seen points when it
        was seen in every set of the stretch, else of its tracked centre of mass; the mean
        rotation rate of its tracked poses.  Why not the simulation's: the visual forces' drag
        damps it, so a sliding object the images drag along reads slower than it moves; and the
        tracked body lags and overshoots the images by a centimetre or two when a push starts or
        stops, where the seen points do not."""
        w = self.world
        latest = self._history[-1][0] if self._history else w.time
        recent = [(t, P) for t, P in self._history if t >= latest - self.config.velocity_window_s - 1e-9]
        if self.config.velocity_window_s <= 0 or len(recent) < 2:
            return w.velocities()
        t = np.array([r[0] for r in recent])
        com = np.stack([w.centres_of_mass(P) for _, P in recent])  # (T, B, 3)
        tc = t - t.mean()
        lin = np.einsum("t,tbi->bi", tc, com - com.mean(axis=0)) / float(tc @ tc)
        seen_lin, seen = self._seen_velocities()
        lin[seen] = seen_lin[seen]
        R0, R1 = recent[0][1][:, :3, :3], recent[-1][1][:, :3, :3]
        ang = Rotation.from_matrix(np.einsum("bij,bkj->bik", R1, R0)).as_rotvec() / (t[-1] - t[0])
        return np.concatenate([lin, ang], axis=1)

    def particle_points(self, ahead_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(P, 3) world particle centres and (P,) the id of the object each belongs to; those of
        a body that moves more than half a particle pitch in ``ahead_s`` seconds are moved on at
        its :meth:`velocities` (where the next image set should find it).  Why not slower ones:
        the pixels taken by moved-on particles move the seen centroid, whose slope is the
        velocity, which moves them further; at rest that loop walked bodies off by 15 cm."""
        poses = self.world.poses()
        pts = [part @ T[:3, :3].T + T[:3, 3] for part, T in zip(self.parts, poses)]
        if ahead_s > 0.0:
            vel, com = self.velocities(), self.world.centres_of_mass(poses)
            pts = [q + ahead_s * (v[:3] + np.cross(v[3:], q - c)) if np.linalg.norm(v[:3]) * ahead_s > self.config.spacing / 2 else q
                   for q, v, c in zip(pts, vel, com)]
        owner = np.concatenate([np.full(len(q), i) for q, i in zip(pts, self.ids)])
        return np.concatenate(pts), owner

    # ------------------------------------------------------------------ outputs
    def states(self, poses: np.ndarray | None = None, velocities: np.ndarray | None = None) -> list[ObjectState]:
        """Every tracked object now (velocities from :meth:`velocities`), or at the given (B, 4,
        4) poses and (B, 6) velocities (a prediction's)."""
        if self.world is None:
            return []
        poses = self.world.poses() if poses is None else poses
        velocities = self.velocities() if velocities is None else velocities
        r = self.config.spacing / 2
        friction = self.prediction_friction()
        out = []
        for k, i in enumerate(self.ids):
            part = self.parts[k]
            label, desc = self.names.get(i, ("", ""))
            out.append(ObjectState(i, label, desc, poses[k], velocities[k], part.max(axis=0) - part.min(axis=0) + 2 * r,
                                   len(part), self._gaussians[k], float(self.corrections[k]), friction[k]))
        return out

    def predict(self, horizon_s: float, sample_s: float | None = None, push_id: int | None = None,
                delta_linear=(0.0, 0.0, 0.0), delta_angular=(0.0, 0.0, 0.0), force=(0.0, 0.0, 0.0),
                force_duration_s: float = 0.0) -> Rollout:
        """The world ``horizon_s`` ahead without visual forces (states every ``sample_s``), with
        each object's measured friction (:meth:`prediction_friction`), optionally after pushing
        the object ``push_id`` (:class:`~ros_gs.physics.prediction.Push`); the tracking state and
        frictions are left as they were."""
        if self.world is None:
            raise InputError("no objects are tracked yet")
        push = None
        if push_id is not None and push_id > 0:  # ids start at 1: 0 (a request's default) and -1 push nothing
            if push_id not in self.ids:
                raise ConfigError(f"no tracked object {push_id} (tracked: {self.ids})")
            push = Push(self.ids.index(push_id), np.asarray(delta_linear, float), np.asarray(delta_angular, float),
                        np.asarray(force, float), float(force_duration_s))
        tracking = [bd.friction for bd in self.world.bodies]
        predicting = self.prediction_friction()
        for k, mu in enumerate(predicting):
            if mu != tracking[k]:
                self.world.set_friction(k, mu)
        try:
            return rollout(self.world, horizon_s, self.config.max_step_s, sample_s, push, self.velocities())
        finally:
            for k, mu in enumerate(tracking):
                if mu != predicting[k]:
                    self.world.set_friction(k, mu)
