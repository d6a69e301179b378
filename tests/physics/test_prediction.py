"""Prediction by rollout (ros_gs.physics.prediction): the world ahead without visual forces,
judged by analytic mechanics (free fall, Coulomb sliding, impulse = force x time); the world is back where it was afterwards; bad requests are clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from scenes import pose
from ros_gs.errors import ConfigError
from ros_gs.physics import Push, World, WorldConfig, box_particles, rollout

HALF, SPACING, MASS = 0.05, 0.02, 0.5


def world(z: float = HALF, config: WorldConfig | None = None, boxes=((0.0, 0.0),)) -> World:
    w = World(config or WorldConfig(device="cpu"))
    for x, y in boxes:
        w.add_body(box_particles([HALF] * 3, SPACING), pose((x, y, z)), mass=MASS, radius=SPACING / 2)
    w.finalize()
    return w


def test_a_falling_box_is_predicted_like_free_fall_and_mujoco_and_the_world_is_restored() -> None:
    w = world(z=1.0)
    w.step(0.05)
    before = w.save_state()
    r = rollout(w, 0.3, sample_s=0.1)
    assert np.allclose(r.times, [0.1, 0.2, 0.3]) and r.poses.shape == (3, 1, 4, 4) and r.velocities.shape == (3, 1, 6)
    t = 0.05 + r.times
    # still in the air at 0.35 s: free fall as semi-implicit Euler integrates it in substeps h
    # (g t (t + h) / 2: 8.6 mm more than g t^2 / 2 at 0.35 s with h = 5 ms)
    h = 0.05 / w.config.substeps
    assert np.allclose(r.poses[:, 0, 2, 3], 1.0 - 0.5 * 9.81 * t * (t + h), atol=2e-4)
    assert np.allclose(r.velocities[:, 0, 2], -9.81 * t, atol=1e-3)
    assert np.abs(r.poses[:, 0, :2, 3]).max() < 1e-6
    after = w.save_state()  # back where it was: tracking goes on from the same state
    assert np.array_equal(after.body_q, before.body_q) and np.array_equal(after.body_qd, before.body_qd)
    assert after.time == before.time


def test_what_if_a_push_slides_the_box_as_far_as_coulomb_says() -> None:
    w = world()
    r = rollout(w, 1.0, push=Push(0, delta_linear=np.array([0.6, 0.0, 0.0])))
    coulomb = 0.6**2 / (2 * 0.5 * 9.81)  # v^2 / (2 mu g), friction 0.5
    assert abs(r.poses[-1, 0, 0, 3] - coulomb) < 5e-3
    assert abs(r.poses[-1, 0, 2, 3] - HALF) < 1e-3 and np.linalg.norm(r.velocities[-1, 0]) < 1e-2  # at rest again
    assert np.allclose(w.poses()[0, :3, 3], (0, 0, HALF), atol=1e-3)  # the real world did not move


def test_a_pushed_box_hits_its_neighbour() -> None:
    """What if the box is pushed towards another: the other one moves (contacts in the rollout)."""
    w = world(boxes=((0.0, 0.0), (0.15, 0.0)))
    quiet = rollout(w, 0.8)
    pushed = rollout(w, 0.8, push=Push(0, delta_linear=np.array([1.5, 0.0, 0.0])))
    assert np.abs(quiet.poses[-1, :, :3, 3] - w.poses()[:, :3, 3]).max() < 2e-3
    assert pushed.poses[-1, 1, 0, 3] - 0.15 > 0.02  # knocked on


def test_a_force_for_a_while_gives_the_impulse() -> None:
    w = world(z=1.0, config=WorldConfig(device="cpu", gravity=0.0, ground=False))
    r = rollout(w, 0.5, sample_s=0.25, push=Push(0, force=np.array([0.0, 2.0, 0.0]), duration_s=0.2))
    v = 2.0 * 0.2 / MASS  # F t / m
    assert np.allclose(r.velocities[:, 0, :3], [[0.0, v, 0.0]] * 2, atol=1e-3)
    y_at = lambda t: 0.5 * (2.0 / MASS) * 0.2**2 + v * (t - 0.2)  # noqa: E731
    # semi-implicit Euler in 5 ms substeps runs a x t x h / 2 = 2 mm ahead of the exact answer
    assert np.allclose(r.poses[:, 0, 1, 3], [y_at(0.25), y_at(0.5)], atol=2.5e-3)
    assert np.abs(r.velocities[:, 0, 3:]).max() < 1e-6  # through the centre of mass: no spin


@pytest.mark.parametrize("kwargs, match", [
    (dict(horizon_s=0.0), "horizon"), (dict(horizon_s=float("nan")), "horizon"), (dict(horizon_s=1.0, sample_s=-1.0), "sample_s"),
    (dict(horizon_s=1.0, sample_s=1e-6), "samples"), (dict(horizon_s=1.0, max_step_s=0.0), "max_step_s"),
    (dict(horizon_s=1.0, push=Push(3)), "no body 3"),
    (dict(horizon_s=1.0, push=Push(0, delta_linear=np.array([np.nan, 0, 0]))), "finite"),
    (dict(horizon_s=1.0, push=Push(0, duration_s=-1.0)), "duration"),
])
def test_bad_requests_are_clear_errors(kwargs, match) -> None:
    w = world()
    before = w.save_state()
    with pytest.raises(ConfigError, match=match):
        rollout(w, **kwargs)
    assert np.array_equal(w.save_state().body_q, before.body_q)
    with pytest.raises(ConfigError, match="does not fit"):
        w.restore_state(world(boxes=((0, 0), (0.3, 0))).save_state())


def test_each_body_slides_as_far_as_its_own_friction_says_and_set_friction_changes_it() -> None:
    """Per-body friction (the tracker sets each object's measured one): two boxes pushed alike
    slide v^2 / (2 mu g) with their own mu; set_friction changes one and only that one."""
    w = World(WorldConfig(device="cpu"))
    for y, mu in ((0.0, 0.15), (0.3, 0.6)):
        w.add_body(box_particles([HALF] * 3, SPACING), pose((0.0, y, HALF)), mass=MASS, radius=SPACING / 2, friction=mu)
    w.finalize()
    v = 0.6
    push = [Push(k, delta_linear=np.array([v, 0.0, 0.0])) for k in (0, 1)]
    slid = [rollout(w, 1.0, push=p).poses[-1, k, 0, 3] for k, p in enumerate(push)]
    assert abs(slid[0] - v**2 / (2 * 0.15 * 9.81)) < 8e-3 and abs(slid[1] - v**2 / (2 * 0.6 * 9.81)) < 5e-3, slid
    w.set_friction(0, 0.6)
    assert w.bodies[0].friction == 0.6 and w.bodies[1].friction == 0.6
    assert abs(rollout(w, 1.0, push=push[0]).poses[-1, 0, 0, 3] - slid[1]) < 3e-3
    with pytest.raises(ConfigError):
        w.set_friction(0, -0.1)
    with pytest.raises(ConfigError):
        w.set_friction(5, 0.3)
