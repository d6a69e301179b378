"""Prediction: the world rolled forward without visual forces, and "what if" pushes.

Why a rollout on the tracking world itself rather than on a copy: Newton's model (bodies,
particles, contacts) is the expensive part and does not change while predicting; only the state
(poses, velocities, time) does, and :meth:`World.save_state` / :meth:`World.restore_state` put it
back afterwards, so tracking continues exactly where it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ros_gs.errors import ConfigError
from ros_gs.physics.world import World


@dataclass
class Push:
    """What to do to one body before predicting: change its velocity at once (m/s, rad/s, world
    frame), and/or push its centre of mass with ``force`` (N, world frame) for ``duration_s``."""

    body: int
    delta_linear: np.ndarray = field(default_factory=lambda: np.zeros(3))
    delta_angular: np.ndarray = field(default_factory=lambda: np.zeros(3))
    force: np.ndarray = field(default_factory=lambda: np.zeros(3))
    duration_s: float = 0.0


@dataclass
class Rollout:
    """States ahead of ``start`` (the world's time when the rollout began): ``times`` (T,) seconds
    after it, ``poses`` (T, B, 4, 4) and ``velocities`` (T, B, 6)."""

    start: float
    times: np.ndarray
    poses: np.ndarray
    velocities: np.ndarray


def rollout(world: World, horizon_s: float, max_step_s: float = 0.05, sample_s: float | None = None,
            push: Push | None = None, velocities: np.ndarray | None = None) -> Rollout:
    """Step ``world`` ``horizon_s`` ahead (steps of at most ``max_step_s``) under gravity and
    contacts only, recording the state every ``sample_s`` (None: only at the horizon), then
    restore it.  ``velocities`` (B, 6): start from these (linear of the centre of mass, angular;
    e.g. estimated from the tracked motion) instead of the world's own.  A ``push`` is applied
    first; its force acts on the body's particles evenly (a force through the centre of mass: no
    torque) while its duration lasts."""
    if not (math.isfinite(horizon_s) and horizon_s > 0):
        raise ConfigError(f"prediction horizon must be a positive number of seconds, got {horizon_s}")
    if not (math.isfinite(max_step_s) and max_step_s > 0):
        raise ConfigError(f"max_step_s must be > 0, got {max_step_s}")
    sample = horizon_s if sample_s is None else float(sample_s)
    if not (math.isfinite(sample) and sample > 0):
        raise ConfigError(f"sample_s must be > 0, got {sample_s}")
    marks = np.arange(sample, horizon_s + 1e-9, sample)
    if len(marks) == 0 or marks[-1] < horizon_s - 1e-9:
        marks = np.append(marks, horizon_s)
    if len(marks) > 10_000:
        raise ConfigError(f"{len(marks)} samples asked for: raise sample_s")
    forces = None
    if push is not None:
        if not 0 <= push.body < len(world.bodies):
            raise ConfigError(f"no body {push.body} to push (the world has {len(world.bodies)})")
        vals = [np.asarray(x, dtype=np.float64).reshape(3) for x in (push.delta_linear, push.delta_angular, push.force)]
        if not all(np.isfinite(v).all() for v in vals) or not (math.isfinite(push.duration_s) and push.duration_s >= 0):
            raise ConfigError("a push needs finite velocities, force and a duration >= 0")
        if np.any(vals[2]) and push.duration_s > 0:
            bd = world.bodies[push.body]
            forces = np.zeros((world.num_particles, 3))
            forces[bd.start:bd.stop] = vals[2] / (bd.stop - bd.start)
    saved = world.save_state()
    start = saved
    if velocities is not None:
        v = np.asarray(velocities, dtype=np.float64)
        if v.shape != saved.body_qd.shape or not np.isfinite(v).all():
            raise ConfigError(f"velocities must be finite and {saved.body_qd.shape}, got {v.shape}")
        start = type(saved)(saved.body_q, v.astype(saved.body_qd.dtype), saved.time)
    try:
        world.restore_state(start)
        if push is not None and (np.any(vals[0]) or np.any(vals[1])):
            qd = world.velocities()[push.body]
            world.set_velocity(push.body, qd[:3] + vals[0], qd[3:] + vals[1])
        t, poses, vels = 0.0, [], []
        for mark in marks:
            while t < mark - 1e-9:
                # steps end at the marks and where the push's force stops
                end = min(mark, t + max_step_s)
                pushing = forces is not None and t < push.duration_s - 1e-9
                if pushing:
                    end = min(end, push.duration_s)
                world.step(end - t, forces if pushing else None)
                t = end
            poses.append(world.poses())
            vels.append(world.velocities())
        return Rollout(saved.time, marks, np.stack(poses), np.stack(vels))
    finally:
        world.restore_state(saved)
