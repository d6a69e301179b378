"""``ros-gs bag from-graspnet`` on the real GraspNet-1Billion sample frame: the bag read back with
our reader reproduces the source PNGs bit for bit, K, and the meta.mat object poses (only under
/ground_truth/); broken copies of the frame end in one ``error:`` line, exit code 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image
from typer.testing import CliRunner

from ros_gs.bags.from_graspnet import GRASPNET_OBJECTS, T_LINK_OPTICAL, graspnet_frame_to_bag
from ros_gs.bags.reader import BagReader
from ros_gs.cli.main import app
from ros_gs.errors import ConfigError, DatasetError, InputError
from ros_gs.sensors.image import image_to_numpy
from ros_gs.sensors.poses import pose_msg_to_matrix
from ros_gs.sensors.stamps import header_stamp_ns

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "graspnet_tabletop"
ROS_GS = shutil.which("ros-gs") or str(Path(sys.executable).with_name("ros-gs"))
N = 3
COLOR_FRAME = "camera_color_optical_frame"
POSE_TYPES = {"geometry_msgs/msg/PoseStamped", "geometry_msgs/msg/Pose", "geometry_msgs/msg/PoseArray",
              "geometry_msgs/msg/TransformStamped", "geometry_msgs/msg/PoseWithCovarianceStamped"}


@pytest.fixture(scope="module")
def src() -> Path:
    if not DATA.exists():
        pytest.skip(f"real data {DATA} is absent (expected ../shared/data/graspnet_tabletop beside the repo)")
    return DATA


@pytest.fixture(scope="module")
def meta(src: Path) -> dict:
    return scipy.io.loadmat(src / "meta.mat")


def read_all(bag: Path) -> tuple[dict[str, list], dict[str, list[int]], dict[str, str]]:
    by_topic: dict[str, list] = {}
    times: dict[str, list[int]] = {}
    with BagReader(bag) as reader:
        types = reader.topics()
        for raw, msg in reader.messages():
            by_topic.setdefault(raw.topic, []).append(msg)
            times.setdefault(raw.topic, []).append(raw.log_ns)
    return by_topic, times, types


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory, src: Path):
    out = tmp_path_factory.mktemp("bags") / "graspnet.mcap"
    result = CliRunner().invoke(app, ["bag", "from-graspnet", str(src), str(out), "--frames", str(N), "--rate", "5"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}:" in result.output
    return read_all(out)


def copy_frame(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copyfile(f, dst / f.name)
    return dst


def test_message_counts(bag) -> None:
    by_topic, _, types = bag
    assert {t: len(m) for t, m in by_topic.items()} == {
        "/camera/color/image_raw": N, "/camera/depth/image_raw": N,
        "/camera/color/camera_info": N, "/camera/depth/camera_info": N,
        "/camera/workspace_mask": N, "/ground_truth/tf": N,
        "/tf_static": 1, "/ground_truth/objects": 1,
    }
    assert types["/ground_truth/objects"] == "std_msgs/msg/String"
    assert types["/ground_truth/tf"] == types["/tf_static"] == "tf2_msgs/msg/TFMessage"


def test_images_equal_source_pngs_bit_for_bit(bag, src: Path) -> None:
    by_topic, times, _ = bag
    rgb = np.asarray(Image.open(src / "color.png"))
    depth = np.asarray(Image.open(src / "depth.png"))
    mask = np.asarray(Image.open(src / "workspace_mask.png"))
    for i in range(N):
        c, d, m = (by_topic[t][i] for t in ("/camera/color/image_raw", "/camera/depth/image_raw", "/camera/workspace_mask"))
        assert (c.encoding, d.encoding, m.encoding) == ("rgb8", "16UC1", "mono8")
        assert c.header.frame_id == d.header.frame_id == m.header.frame_id == COLOR_FRAME  # registered depth
        assert np.array_equal(image_to_numpy(c), rgb)
        got = image_to_numpy(d)
        assert got.dtype == np.uint16 and np.array_equal(got, depth)
        assert np.array_equal(image_to_numpy(m) > 0, mask) and set(np.unique(image_to_numpy(m)).tolist()) <= {0, 255}
        # a static camera at 5 Hz: stamps 0.2 s apart, log time = header stamp
        assert header_stamp_ns(c) == times["/camera/color/image_raw"][i] == times["/camera/color/image_raw"][0] + i * 200_000_000


def test_camera_info_and_optical_frame(bag, meta: dict) -> None:
    by_topic, _, _ = bag
    K = meta["intrinsic_matrix"]
    for topic in ("/camera/color/camera_info", "/camera/depth/camera_info"):
        for info in by_topic[topic]:
            assert (info.width, info.height) == (1280, 720) and info.header.frame_id == COLOR_FRAME
            assert np.array_equal(np.reshape(info.k, (3, 3)), K)
    (static,) = by_topic["/tf_static"]
    (tf,) = static.transforms
    assert (tf.header.frame_id, tf.child_frame_id) == ("camera_link", COLOR_FRAME)
    q = tf.transform.rotation
    assert np.allclose([q.x, q.y, q.z, q.w], [-0.5, 0.5, -0.5, 0.5], atol=1e-12)
    R = pose_msg_to_matrix(tf.transform)[:3, :3]
    assert np.allclose(R, T_LINK_OPTICAL[:3, :3])
    # optical z (forward) is camera_link x, optical x (right) is -y (left), optical y (down) is -z (up)
    assert np.allclose(R @ [0, 0, 1], [1, 0, 0]) and np.allclose(R @ [1, 0, 0], [0, -1, 0]) and np.allclose(R @ [0, 1, 0], [0, 0, -1])


def test_ground_truth_transforms_equal_meta_poses(bag, meta: dict) -> None:
    by_topic, times, _ = bag
    poses, ids = meta["poses"], meta["cls_indexes"].ravel()
    objects = json.loads(by_topic["/ground_truth/objects"][0].data)["objects"]
    assert [o["class_id"] for o in objects] == ids.tolist()
    assert [o["index"] for o in objects] == list(range(len(ids)))
    for o in objects:
        assert (o["name"], o["description"]) == GRASPNET_OBJECTS[o["class_id"]] and o["frame"] == f"gt/{o['name']}"
    assert len({o["name"] for o in objects}) == len(objects)
    for i, msg in enumerate(by_topic["/ground_truth/tf"]):
        assert len(msg.transforms) == len(ids)
        for k, tf in enumerate(msg.transforms):
            assert (tf.header.frame_id, tf.child_frame_id) == (COLOR_FRAME, objects[k]["frame"])
            assert header_stamp_ns(tf) == times["/ground_truth/tf"][i] == times["/camera/color/image_raw"][i]
            T = pose_msg_to_matrix(tf.transform)
            assert np.allclose(T[:3, :], poses[:, :, k], atol=1e-6, rtol=0), f"object {k} (class {ids[k]})"


def test_nothing_outside_ground_truth_carries_object_poses(bag) -> None:
    by_topic, _, types = bag
    gt_names = {o["name"] for o in json.loads(by_topic["/ground_truth/objects"][0].data)["objects"]}
    for topic, msgs in by_topic.items():
        if topic.startswith("/ground_truth/"):
            continue
        assert types[topic] not in POSE_TYPES, topic
        for msg in msgs:
            if types[topic] == "tf2_msgs/msg/TFMessage":
                assert all(not str(t.child_frame_id).startswith("gt/") for t in msg.transforms), topic
                assert all(str(t.child_frame_id) not in gt_names for t in msg.transforms), topic
            if types[topic] == "std_msgs/msg/String":
                assert "gt/" not in msg.data and "pose" not in msg.data, topic


def test_label_png_gives_instance_segmentation(src: Path, meta: dict, tmp_path: Path) -> None:
    """GraspNet's label.png holds class ids; the bag holds instance ids (object index + 1) and
    /segmentation/labels names them, as the MuJoCo bags do."""
    folder = copy_frame(src, tmp_path / "frame")
    ids = meta["cls_indexes"].ravel()
    K, poses = meta["intrinsic_matrix"], meta["poses"]
    label = np.zeros((720, 1280), np.uint8)
    vv, uu = np.mgrid[0:720, 0:1280]
    for k, cid in enumerate(ids):
        uvw = K @ poses[:, 3, k]
        u, v = uvw[:2] / uvw[2]
        label[(uu - u) ** 2 + (vv - v) ** 2 < 15**2] = cid
    label[:5, :5] = 200  # a class id not in meta.mat: no object
    Image.fromarray(label).save(folder / "label.png")
    out = tmp_path / "seg.mcap"
    counts = graspnet_frame_to_bag(folder, out, frames=2, progress=False)
    assert counts["/camera/segmentation"] == 2 and counts["/segmentation/labels"] == 1
    by_topic, _, _ = read_all(out)
    seg = image_to_numpy(by_topic["/camera/segmentation"][0])
    assert by_topic["/camera/segmentation"][0].encoding == "16UC1" and seg.dtype == np.uint16
    want = np.zeros_like(seg)
    for k, cid in enumerate(ids):
        want[label == cid] = k + 1
    assert np.array_equal(seg, want)
    labels = {int(k): v for k, v in json.loads(by_topic["/segmentation/labels"][0].data).items()}
    objects = json.loads(by_topic["/ground_truth/objects"][0].data)["objects"]
    assert labels == {o["index"] + 1: o["label"] for o in objects}
    assert labels[ids.tolist().index(6) + 1] == "yellow banana"


def test_depth_factor_other_than_1000_is_metres(src: Path, meta: dict, tmp_path: Path) -> None:
    folder = copy_frame(src, tmp_path / "frame")
    scipy.io.savemat(folder / "meta.mat", {**{k: v for k, v in meta.items() if not k.startswith("__")},
                                           "factor_depth": np.array([[4000.0]])})
    out = tmp_path / "m.mcap"
    graspnet_frame_to_bag(folder, out, frames=1, progress=False)
    by_topic, _, _ = read_all(out)
    d = by_topic["/camera/depth/image_raw"][0]
    got = image_to_numpy(d)
    raw = np.asarray(Image.open(src / "depth.png"))
    assert d.encoding == "32FC1" and got.dtype == np.float32
    assert np.array_equal(np.isnan(got), raw == 0)
    assert np.array_equal(got[raw > 0], raw[raw > 0].astype(np.float32) / np.float32(4000.0))


def test_library_errors_are_input_errors(src: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a folder"):
        graspnet_frame_to_bag(tmp_path / "nope", tmp_path / "a.mcap", progress=False)
    with pytest.raises(ConfigError):
        graspnet_frame_to_bag(src, tmp_path / "a.mcap", frames=0, progress=False)
    with pytest.raises(ConfigError):
        graspnet_frame_to_bag(src, tmp_path / "a.mcap", rate_hz=float("nan"), progress=False)
    (tmp_path / "exists.mcap").mkdir()
    with pytest.raises(InputError, match="exists"):
        graspnet_frame_to_bag(src, tmp_path / "exists.mcap", progress=False)


def _break(kind: str, folder: Path, meta: dict) -> None:
    fields = {k: v for k, v in meta.items() if not k.startswith("__")}
    if kind == "no depth":
        (folder / "depth.png").unlink()
    elif kind == "corrupt colour":
        (folder / "color.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"definitely not image data" * 50)
    elif kind == "jpeg colour":
        Image.open(folder / "color.png").convert("RGB").save(folder / "color.png", format="JPEG")
    elif kind == "no intrinsics":
        del fields["intrinsic_matrix"]
        scipy.io.savemat(folder / "meta.mat", fields)
    elif kind in ("factor 0", "factor nan"):
        fields["factor_depth"] = np.array([[0.0 if kind == "factor 0" else np.nan]])
        scipy.io.savemat(folder / "meta.mat", fields)
    elif kind == "sizes differ":
        depth = np.asarray(Image.open(folder / "depth.png"))
        Image.fromarray(depth[:, :640].copy()).save(folder / "depth.png")
    elif kind == "junk meta":
        (folder / "meta.mat").write_bytes(b"not a mat file")
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind, needle", [
    ("no depth", "depth.png"),
    ("corrupt colour", "color.png"),
    ("jpeg colour", "PNG"),
    ("no intrinsics", "intrinsic_matrix"),
    ("factor 0", "factor_depth"),
    ("factor nan", "factor_depth"),
    ("sizes differ", "registered"),
    ("junk meta", "meta.mat"),
])
def test_broken_frame_is_one_error_line(kind: str, needle: str, src: Path, meta: dict, tmp_path: Path) -> None:
    folder = copy_frame(src, tmp_path / "frame")
    _break(kind, folder, meta)
    out = tmp_path / "out.mcap"
    proc = subprocess.run([ROS_GS, "bag", "from-graspnet", str(folder), str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and proc.stderr.strip().splitlines()[-1] == errors[0] and needle in errors[0], proc.stderr
    assert not out.exists(), "bad input must leave no partial bag"


def test_missing_folder_and_existing_out_are_one_error_line(src: Path, tmp_path: Path) -> None:
    for args in ([str(tmp_path / "no_such_frame"), str(tmp_path / "o.mcap")], [str(src), str(tmp_path)]):
        proc = subprocess.run([ROS_GS, "bag", "from-graspnet", *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("error:")
    assert tmp_path.exists()
