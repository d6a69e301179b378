"""Gaussians ride on their bodies (the prediction renders like MuJoCo's outcome), and visual
forces pull a simulated body to the pose its images were taken at."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mujoco_reference import run_boxes
from ros_gs.errors import ConfigError
from ros_gs.physics import GaussianBinding, Observation, VisualForceConfig, World, WorldConfig, box_particles, visual_forces
from ros_gs.render import render_tensors
from scenes import cameras, cube_surface_gaussians
from scenes import pose
from test_world import HALF, SPACING

IDENTITY_Q = np.array([1.0, 0.0, 0.0, 0.0])


def cube_binding():
    pts, app = cube_surface_gaussians(HALF)
    particles = box_particles([HALF] * 3, SPACING)
    bind = GaussianBinding(pts, np.tile(IDENTITY_Q, (len(pts), 1)), np.zeros(len(pts), int), np.eye(4)[None], [particles])
    return bind, app, particles


def test_binding_round_trip_and_nearest_particles() -> None:
    pts, _ = cube_surface_gaussians(HALF)
    T = pose((0.3, -0.2, 0.5), (10, 20, 30))
    world_pts = pts @ T[:3, :3].T + T[:3, 3]
    q = np.roll(Rotation.from_euler("z", 40, degrees=True).as_quat(), 1)
    particles = box_particles([HALF] * 3, SPACING)
    bind = GaussianBinding(world_pts, np.tile(q, (len(pts), 1)), np.zeros(len(pts), int), T[None], [particles])
    means, quats = bind.posed(T[None], dtype=torch.float64)
    assert np.allclose(means.numpy(), world_pts, atol=1e-12)
    assert np.allclose(np.abs((quats.numpy() * q).sum(axis=1)), 1.0, atol=1e-12)
    # moved with its body: each Gaussian's offset from the body turns with the body
    T2 = pose((0, 0, 0), (0, 0, 90))
    m2, _ = bind.posed(T2[None], dtype=torch.float64)
    assert np.allclose(m2.numpy(), pts @ T2[:3, :3].T, atol=1e-12)
    d = np.linalg.norm(pts - particles[bind.particle], axis=1)
    assert d.max() <= np.sqrt(3) * SPACING / 2 + 1e-9
    with pytest.raises(ConfigError, match="index"):
        GaussianBinding(world_pts, np.tile(q, (len(pts), 1)), np.ones(len(pts), int), T[None], [particles])


def test_predicted_render_matches_mujocos_outcome() -> None:
    """Drop the cube in our world and in MuJoCo; the Gaussians posed by our final state render
    like the same Gaussians at MuJoCo's final pose."""
    bind, app, particles = cube_binding()
    start = pose((0, 0, 0.4), (30, 0, 0))
    w = World(WorldConfig(device="cpu"))
    w.add_body(particles, start, mass=0.5, radius=SPACING / 2, velocity=(0.5, 0, 0))
    w.finalize()
    while w.time < 1.5 - 1e-9:
        w.step(1 / 60)
    ref = run_boxes([dict(half=HALF, mass=0.5, pos=(0, 0, 0.4), euler_deg=(30, 0, 0))], [1.5], [(0.5, 0, 0, 0, 0, 0)])
    cam = cameras(target=(0.12, 0.03, 0.05), eyes=((0.12, -0.15, 0.8),))[0]  # from above
    masks = []
    for T in (w.poses(), ref[0]):
        m, q = bind.posed(T)
        masks.append(render_tensors(m, q, app.scales, app.opacities, app.sh, cam, backend="cpu").alpha > 0.5)
    iou = float((masks[0] & masks[1]).sum()) / float((masks[0] | masks[1]).sum())
    start_mask = render_tensors(*bind.posed(start[None]), app.scales, app.opacities, app.sh, cam, backend="cpu").alpha > 0.5
    iou_start = float((start_mask & masks[1]).sum()) / float((start_mask | masks[1]).sum())
    print(f"IoU with MuJoCo outcome {iou:.3f}, start pose {iou_start:.3f}")
    assert iou > 0.75 > iou_start, (iou, iou_start)


def _observe(bind, app, T_true):
    m, q = bind.posed(T_true[None])
    return [Observation(c, render_tensors(m, q, app.scales, app.opacities, app.sh, c, backend="cpu").rgb.detach())
            for c in cameras()]


@pytest.mark.parametrize("yaw", [15.0, -25.0])
def test_visual_forces_pull_the_body_to_the_observed_pose(yaw: float) -> None:
    bind, app, particles = cube_binding()
    T_true = pose((0.03, -0.02, HALF), (0, 0, yaw))
    obs = _observe(bind, app, T_true)
    cfg = VisualForceConfig(gain=2e-4, damping=10.0, backend="cpu")  # six coloured faces pull harder than silhouettes

    def run(gain: float) -> tuple[float, float, list[float]]:
        w = World(WorldConfig(device="cpu"))
        w.add_body(particles, pose((0, 0, HALF)), mass=0.2, radius=SPACING / 2)
        w.finalize()
        losses = []
        for _ in range(30):  # 1 s
            f, loss = visual_forces(w, bind, app, obs, cfg.model_copy(update={"gain": gain}), dt=1 / 30)
            losses.append(loss)
            w.step(1 / 30, f)
        T = w.poses()[0]
        ang = np.degrees(Rotation.from_matrix(T[:3, :3].T @ T_true[:3, :3]).magnitude())
        return float(np.linalg.norm(T[:3, 3] - T_true[:3, 3])), float(ang), losses

    err, ang, losses = run(cfg.gain)
    print(f"yaw {yaw}: error {err * 1e3:.2f} mm, {ang:.2f} deg, loss {losses[0]:.1f} -> {losses[-1]:.3f}")
    assert err < 3e-3 and ang < 2.0, (err, ang)
    assert losses[-1] < 0.01 * losses[0]
    err0, ang0, _ = run(0.0)  # without visual forces the body stays where it was
    assert err0 > 0.035 and abs(ang0 - abs(yaw)) < 0.5


def test_no_error_no_force_and_bad_observations() -> None:
    bind, app, particles = cube_binding()
    T = pose((0, 0, HALF))
    w = World(WorldConfig(device="cpu"))
    w.add_body(particles, T, mass=0.2, radius=SPACING / 2)
    w.finalize()
    obs = _observe(bind, app, T)
    f, loss = visual_forces(w, bind, app, obs, VisualForceConfig(gain=2e-4, damping=10.0, backend="cpu"))
    assert loss < 1e-8 and np.abs(f).max() < 1e-6
    w_far = World(WorldConfig(device="cpu"))  # out of every view: the images say nothing, no force
    w_far.add_body(particles, pose((5, 5, HALF)), mass=0.2, radius=SPACING / 2)
    w_far.finalize()
    f_far, loss_far = visual_forces(w_far, bind, app, [Observation(obs[0].camera, torch.zeros_like(obs[0].rgb))], dt=1 / 30)
    assert np.abs(f_far).max() == 0.0 and loss_far == 0.0
    with pytest.raises(ConfigError, match="no observations"):
        visual_forces(w, bind, app, [])
    with pytest.raises(ConfigError, match="does not match its camera"):
        visual_forces(w, bind, app, [Observation(obs[0].camera, obs[0].rgb[:10])])
    bad = obs[0].rgb.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ConfigError, match="NaN"):
        visual_forces(w, bind, app, [Observation(obs[0].camera, bad)])


def test_drag_is_stable_for_long_steps() -> None:
    """Held over dt, the drag removes the share 1 - exp(-damping dt) of the velocity: a free cube
    slows down monotonically at 0.15 s steps, where the plain -damping m v (damping dt = 3)
    would reverse and grow the velocity."""
    bind, app, particles = cube_binding()
    cfg = VisualForceConfig(gain=0.0, damping=20.0, backend="cpu")
    w = World(WorldConfig(device="cpu", gravity=0.0, ground=False))
    w.add_body(particles, pose((0, 0, 1)), mass=0.2, radius=SPACING / 2, velocity=(0.1, 0, 0))
    w.finalize()
    obs = _observe(bind, app, pose((0, 0, 1)))
    speeds = []
    for _ in range(5):
        f, _ = visual_forces(w, bind, app, obs, cfg, dt=0.15)
        w.step(0.15, f)
        speeds.append(w.velocities()[0, 0])
    assert all(0 <= b <= a for a, b in zip([0.1] + speeds, speeds)) and speeds[-1] < 1e-3, speeds
    assert speeds[0] == pytest.approx(0.1 * np.exp(-20 * 0.15), abs=2e-3)
    with pytest.raises(ConfigError, match="dt"):
        visual_forces(w, bind, app, obs, cfg, dt=0.0)


def test_drag_recomputed_over_pieces_of_a_long_gap() -> None:
    """A gap simulated in pieces, with the drag recomputed from the velocity before each piece
    (as physics_tracker does), removes exp(-damping gap) of the velocity in all: no reversal."""
    from ros_gs.physics import drag_forces

    _, _, particles = cube_binding()
    w = World(WorldConfig(device="cpu", gravity=0.0, ground=False))
    w.add_body(particles, pose((0, 0, 1)), mass=0.2, radius=SPACING / 2, velocity=(1.0, 0, 0))
    w.finalize()
    for _ in range(4):  # a 0.2 s gap in pieces of 0.05 s
        w.step(0.05, drag_forces(w, 30.0, 0.05))
    assert w.velocities()[0, 0] == pytest.approx(np.exp(-30 * 0.2), rel=0.05)
