"""``ros-gs bag from-ouster`` on the real Ouster capture, read back with plain rosbags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore
from typer.testing import CliRunner

from ros_gs.cli.main import app
from ros_gs.datasets.ouster import ImuPacket, LidarScan, read_ouster_pcap
from ros_gs.sensors.pointcloud2 import pointcloud2_to_array

PCAP = "OS-1-128_v2.3.0_1024x10_lb_n3.pcap"
META = "OS-1-128_v2.3.0_1024x10.json"


@pytest.fixture(scope="module")
def ouster_bag(tmp_path_factory: pytest.TempPathFactory, ouster_dir: Path) -> tuple[Path, dict[str, list], list[int]]:
    out = tmp_path_factory.mktemp("bags") / "ouster.mcap"
    result = CliRunner().invoke(app, ["bag", "from-ouster", str(ouster_dir / PCAP), str(ouster_dir / META), str(out)])
    assert result.exit_code == 0, result.output
    by_topic: dict[str, list] = {}
    order: list[int] = []
    with AnyReader([out], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        for conn, t, raw in reader.messages():
            by_topic.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
            order.append(t)
    return ouster_dir, by_topic, order


def test_clouds_hold_the_decoded_scans(ouster_bag: tuple[Path, dict[str, list], list[int]]) -> None:
    src, by_topic, order = ouster_bag
    scans = [x for x in read_ouster_pcap(src / PCAP, src / META) if isinstance(x, LidarScan)]
    clouds = by_topic["/lidar/points"]
    assert len(clouds) == len(scans) == 3
    for (t, msg), scan in zip(clouds, scans):
        assert msg.header.frame_id == "os_sensor"
        assert [f.name for f in msg.fields] == ["x", "y", "z", "intensity", "t", "ring"]
        arr = pointcloud2_to_array(msg)
        assert len(arr) == len(scan.points) > 100_000
        for name in ("x", "y", "z", "intensity", "t", "ring"):
            assert np.array_equal(arr[name], scan.points[name]), name
        assert 0.0 <= arr["t"].min() and arr["t"].max() < 0.1  # one revolution at 10 Hz
        assert t == msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def test_imu_and_timing(ouster_bag: tuple[Path, dict[str, list], list[int]]) -> None:
    src, by_topic, order = ouster_bag
    packets = [x for x in read_ouster_pcap(src / PCAP, src / META) if isinstance(x, ImuPacket)]
    imu = by_topic["/imu/data"]
    assert len(imu) == len(packets) == 30
    stamps = np.array([t for t, _ in imu])
    # Relative timing is the sensor clock's, exactly; absolute time is the capture's epoch.
    assert np.array_equal(np.diff(stamps), np.diff([p.stamp_ns for p in packets]))
    assert np.median(np.diff(stamps)) == pytest.approx(1e7, rel=0.05)  # 100 Hz
    assert abs(stamps[0] - packets[0].capture_ns) < 50_000_000
    for (_, msg), p in zip(imu, packets):
        a = msg.linear_acceleration
        assert np.allclose([a.x, a.y, a.z], p.linear_acceleration)
        assert msg.orientation_covariance[0] == -1.0 and msg.header.frame_id == "os_imu"
    # Scans interleave with IMU by stamp in one log-time-ordered stream.
    scan_t = [t for t, _ in by_topic["/lidar/points"]]
    assert stamps.min() < scan_t[1] < stamps.max() and order == sorted(order)


def test_static_extrinsics(ouster_bag: tuple[Path, dict[str, list], list[int]]) -> None:
    _, by_topic, _ = ouster_bag
    (_, static), = by_topic["/tf_static"]
    tfs = {t.child_frame_id: t for t in static.transforms}
    lidar = tfs["os_lidar"].transform
    assert tfs["os_lidar"].header.frame_id == "os_sensor"
    assert lidar.translation.z == pytest.approx(0.03618)  # 36.18 mm in the metadata
    assert abs(lidar.rotation.z) == pytest.approx(1.0)  # 180 degrees about z
    imu = tfs["os_imu"].transform.translation
    assert (imu.x, imu.y, imu.z) == pytest.approx((0.006253, -0.011775, 0.007645))

