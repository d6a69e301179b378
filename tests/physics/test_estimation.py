"""Friction from tracked motion (ros_gs.physics.estimation), against analytic Coulomb sliding and
against MuJoCo's: a slide reads its friction, anything that is not a free slide reads nothing."""

from __future__ import annotations

import numpy as np

from ros_gs.physics.estimation import FrictionEstimator, sliding_friction

G = 9.81


def slide(mu: float, v0=(0.8, 0.3), t=np.arange(6) / 30.0, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Centroids of a body sliding on z = 0.03 from v0 (m/s), slowing at mu g along its motion."""
    v0 = np.asarray(v0, float)
    d = v0 / np.linalg.norm(v0)
    s = np.linalg.norm(v0) * t - 0.5 * mu * G * t * t
    p = np.stack([d[0] * s, d[1] * s, np.full_like(t, 0.03)], axis=1)
    return t, p + np.random.default_rng(seed).normal(scale=noise, size=p.shape)


def test_a_coulomb_slide_reads_its_friction() -> None:
    for mu in (0.1, 0.3, 0.8):
        assert abs(sliding_friction(*slide(mu)) - mu) < 1e-9
    # depth noise of 1 mm on a visible-surface centroid: a reading within 0.2, the median of a few closer
    est = FrictionEstimator(1)
    for seed in range(7):
        r = sliding_friction(*slide(0.3, noise=0.001, seed=seed))
        assert r is None or abs(r - 0.3) < 0.2
        est.add(0, r)
    assert abs(est.estimate(0) - 0.3) < 0.07


def test_what_is_not_a_free_slide_reads_nothing() -> None:
    t = np.arange(6) / 30.0
    still = np.tile([0.1, 0.2, 0.03], (6, 1))
    assert sliding_friction(t, still) is None  # at rest
    pushed = slide(-0.5)  # speeding up: a hand pushes it
    assert sliding_friction(*pushed) is None
    falling = np.stack([0.5 * t, 0 * t, 0.5 - 0.5 * G * t * t], axis=1)
    assert sliding_friction(t, falling) is None  # in the air
    assert sliding_friction(t[:3], slide(0.3)[1][:3]) is None  # too short to fit an acceleration
    bad = slide(0.3)[1]
    bad[2, 0] = np.nan
    assert sliding_friction(t, bad) is None


def test_the_estimate_is_the_median_of_readings_in_bounds() -> None:
    est = FrictionEstimator(2, min_readings=2)
    est.add(0, 0.3)
    assert est.estimate(0) is None  # one reading is not enough
    for r in (5.0, 0.001, None):  # a collision, standing still, no slide: not friction
        est.add(0, r)
    est.add(0, 0.5)
    assert est.estimate(0) == 0.4 and est.estimate(1) is None


def test_mujoco_box_slide_reads_mujoco_friction() -> None:
    """An independent judge: a box MuJoCo slides on a table with friction 0.3 (box priority),
    diagonally; with the elliptic friction cone of our scenes (MuJoCo's default pyramidal cone
    is weaker off its axes: 0.22-0.26 here)."""
    import mujoco

    xml = """<mujoco><option timestep="0.002" cone="elliptic"/><worldbody>
      <geom type="plane" size="2 2 0.1" friction="0.9 0.005 0.0001"/>
      <body pos="0 0 0.03"><freejoint/><geom type="box" size="0.05 0.04 0.03" mass="0.3" friction="0.3 0.005 0.002" priority="1"/></body>
    </worldbody></mujoco>"""
    m = mujoco.MjModel.from_xml_string(xml)
    d = mujoco.MjData(m)
    d.qvel[:3] = (1.0, 0.4, 0.0)
    t, p = [], []
    for k in range(int(0.3 / 0.002)):
        mujoco.mj_step(m, d)
        if k % 16 == 15:  # ~30 Hz
            t.append(d.time)
            p.append(d.xpos[1].copy())
    t, p = np.array(t), np.array(p)
    readings = [sliding_friction(t[i:i + 5], p[i:i + 5]) for i in range(len(t) - 5)]
    readings = [r for r in readings if r is not None]
    assert len(readings) >= 3 and abs(np.median(readings) - 0.3) < 0.03, readings
