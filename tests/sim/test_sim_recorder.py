"""MujocoRecorder: determinism, stamp order, the scenes' dynamics, argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from sim_testutils import record

from ros_gs.errors import ConfigError
from ros_gs.sim import geometry as G
from ros_gs.sim.recorder import CameraFrame, GroundTruth, ImuSample, LidarScan, MujocoRecorder
from ros_gs.sim.scenes import build_scene

_PRIO = {GroundTruth: 0, ImuSample: 1, CameraFrame: 2, LidarScan: 3}


def _arrays(event):
    if isinstance(event, CameraFrame):
        return [event.rgb, event.depth, event.segmentation, event.T_world_cam]
    if isinstance(event, LidarScan):
        return [event.points, event.t, event.ring, event.T_world_lidar]
    if isinstance(event, ImuSample):
        return [event.angular_velocity, event.linear_acceleration]
    return [event.objects[k] for k in sorted(event.objects)] + ([event.rig] if event.rig is not None else [])


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        type(x) is type(y) and x.stamp_ns == y.stamp_ns and all(np.array_equal(p, q) for p, q in zip(_arrays(x), _arrays(y)))
        for x, y in zip(a, b)
    )


def test_drop_is_deterministic_per_seed():
    a = record("drop", 0.35, seed=4, width=64, height=48, num_cameras=1, depth_noise_m=0.002)
    b = record("drop", 0.35, seed=4, width=64, height=48, num_cameras=1, depth_noise_m=0.002)
    c = record("drop", 0.35, seed=5, width=64, height=48, num_cameras=1, depth_noise_m=0.002)
    assert len(a.frames) == 4 and len(a.gt) == 4
    assert _same(a.events, b.events)
    assert not _same(a.events, c.events)
    pa = np.array([T[:3, 3] for T in a.gt[-1].objects.values()])
    pc = np.array([T[:3, 3] for T in c.gt[-1].objects.values()])
    assert pa.shape != pc.shape or np.abs(pa - pc).max() > 0.01


def test_walkthrough_is_deterministic_and_a_recorder_can_rerun():
    spec = build_scene("walkthrough", seed=2, num_cameras=1, width=48, height=32)
    rec = MujocoRecorder(spec, seed=2, imu_noise=True, lidar_noise_m=0.01, depth_noise_m=0.001)
    try:
        a, b = list(rec.run(0.25)), list(rec.run(0.25))
    finally:
        rec.close()
    assert _same(a, b)
    assert {type(e) for e in a} == {CameraFrame, GroundTruth, ImuSample, LidarScan}


def test_stamp_order_and_ties(walk):
    keys = [(e.stamp_ns, _PRIO[type(e)]) for e in walk.events]
    assert keys == sorted(keys)
    assert walk.events[0].stamp_ns == walk.start_ns and isinstance(walk.events[0], GroundTruth)
    # at t = 0 all four kinds share the stamp, in the order GT, IMU, camera, LiDAR
    first = [type(e) for e in walk.events if e.stamp_ns == walk.start_ns]
    assert first == [GroundTruth, ImuSample, CameraFrame, LidarScan]
    end = walk.start_ns + 10**9
    assert all(walk.start_ns <= e.stamp_ns < end for e in walk.events)
    assert len(walk.gt) == len(walk.imu) == 1000


def test_rates_and_stamps():
    rec = record("push", 0.5, num_cameras=2, width=32, height=24, camera_rate_hz=30.0, gt_rate_hz=100.0, start_ns=5 * 10**9)
    frames = rec.frames
    # 30 Hz on a 1 ms clock: nominal k/30 s, stamped at the first step at or after it (the data's true time)
    expected = [5 * 10**9 + int(np.ceil(k * 1e9 / 30 / 1e6 - 1e-9)) * 10**6 for k in range(15)]
    assert [f.stamp_ns for f in frames[::2]] == expected
    assert [f.camera for f in frames[:2]] == ["front", "left"]
    assert [g.stamp_ns for g in rec.gt] == [5 * 10**9 + k * 10**7 for k in range(50)]


def test_push_shoves_the_box_into_the_cylinder():
    """The paddle's stroke ends 18 cm on; the smooth box slides on to the cylinder (30 cm in all,
    turning a little), which stops it and is itself nudged."""
    rec = record("push", 2.0, num_cameras=0, gt_rate_hz=20.0)
    first, last = rec.gt[0], rec.gt[-1]
    box0, box1 = first.objects["red_box"], last.objects["red_box"]
    moved = np.linalg.norm(box1[:3, 3] - box0[:3, 3])
    turned = np.degrees(np.linalg.norm(G.so3_log(box0[:3, :3].T @ box1[:3, :3])))
    assert 0.25 < moved < 0.35 and 1.0 < turned < 15.0, (moved, turned)
    cyl0, cyl1 = first.objects["blue_cylinder"], last.objects["blue_cylinder"]
    assert 0.002 < np.linalg.norm(cyl1[:3, 3] - cyl0[:3, 3]) < 0.02
    # the box ends against the cylinder: centres 5 cm (half the box) + 4 cm (radius) apart
    assert abs(np.linalg.norm(cyl1[:2, 3] - box1[:2, 3]) - 0.09) < 0.01
    # both stay upright on the table (slide, not tip)
    top = rec.spec.table_top_z
    for o in rec.spec.objects:
        assert abs(G.lowest_z(o.shape, o.size, last.objects[o.name]) - top) < 2e-3
    # before the paddle starts (0.2 s) nothing moves
    assert np.allclose(rec.gt[2].objects["red_box"], box0, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_drop_objects_fall_and_come_to_rest_on_the_table(seed):
    rec = record("drop", 2.5, seed=seed, num_cameras=0, gt_rate_hz=10.0)
    top = rec.spec.table_top_z
    first, last = rec.gt[0], rec.gt[-1]
    for o in rec.spec.objects:
        start = G.lowest_z(o.shape, o.size, first.objects[o.name]) - top
        assert 0.1 < start < 0.5  # the centre starts 0.2-0.5 m above the top
        assert abs(G.lowest_z(o.shape, o.size, last.objects[o.name]) - top) < 2e-3, o.name  # resting on it
        assert np.linalg.norm(last.velocities[o.name][:3]) < 0.01 and np.linalg.norm(last.velocities[o.name][3:]) < 0.1
        x, y = last.objects[o.name][:2, 3]
        assert abs(x) < 0.5 and abs(y) < 0.35


def test_tabletop_objects_are_static():
    rec = record("tabletop", 1.0, num_cameras=0, gt_rate_hz=5.0)
    for o in rec.spec.objects:
        a, b = rec.gt[0].objects[o.name], rec.gt[-1].objects[o.name]
        assert np.linalg.norm(a[:3, 3] - b[:3, 3]) < 1e-4, o.name
        assert abs(G.lowest_z(o.shape, o.size, a) - rec.spec.table_top_z) < 1e-4


@pytest.mark.parametrize(
    "kwargs",
    [dict(camera_rate_hz=0), dict(imu_rate_hz=-1.0), dict(gt_rate_hz=5000.0), dict(camera_rate_hz="fast"),
     dict(depth_noise_m=-0.1), dict(lidar_noise_m=float("nan")), dict(start_ns=-5), dict(seed=-1)],
)
def test_bad_recorder_arguments(kwargs):
    with pytest.raises(ConfigError):
        MujocoRecorder(build_scene("walkthrough", num_cameras=0), **kwargs)


def test_bad_duration_and_bad_xml():
    rec = MujocoRecorder(build_scene("drop", num_cameras=0))
    with pytest.raises(ConfigError):
        next(rec.run(0.0))
    rec.close()
    spec = build_scene("drop", num_cameras=0)
    spec.xml = spec.xml.replace("<worldbody>", "<worldbody><nonsense/>")
    with pytest.raises(ConfigError):
        MujocoRecorder(spec)
