"""The mapper node end to end under the replay runtime on the real 7-Scenes frames: one
odometry message per frame with the image's stamp, poses that follow the ground truth, the
map cloud, and the save/render services."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ros_gs.bags.reader import BagReader
from ros_gs.bags.writer import BagWriter
from ros_gs.cli.main import app
from ros_gs.gaussians.ply import read_ply
from ros_gs.mapping import Mapper, ate_rmse
from ros_gs.nodes.mapper import MapperNode
from ros_gs.runtime.replay import ReplayRuntime, ServiceCall
from ros_gs.sensors.pointcloud2 import pointcloud2_to_array
from ros_gs.sensors.poses import matrix_to_xyz_quat, pose_msg_to_matrix
from ros_gs.sensors.stamps import header_stamp_ns

N = 30
# 7-Scenes colour is not registered to depth: the bags carry the colour camera (kinect-v1) and
# the node registers colour to depth with the depth CameraInfo and the TF between them.
COLOR = ["--color-camera", "kinect-v1"]
UNREGISTERED = {"depth_info_topic": "/camera/depth/camera_info"}


@pytest.fixture(scope="module")
def kitchen_bag(tmp_path_factory: pytest.TempPathFactory, kitchen_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("bags") / "kitchen.mcap"
    result = CliRunner().invoke(app, ["bag", "from-rgbd", str(kitchen_dir), str(out), "--max-frames", str(N), *COLOR])
    assert result.exit_code == 0, result.output
    return out


def test_mapper_node_replay(kitchen_bag: Path, tmp_path: Path) -> None:
    saved_dir = tmp_path / "saved_map"
    out = tmp_path / "out.mcap"
    with BagReader(kitchen_bag) as reader:
        gt = {header_stamp_ns(m): pose_msg_to_matrix(m.pose) for _, m in reader.messages(["/ground_truth/pose"])}
    xyz, quat = matrix_to_xyz_quat(gt[min(gt)])  # render from the first camera pose
    view = {  # a nested request given as plain data, as in a --services YAML file
        "pose": {"position": dict(zip("xyz", map(float, xyz))), "orientation": dict(zip("xyzw", map(float, quat)))},
        "camera_info": {"width": 160, "height": 120, "k": [146.25, 0, 79.5, 0, 146.25, 59.5, 0, 0, 1]},
    }
    huge = {**view, "camera_info": {"width": 100000, "height": 100000, "k": [1e5, 0, 5e4, 0, 1e5, 5e4, 0, 0, 1]}}
    calls = [ServiceCall(0.9, "/mapper/save_map", {"path": str(saved_dir)}), ServiceCall(0.95, "/mapper/render_view", view),
             ServiceCall(0.91, "/mapper/save_map", {"path": ""}), ServiceCall(0.92, "/mapper/save_map", {"path": "a\x00b"}),
             ServiceCall(0.93, "/mapper/render_view", huge)]
    rt = ReplayRuntime(kitchen_bag, out, service_calls=calls, overrides={"mapper": {"map_cloud_period_s": 0.5, **UNREGISTERED}})
    node = rt.add_node(MapperNode)
    report = rt.run()
    assert not report.errors, report.errors
    with BagReader(out) as reader:
        odom = [m for _, m in reader.messages(["/ros_gs/odom"])]
        clouds = [m for _, m in reader.messages(["/ros_gs/map_points"])]
    assert len(odom) == N  # one per frame, none lost
    stamps = [header_stamp_ns(m) for m in odom]
    assert stamps == sorted(gt)  # stamped with the images' stamps
    est = [pose_msg_to_matrix(m.pose.pose) for m in odom]
    rmse, _ = ate_rmse(est, [gt[s] for s in stamps])
    path = sum(np.linalg.norm(gt[b][:3, 3] - gt[a][:3, 3]) for a, b in zip(stamps, stamps[1:]))
    assert rmse < 0.03 and path > 3 * rmse, (rmse, path)
    assert clouds and len(pointcloud2_to_array(clouds[-1])) == len(node.mapper.map) > 1000
    cloud = pointcloud2_to_array(clouds[-1])
    q = np.stack([cloud[f"rot_{c}"] for c in "wxyz"], axis=1)
    assert np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-5) and (cloud["scale_x"] > 0).all()
    assert 0 < np.median(cloud["scale_x"]) < 0.05  # centimetre Gaussians in a kitchen
    saved, empty, nul, too_big, rendered = sorted(report.services, key=lambda r: r.stamp_ns)  # 0.9, 0.91, 0.92, 0.93, 0.95 s
    for bad, needle in ((empty, "folder path"), (nul, "NUL"), (too_big, "at most")):  # refused with the reason, nothing allocated
        assert not bad.response.ok and needle in bad.response.message, bad.response.message
    assert saved.response.ok and read_ply(saved_dir / "map.ply").num_gaussians == saved.response.num_gaussians > 1000
    image = rendered.response.image
    assert rendered.response.ok and (image.width, image.height, image.encoding) == (160, 120, "rgb8")
    assert np.asarray(image.data).reshape(120, 160, 3).std() > 5  # the map is visible, not a blank image


def test_mapper_node_localises_in_a_saved_map(kitchen_bag: Path, kitchen_dir: Path, tmp_path: Path) -> None:
    """Run 1 maps the bag and saves the map; run 2 replays a later stretch (frames 12-26, its
    own bag) with map_path set and update_map false: the first frame is relocalised with no
    prior and every pose is published in run 1's map frame (run 1's first camera)."""
    saved_dir = tmp_path / "saved_map"
    rt = ReplayRuntime(kitchen_bag, tmp_path / "run1.mcap", service_calls=[ServiceCall(0.9, "/mapper/save_map", {"path": str(saved_dir)})],
                       overrides={"mapper": UNREGISTERED})
    rt.add_node(MapperNode)
    assert rt.run().services[0].response.ok
    later = tmp_path / "later.mcap"
    result = CliRunner().invoke(app, ["bag", "from-rgbd", str(kitchen_dir), str(later), "--first-frame", "12", "--max-frames", "15", *COLOR])
    assert result.exit_code == 0, result.output
    out = tmp_path / "run2.mcap"
    rt2 = ReplayRuntime(later, out, overrides={"mapper": {"map_path": str(saved_dir), "mapper": {"update_map": False}, **UNREGISTERED}})
    node = rt2.add_node(MapperNode)
    report = rt2.run()
    assert not report.errors, report.errors
    with BagReader(kitchen_bag) as reader:
        gt = {header_stamp_ns(m): pose_msg_to_matrix(m.pose) for _, m in reader.messages(["/ground_truth/pose"])}
    with BagReader(later) as reader:
        gt.update({header_stamp_ns(m): pose_msg_to_matrix(m.pose) for _, m in reader.messages(["/ground_truth/pose"])})
    with BagReader(out) as reader:
        odom = [m for _, m in reader.messages(["/ros_gs/odom"])]
    assert len(odom) == 15 and node.mapper.relocalisations["succeeded"] == 1
    T_map_gt = np.linalg.inv(gt[min(gt)])  # run 1's map frame is its first camera
    err = [np.linalg.norm(pose_msg_to_matrix(m.pose.pose)[:3, 3] - (T_map_gt @ gt[header_stamp_ns(m)])[:3, 3]) for m in odom]
    assert max(err) < 0.03, np.round(err, 3)
    assert len(node.mapper.keyframes) == len(Mapper.load(saved_dir).keyframes)  # localise only: nothing added


def test_unregistered_depth_without_tf_is_a_counted_skip(kitchen_bag: Path, tmp_path: Path) -> None:
    """depth_info_topic set but the depth -> colour TF never comes: every frame is a counted
    TransformError skip (no crash, no pose from unregistered colour); with the TF, all are used."""
    no_tf = tmp_path / "no_tf.mcap"
    with BagReader(kitchen_bag) as reader, BagWriter(no_tf) as writer:
        for raw, _ in reader.messages():
            if raw.topic != "/tf_static" and raw.log_ns < min_stamp(kitchen_bag) + 200_000_000:
                writer.write_raw(raw.topic, raw.msgtype, raw.raw, raw.log_ns)
    rt = ReplayRuntime(no_tf, tmp_path / "out.mcap", overrides={"mapper": UNREGISTERED})
    node = rt.add_node(MapperNode)
    report = rt.run()
    assert not report.errors, report.errors
    skips = sum(n for (name, _, kind), n in report.skipped.items() if name == "mapper" and kind == "TransformError")
    assert skips == 6 and node.frames == 0  # frames at 0, 1/30, ..., 5/30 s


def min_stamp(bag: Path) -> int:
    with BagReader(bag) as reader:
        return min(s.first_ns for s in reader.summary() if s.first_ns is not None)


def test_external_odometry_predicts_the_motion(kitchen_bag: Path, tmp_path: Path) -> None:
    """odom_prior_topic: a nav_msgs/Odometry of a base 10 cm beside the camera (and turned), with
    base -> camera on /tf_static, predicts each frame's camera motion; here the odometry is the
    ground truth, so the prediction equals the true motion and every frame after the first uses it."""
    from scipy.spatial.transform import Rotation

    from ros_gs.sensors.poses import matrix_to_pose, matrix_to_transform_stamped
    from ros_gs.sensors.stamps import make_header

    X = np.eye(4)  # T_base_camera
    X[:3, :3] = Rotation.from_euler("xyz", [-90, 0, -90], degrees=True).as_matrix()
    X[:3, 3] = [0.1, 0.02, 0.3]
    bag = tmp_path / "with_odom.mcap"
    gt = {}
    with BagReader(kitchen_bag) as reader, BagWriter(bag) as writer:
        make = writer.factory
        for raw, msg in reader.messages():
            writer.write_raw(raw.topic, raw.msgtype, raw.raw, raw.log_ns)
            if raw.topic == "/ground_truth/pose":
                stamp = header_stamp_ns(msg)
                gt[stamp] = pose_msg_to_matrix(msg.pose)
                pose = make("geometry_msgs/msg/PoseWithCovariance", pose=matrix_to_pose(make, gt[stamp] @ np.linalg.inv(X)))
                odom = make("nav_msgs/msg/Odometry", header=make_header(make, stamp, "odom"), child_frame_id="base_link", pose=pose)
                writer.write("/odom", "nav_msgs/msg/Odometry", odom, raw.log_ns)
        static = make("tf2_msgs/msg/TFMessage", transforms=[matrix_to_transform_stamped(make, X, make_header(make, min(gt), "base_link"),
                                                                                            "camera_depth_optical_frame")])
        writer.write("/tf_static", "tf2_msgs/msg/TFMessage", static, min(gt))
    out = tmp_path / "out.mcap"
    rt = ReplayRuntime(bag, out, overrides={"mapper": {"odom_prior_topic": "/odom", **UNREGISTERED}})
    node = rt.add_node(MapperNode)
    report = rt.run()
    assert not report.errors, report.errors
    assert node.priors == {"used": N - 1, "missing": 0, "imu": 0}
    with BagReader(out) as reader:
        est = [pose_msg_to_matrix(m.pose.pose) for _, m in reader.messages(["/ros_gs/odom"])]
    stamps = sorted(gt)
    assert len(est) == N and ate_rmse(est, [gt[s] for s in stamps])[0] < 0.03
    node._prev_stamp = stamps[9]  # the prediction itself: the true camera motion
    rel = node._motion_prior(stamps[10], "camera_depth_optical_frame")
    np.testing.assert_allclose(rel, np.linalg.inv(gt[stamps[9]]) @ gt[stamps[10]], atol=1e-6)


def test_registered_depth_under_its_own_frame_needs_no_tf(kitchen_dir: Path, tmp_path: Path) -> None:
    """Depth published registered (same size and K as colour) under its own frame name, with no
    TF between the frames: used as registered, not skipped."""
    src = tmp_path / "registered.mcap"
    result = CliRunner().invoke(app, ["bag", "from-rgbd", str(kitchen_dir), str(src), "--max-frames", "4"])
    assert result.exit_code == 0, result.output
    bag = tmp_path / "no_tf.mcap"
    with BagReader(src) as reader, BagWriter(bag) as writer:
        for raw, _ in reader.messages():
            if raw.topic != "/tf_static":
                writer.write_raw(raw.topic, raw.msgtype, raw.raw, raw.log_ns)
    rt = ReplayRuntime(bag, tmp_path / "out.mcap", overrides={"mapper": UNREGISTERED})
    node = rt.add_node(MapperNode)
    report = rt.run()
    assert not report.errors and not report.skipped, (report.errors, report.skipped)
    assert node.frames == 4


def test_gyroscope_rotation_prior_on_walkthrough(tmp_path: Path) -> None:
    """imu_topic: on the MuJoCo walkthrough (rig camera + IMU) the prediction's rotation is the
    gyroscope's, moved into the camera frame by /tf_static, and matches the true camera rotation;
    after the first tracked frames the fused IMU predicts the whole motion."""
    pytest.importorskip("mujoco")
    from ros_gs.bags.evaluate import tf_ground_truth
    from ros_gs.bags.from_mujoco import mujoco_scene_to_bag

    bag = tmp_path / "walk.mcap"
    mujoco_scene_to_bag("walkthrough", bag, duration_s=1.0, width=320, height=240, num_cameras=1, camera_rate_hz=30.0, progress=False)
    topics = {"rgb_topic": "/cameras/rig_front/color/image_raw", "depth_topic": "/cameras/rig_front/depth/image_raw",
              "info_topic": "/cameras/rig_front/color/camera_info", "imu_topic": "/imu/data"}
    rt = ReplayRuntime(bag, tmp_path / "out.mcap", overrides={"mapper": topics})
    node = rt.add_node(MapperNode)
    report = rt.run()
    assert not report.errors, report.errors
    assert node.frames >= 10 and node.priors["used"] >= node.frames - 3, (node.frames, node.priors)
    with BagReader(bag) as reader:
        stamps = [header_stamp_ns(m) for _, m in reader.messages([topics["rgb_topic"]])]
    tf = tf_ground_truth(bag)
    cam = "rig_front_optical_frame"
    rig_cam = tf.lookup("rig", cam).matrix
    a, b = stamps[-6], stamps[-3]  # 0.1 s apart: a few degrees of turn
    R_true = (np.linalg.inv(tf.lookup("world", "gt/rig", a).matrix @ rig_cam) @ (tf.lookup("world", "gt/rig", b).matrix @ rig_cam))[:3, :3]
    node._prev_stamp = a
    R = node._gyro_prior(b, cam)[:3, :3]
    angle = np.degrees(np.arccos(np.clip((np.trace(R_true.T @ R) - 1) / 2, -1, 1)))
    turn = np.degrees(np.arccos(np.clip((np.trace(R_true) - 1) / 2, -1, 1)))
    print(f"turn {turn:.3f} deg, gyro prior off by {angle:.4f} deg, priors {node.priors}, frames {node.frames}")
    assert turn > 0.5 and angle < 0.05, (turn, angle)
    # once aligned (imu.init_scans tracked frames), the fused IMU gives the whole motion: checked
    # from the last fused frame to the newest IMU sample against the simulator
    fusion = node.fusion
    assert fusion.ready and node.priors["imu"] >= node.frames - node.params.imu.init_scans - 1, node.priors
    a, b = fusion.stamp_ns, fusion.newest_sample_ns
    rel = np.linalg.inv(fusion.predict(a)) @ fusion.predict(b)
    true = np.linalg.inv(tf.lookup("world", "gt/rig", a).matrix @ rig_cam) @ (tf.lookup("world", "gt/rig", b).matrix @ rig_cam)
    moved = np.linalg.norm(true[:3, 3])
    off = np.linalg.norm(rel[:3, 3] - true[:3, 3])
    print(f"IMU motion over {(b - a) * 1e-9:.3f} s: {moved * 100:.2f} cm, off by {off * 1000:.2f} mm")
    assert moved > 0.01 and off < 0.1 * moved  # measured 0.69 of 14.9 mm


def test_a_frame_stamped_in_2038_is_one_counted_skip(kitchen_bag: Path, tmp_path: Path) -> None:
    """One frame whose stamps a glitching driver put in 2038: its messages are counted skips
    (stamped ahead of the clock), and every other frame is mapped (as the newest stamp it once
    made the next 5 frames "older than the last")."""
    glitch = tmp_path / "glitch.mcap"
    t0 = min_stamp(kitchen_bag)
    bad = t0 + 4 * 33_333_333  # the 5th frame
    with BagReader(kitchen_bag) as reader, BagWriter(glitch) as writer:
        for raw, msg in reader.messages():
            if raw.log_ns >= t0 + 400_000_000:
                break
            if raw.topic.startswith("/camera/") and abs(header_stamp_ns(msg) - bad) < 1_000_000:
                msg.header.stamp.sec = 2_145_000_000  # 2037-12-21
                writer.write(raw.topic, raw.msgtype, msg, raw.log_ns)
            else:
                writer.write_raw(raw.topic, raw.msgtype, raw.raw, raw.log_ns)
    rt = ReplayRuntime(glitch, tmp_path / "out.mcap", overrides={"mapper": UNREGISTERED})
    node = rt.add_node(MapperNode)
    report = rt.run()
    assert not report.errors, report.errors
    ahead = {topic: n for (name, topic, kind), n in report.skipped.items() if name == "mapper" and kind == "SensorDataError"}
    assert sum(ahead.values()) == 4 and set(ahead) == {"/camera/color/image_raw", "/camera/depth/image_raw",
                                                         "/camera/color/camera_info", "/camera/depth/camera_info"}, report.skipped
    assert node.frames == 11  # 12 frames in 0.4 s, all but the glitch
