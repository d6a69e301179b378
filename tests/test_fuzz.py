"""Seeded fuzzing of every converter from outside data: valid messages and files, mutated at
random (sizes, steps, encodings, field layouts, NaN/inf/huge values, truncated or extended
buffers, random bytes).  Each call either returns or raises an ``InputError`` (what nodes count
as a skip and the command line prints as one line); anything else (IndexError, ValueError from
numpy, OverflowError, MemoryError, a hang) is a bug a broken build shows here.

Seeds are fixed so a failure reproduces; ``FUZZ_N`` cases per converter (more with the
environment variable ``ROS_GS_FUZZ_N``).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest

from ros_gs.errors import InputError
from ros_gs.runtime.typestore import MessageFactory

FUZZ_N = int(os.environ.get("ROS_GS_FUZZ_N", "150"))
make = MessageFactory()
WEIRD_NUMBERS = [0, -1, 1, 2, 3, 7, 2**31 - 1, 2**32 - 1, 10**9]
WEIRD_FLOATS = [0.0, -0.0, 1e-30, -1e30, 1e30, float("nan"), float("inf"), -float("inf")]


def survive(fn, *args, **kwargs) -> str:
    """Call and classify: 'ok' or 'input error'; anything else fails the test."""
    try:
        fn(*args, **kwargs)
        return "ok"
    except InputError:
        return "input error"


def mutate_bytes(rng: np.random.Generator, data: bytes) -> bytes:
    data = bytearray(data)
    kind = rng.integers(4)
    if kind == 0 and data:  # truncate
        return bytes(data[: rng.integers(len(data))])
    if kind == 1:  # extend
        return bytes(data) + rng.bytes(int(rng.integers(1, 64)))
    if kind == 2 and data:  # flip bytes
        for _ in range(int(rng.integers(1, 8))):
            data[rng.integers(len(data))] ^= int(rng.integers(1, 256))
        return bytes(data)
    return rng.bytes(int(rng.integers(0, 256)))


def test_images() -> None:
    from ros_gs.sensors.image import depth_to_metres, image_to_numpy, numpy_to_image

    rng = np.random.default_rng(1)
    encodings = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "16UC1", "32FC1", "8UC3", "16SC1", "64FC1",
                 "yuv422", "bayer_rggb8", "", "RGB8", "rgb16", "32FC3", "weird"]
    base = {
        "rgb8": numpy_to_image(make, rng.integers(0, 255, (6, 5, 3), dtype=np.uint8), "rgb8"),
        "16UC1": numpy_to_image(make, rng.integers(0, 5000, (6, 5), dtype=np.uint16), "16UC1"),
        "32FC1": numpy_to_image(make, rng.uniform(0, 5, (6, 5)).astype(np.float32), "32FC1"),
    }
    seen = set()
    for k in range(FUZZ_N):
        msg = copy.deepcopy(base[list(base)[k % 3]])
        field = rng.integers(6)
        if field == 0:
            msg.encoding = str(rng.choice(encodings))
        elif field == 1:
            msg.width, msg.height = (int(rng.choice(WEIRD_NUMBERS)) for _ in range(2))
        elif field == 2:
            msg.step = int(rng.choice(WEIRD_NUMBERS))
        elif field == 3:
            msg.data = np.frombuffer(mutate_bytes(rng, bytes(msg.data)), dtype=np.uint8)
        elif field == 4:
            msg.is_bigendian = 1 - msg.is_bigendian
        else:
            msg.data = np.full(len(msg.data), 255, np.uint8)  # NaN/inf patterns in float images
        seen.add(survive(image_to_numpy, msg))
        seen.add(survive(depth_to_metres, msg))
    assert seen == {"ok", "input error"}  # the fuzzer reaches both


def test_compressed_images() -> None:
    from ros_gs.sensors.compressed import compressed_to_numpy, numpy_to_compressed

    rng = np.random.default_rng(2)
    good = [numpy_to_compressed(make, rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), "jpeg"),
            numpy_to_compressed(make, rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), "png"),
            numpy_to_compressed(make, rng.uniform(0.5, 4, (8, 8)).astype(np.float32), "compressedDepth")]
    formats = ["jpeg", "png", "rgb8; jpeg compressed bgr8", "16UC1; compressedDepth", "32FC1; compressedDepth png",
               "", "gif", "bgr8; png compressed rgb8", "; ;"]
    seen = set()
    for k in range(FUZZ_N):
        msg = copy.deepcopy(good[k % 3])
        if rng.random() < 0.4:
            msg.format = str(rng.choice(formats))
        if rng.random() < 0.8:
            msg.data = np.frombuffer(mutate_bytes(rng, bytes(msg.data)), dtype=np.uint8)
        seen.add(survive(compressed_to_numpy, msg))
    assert seen == {"ok", "input error"}


def test_point_clouds() -> None:
    from ros_gs.sensors.pointcloud2 import array_to_pointcloud2, pointcloud2_to_array, scan_arrays, xyz_from_cloud

    rng = np.random.default_rng(3)
    cloud = np.zeros(20, np.dtype([("x", np.float32), ("y", np.float32), ("z", np.float32), ("t", np.float32)]))
    for name in cloud.dtype.names:
        cloud[name] = rng.normal(size=20)
    base = array_to_pointcloud2(make, cloud)
    seen = set()
    for _ in range(FUZZ_N):
        msg = copy.deepcopy(base)
        for _ in range(int(rng.integers(1, 3))):
            kind = rng.integers(7)
            if kind == 0:
                msg.width, msg.height = (int(rng.choice(WEIRD_NUMBERS)) for _ in range(2))
            elif kind == 1:
                msg.point_step = int(rng.choice(WEIRD_NUMBERS + [16, 12]))
            elif kind == 2:
                msg.row_step = int(rng.choice(WEIRD_NUMBERS))
            elif kind == 3 and msg.fields:
                f = msg.fields[int(rng.integers(len(msg.fields)))]
                f.datatype = int(rng.integers(0, 12))
                f.offset = int(rng.choice([0, 2, 14, 15, 100, 2**31 - 1]))
                f.count = int(rng.choice([0, 1, 2, 10**6]))
            elif kind == 4:
                msg.data = np.frombuffer(mutate_bytes(rng, bytes(msg.data)), dtype=np.uint8)
            elif kind == 5 and msg.fields:
                msg.fields = msg.fields[: int(rng.integers(len(msg.fields)))]
            elif kind == 6:
                raw = bytes(msg.data)
                data = np.frombuffer(raw[: len(raw) // 4 * 4], np.float32).copy()
                if len(data):
                    data[rng.integers(len(data), size=5)] = rng.choice(WEIRD_FLOATS, size=5)
                msg.data = data.view(np.uint8)
        seen.add(survive(lambda m: xyz_from_cloud(pointcloud2_to_array(m)), msg))
        seen.add(survive(scan_arrays, msg, "/lidar/points", 1000))
    assert seen == {"ok", "input error"}


def test_imu_and_camera_info() -> None:
    from ros_gs.sensors.camera import PinholeCamera, camera_from_info, camera_to_info
    from ros_gs.sensors.imu import ImuSample, imu_from_msg, imu_to_msg

    rng = np.random.default_rng(4)
    imu = imu_to_msg(make, ImuSample(1, "imu", [0, 0, 0, 1], [0.1, 0, 0], [0, 0, 9.81]))
    info = camera_to_info(make, PinholeCamera(640, 480, np.array([[525.0, 0, 320], [0, 525, 240], [0, 0, 1]])))
    seen = set()
    for _ in range(FUZZ_N):
        m = copy.deepcopy(imu)
        vec = [m.angular_velocity, m.linear_acceleration, m.orientation][int(rng.integers(3))]
        setattr(vec, str(rng.choice(["x", "y", "z"])), float(rng.choice(WEIRD_FLOATS)))
        if rng.random() < 0.3:
            m.orientation_covariance = rng.choice(WEIRD_FLOATS, size=9)
        seen.add(survive(imu_from_msg, m))
        c = copy.deepcopy(info)
        kind = rng.integers(5)
        if kind == 0:
            c.k = rng.choice(WEIRD_FLOATS, size=9)
        elif kind == 1:
            c.width, c.height = (int(rng.choice(WEIRD_NUMBERS)) for _ in range(2))
        elif kind == 2:
            c.distortion_model = str(rng.choice(["plumb_bob", "rational_polynomial", "equidistant", "fisheye", "", "x"]))
            c.d = rng.choice(WEIRD_FLOATS, size=int(rng.choice([0, 1, 4, 5, 8, 14])))
        elif kind == 3:
            c.binning_x, c.binning_y = (int(rng.choice(WEIRD_NUMBERS)) for _ in range(2))
        else:
            c.p = rng.choice(WEIRD_FLOATS, size=12)
        seen.add(survive(camera_from_info, c))
    assert seen == {"ok", "input error"}


def test_tf_messages() -> None:
    from ros_gs.sensors.poses import matrix_to_transform_stamped
    from ros_gs.sensors.stamps import make_header
    from ros_gs.sensors.tf_buffer import TfBuffer

    rng = np.random.default_rng(5)
    frames = ["world", "base", "camera", "", "world", "/base", "a" * 300]
    seen = set()
    buf = TfBuffer()
    for k in range(FUZZ_N):
        T = np.eye(4)
        T[:3, 3] = rng.normal(size=3)
        t = matrix_to_transform_stamped(make, T, make_header(make, int(rng.integers(0, 10**10)), str(rng.choice(frames))),
                                        str(rng.choice(frames)))
        q = t.transform.rotation
        if rng.random() < 0.5:
            setattr(q, str(rng.choice(["x", "y", "z", "w"])), float(rng.choice(WEIRD_FLOATS)))
        if rng.random() < 0.2:
            q.x = q.y = q.z = q.w = 0.0
        if rng.random() < 0.3:
            t.transform.translation.x = float(rng.choice(WEIRD_FLOATS))
        seen.add(survive(buf.add_tf_message, make("tf2_msgs/msg/TFMessage", transforms=[t]), static=bool(k % 2)))
        seen.add(survive(buf.lookup, str(rng.choice(frames)), str(rng.choice(frames)), int(rng.integers(0, 10**10))))
    assert seen == {"ok", "input error"}


def test_ply_files(tmp_path: Path) -> None:
    from ros_gs.gaussians.ply import read_ply_data

    rng = np.random.default_rng(6)
    header = (b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
              b"property float z\nproperty float opacity\nend_header\n")
    good = header + np.arange(12, dtype="<f4").tobytes()
    ascii_ply = b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\nend_header\n0 1 2\n3 4 5\n"
    seen = set()
    for k in range(FUZZ_N):
        data = mutate_bytes(rng, good if k % 2 else ascii_ply)
        if rng.random() < 0.3:  # a header that lies about the counts
            data = data.replace(b"vertex 3", b"vertex " + str(int(rng.choice(WEIRD_NUMBERS))).encode())
        path = tmp_path / f"f{k}.ply"
        path.write_bytes(data)
        seen.add(survive(read_ply_data, path))
    assert seen == {"ok", "input error"}


def test_bags(tmp_path: Path) -> None:
    """Damaged bag files: reading them is an InputError (DatasetError), never anything else."""
    from ros_gs.bags.reader import BagReader
    from ros_gs.bags.writer import BagWriter

    rng = np.random.default_rng(7)
    src = tmp_path / "src"
    with BagWriter(src) as w:
        for k in range(30):
            w.write("/chatter", "std_msgs/msg/String", make("std_msgs/msg/String", data=f"m{k}"), 1000 + k)
    mcap = next(src.glob("*.mcap"))
    good = mcap.read_bytes()

    def read_all(path: Path) -> None:
        with BagReader(path) as reader:
            for _ in reader.messages():
                pass

    seen = set()
    for k in range(max(20, FUZZ_N // 5)):
        bag = tmp_path / f"b{k}"
        bag.mkdir()
        (bag / "metadata.yaml").write_bytes((src / "metadata.yaml").read_bytes())
        (bag / mcap.name.replace("src", f"b{k}")).write_bytes(mutate_bytes(rng, good))
        seen.add(survive(read_all, bag))
    assert "input error" in seen


# every command-line entry with a missing input, and with a file of garbage where its input goes
# ({junk}: random bytes named .mcap / .ply / .pcap / .json; {empty}: an empty folder)
ENTRIES = [
    ["render", "{x}.ply", "{out}/x.png"],
    ["bag", "info", "{x}.mcap"],
    ["bag", "info", "{x}.mcap", "--check"],
    ["replay", "{x}.mcap", "--node", "mapper"],
    ["eval", "{x}.mcap", "{x}.mcap"],
    ["eval-objects", "{x}.mcap", "{x}.mcap"],
    ["grasp", "{x}.mcap", "the red box"],
    ["query-grasps", "{x}.mcap", "the red box"],
    ["bag", "from-rgbd", "{dir}", "{out}/rgbd"],
    ["bag", "from-graspnet", "{dir}", "{out}/graspnet"],
    ["bag", "from-ouster", "{x}.pcap", "{x}.json", "{out}/ouster"],
]


@pytest.mark.parametrize("kind", ["missing", "junk"])
@pytest.mark.parametrize("args", ENTRIES, ids=lambda a: " ".join(a[:2]))
def test_command_line_entries_with_missing_or_junk_inputs_are_one_line(args: list[str], kind: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    rng = np.random.default_rng(len(args))
    empty = tmp_path / "empty"
    empty.mkdir()
    if kind == "junk":
        for ext in ("mcap", "ply", "pcap", "json"):
            (tmp_path / f"junk.{ext}").write_bytes(rng.bytes(4096))
        x, folder = tmp_path / "junk", empty
    else:
        x, folder = tmp_path / "missing", tmp_path / "missing_dir"
    argv = [a.format(x=x, out=tmp_path, dir=folder) for a in args]
    res = subprocess.run([sys.executable, "-m", "ros_gs.cli.main", *argv], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert res.returncode in (1, 2) and "Traceback" not in res.stderr, res.stderr[-1500:]
    assert res.stderr.strip().splitlines()[-1].startswith("error:"), res.stderr[-800:]
