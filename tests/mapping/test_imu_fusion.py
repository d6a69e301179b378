"""IMU fusion (ros_gs.mapping.imu_fusion) against closed-form motion and the MuJoCo walkthrough.

Closed form: a body turning at a constant rate while its position follows a parabola, in a world
whose gravity is tilted (the odometry world is the first scan's frame, not level).  The IMU then
reads exactly ``gyro = w`` and ``accel = R(t)^T (a - g)``, so the alignment must find g and the
velocities, and the predictions must follow the parabola.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ros_gs.mapping.imu_fusion import ImuFusion, ImuFusionConfig

G_WORLD = Rotation.from_rotvec([0.3, -0.2, 0.1]).apply([0.0, 0.0, -9.81])  # a tilted world
W = np.array([0.2, -0.4, 0.6])  # body rate, rad/s
A = np.array([0.5, -0.3, 0.2])  # world acceleration, m/s^2
V0, P0 = np.array([0.4, 0.1, -0.2]), np.array([1.0, 2.0, 0.5])
R0 = Rotation.from_rotvec([0.1, 0.2, -0.3])


def pose(t: float) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = (R0 * Rotation.from_rotvec(W * t)).as_matrix()
    T[:3, 3] = P0 + V0 * t + 0.5 * A * t * t
    return T


def imu(t: float) -> tuple[np.ndarray, np.ndarray]:
    return W, pose(t)[:3, :3].T @ (A - G_WORLD)


def feed(f: ImuFusion, t0: float, t1: float, rate: float = 400.0) -> None:
    for t in np.arange(t0, t1, 1.0 / rate):
        f.add_imu(int(round(t * 1e9)), *imu(t))


def ns(t: float) -> int:
    return int(round(t * 1e9))


@pytest.fixture()
def fused() -> ImuFusion:
    f = ImuFusion(ImuFusionConfig(init_scans=5))
    feed(f, 0.0, 1.2)
    for k in range(6):  # 10 Hz "scans" at the exact poses
        f.update(ns(0.1 * k), pose(0.1 * k))
    return f


def test_alignment_finds_gravity_and_velocity(fused: ImuFusion) -> None:
    assert fused.ready and fused.updates == 2
    assert np.allclose(fused.gravity, G_WORLD, atol=1e-6), fused.gravity
    v_imu = V0 + A * 0.5  # velocity at the newest state (t = 0.5 s)
    assert np.allclose(fused.velocity, v_imu, atol=1e-6), fused.velocity
    bg, ba = fused.bias
    assert np.abs(bg).max() < 1e-6 and np.abs(ba).max() < 1e-5


def test_prediction_follows_the_parabola(fused: ImuFusion) -> None:
    for t in (0.55, 0.8, 1.1):  # up to 0.6 s ahead of the last scan
        T = fused.predict(ns(t))
        assert np.linalg.norm(T[:3, 3] - pose(t)[:3, 3]) < 1e-6, t
        assert np.allclose(T[:3, :3], pose(t)[:3, :3], atol=1e-8)
    # a constant-velocity guess from the last two poses misses by centimetres at 0.6 s
    cv = pose(0.5)[:3, 3] + (pose(0.5)[:3, 3] - pose(0.4)[:3, 3]) / 0.1 * 0.6
    assert np.linalg.norm(cv - pose(1.1)[:3, 3]) > 0.05
    assert fused.predict(ns(0.4)) is None  # before the newest state: not a prediction
    assert fused.predict(ns(1.5)) is None  # past the samples (and the hold): no answer


def test_point_motion_is_the_relative_pose(fused: ImuFusion) -> None:
    stamp = 0.6
    t = np.array([0.0, 0.013, 0.05, 0.0999])  # seconds after the stamp, as a spinning LiDAR gives
    R, p = fused.point_motion(ns(stamp), t)
    for i, ti in enumerate(t):
        rel = np.linalg.inv(pose(stamp)) @ pose(stamp + ti)  # frame at the point's time -> at the stamp
        assert np.allclose(R[i], rel[:3, :3], atol=1e-5)
        assert np.allclose(p[i], rel[:3, 3], atol=2e-4), (ti, p[i], rel[:3, 3])


def test_extrinsic_and_bad_samples() -> None:
    """A lever arm between IMU and sensor is handled (the sensor's pose is predicted, not the
    IMU's); bad samples are refused and counted; a gap in the samples restarts the alignment."""
    T_si = np.eye(4)
    T_si[:3, :3] = Rotation.from_rotvec([0.0, 0.0, 0.5]).as_matrix()
    T_si[:3, 3] = [0.1, -0.05, 0.2]
    f = ImuFusion(ImuFusionConfig(init_scans=4), T_si)
    feed(f, 0.0, 0.9)  # IMU poses follow pose(t); the sensor sits at pose(t) @ inv(T_si)
    for k in range(5):
        f.update(ns(0.1 * k), pose(0.1 * k) @ np.linalg.inv(T_si))
    T = f.predict(ns(0.75))
    assert np.allclose(T, pose(0.75) @ np.linalg.inv(T_si), atol=1e-3)
    assert not f.add_imu(ns(0.5), W, W) and not f.add_imu(ns(2.0), [np.nan, 0, 0], W)
    assert f.out_of_order == 2
    feed(f, 1.5, 1.8)  # nothing between 0.9 and 1.5 s
    assert f.update(ns(1.6), pose(1.6)) is False and not f.ready  # starts aligning again


def test_gyro_bias_and_outage_on_walkthrough() -> None:
    """MuJoCo's noisy IMU (white noise + a constant bias per run) with the simulator's LiDAR
    poses: the gyroscope bias is recovered, and after a 1 s LiDAR outage the IMU-propagated
    pose is within centimetres where a constant-velocity guess is off by decimetres."""
    pytest.importorskip("mujoco")
    from ros_gs.sim.recorder import ImuSample, LidarScan, MujocoRecorder
    from ros_gs.sim.scenes import build_scene

    spec = build_scene("walkthrough", num_cameras=0)
    with MujocoRecorder(spec, gt_rate_hz=200, imu_noise=True) as rec:
        events = list(rec.run(5.0))
        ext, bias = rec.extrinsics(), rec.imu_bias
    f = ImuFusion(ImuFusionConfig(), np.linalg.inv(ext["rig->lidar"]) @ ext["rig->imu"])
    poses, start = [], None
    for e in events:
        if isinstance(e, ImuSample):
            f.add_imu(e.stamp_ns, e.angular_velocity, e.linear_acceleration)
        elif isinstance(e, LidarScan):
            start = start or e.stamp_ns
            s = (e.stamp_ns - start) * 1e-9
            if s < 3.0 or s > 3.95:  # no LiDAR during (3, 4) s
                if s > 3.95 and "outage" not in locals():
                    outage = (f.predict(e.stamp_ns), e.T_world_lidar)
                    a, b = poses[-2], poses[-1]
                    cv = b[1][:3, 3] + (b[1][:3, 3] - a[1][:3, 3]) * (e.stamp_ns - b[0]) / (b[0] - a[0])
                f.update(e.stamp_ns, e.T_world_lidar)
                poses.append((e.stamp_ns, e.T_world_lidar))
    bg, ba = f.bias
    print(f"biases {bg} {ba} true {bias}; gravity {f.gravity}")
    assert np.abs(bg - bias["gyro"]).max() < 5e-4  # true biases are ~2e-3 rad/s
    assert np.abs(ba - bias["accel"]).max() < 0.04  # ~0.03-0.08 m/s^2: found as the rig turns (5 s here)
    assert np.linalg.norm(f.gravity - [0.0, 0.0, -9.81]) < 0.05  # the world here is the simulator's
    err_imu = np.linalg.norm(outage[0][:3, 3] - outage[1][:3, 3])
    err_cv = np.linalg.norm(cv - outage[1][:3, 3])
    print(f"after the outage: IMU {err_imu * 100:.2f} cm, constant velocity {err_cv * 100:.2f} cm")
    assert err_imu < 0.05 and err_cv > 4 * err_imu


def test_jumps_repeats_and_missing_accelerometer() -> None:
    """A pose far from the IMU's prediction (a relocalisation) restarts the fusion from it; a
    repeated stamp while aligning is ignored; an IMU whose accelerometer reads zeros has no
    gravity to align to: it never becomes ready (and predicts nothing) instead of inventing one."""
    f = ImuFusion(ImuFusionConfig(init_scans=4))
    feed(f, 0.0, 1.2)
    assert f.update(ns(0.0), pose(0.0)) is False and f.update(ns(0.0), pose(0.0)) is False  # repeat: ignored
    for k in range(1, 5):
        f.update(ns(0.1 * k), pose(0.1 * k))
    assert f.ready and f.updates == 2
    jumped = pose(0.5)
    jumped[:3, 3] += [0.5, 0.0, 0.0]
    assert f.update(ns(0.5), jumped) is False and f.resets == 1 and not f.ready
    g = ImuFusion(ImuFusionConfig(init_scans=4))
    for t in np.arange(0.0, 1.0, 1 / 400):
        g.add_imu(ns(t), W, np.zeros(3))
    for k in range(8):
        g.update(ns(0.1 * k), pose(0.1 * k))
    assert not g.ready and g.failed_alignments >= 1 and g.predict(ns(0.75)) is None
