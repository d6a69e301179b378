"""The physics world: rigid objects as particle systems (sets of spheres) on Newton (Warp).

Each object is a rigid body whose collision shape and mass are its particles: equal spheres
from :mod:`ros_gs.physics.bodies`.  Newton's XPBD solver integrates the bodies and resolves
sphere-ground and sphere-sphere contacts.  (A first version kept particles free and held them
rigid by shape matching after each Newton step; run one after the other, contact and shape
matching stored energy like a spring and a cube dropped 35 cm bounced 5 cm, where MuJoCo's
comes to rest.  As one rigid body per object, the same drop rests like MuJoCo's.)

Split as in Newton: the *model* (bodies, their particles, masses, the ground) is fixed at
:meth:`World.finalize`; the *state* (body poses and velocities) advances with
:meth:`World.step`; the *control* is the external force on particles (visual forces, pushes),
turned into one wrench per body about its centre of mass.

Frames: z up, gravity along -z (as MuJoCo).  A body's pose ``T_world_body`` (4x4) is the pose of
the frame its particles were given in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ros_gs.errors import ConfigError

log = logging.getLogger(__name__)

CONTACTS_PER_PARTICLE = 32  # contact buffer slots per particle sphere


class WorldConfig(BaseModel):
    """Parameters of :class:`World` (SI units)."""

    model_config = ConfigDict(extra="forbid")

    substeps: int = Field(10, ge=1, le=1000, description="solver substeps per step()")
    iterations: int = Field(4, ge=1, le=100, description="XPBD iterations per substep")
    gravity: float = Field(-9.81, description="gravity along z (m/s^2)")
    ground: bool = Field(True, description="a ground plane (a floor, or a table top)")
    ground_height: float = Field(0.0, description="height of the ground plane (m)")
    friction: float = Field(0.5, ge=0.0, le=5.0, description="Coulomb friction of a body on the ground (each body may have its own: add_body, set_friction); between two bodies the sum of theirs")
    device: str = Field("auto", description="Warp device: 'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:N'")


@dataclass
class WorldState:
    """A snapshot of a world's state (:meth:`World.save_state`): Newton's body_q (B, 7: position,
    quaternion x y z w) and body_qd (B, 6), and the simulated time."""

    body_q: np.ndarray
    body_qd: np.ndarray
    time: float


@dataclass
class Body:
    """One rigid body and its particles (rows ``start:stop`` of the world's particle arrays)."""

    name: str
    start: int
    stop: int
    mass: float
    points_local: np.ndarray  # (P, 3) particle centres in the body frame
    radius: float
    friction: float  # Coulomb friction on the ground


def _transform(T: np.ndarray):
    import warp as wp
    from scipy.spatial.transform import Rotation

    q = Rotation.from_matrix(T[:3, :3]).as_quat()  # x, y, z, w (Warp's order too)
    return wp.transform(wp.vec3(*T[:3, 3]), wp.quat(*q))


class World:
    """Rigid particle bodies on a ground plane.  :meth:`add_body`, :meth:`finalize`, then :meth:`step`."""

    def __init__(self, config: WorldConfig | None = None) -> None:
        import warp as wp

        self.config = config or WorldConfig()
        wp.config.quiet = True
        wp.init()
        dev = self.config.device
        if dev == "auto":
            dev = "cuda" if wp.is_cuda_available() else "cpu"
        self.device = wp.get_device(dev)
        self.bodies: list[Body] = []
        self._init: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # T, v, w
        self._model = None
        self.time = 0.0

    # -- building -------------------------------------------------------------------------
    def add_body(self, points_local: np.ndarray, T_world_body: np.ndarray | None = None, *, mass: float,
                 radius: float, velocity=(0.0, 0.0, 0.0), angular_velocity=(0.0, 0.0, 0.0), name: str = "",
                 friction: float | None = None) -> int:
        """Add a rigid body of spheres of ``radius`` at ``points_local`` (P, 3, body frame), total
        ``mass`` (kg) spread evenly, placed at ``T_world_body`` and moving with the given linear
        velocity (of its centre of mass) and angular velocity, both in the world frame; ``friction``
        on the ground (default ``config.friction``).  Returns its index."""
        if self._model is not None:
            raise ConfigError("World.add_body after finalize()")
        p = np.asarray(points_local, dtype=np.float64).reshape(-1, 3)
        if len(p) == 0 or not np.isfinite(p).all():
            raise ConfigError(f"body {name!r}: particle centres must be finite and non-empty")
        if not (np.isfinite(mass) and mass > 0 and np.isfinite(radius) and radius > 0):
            raise ConfigError(f"body {name!r}: mass and radius must be > 0 (got {mass}, {radius})")
        T = np.eye(4) if T_world_body is None else np.asarray(T_world_body, dtype=np.float64)
        if T.shape != (4, 4) or not np.isfinite(T).all():
            raise ConfigError(f"body {name!r}: T_world_body must be a finite 4x4 transform")
        R = T[:3, :3]
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0:
            raise ConfigError(f"body {name!r}: T_world_body must be a rigid transform")
        v, w = (np.asarray(x, dtype=np.float64).reshape(3) for x in (velocity, angular_velocity))
        if not (np.isfinite(v).all() and np.isfinite(w).all()):
            raise ConfigError(f"body {name!r}: velocities must be finite")
        mu = self.config.friction if friction is None else float(friction)
        if not (np.isfinite(mu) and 0.0 <= mu <= 5.0):
            raise ConfigError(f"body {name!r}: friction must be in [0, 5], got {friction}")
        start = self.num_particles
        self.bodies.append(Body(name or f"body{len(self.bodies)}", start, start + len(p), float(mass), p, float(radius), mu))
        self._init.append((T, v, w))
        return len(self.bodies) - 1

    def finalize(self) -> None:
        """Build the Newton model, state, collision pipeline and solver."""
        import newton
        import warp as wp

        if not self.bodies:
            raise ConfigError("World.finalize: add at least one body")
        cfg = self.config
        b = newton.ModelBuilder(gravity=(0.0, 0.0, cfg.gravity))
        # Newton's XPBD takes the mean of two shapes' friction: a frictionless ground and each
        # body's spheres at twice its own make each body's hold on the ground (bodies on each
        # other: the sum of theirs)
        if cfg.ground:
            b.add_ground_plane(height=cfg.ground_height, cfg=newton.ModelBuilder.ShapeConfig(mu=0.0))
        self._shapes: list[slice] = []
        for bd, (T, _, _) in zip(self.bodies, self._init):
            idx = b.add_body(xform=_transform(T), label=bd.name)
            # density such that the spheres weigh the body's mass (Newton sums shape masses)
            density = bd.mass / (len(bd.points_local) * 4.0 / 3.0 * np.pi * bd.radius**3)
            # a negative collision group of its own: the body's spheres skip each other (Newton
            # does not filter shapes of one body) but meet other bodies' and the ground
            # contact detection reaches one radius beyond the sphere (Newton's default gap, 10 cm,
            # made every sphere pair of two boxes 5 cm apart a contact)
            shape = newton.ModelBuilder.ShapeConfig(mu=2.0 * bd.friction, density=density, collision_group=-(idx + 1),
                                                    gap=bd.radius)
            first = b.shape_count
            for p in bd.points_local:
                b.add_shape_sphere(idx, xform=wp.transform(wp.vec3(*p), wp.quat_identity()), radius=bd.radius, cfg=shape)
            self._shapes.append(slice(first, b.shape_count))
        self._model = b.finalize(device=self.device)
        self._solver = newton.solvers.SolverXPBD(self._model, iterations=cfg.iterations)
        self._state, self._next = self._model.state(), self._model.state()
        self._control = self._model.control()
        qd = np.zeros((len(self.bodies), 6), dtype=np.float32)
        for i, (_, v, w) in enumerate(self._init):
            qd[i, :3], qd[i, 3:] = v, w
        self._state.body_qd.assign(qd)
        # Newton sizes the contact buffer for a few contacts per shape; a body resting on another
        # touches it with many spheres at once
        self._contact_capacity = CONTACTS_PER_PARTICLE * max(1, self.num_particles)
        # sweep and prune: 16 resting cubes (2000 spheres) step in 95 ms against 154 ms with the default
        self._pipeline = newton.CollisionPipeline(self._model, rigid_contact_max=self._contact_capacity, broad_phase="sap")
        self._contacts = self._pipeline.contacts()
        self.contact_overflows = 0
        self._com_local = self._model.body_com.numpy().astype(np.float64)
        log.info("physics world: %d bodies, %d particles on %s", len(self.bodies), self.num_particles, self.device)

    # -- stepping -------------------------------------------------------------------------
    @property
    def num_particles(self) -> int:
        return sum(bd.stop - bd.start for bd in self.bodies)

    def wrenches(self, particle_forces: np.ndarray) -> np.ndarray:
        """(B, 6) force and torque about each body's centre of mass (world frame) of forces
        (P, 3) acting at the particles."""
        f = np.asarray(particle_forces, dtype=np.float64)
        if f.shape != (self.num_particles, 3):
            raise ConfigError(f"particle_forces must be ({self.num_particles}, 3), got {f.shape}")
        if not np.isfinite(f).all():
            raise ConfigError("particle_forces hold NaN or inf")
        arms = self._lever_arms()
        out = np.zeros((len(self.bodies), 6))
        for i, bd in enumerate(self.bodies):
            fi = f[bd.start:bd.stop]
            out[i, :3] = fi.sum(axis=0)
            out[i, 3:] = np.cross(arms[bd.start:bd.stop], fi).sum(axis=0)
        return out

    def step(self, dt: float, particle_forces: np.ndarray | None = None) -> None:
        """Advance by ``dt`` seconds in ``config.substeps`` substeps, with optional external
        forces (P, 3) in newtons on the particles, held over the step."""
        if self._model is None:
            raise ConfigError("World.step before finalize()")
        if not (np.isfinite(dt) and dt > 0):
            raise ConfigError(f"World.step: dt must be a positive number, got {dt}")
        wrench = None if particle_forces is None else self.wrenches(particle_forces).astype(np.float32)
        h = dt / self.config.substeps
        most = 0
        for _ in range(self.config.substeps):
            self._pipeline.collide(self._state, self._contacts)
            most = max(most, int(self._contacts.rigid_contact_count.numpy()[0]))
            self._state.clear_forces()
            if wrench is not None:
                self._state.body_f.assign(wrench)
            self._solver.step(self._state, self._next, self._control, self._contacts, h)
            self._state, self._next = self._next, self._state
        if most > self._contact_capacity:
            self.contact_overflows += 1
            log.warning("physics: %d contacts over the buffer of %d (contacts were dropped; %d times so far)",
                        most, self._contact_capacity, self.contact_overflows)
        self.time += dt

    # -- state ----------------------------------------------------------------------------
    def save_state(self) -> WorldState:
        """The bodies' poses and velocities and the time: :meth:`restore_state` puts them back
        (a prediction rolls a world forward, then returns it to where it was)."""
        if self._model is None:
            raise ConfigError("World.save_state before finalize()")
        return WorldState(self._state.body_q.numpy().copy(), self._state.body_qd.numpy().copy(), self.time)

    def restore_state(self, state: WorldState) -> None:
        if self._model is None:
            raise ConfigError("World.restore_state before finalize()")
        if state.body_q.shape != (len(self.bodies), 7) or state.body_qd.shape != (len(self.bodies), 6):
            raise ConfigError(f"a saved state of {len(state.body_q)} bodies does not fit a world of {len(self.bodies)}")
        self._state.body_q.assign(state.body_q)
        self._state.body_qd.assign(state.body_qd)
        self.time = state.time

    def set_velocity(self, body: int, linear, angular) -> None:
        """Set one body's linear (of its centre of mass) and angular velocity, world frame (m/s, rad/s)."""
        if not 0 <= body < len(self.bodies):
            raise ConfigError(f"no body {body} (the world has {len(self.bodies)})")
        v, w = (np.asarray(x, dtype=np.float64).reshape(3) for x in (linear, angular))
        if not (np.isfinite(v).all() and np.isfinite(w).all()):
            raise ConfigError("velocities must be finite")
        qd = self._state.body_qd.numpy()
        qd[body, :3], qd[body, 3:] = v, w
        self._state.body_qd.assign(qd)

    def set_friction(self, body: int, friction: float) -> None:
        """Set one body's Coulomb friction on the ground (an estimate of it, a "what if")."""
        if self._model is None:
            raise ConfigError("World.set_friction before finalize()")
        if not 0 <= body < len(self.bodies):
            raise ConfigError(f"no body {body} (the world has {len(self.bodies)})")
        if not (np.isfinite(friction) and 0.0 <= friction <= 5.0):
            raise ConfigError(f"friction must be in [0, 5], got {friction}")
        mu = self._model.shape_material_mu.numpy()
        mu[self._shapes[body]] = 2.0 * friction
        self._model.shape_material_mu.assign(mu)
        self.bodies[body].friction = float(friction)

    # -- reading --------------------------------------------------------------------------
    def poses(self) -> np.ndarray:
        """(B, 4, 4) ``T_world_body`` of every body."""
        from scipy.spatial.transform import Rotation

        q = self._state.body_q.numpy().astype(np.float64)
        out = np.tile(np.eye(4), (len(q), 1, 1))
        out[:, :3, :3] = Rotation.from_quat(q[:, 3:]).as_matrix()
        out[:, :3, 3] = q[:, :3]
        return out

    def velocities(self) -> np.ndarray:
        """(B, 6): linear velocity of the centre of mass and angular velocity, world frame."""
        return self._state.body_qd.numpy().astype(np.float64)

    def centres_of_mass(self, poses: np.ndarray | None = None) -> np.ndarray:
        """(B, 3) world centres of mass, of the bodies now or at the given (B, 4, 4) poses."""
        T = self.poses() if poses is None else np.asarray(poses, dtype=np.float64)
        return np.einsum("bij,bj->bi", T[:, :3, :3], self._com_local) + T[:, :3, 3]

    def particle_masses(self) -> np.ndarray:
        """(P,) kg: each body's mass spread evenly over its particles."""
        return np.concatenate([np.full(bd.stop - bd.start, bd.mass / (bd.stop - bd.start)) for bd in self.bodies])

    def particle_velocities(self) -> np.ndarray:
        """(P, 3) m/s: the velocity of the body's material at each particle centre, ``v + w x r``."""
        arms, qd = self._lever_arms(), self.velocities()
        return np.concatenate([qd[i, :3] + np.cross(qd[i, 3:], arms[bd.start:bd.stop]) for i, bd in enumerate(self.bodies)])

    def _lever_arms(self) -> np.ndarray:
        """(P, 3) each particle centre minus its body's centre of mass, world frame (one read of
        the poses: on CUDA every read is a copy from the device)."""
        R = self.poses()[:, :3, :3]
        return np.concatenate([(bd.points_local - self._com_local[i]) @ R[i].T for i, bd in enumerate(self.bodies)])

    def particle_positions(self) -> np.ndarray:
        """(P, 3) particle centres in the world frame."""
        T = self.poses()
        return np.concatenate([bd.points_local @ T[i, :3, :3].T + T[i, :3, 3] for i, bd in enumerate(self.bodies)])
