"""LiDAR odometry (scan-to-local-map point-to-plane ICP) on real Ouster data and a MuJoCo walkthrough."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ros_gs.mapping.lidar_odometry import LidarOdometry, LidarOdometryConfig, se3_exp, se3_log

OUSTER = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ouster"
PCAP = OUSTER / "OS-1-128_v2.3.0_1024x10_lb_n3.pcap"
META = OUSTER / "OS-1-128_v2.3.0_1024x10.json"
POSES = OUSTER / "OS-1-128_v2.3.0_1024x10_lb_n3_poses_kitti.txt"


def test_se3_roundtrip():
    xi = np.array([0.01, -0.02, 0.03, 0.2, -0.1, 0.05])
    np.testing.assert_allclose(se3_log(se3_exp(xi)), xi, atol=1e-12)


def test_config_rejects_unknown_and_bad_values():
    with pytest.raises(Exception):
        LidarOdometryConfig(voxel=0.1)
    with pytest.raises(Exception):
        LidarOdometryConfig(voxel_size=-1.0)


@pytest.fixture(scope="module")
def ouster_scans():
    if not (PCAP.exists() and META.exists() and POSES.exists()):
        pytest.skip(f"real Ouster data absent: expected {PCAP.name}, {META.name} and {POSES.name} in {OUSTER}")
    from ros_gs.datasets.ouster import LidarScan, read_ouster_pcap

    scans = [e for e in read_ouster_pcap(PCAP, META) if isinstance(e, LidarScan)]
    gt = np.loadtxt(POSES).reshape(-1, 3, 4)
    assert len(scans) == 3 and len(gt) == 3
    return scans, gt


@pytest.mark.parametrize("deskew", [True, False])
def test_ouster_relative_poses_match_kitti(ouster_scans, deskew):
    scans, gt = ouster_scans
    odo = LidarOdometry(LidarOdometryConfig(deskew=deskew))
    errs, ident_errs = [], []
    for i, s in enumerate(scans):
        pts = np.stack([s.points["x"], s.points["y"], s.points["z"]], axis=1)
        T = odo.register(pts, s.points["t"], s.stamp_ns)
        assert T.shape == (4, 4)
        errs.append(float(np.linalg.norm(T[:3, 3] - gt[i][:, 3])))
        ident_errs.append(float(np.linalg.norm(gt[i][:, 3])))  # no registration: pose stays identity
        rot_err = np.degrees(np.arccos(np.clip((np.trace(T[:3, :3].T @ gt[i][:, :3]) - 1) / 2, -1, 1)))
        assert rot_err < 1.0, (i, rot_err)
    print(f"deskew={deskew}: translation errors {np.round(errs, 4)} m; identity baseline {np.round(ident_errs, 3)} m")
    assert max(errs) < 0.05, errs  # issue requirement: within 5 cm
    # the identity / no-registration baseline fails the same bound by far
    assert min(ident_errs[1:]) > 0.2 and max(ident_errs) > 0.45


def _walkthrough(duration_s: float):
    pytest.importorskip("mujoco")
    from ros_gs.sim.recorder import LidarScan, MujocoRecorder
    from ros_gs.sim.scenes import build_scene

    spec = build_scene("walkthrough", num_cameras=0)
    with MujocoRecorder(spec, gt_rate_hz=200) as rec:
        return [e for e in rec.run(duration_s) if isinstance(e, LidarScan)]


def test_walkthrough_ate():
    scans = _walkthrough(2.5)
    assert len(scans) >= 5
    # indoor room: finer voxels, shorter ranges than the outdoor defaults; deskew matters here
    odo = LidarOdometry(LidarOdometryConfig(min_range=0.3, voxel_size=0.1, map_voxel_size=0.05,
                                            normal_radius=0.3, icp_max_distances=(0.5, 0.2, 0.1)))
    est, gt = [], []
    for s in scans:
        est.append(odo.register(s.points, s.t, s.stamp_ns))
        gt.append(np.asarray(s.T_world_lidar, dtype=np.float64))
    from ros_gs.bags.evaluate import first_pose_errors

    ate = float(np.sqrt(np.mean(first_pose_errors(est, gt) ** 2)))  # first pose aligned to ground truth
    travel = float(np.linalg.norm(gt[-1][:3, 3] - gt[0][:3, 3]))
    print(f"walkthrough: {len(scans)} scans, travel {travel:.3f} m, ATE RMSE {ate * 100:.2f} cm")
    assert ate < 0.02, ate


def test_gyro_integration_against_closed_forms():
    from ros_gs.mapping.imu_rotation import GyroIntegrator

    g = GyroIntegrator()
    w = np.array([0.3, -0.2, 1.0])
    for k in range(101):  # 100 Hz, 1 s, constant rate: R = exp(w t) exactly
        assert g.add(k * 10_000_000, w)
    R = g.rotation(0, 500_000_000)
    assert np.allclose(Rotation.from_matrix(R).as_rotvec(), w * 0.5, atol=1e-9)
    R = g.rotation(105_000_000, 333_000_000)  # between samples: interpolated ends
    assert np.allclose(Rotation.from_matrix(R).as_rotvec(), w * 0.228, atol=1e-9)
    assert not g.add(5, w) and g.out_of_order == 1  # older than the last: refused, counted
    assert not g.add(2_000_000_000, [np.nan, 0, 0])
    assert g.rotation(0, 2_000_000_000) is None  # past the last sample: no prior
    g2 = GyroIntegrator()
    for t in (0, 10_000_000, 200_000_000, 210_000_000):  # a 190 ms hole
        g2.add(t, w)
    assert g2.rotation(0, 210_000_000) is None
