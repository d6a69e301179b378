"""The physics world against MuJoCo (the independent judge) and Newton's wrench conventions:
free fall, landing, Coulomb sliding, stacking, forces on particles, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from mujoco_reference import run_boxes
from scenes import pose
from ros_gs.errors import ConfigError
from ros_gs.physics import World, WorldConfig, box_particles

HALF, SPACING = 0.05, 0.02


def simulate(boxes: list[dict], velocities, times, config: WorldConfig | None = None) -> tuple[np.ndarray, World]:
    w = World(config or WorldConfig(device="cpu"))
    for b, v in zip(boxes, velocities):
        w.add_body(box_particles([b["half"]] * 3, SPACING), pose(b["pos"], b.get("euler_deg", (0, 0, 0))),
                   mass=b["mass"], radius=SPACING / 2, velocity=v[:3], angular_velocity=v[3:])
    w.finalize()
    out = []
    for t in times:
        while w.time < t - 1e-9:
            w.step(1 / 60)
        out.append(w.poses())
    return np.array(out), w


def lies_flat(T: np.ndarray) -> bool:
    """A cube rests on a face: one of its axes is vertical."""
    return float(np.abs(T[:3, :3].T @ [0.0, 0.0, 1.0]).max()) > 0.999


def test_tilted_drop_falls_lands_and_settles_like_mujoco() -> None:
    boxes = [dict(half=HALF, mass=0.5, pos=(0, 0, 0.4), euler_deg=(30, 0, 0))]
    vel = [(0.5, 0, 0, 0, 0, 0)]
    times = [0.1, 0.2, 1.5]
    ours, _ = simulate(boxes, vel, times)
    ref = run_boxes(boxes, times, vel)
    for k in range(2):  # in the air: ballistic, both agree to the millimetre
        assert np.linalg.norm(ours[k, 0, :3, 3] - ref[k, 0, :3, 3]) < 1.5e-3, times[k]
    assert lies_flat(ours[-1, 0]) and lies_flat(ref[-1, 0])
    assert abs(ours[-1, 0, 2, 3] - HALF) < 2e-3  # resting on a face
    assert np.linalg.norm(ours[-1, 0, :2, 3] - ref[-1, 0, :2, 3]) < 0.02  # landed where MuJoCo's did


def test_sliding_box_stops_where_coulomb_and_mujoco_say() -> None:
    boxes = [dict(half=HALF, mass=0.5, pos=(0, 0, HALF))]
    vel = [(1.0, 0, 0, 0, 0, 0)]
    ours, _ = simulate(boxes, vel, [1.0])
    ref = run_boxes(boxes, [1.0], vel)
    coulomb = 1.0**2 / (2 * 0.5 * 9.81)  # v^2 / (2 mu g)
    assert abs(ours[-1, 0, 0, 3] - coulomb) < 5e-3
    assert abs(ours[-1, 0, 0, 3] - ref[-1, 0, 0, 3]) < 5e-3
    assert abs(ours[-1, 0, 2, 3] - HALF) < 1e-3


def test_stacked_boxes_rest_on_each_other() -> None:
    boxes = [dict(half=HALF, mass=0.5, pos=(0, 0, HALF)), dict(half=HALF, mass=0.5, pos=(0.01, 0, 0.16), euler_deg=(0, 0, 20))]
    vel = [(0.0,) * 6] * 2
    ours, world = simulate(boxes, vel, [1.5])
    ref = run_boxes(boxes, [1.5], vel)
    assert world.contact_overflows == 0
    assert abs(ours[-1, 1, 2, 3] - ref[-1, 1, 2, 3]) < 3e-3  # top box at ~15 cm
    assert np.linalg.norm(ours[-1, 1, :2, 3] - ref[-1, 1, :2, 3]) < 5e-3
    assert lies_flat(ours[-1, 1])


def test_particle_forces_move_bodies_as_one_wrench() -> None:
    cfg = WorldConfig(device="cpu", gravity=0.0, ground=False)
    w = World(cfg)
    pts = box_particles([HALF] * 3, SPACING)
    w.add_body(pts, pose((0, 0, 1)), mass=0.5, radius=SPACING / 2)
    w.finalize()
    P = w.num_particles
    # a uniform push: a = F / m, no turning
    f = np.zeros((P, 3))
    f[:, 0] = 1.0 / P  # 1 N in all
    for _ in range(30):
        w.step(1 / 60, f)
    x = w.centres_of_mass()[0]
    # semi-implicit Euler over n = 300 substeps of h: x = a h^2 n (n + 1) / 2 (-> a t^2 / 2 = 0.25 m)
    n, h = 30 * cfg.substeps, 1 / 60 / cfg.substeps
    assert x[0] == pytest.approx((1.0 / 0.5) * h**2 * n * (n + 1) / 2, rel=1e-4)
    assert np.abs(w.velocities()[0, 3:]).max() < 1e-4
    # a couple: equal and opposite forces turn the body without moving its centre
    w2 = World(cfg)
    w2.add_body(pts, pose((0, 0, 1)), mass=0.5, radius=SPACING / 2)
    w2.finalize()
    i, j = int(np.argmax(pts[:, 0])), int(np.argmin(pts[:, 0]))
    f = np.zeros((P, 3))
    f[i, 1], f[j, 1] = 0.1, -0.1
    wrench = w2.wrenches(f)[0]
    arm = pts[i, 0] - pts[j, 0]
    assert np.allclose(wrench[:3], 0.0) and wrench[5] == pytest.approx(0.1 * arm)
    for _ in range(6):
        w2.step(1 / 60, f)
    assert np.linalg.norm(w2.centres_of_mass()[0] - [0, 0, 1]) < 1e-5
    omega = w2.velocities()[0, 3:]
    assert omega[2] > 0 and np.abs(omega[:2]).max() < 1e-3 * omega[2]


def test_bad_input_is_a_clear_error() -> None:
    w = World(WorldConfig(device="cpu"))
    pts = box_particles([HALF] * 3, SPACING)
    with pytest.raises(ConfigError, match="step before finalize"):
        w.step(0.01)
    with pytest.raises(ConfigError, match="add at least one body"):
        w.finalize()
    with pytest.raises(ConfigError, match="rigid"):
        w.add_body(pts, np.diag([2.0, 1, 1, 1]), mass=1.0, radius=0.01)
    with pytest.raises(ConfigError, match="finite"):
        w.add_body(pts * np.nan, mass=1.0, radius=0.01)
    with pytest.raises(ConfigError, match="mass and radius"):
        w.add_body(pts, mass=0.0, radius=0.01)
    w.add_body(pts, pose((0, 0, HALF)), mass=1.0, radius=SPACING / 2)
    w.finalize()
    with pytest.raises(ConfigError, match="after finalize"):
        w.add_body(pts, mass=1.0, radius=0.01)
    with pytest.raises(ConfigError, match="dt"):
        w.step(float("nan"))
    with pytest.raises(ConfigError, match=r"particle_forces must be"):
        w.step(0.01, np.zeros((3, 3)))
    bad = np.zeros((w.num_particles, 3))
    bad[0, 0] = np.inf
    with pytest.raises(ConfigError, match="NaN or inf"):
        w.step(0.01, bad)


def test_voxel_particles_keep_the_extent_and_fill() -> None:
    from ros_gs.physics import voxel_particles
    from ros_gs.physics.primitives import primitive_surface

    surface = primitive_surface("box", (0.05, 0.04, 0.03), 0.004)  # a 10 x 8 x 6 cm box's faces
    p = voxel_particles(surface, SPACING)
    assert np.allclose(p.max(axis=0) + SPACING / 2, [0.05, 0.04, 0.03], atol=2.5e-3)
    assert np.allclose(p.min(axis=0) - SPACING / 2, [-0.05, -0.04, -0.03], atol=2.5e-3)
    assert len(p) == 5 * 4 * 3  # filled, not a shell
    assert len(voxel_particles(surface, SPACING, fill=False)) < len(p)
    top = surface[surface[:, 2] > 0.029]  # the top face alone: filled down to the floor, solid
    assert len(voxel_particles(top, SPACING, floor=-0.03)) == 5 * 4 * 3
    flat = voxel_particles(np.array([[0.0, 0.0, 0.1], [0.1, 0.0, 0.1]]), SPACING)  # no extent in y and z
    assert np.allclose(flat[:, 1:], [0.0, 0.1])
    with pytest.raises(ConfigError):
        voxel_particles(np.full((3, 3), np.nan), SPACING)
