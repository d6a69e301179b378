"""The lidar_odometry node under the replay runtime on a MuJoCo walkthrough bag: one odometry
message per scan with the scan's stamp, poses that follow the ground truth (rig pose composed
with the static rig -> lidar transform), and the gyroscope rotation prior in use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ros_gs.bags.reader import BagReader
from ros_gs.runtime.replay import ReplayRuntime
from ros_gs.sensors.poses import pose_msg_to_matrix
from ros_gs.sensors.stamps import header_stamp_ns
from ros_gs.sensors.tf_buffer import TfBuffer

INDOOR = Path(__file__).resolve().parents[2] / "config" / "lidar_odometry_indoor.yaml"


@pytest.fixture(scope="module")
def walkthrough_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mujoco")
    from ros_gs.bags.from_mujoco import mujoco_scene_to_bag

    out = tmp_path_factory.mktemp("bags") / "walk.mcap"
    mujoco_scene_to_bag("walkthrough", out, duration_s=4.0, num_cameras=0, progress=False)
    return out


def _ground_truth(bag: Path) -> TfBuffer:
    tf = TfBuffer()
    with BagReader(bag) as reader:
        for raw, msg in reader.messages(["/ground_truth/tf", "/tf_static"]):
            tf.add_tf_message(msg, static=raw.topic == "/tf_static")
    return tf


@pytest.mark.parametrize("imu", [True, False])
def test_lidar_odometry_node_on_walkthrough(walkthrough_bag: Path, tmp_path: Path, imu: bool) -> None:
    from ros_gs.nodes.lidar_odometry import LidarOdometryNode

    out = tmp_path / "odom.mcap"
    rt = ReplayRuntime(walkthrough_bag, out, param_files=[INDOOR],
                       overrides={"lidar_odometry": {"imu_topic": "/imu/data" if imu else ""}})
    node = rt.add_node(LidarOdometryNode)
    report = rt.run()
    assert not report.errors and not report.skipped, (report.errors, report.skipped)
    with BagReader(walkthrough_bag) as reader:
        scans = [header_stamp_ns(m) for _, m in reader.messages(["/lidar/points"])]
    with BagReader(out) as reader:
        odom = [m for _, m in reader.messages(["/ros_gs/odom"])]
    assert [header_stamp_ns(m) for m in odom] == scans and len(scans) >= 30
    tf = _ground_truth(walkthrough_bag)
    rig_lidar = tf.lookup("rig", "lidar").matrix  # static mount
    gt = [tf.lookup("world", "gt/rig", s).matrix @ rig_lidar for s in scans]
    est = [pose_msg_to_matrix(m.pose.pose) for m in odom]
    align = gt[0] @ np.linalg.inv(est[0])  # odom frame = the first scan's lidar frame
    err = np.array([np.linalg.norm((align @ e)[:3, 3] - g[:3, 3]) for e, g in zip(est, gt)])
    ate = float(np.sqrt(np.mean(err ** 2)))
    travel = sum(np.linalg.norm(b[:3, 3] - a[:3, 3]) for a, b in zip(gt, gt[1:]))
    print(f"imu={imu}: {len(scans)} scans, {travel:.2f} m, ATE {ate * 100:.2f} cm, priors {node.imu_priors}")
    assert travel > 1.0
    assert ate < 0.02, ate  # issue requirement for the walkthrough: < 2 cm
    assert (node.imu_priors >= len(scans) - 2) if imu else node.imu_priors == 0
