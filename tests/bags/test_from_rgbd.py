"""``ros-gs bag from-rgbd`` on the real 7-Scenes frames, read back by plain rosbags (not our
reader), and the image_stats node replayed on the result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from ros_gs.bags.info import bag_info
from ros_gs.cli.main import app
from ros_gs.nodes.image_stats import ImageStatsNode
from ros_gs.runtime.replay import ReplayRuntime, ServiceCall

N = 12


@pytest.fixture(scope="module")
def kitchen_bag(tmp_path_factory: pytest.TempPathFactory, kitchen_dir: Path) -> tuple[Path, Path]:
    src = kitchen_dir
    out = tmp_path_factory.mktemp("bags") / "kitchen.mcap"
    result = CliRunner().invoke(app, ["bag", "from-rgbd", str(src), str(out), "--max-frames", str(N)])
    assert result.exit_code == 0, result.output
    return src, out


def test_frames_equal_source_files_bit_for_bit(kitchen_bag: tuple[Path, Path]) -> None:
    src, out = kitchen_bag
    with AnyReader([out], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        conns = [c for c in reader.connections if c.topic in ("/camera/color/image_raw", "/camera/depth/image_raw")]
        seen = {"/camera/color/image_raw": 0, "/camera/depth/image_raw": 0}
        for conn, t, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            i = seen[conn.topic]
            seen[conn.topic] += 1
            if conn.topic.startswith("/camera/color"):
                want = np.asarray(Image.open(src / f"frame-{i:06d}.color.jpg").convert("RGB"))
                got = np.asarray(msg.data).reshape(msg.height, msg.step)[:, : msg.width * 3].reshape(msg.height, msg.width, 3)
                assert msg.encoding == "rgb8"
            else:
                want = np.asarray(Image.open(src / f"frame-{i:06d}.depth.png"))
                got = np.frombuffer(np.asarray(msg.data).tobytes(), dtype="<u2").reshape(msg.height, msg.width)
                assert msg.encoding == "16UC1" and not msg.is_bigendian
            assert np.array_equal(got, want), f"{conn.topic} frame {i} differs from the source file"
            assert t == msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
    assert seen == {"/camera/color/image_raw": N, "/camera/depth/image_raw": N}


def test_ground_truth_pose_and_camera_info(kitchen_bag: tuple[Path, Path]) -> None:
    src, out = kitchen_bag
    with AnyReader([out], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        by_topic: dict[str, list] = {}
        for conn, _, raw in reader.messages():
            by_topic.setdefault(conn.topic, []).append(reader.deserialize(raw, conn.msgtype))
    info = by_topic["/camera/color/camera_info"][0]
    assert (info.width, info.height) == (640, 480)
    assert np.allclose(np.reshape(info.k, (3, 3)), np.loadtxt(src / "camera-intrinsics.txt"))
    for i in (0, N - 1):
        want = np.loadtxt(src / f"frame-{i:06d}.pose.txt")
        tf = by_topic["/ground_truth/tf"][i].transforms[0]  # ground truth only under /ground_truth/
        assert (tf.header.frame_id, tf.child_frame_id) == ("world", "gt/camera_depth_optical_frame")
        t, q = tf.transform.translation, tf.transform.rotation
        assert np.allclose([t.x, t.y, t.z], want[:3, 3], atol=1e-9)
        R = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
        assert np.allclose(R, want[:3, :3], atol=1e-3)  # GT rotations are orthonormal to ~1e-4
        p = by_topic["/ground_truth/pose"][i].pose.position
        assert np.allclose([p.x, p.y, p.z], want[:3, 3])
    assert "/tf" not in by_topic
    static = by_topic["/tf_static"]
    tf = static[0].transforms[0]
    assert len(static) == 1 and (tf.header.frame_id, tf.child_frame_id) == ("camera_depth_optical_frame", "camera_color_optical_frame")
    assert [tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z] == [0.0, 0.0, 0.0]


def test_unregistered_colour_camera(kitchen_dir: Path, tmp_path: Path) -> None:
    """--color-camera kinect-v1: the colour CameraInfo holds the colour camera's K and /tf_static
    the depth -> colour extrinsic (colour 2.5 cm along the depth camera's +x)."""
    out = tmp_path / "k.mcap"
    r = CliRunner().invoke(app, ["bag", "from-rgbd", str(kitchen_dir), str(out), "--max-frames", "1", "--color-camera", "kinect-v1"])
    assert r.exit_code == 0, r.output
    with AnyReader([out], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        by_topic = {conn.topic: reader.deserialize(raw, conn.msgtype) for conn, _, raw in reader.messages()}
    assert np.reshape(by_topic["/camera/color/camera_info"].k, (3, 3))[0, 0] == 525.0
    assert np.reshape(by_topic["/camera/depth/camera_info"].k, (3, 3))[0, 0] == 585.0
    t = by_topic["/tf_static"].transforms[0].transform.translation
    assert np.allclose([t.x, t.y, t.z], [0.025, 0.0, 0.0])
    r = CliRunner().invoke(app, ["bag", "from-rgbd", str(kitchen_dir), str(tmp_path / "x.mcap"), "--color-camera", "nope"])
    assert r.exit_code != 0 and "unknown colour camera" in str(r.exception)


def test_bag_info_counts_rates_encodings(kitchen_bag: tuple[Path, Path]) -> None:
    _, out = kitchen_bag
    info = {t.topic: t for t in bag_info(out).topics}
    for topic in ("/camera/color/image_raw", "/camera/depth/image_raw", "/camera/color/camera_info", "/ground_truth/tf", "/ground_truth/pose"):
        assert info[topic].count == N
        assert info[topic].rate_hz == pytest.approx(30.0, rel=1e-6)
    assert info["/camera/color/image_raw"].detail == "rgb8 640x480"
    assert info["/camera/depth/image_raw"].detail == "16UC1 640x480"
    assert info["/tf_static"].count == 1 and info["/tf_static"].rate_hz is None
    text = CliRunner().invoke(app, ["bag", "info", str(out)]).output
    assert "/camera/color/image_raw" in text and "30.00 Hz" in text


def test_image_stats_node_replayed_on_kitchen_bag(kitchen_bag: tuple[Path, Path], tmp_path: Path) -> None:
    src, bag = kitchen_bag
    out = tmp_path / "stats.mcap"
    rt = ReplayRuntime(bag, out, service_calls=[ServiceCall(0.2, "/image_stats/get_stats")])
    rt.add_node(ImageStatsNode)
    report = rt.run()
    assert not report.errors and not report.skipped
    assert report.published["/image_stats/stats"] == N
    # Heartbeat every 1 s over a 11/30 s bag: none; the service was answered at 0.2 s.
    assert report.timer_calls == 0
    answer = report.services[0].response
    assert answer.ok and answer.stats.frame_count == 7  # frames at 0, 1/30, ..., 6/30 <= 0.2 s

    with AnyReader([out], default_typestore=get_typestore(Stores.EMPTY)) as reader:
        stats = [(t, reader.deserialize(raw, c.msgtype)) for c, t, raw in reader.messages() if c.topic == "/image_stats/stats"]
    assert len(stats) == N
    for i, (t, msg) in enumerate(stats):
        rgb = np.asarray(Image.open(src / f"frame-{i:06d}.color.jpg").convert("RGB")).reshape(-1, 3)
        assert np.allclose(msg.channel_mean, rgb.mean(axis=0))
        assert msg.frame_count == i + 1
        assert t == msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec  # stamped like its image


class PoseProbe:
    """Looks up the camera pose in TF at each depth image's stamp (TF arrives on /tf)."""

    NAME = "pose_probe"

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.tf = ctx.tf_buffer()
        self.poses: list[tuple[int, np.ndarray]] = []
        ctx.create_subscription("sensor_msgs/msg/Image", "/camera/depth/image_raw", self.on_depth)

    def on_depth(self, msg) -> None:
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        # world <- depth frame: the dynamic /tf edge composed with the static colour->depth edge.
        self.poses.append((stamp, self.tf.lookup("world", msg.header.frame_id, stamp).matrix))


def test_tf_through_the_node_api_matches_ground_truth(kitchen_bag: tuple[Path, Path], tmp_path: Path) -> None:
    """Driven by the true poses (as a robot's localisation would publish them): the bag's
    /ground_truth/tf edges put on /tf for the camera frame, looked up through the node API."""
    from ros_gs.bags.reader import BagReader
    from ros_gs.bags.writer import BagWriter

    src, gt_bag = kitchen_bag
    bag = tmp_path / "posed.mcap"
    with BagReader(gt_bag) as reader, BagWriter(bag) as writer:
        for raw, msg in reader.messages():
            if raw.topic == "/ground_truth/tf":
                for t in msg.transforms:
                    t.child_frame_id = t.child_frame_id.removeprefix("gt/")
                writer.write("/tf", raw.msgtype, msg, raw.log_ns)
            else:
                writer.write_raw(raw.topic, raw.msgtype, raw.raw, raw.log_ns)
    rt = ReplayRuntime(bag, None)
    probe = rt.add_node(PoseProbe)
    report = rt.run()
    # /tf is written before the images of the same stamp, so every lookup resolves.
    assert not report.skipped and not report.errors
    assert len(probe.poses) == N
    for stamp, T in probe.poses:
        i = round((stamp - probe.poses[0][0]) * 30e-9)
        want = np.loadtxt(src / f"frame-{i:06d}.pose.txt")
        assert np.allclose(T[:3, 3], want[:3, 3], atol=1e-9)
        assert np.allclose(T[:3, :3], want[:3, :3], atol=1e-3)
