"""LiDAR(+IMU) odometry benchmark on a MuJoCo walkthrough (one whole loop of the room by default,
the IMU with white noise and a constant bias per run).

1. The lidar_odometry node under the replay runtime: LiDAR only, LiDAR + gyroscope rotation
   (``imu.enabled: false``), LiDAR + IMU fusion (the default).
2. The same core (``LidarInertialOdometry``) with a LiDAR outage: the scans of one second cut to
   10 points, too few to register, so the pose must be carried by the prediction.

Reports ATE RMSE against the simulator's ground truth (first pose aligned), max and final error,
path length, scans per second.  Writes ``benchmarks/results/lidar.json``.  Usage:
``python benchmarks/bench_lidar.py [--duration 21] [--outage-start 8]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
INDOOR = REPO / "config" / "lidar_odometry_indoor.yaml"  # the parameters `make demo` uses


def _row(system: str, est, gt, secs: float, duration: float, errors: int = 0) -> dict:
    from ros_gs.bags.evaluate import first_pose_errors

    err = first_pose_errors(est, gt)
    path = float(sum(np.linalg.norm(b[:3, 3] - a[:3, 3]) for a, b in zip(gt, gt[1:])))
    return {"system": system, "scans": len(est), "duration_s": duration, "path_m": path,
            "ate_rmse_m": float(np.sqrt(np.mean(err ** 2))), "max_error_m": float(err.max()),
            "final_error_m": float(err[-1]), "scans_per_s": len(est) / secs, "errors": errors}


def node_runs(bag: Path, tmp: Path, duration: float) -> list[dict]:
    from ros_gs.bags.evaluate import tf_ground_truth
    from ros_gs.bags.reader import BagReader
    from ros_gs.nodes.lidar_odometry import LidarOdometryNode
    from ros_gs.runtime.replay import ReplayRuntime
    from ros_gs.sensors.poses import pose_msg_to_matrix
    from ros_gs.sensors.stamps import header_stamp_ns

    tf = tf_ground_truth(bag)
    rig_lidar = tf.lookup("rig", "lidar").matrix
    rows = []
    for name, over in (("node, LiDAR only", {"imu_topic": ""}),
                       ("node + gyro rotation", {"imu": {"enabled": False}}),
                       ("node + IMU fusion", {})):
        out = tmp / f"odom_{len(rows)}.mcap"
        rt = ReplayRuntime(bag, out, param_files=[INDOOR], overrides={"lidar_odometry": over})
        rt.add_node(LidarOdometryNode)
        t0 = time.perf_counter()
        report = rt.run()
        secs = time.perf_counter() - t0
        with BagReader(out) as reader:
            odom = [m for _, m in reader.messages(["/ros_gs/odom"])]
        gt = [tf.lookup("world", "gt/rig", header_stamp_ns(m)).matrix @ rig_lidar for m in odom]
        est = [pose_msg_to_matrix(m.pose.pose) for m in odom]
        rows.append(_row(name, est, gt, secs, duration, sum(report.errors.values())))
    return rows


def outage_runs(duration: float, outage: tuple[float, float]) -> list[dict]:
    from ros_gs.mapping.imu_fusion import ImuFusionConfig
    from ros_gs.mapping.lidar_inertial import LidarInertialOdometry
    from ros_gs.nodes.lidar_odometry import LidarOdometryNodeParams
    from ros_gs.runtime.params import load_params
    from ros_gs.sim.recorder import ImuSample, LidarScan, MujocoRecorder
    from ros_gs.sim.scenes import build_scene

    params = load_params(LidarOdometryNodeParams, "lidar_odometry", [INDOOR])
    with MujocoRecorder(build_scene("walkthrough", num_cameras=0), gt_rate_hz=200, imu_noise=True) as rec:
        events = list(rec.run(duration))
        ext = rec.extrinsics()
    T_lidar_imu = np.linalg.inv(ext["rig->lidar"]) @ ext["rig->imu"]
    rows = []
    for name, enabled in (("core + gyro rotation, outage", False), ("core + IMU fusion, outage", True)):
        lio = LidarInertialOdometry(params.lidar, ImuFusionConfig(enabled=enabled), T_lidar_imu)
        est, gt, start, pending = [], [], None, []
        t0 = time.perf_counter()
        for e in events + [None]:
            if isinstance(e, ImuSample):
                lio.add_imu(e.stamp_ns, e.angular_velocity, e.linear_acceleration)
            elif isinstance(e, LidarScan):
                pending.append(e)
            while pending and (e is None or len(pending) > 1 or lio.covers(pending[0].stamp_ns, pending[0].t)):
                s = pending.pop(0)  # as the node does: a scan waits for the IMU to cover it
                start = start or s.stamp_ns
                n = 10 if outage[0] <= (s.stamp_ns - start) * 1e-9 < outage[1] else len(s.points)
                est.append(lio.register(s.points[:n], s.t[:n], s.stamp_ns))
                gt.append(s.T_world_lidar)
        rows.append(_row(name, est, gt, time.perf_counter() - t0, duration))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=21.0, help="seconds of the walkthrough (one loop is ~21 s)")
    ap.add_argument("--outage-start", type=float, default=8.0, help="the LiDAR outage (1 s) starts this many seconds in")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "lidar.json")
    args = ap.parse_args()
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    from ros_gs.bags.from_mujoco import mujoco_scene_to_bag

    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "walk.mcap"
        mujoco_scene_to_bag("walkthrough", bag, duration_s=args.duration, num_cameras=0, noise=True, progress=False)
        results = node_runs(bag, Path(tmp), args.duration)
    outage = (args.outage_start, args.outage_start + 1.0)
    results += outage_runs(args.duration, outage)
    out = {"machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
           "data": "MuJoCo walkthrough (seed 0), IMU with noise and bias", "outage_s": outage,
           "params": INDOOR.read_text(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"{'system':32s} {'scans':>5s} {'path m':>7s} {'ATE cm':>7s} {'max cm':>7s} {'final cm':>8s} {'scans/s':>8s}")
    for r in results:
        print(f"{r['system']:32s} {r['scans']:5d} {r['path_m']:7.2f} {r['ate_rmse_m'] * 100:7.2f} "
              f"{r['max_error_m'] * 100:7.2f} {r['final_error_m'] * 100:8.2f} {r['scans_per_s']:8.1f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
