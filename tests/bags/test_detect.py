"""Sensor topics found by type (`ros-gs replay BAG` with no --node): the MuJoCo walkthrough bag
(colour, 32FC1 depth, a 16UC1 segmentation image that must not pass for depth, LiDAR, IMU) and
the 7-Scenes bag (rgb8 + 16UC1 depth, two CameraInfo topics)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ros_gs.bags.detect import SensorTopics, _looks_like_depth, detect_sensor_topics
from ros_gs.bags.reader import BagReader
from ros_gs.bags.writer import BagWriter
from ros_gs.cli.main import app


@pytest.fixture(scope="module")
def walk_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mujoco")
    out = tmp_path_factory.mktemp("sim") / "walk.mcap"
    r = CliRunner().invoke(app, ["bag", "from-mujoco", "walkthrough", str(out), "--duration", "1.0",
                                 "--size", "80", "60", "--cameras", "1"])
    assert r.exit_code == 0, r.output
    return out


def test_detect_walkthrough(walk_bag: Path) -> None:
    with BagReader(walk_bag) as reader:
        topics = {s.topic for s in reader.summary()}
    seg = [t for t in topics if t.endswith("segmentation")]
    assert seg  # the decoy is there
    found = detect_sensor_topics(walk_bag)
    assert found.rgb.endswith("color/image_raw") and found.depth.endswith("depth/image_raw")
    assert found.info.endswith("color/camera_info") and found.rgbd
    assert found.depth_info is None  # registered depth: one CameraInfo per camera
    assert (found.points, found.imu) == ("/lidar/points", "/imu/data")


def test_detect_rgbd_folder_bag(tmp_path: Path, kitchen_dir: Path) -> None:
    out = tmp_path / "k.mcap"
    r = CliRunner().invoke(app, ["bag", "from-rgbd", str(kitchen_dir), str(out), "--max-frames", "2"])
    assert r.exit_code == 0, r.output
    # the depth camera's own CameraInfo too: colour and depth may not be registered
    assert detect_sensor_topics(out) == SensorTopics("/camera/color/image_raw", "/camera/depth/image_raw",
                                                     "/camera/color/camera_info", "/camera/depth/camera_info")


def test_depth_names() -> None:
    assert _looks_like_depth("/cam/aligned_depth_to_color/image_raw") == 2
    assert _looks_like_depth("/cam/segmentation") == 0 and _looks_like_depth("/cam/ir/image") == 0
    assert _looks_like_depth("/stereo/first/image") == 1  # "first" holds "ir" but is not IR


def test_replay_picks_nodes_and_topics(walk_bag: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mcap"
    r = CliRunner().invoke(app, ["replay", str(walk_bag), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "mapper (" in r.output and "lidar_odometry (" in r.output
    assert "image_topic=/cameras/rig_front/color/image_raw" in r.output  # the camera colours the LiDAR map
    assert "odom_prior_topic=/ros_gs/lidar/odom" in r.output  # LiDAR-inertial odometry predicts the camera
    with BagReader(out) as reader:
        counts = {s.topic: s.count for s in reader.summary()}
    with BagReader(walk_bag) as reader:
        src = {s.topic: s.count for s in reader.summary()}
    assert counts["/ros_gs/lidar/odom"] == src["/lidar/points"]
    assert counts.get("/ros_gs/odom", 0) > 0


def test_replay_of_a_bag_without_sensors_is_a_clear_error(tmp_path: Path) -> None:
    bag = tmp_path / "empty.mcap"
    with BagWriter(bag) as w:
        w.write("/chatter", "std_msgs/msg/String", w.factory("std_msgs/msg/String", data="hi"), 1)
    r = CliRunner().invoke(app, ["replay", str(bag)])
    assert r.exit_code != 0 and "no RGB-D" in str(r.exception or r.output)


def test_colour_camera_without_depth(tmp_path: Path) -> None:
    """LiDAR + a colour camera and no depth: no RGB-D mapper, but the camera and its CameraInfo
    are found (they colour the LiDAR map)."""
    import numpy as np

    from ros_gs.sensors.camera import PinholeCamera, camera_to_info
    from ros_gs.sensors.image import numpy_to_image
    from ros_gs.sensors.pointcloud2 import array_to_pointcloud2

    bag = tmp_path / "lc.mcap"
    cloud = np.zeros(10, np.dtype([("x", np.float32), ("y", np.float32), ("z", np.float32)]))
    with BagWriter(bag) as w:
        m = w.factory
        w.write("/ouster/points", "sensor_msgs/msg/PointCloud2", array_to_pointcloud2(m, cloud, 1, "lidar"), 1)
        w.write("/cam/image_color", "sensor_msgs/msg/Image", numpy_to_image(m, np.zeros((4, 6, 3), np.uint8), "bgr8", 1, "cam"), 1)
        w.write("/cam/camera_info", "sensor_msgs/msg/CameraInfo",
                camera_to_info(m, PinholeCamera(width=6, height=4, K=np.diag([5.0, 5.0, 1.0]), frame_id="cam"), 1), 1)
    found = detect_sensor_topics(bag)
    assert (found.rgb, found.info, found.depth, found.points) == ("/cam/image_color", "/cam/camera_info", None, "/ouster/points")
    assert not found.rgbd
