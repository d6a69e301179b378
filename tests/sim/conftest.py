"""Shared recordings for the ros_gs.sim tests (each scene is simulated once per session)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")  # CPU rendering (libosmesa6), before mujoco is imported

import pytest  # noqa: E402

pytest.importorskip("mujoco")

from sim_testutils import Recording, record  # noqa: E402


@pytest.fixture(scope="session")
def walk() -> Recording:
    """1 s of the walkthrough: ground truth and IMU at 1 kHz, one 160x120 rig camera, LiDAR."""
    return record("walkthrough", 1.0, num_cameras=1, gt_rate_hz=1000.0, imu_rate_hz=1000.0)


@pytest.fixture(scope="session")
def tabletop() -> Recording:
    """The tabletop's first frame set from its three static cameras at 160x120."""
    return record("tabletop", 0.05)
