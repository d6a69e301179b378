"""LiDAR and IMU of the walkthrough rig against the ground-truth trajectory."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sim_testutils import distance_to_surfaces, pose_at, record, static_surfaces

from ros_gs.sim import geometry as G
from ros_gs.sim.recorder import MujocoRecorder
from ros_gs.sim.scenes import LoopTrajectory, build_scene

GRAVITY = np.array([0.0, 0.0, -9.81])


def _track(gts, key):
    return np.array([g.stamp_ns for g in gts]), np.array([getattr(g, key) for g in gts])


def _scan_world_points(walk, scan, deskew=True):
    stamps, rigs = _track(walk.gt, "rig")
    T_rig_lidar = walk.extrinsics["rig->lidar"]
    if not deskew:
        return G.transform_points(scan.T_world_lidar, scan.points)
    t_ns = scan.stamp_ns + np.round(scan.t.astype(np.float64) * 1e9)
    times, inverse = np.unique(t_ns, return_inverse=True)
    poses = pose_at(stamps, rigs, times) @ T_rig_lidar
    out = np.empty((len(scan.points), 3))
    for k, T in enumerate(poses):
        sel = inverse == k
        out[sel] = G.transform_points(T, scan.points[sel].astype(np.float64))
    return out


def test_lidar_scan_layout(walk):
    lid = walk.spec.lidar
    scans = walk.scans
    assert len(scans) == 10
    assert [s.stamp_ns - walk.start_ns for s in scans] == [int(k * 1e8) for k in range(10)]
    for s in scans:
        n = len(s.points)
        assert s.points.dtype == np.float32 and s.points.shape == (n, 3)
        assert s.t.dtype == np.float32 and s.ring.dtype == np.uint16 and len(s.t) == len(s.ring) == n
        assert n > 0.9 * lid.channels * lid.horizontal  # in a closed room nearly every ray hits
        assert s.t.min() == 0 and np.isclose(s.t.max(), (lid.horizontal - 1) / lid.horizontal / lid.rate_hz, atol=1e-6)
        assert set(np.unique(s.ring)) <= set(range(lid.channels))
        r = np.linalg.norm(s.points, axis=1)
        assert r.min() >= lid.min_range and r.max() <= lid.max_range
        # elevation of each ring is the configured one
        elev = np.degrees(np.arcsin(s.points[:, 2] / r))
        expected = np.linspace(*lid.vfov_deg, lid.channels)[s.ring]
        assert np.abs(elev - expected).max() < 1e-3
        # azimuth grows with time (counter-clockwise from +x)
        az = np.mod(np.arctan2(s.points[:, 1], s.points[:, 0]), 2 * np.pi)
        assert np.abs(az - 2 * np.pi * s.t * lid.rate_hz).max() < 1e-4


def test_lidar_points_lie_on_surfaces(walk):
    """Each point, moved to the world with the true pose at its own time, is on the room's
    analytic geometry; without deskewing (one pose per scan) it is not."""
    surfaces = static_surfaces(walk.spec)
    stamps, rigs = _track(walk.gt, "rig")
    for scan in walk.scans[:3]:
        j = np.searchsorted(stamps, scan.stamp_ns)
        assert np.allclose(rigs[j] @ walk.extrinsics["rig->lidar"], scan.T_world_lidar, atol=1e-9)
        d = distance_to_surfaces(_scan_world_points(walk, scan), surfaces)
        assert np.median(d) < 1e-5 and np.percentile(d, 99.9) < 1e-4, (np.median(d), d.max())  # issue: median < 1 cm
        skewed = distance_to_surfaces(_scan_world_points(walk, scan, deskew=False), surfaces)
        assert np.median(skewed) > 5e-3  # the rig moves ~6 cm and turns several degrees per scan


def test_lidar_noise():
    rec = record("walkthrough", 0.1, num_cameras=0, gt_rate_hz=1000.0, lidar_noise_m=0.01)
    surfaces = static_surfaces(rec.spec)
    scan = rec.scans[0]
    d = distance_to_surfaces(_scan_world_points(rec, scan), surfaces)
    # range noise along the ray: the distance to the surface is |noise| * |cos(incidence)| <= |noise|
    assert 0.002 < np.median(d) < 0.01 and d.max() < 0.06


def test_imu_matches_finite_differences_of_ground_truth(walk):
    """Accelerometer = R^T (a - g) and gyro = body rate, with a and R from the GT track (1 kHz)."""
    gts, imus = walk.gt, walk.imu
    assert [g.stamp_ns for g in gts] == [s.stamp_ns for s in imus]
    P = np.array([g.imu[:3, 3] for g in gts])
    R = np.array([g.imu[:3, :3] for g in gts])
    h = 1e-3
    acc = np.array([R[n].T @ ((P[n + 1] - 2 * P[n] + P[n - 1]) / h**2 - GRAVITY) for n in range(1, len(P) - 1)])
    gyro = np.array([G.so3_log(R[n - 1].T @ R[n + 1]) / (2 * h) for n in range(1, len(P) - 1)])
    meas_a = np.array([s.linear_acceleration for s in imus[1:-1]])
    meas_w = np.array([s.angular_velocity for s in imus[1:-1]])
    assert np.abs(acc - meas_a).max() < 1e-3  # m/s^2 (measured: ~1e-5)
    assert np.abs(gyro - meas_w).max() < 2e-3  # rad/s (measured: ~3e-4, the central difference's half step)
    # the motion is far from trivial
    assert np.linalg.norm(meas_w, axis=1).max() > 0.3 and np.linalg.norm(meas_a - meas_a.mean(0), axis=1).max() > 0.3


def _integrate(walk, rate_hz=200.0):
    """Integrate gyro (exponential map, midpoint rate) and accel (GT orientation, gravity back,
    trapezoid twice) over the recording, sampled at ``rate_hz``; return GT-vs-IMU errors."""
    step = int(round(1000.0 / rate_hz))
    gts, imus = walk.gt[::step], walk.imu[::step]
    dt = step * 1e-3
    R0 = gts[0].imu[:3, :3]
    R = R0.copy()
    for a, b in zip(imus[:-1], imus[1:]):
        R = R @ G.so3_exp(0.5 * (a.angular_velocity + b.angular_velocity) * dt)
    rot_err = np.degrees(np.linalg.norm(G.so3_log(R.T @ gts[-1].imu[:3, :3])))
    # initial velocity of the IMU site from the rig's GT twist
    v_rig = gts[0].velocities["rig"]
    v = v_rig[:3] + np.cross(v_rig[3:], gts[0].imu[:3, 3] - gts[0].rig[:3, 3])
    p = gts[0].imu[:3, 3].copy()
    acc = [g.imu[:3, :3] @ s.linear_acceleration + GRAVITY for g, s in zip(gts, imus)]
    for a0, a1 in zip(acc[:-1], acc[1:]):
        v_next = v + 0.5 * (a0 + a1) * dt
        p += 0.5 * (v + v_next) * dt
        v = v_next
    pos_err = np.linalg.norm(p - gts[-1].imu[:3, 3])
    travelled = np.linalg.norm(gts[-1].imu[:3, 3] - gts[0].imu[:3, 3])
    turned = np.degrees(np.linalg.norm(G.so3_log(R0.T @ gts[-1].imu[:3, :3])))
    return rot_err, pos_err, travelled, turned


def test_imu_integration_over_one_second(walk):
    rot_err, pos_err, travelled, turned = _integrate(walk, 200.0)
    assert travelled > 0.3 and turned > 5.0
    assert rot_err < 0.5  # deg (measured ~0.01 deg)
    assert pos_err < 0.01  # m (measured ~0.1 mm)


def test_imu_at_rest_reads_gravity_up():
    """A rig held still: gyro 0, accelerometer +9.81 along the world's up in the IMU frame."""
    spec = build_scene("walkthrough", num_cameras=0)
    still = LoopTrajectory(omega=0.0, phase=0.7, x_sines=(), y_sines=(), z_sines=(), yaw_sines=(), pitch_sines=((0.3, 0.0, 1.0),),
                           roll_sines=((0.2, 0.0, 1.2),))
    spec = dataclasses.replace(spec, rig_trajectory=still, lidar=None)
    rec = MujocoRecorder(spec, gt_rate_hz=200.0)
    try:
        events = list(rec.run(0.2))
    finally:
        rec.close()
    imus = [e for e in events if type(e).__name__ == "ImuSample"]
    gts = [e for e in events if type(e).__name__ == "GroundTruth"]
    assert len(imus) == len(gts) == 40
    for g, s in zip(gts, imus):
        assert np.allclose(s.angular_velocity, 0.0, atol=1e-6)
        up_in_imu = g.imu[:3, :3].T @ np.array([0.0, 0.0, 9.81])
        assert np.allclose(s.linear_acceleration, up_in_imu, atol=1e-4)
        assert abs(up_in_imu[2]) < 9.7  # the IMU is tilted: gravity is not just on its z


def test_imu_noise_and_bias():
    clean = record("walkthrough", 0.5, num_cameras=0, seed=3)
    spec = build_scene("walkthrough", seed=3, num_cameras=0)
    rec = MujocoRecorder(spec, seed=3, imu_noise=True)
    try:
        noisy = [e for e in rec.run(0.5) if type(e).__name__ == "ImuSample"]
        bias = rec.imu_bias
    finally:
        rec.close()
    gw = np.array([n.angular_velocity - c.angular_velocity for n, c in zip(noisy, clean.imu)])
    ga = np.array([n.linear_acceleration - c.linear_acceleration for n, c in zip(noisy, clean.imu)])
    assert len(gw) == 100
    from ros_gs.sim.recorder import ACCEL_NOISE_DENSITY, GYRO_NOISE_DENSITY

    root = np.sqrt(200.0)
    assert np.allclose(gw.std(0), GYRO_NOISE_DENSITY * root, rtol=0.35)
    assert np.allclose(ga.std(0), ACCEL_NOISE_DENSITY * root, rtol=0.35)
    assert np.allclose(gw.mean(0), bias["gyro"], atol=4 * GYRO_NOISE_DENSITY * root / 10)
    assert np.allclose(ga.mean(0), bias["accel"], atol=4 * ACCEL_NOISE_DENSITY * root / 10)
    assert np.abs(bias["accel"]).max() > 0


@pytest.mark.parametrize("key", ["rig->lidar", "rig->imu", "rig->rig_front"])
def test_rig_extrinsics_are_known_and_not_identity(walk, key):
    T = walk.extrinsics[key]
    assert np.allclose(T[:3, :3].T @ T[:3, :3], np.eye(3), atol=1e-12)
    assert np.linalg.norm(T[:3, 3]) > 0.02 and np.degrees(np.linalg.norm(G.so3_log(T[:3, :3]))) > 1.0
    for g in walk.gt[::100]:
        if key == "rig->imu":
            assert np.allclose(g.rig @ T, g.imu, atol=1e-9)
