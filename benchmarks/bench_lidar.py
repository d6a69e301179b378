"""LiDAR(+IMU) odometry benchmark: the lidar_odometry node under the replay runtime on a MuJoCo
walkthrough bag (one whole loop of the room by default), with and without the gyroscope
rotation prior.  Reports ATE RMSE against the simulator's ground truth (first pose aligned),
path length, scans per second.  Writes ``benchmarks/results/lidar.json``.  Usage:
``python benchmarks/bench_lidar.py [--duration 21]``.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=21.0, help="seconds of the walkthrough (one loop is ~21 s)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "lidar.json")
    args = ap.parse_args()
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    from ros_gs.bags.evaluate import first_pose_errors, tf_ground_truth
    from ros_gs.bags.from_mujoco import mujoco_scene_to_bag
    from ros_gs.bags.reader import BagReader
    from ros_gs.nodes.lidar_odometry import LidarOdometryNode
    from ros_gs.runtime.replay import ReplayRuntime
    from ros_gs.sensors.poses import pose_msg_to_matrix
    from ros_gs.sensors.stamps import header_stamp_ns

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "walk.mcap"
        mujoco_scene_to_bag("walkthrough", bag, duration_s=args.duration, num_cameras=0, progress=False)
        tf = tf_ground_truth(bag)
        rig_lidar = tf.lookup("rig", "lidar").matrix
        for imu in (True, False):
            out = Path(tmp) / f"odom_{imu}.mcap"
            rt = ReplayRuntime(bag, out, param_files=[INDOOR],
                               overrides={"lidar_odometry": {"imu_topic": "/imu/data" if imu else ""}})
            rt.add_node(LidarOdometryNode)
            t0 = time.perf_counter()
            report = rt.run()
            secs = time.perf_counter() - t0
            with BagReader(out) as reader:
                odom = [m for _, m in reader.messages(["/ros_gs/odom"])]
            stamps = [header_stamp_ns(m) for m in odom]
            gt = [tf.lookup("world", "gt/rig", s).matrix @ rig_lidar for s in stamps]
            est = [pose_msg_to_matrix(m.pose.pose) for m in odom]
            err = first_pose_errors(est, gt)
            path = float(sum(np.linalg.norm(b[:3, 3] - a[:3, 3]) for a, b in zip(gt, gt[1:])))
            results.append({"system": "lidar_odometry node" + (" + gyro prior" if imu else ""), "scans": len(odom),
                            "duration_s": args.duration, "path_m": path, "ate_rmse_m": float(np.sqrt(np.mean(err ** 2))),
                            "max_error_m": float(err.max()), "final_error_m": float(err[-1]),
                            "scans_per_s": len(odom) / secs, "errors": sum(report.errors.values())})
    out = {"machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
           "data": "MuJoCo walkthrough (seed 0)", "params": INDOOR.read_text(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"{'system':32s} {'scans':>5s} {'path m':>7s} {'ATE cm':>7s} {'max cm':>7s} {'scans/s':>8s}")
    for r in results:
        print(f"{r['system']:32s} {r['scans']:5d} {r['path_m']:7.2f} {r['ate_rmse_m'] * 100:7.2f} "
              f"{r['max_error_m'] * 100:7.2f} {r['scans_per_s']:8.1f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
