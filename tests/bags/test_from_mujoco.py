"""``ros-gs bag from-mujoco``: the bag alone (our readers, CameraInfo, the TF chain and the
/ground_truth topics) must reproduce MuJoCo's ground truth: depth back-projects onto the
objects' surfaces, the segmentation names the right object, and the IMU integrates to the
rig's ground-truth motion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ros_gs.bags.info import bag_info
from ros_gs.bags.reader import BagReader
from ros_gs.cli.main import app
from ros_gs.sensors.camera import camera_from_info
from ros_gs.sensors.image import depth_to_metres, image_to_numpy
from ros_gs.sensors.imu import imu_from_msg
from ros_gs.sensors.stamps import header_stamp_ns
from ros_gs.sensors.tf_buffer import TfBuffer
from ros_gs.sim.geometry import sdf, so3_exp, so3_log


def record(tmp: Path, scene: str, *args: str) -> Path:
    out = tmp / f"{scene}.mcap"
    result = CliRunner().invoke(app, ["bag", "from-mujoco", scene, str(out), *args])
    assert result.exit_code == 0, result.output
    return out


def read_all(bag: Path) -> tuple[dict[str, list], TfBuffer]:
    by_topic: dict[str, list] = {}
    tf = TfBuffer(cache_ns=10**12)
    with BagReader(bag) as reader:
        for raw, msg in reader.messages():
            by_topic.setdefault(raw.topic, []).append(msg)
            if raw.topic in ("/tf_static", "/ground_truth/tf"):
                tf.add_tf_message(msg, static=raw.topic == "/tf_static")
    return by_topic, tf


@pytest.fixture(scope="module")
def tabletop(tmp_path_factory: pytest.TempPathFactory):
    return read_all(record(tmp_path_factory.mktemp("sim"), "tabletop", "--duration", "0.25", "--size", "160", "120"))


def test_depth_backprojects_onto_the_labelled_objects(tabletop) -> None:
    by_topic, tf = tabletop
    objects = json.loads(by_topic["/ground_truth/objects"][0].data)["objects"]
    labels = json.loads(by_topic["/segmentation/labels"][0].data)
    assert {int(k): v for k, v in labels.items()} == {o["index"] + 1: o["label"] for o in objects}
    cams = sorted({t.split("/")[2] for t in by_topic if t.startswith("/cameras/")})
    assert len(cams) == 3
    errors, wrong = [], 0
    for cam in cams:
        info, depth_msg, seg_msg = (by_topic[f"/cameras/{cam}/{k}"][0] for k in ("color/camera_info", "depth/image_raw", "segmentation"))
        model = camera_from_info(info)
        depth = depth_to_metres(depth_msg)  # NaN where nothing was hit
        seg = image_to_numpy(seg_msg).astype(int) - 1
        stamp = header_stamp_ns(depth_msg)
        T_world_cam = tf.lookup("world", depth_msg.header.frame_id, stamp).matrix
        pts_cam = model.backproject(np.nan_to_num(depth))
        pts = pts_cam.reshape(-1, 3) @ T_world_cam[:3, :3].T + T_world_cam[:3, 3]
        seg = seg.reshape(-1)
        for i, obj in enumerate(objects):
            mine = (seg == i) & np.isfinite(depth.reshape(-1))
            if mine.sum() < 10:
                continue
            T_obj = tf.lookup("world", obj["frame"], stamp).matrix
            d = np.abs(sdf(obj["shape"], obj["size"], T_obj, pts[mine]))
            errors.append(d)
            others = [abs(sdf(o["shape"], o["size"], tf.lookup("world", o["frame"], stamp).matrix, pts[mine])) for j, o in enumerate(objects) if j != i]
            wrong += int((np.min(others, axis=0) < d - 1e-3).sum()) if others else 0
    d = np.concatenate(errors)
    assert d.size > 1000
    print(f"depth back-projection: mean |d| {d.mean() * 1000:.3f} mm over {d.size} pixels, wrong label {wrong}")
    assert d.mean() < 0.002, d.mean()  # < 2 mm at the rendered resolution (issue requirement)
    assert wrong / d.size < 0.01  # the mask names the object the pixel lies on


def test_bag_info_rates(tabletop, tmp_path: Path) -> None:
    by_topic, _ = tabletop
    assert len(by_topic["/ground_truth/tf"]) == len(by_topic["/cameras/front/color/image_raw"]) == 3  # 0, 0.1, 0.2 s
    assert "/imu/data" not in by_topic and "/lidar/points" not in by_topic  # static cameras only
    assert all(t.child_frame_id.startswith("gt/") for t in by_topic["/ground_truth/tf"][0].transforms)


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory):
    bag = record(tmp_path_factory.mktemp("sim"), "walkthrough", "--duration", "1.0", "--size", "80", "60", "--cameras", "1")
    return bag, *read_all(bag)


def test_walkthrough_topics_and_rates(walkthrough) -> None:
    bag, by_topic, _ = walkthrough
    info = {t.topic: t for t in bag_info(bag).topics}
    assert info["/imu/data"].rate_hz == pytest.approx(200.0, rel=1e-3)
    assert info["/lidar/points"].rate_hz == pytest.approx(10.0, rel=1e-3)
    assert info["/ground_truth/tf"].rate_hz == pytest.approx(200.0, rel=1e-3)  # GT at the IMU rate
    assert "t" in info["/lidar/points"].detail and "ring" in info["/lidar/points"].detail
    assert "/tf" not in by_topic  # the rig's pose is ground truth: only under /ground_truth, never on /tf


def test_imu_integrates_to_the_ground_truth_motion(walkthrough) -> None:
    """Strapdown integration over 1 s (GT initial state only) vs the GT IMU pose at the end."""
    _, by_topic, tf = walkthrough
    imu = [imu_from_msg(m) for m in by_topic["/imu/data"]]
    stamps = np.array([s.stamp_ns for s in imu])
    T_rig_imu = tf.lookup("rig", "imu", int(stamps[0])).matrix

    def T_world_imu(t: int) -> np.ndarray:
        return tf.lookup("world", "gt/rig", t).matrix @ T_rig_imu

    g = np.array([0.0, 0.0, -9.81])
    t0, t1 = int(stamps[0]), int(stamps[-1])
    T0 = T_world_imu(t0)
    dt_fd = 5_000_000
    v = (T_world_imu(t0 + dt_fd)[:3, 3] - T0[:3, 3]) / (dt_fd * 1e-9)  # GT initial velocity
    R, p = T0[:3, :3].copy(), T0[:3, 3].copy()
    for a, b in zip(imu[:-1], imu[1:]):
        dt = (b.stamp_ns - a.stamp_ns) * 1e-9
        w = 0.5 * (a.angular_velocity + b.angular_velocity)
        R_next = R @ so3_exp(w * dt)
        acc = 0.5 * (R @ a.linear_acceleration + R_next @ b.linear_acceleration) + g
        p = p + v * dt + 0.5 * acc * dt * dt
        v = v + acc * dt
        R = R_next
    T1 = T_world_imu(t1)
    rot_err = np.degrees(np.linalg.norm(so3_log(T1[:3, :3].T @ R)))
    pos_err = np.linalg.norm(T1[:3, 3] - p)
    moved = np.linalg.norm(T1[:3, 3] - T0[:3, 3])
    print(f"IMU integration over {(t1 - t0) * 1e-9:.2f} s: rotation error {rot_err:.4f} deg, position error {pos_err * 1000:.2f} mm, moved {moved:.3f} m")
    assert moved > 0.1  # the rig really moves
    assert rot_err < 0.1, rot_err  # measured 0.011 deg
    assert pos_err < 0.005, (pos_err, moved)  # measured 0.75 mm


@pytest.mark.parametrize("scene", ["tabletop", "push", "drop", "walkthrough"])
def test_every_scene_makes_a_bag_with_expected_topics_and_rates(scene: str, tmp_path: Path) -> None:
    bag = record(tmp_path, scene, "--duration", "0.5", "--size", "64", "48", "--cameras", "1")
    info = {t.topic: t for t in bag_info(bag).topics}
    cams = [t for t in info if t.endswith("/color/image_raw")]
    assert len(cams) == 1 and info[cams[0]].rate_hz == pytest.approx(10.0, rel=1e-3)
    assert info[cams[0]].detail == "rgb8 64x48"
    assert info[cams[0].replace("color/image_raw", "depth/image_raw")].detail == "32FC1 64x48"
    assert info[cams[0].replace("color/image_raw", "segmentation")].detail == "16UC1 64x48"
    for latched in ("/tf_static", "/ground_truth/objects", "/segmentation/labels"):
        assert info[latched].count == 1
    assert info["/ground_truth/tf"].count >= 5
    moving_rig = scene == "walkthrough"
    assert ("/imu/data" in info) == moving_rig and ("/lidar/points" in info) == moving_rig
    with BagReader(bag) as reader:  # everything decodes with our own readers
        assert sum(1 for _ in reader.messages()) == sum(t.count for t in info.values())


def test_push_moves_the_box_in_the_bag(tmp_path: Path) -> None:
    by_topic, tf = read_all(record(tmp_path, "push", "--duration", "2.0", "--size", "32", "24", "--cameras", "1"))
    objects = json.loads(by_topic["/ground_truth/objects"][0].data)["objects"]
    box = next(o for o in objects if o["shape"] == "box" and "red" in o["label"])
    stamps = [header_stamp_ns(m.transforms[0]) for m in by_topic["/ground_truth/tf"]]
    p0 = tf.lookup("world", box["frame"], stamps[0]).matrix[:3, 3]
    p1 = tf.lookup("world", box["frame"], stamps[-1]).matrix[:3, 3]
    assert np.linalg.norm(p1 - p0) > 0.05
