"""The orbit scene (issue 17): a head camera carried around the table, a paddle pushing the box.

Judged against MuJoCo's own state and analytic facts: the camera keeps the table in view from
all sides, its path is the smooth orbit it should be, and only the pushed box moves, by the
stroke's length, in the stroke's time."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sim_testutils import record

from ros_gs.sim.scenes import ORBIT_PUSH_M, ORBIT_PUSH_S, TABLE_TOP_Z


@pytest.fixture(scope="module")
def orbit():
    return record("orbit", 6.0, seed=3, num_cameras=1, camera_rate_hz=2.0, gt_rate_hz=20.0)


def test_the_camera_circles_the_table_at_head_height_looking_at_it(orbit):
    centres = np.array([g.rig[:3, 3] for g in orbit.gt])
    radius = np.linalg.norm(centres[:, :2], axis=1)
    assert np.all((radius > 0.7) & (radius < 1.0)) and np.all((centres[:, 2] > 1.2) & (centres[:, 2] < 1.45))
    angle = np.unwrap(np.arctan2(centres[:, 1], centres[:, 0]))
    assert abs(angle[-1] - angle[0]) == pytest.approx(0.22 * 6.0, abs=0.1)  # omega x duration
    assert np.abs(np.diff(centres, axis=0)).max() < 0.03  # smooth: < 3 cm between 50 ms samples
    for f in orbit.frames:
        # the table top's centre is near the optical axis, about 1 m ahead, and objects are in view
        p = np.linalg.inv(f.T_world_cam) @ np.array([0.0, 0.0, TABLE_TOP_Z, 1.0])
        assert 0.7 < p[2] < 1.4 and math.degrees(math.atan2(np.hypot(p[0], p[1]), p[2])) < 15
        assert len(set(np.unique(f.segmentation)) - {-1}) >= 5


def test_only_the_pushed_box_moves_by_the_stroke(orbit):
    names = [o.name for o in orbit.spec.objects]
    first, last = orbit.gt[0].objects, orbit.gt[-1].objects
    moved = {n: float(np.linalg.norm(last[n][:3, 3] - first[n][:3, 3])) for n in names}
    # the paddle starts up to 3 cm short of the box (its heading varies) and the box may slide on
    assert ORBIT_PUSH_M - 0.045 < moved.pop("red_box") < ORBIT_PUSH_M + 0.04
    assert max(moved.values()) < 0.005
    t = np.array([(g.stamp_ns - orbit.start_ns) / 1e9 for g in orbit.gt])
    y = np.array([g.objects["red_box"][1, 3] for g in orbit.gt])
    assert np.ptp(y[t < ORBIT_PUSH_S[0]]) < 0.002 and np.ptp(y[t > ORBIT_PUSH_S[1] + 0.2]) < 0.002  # still before and after
