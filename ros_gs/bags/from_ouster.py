"""``ros-gs bag from-ouster``: an Ouster pcap + metadata JSON -> rosbag2.

Topics:

- ``/lidar/points``  sensor_msgs/PointCloud2, frame ``os_sensor``: x, y, z (m), intensity,
  t (float32 seconds since the header stamp, per point, for deskewing), ring (beam index)
- ``/imu/data``      sensor_msgs/Imu, frame ``os_imu`` (axes of ``os_sensor``: the reader
  rotates the samples into them), no orientation (covariance[0] = -1)
- ``/tf_static``     ``os_sensor`` -> ``os_lidar`` and ``os_sensor`` -> ``os_imu``

Stamps: the sensor's own clock (time since boot on these captures) gives exact relative
timing between columns, scans and IMU samples; it is shifted onto the capture's wall clock
by one offset, taken from the first packet (capture time - sensor time), so the bag has
epoch stamps and keeps the sensor's timing.  Log time = header stamp; scans are emitted
after their last packet, so messages are reordered through a small time window before writing.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ros_gs.bags.writer import BagWriter
from ros_gs.datasets.ouster import ImuPacket, LidarScan, OusterMetadata, OusterReadStats, read_ouster_pcap
from ros_gs.runtime.qos import LATCHED_QOS, SENSOR_QOS
from ros_gs.sensors.imu import ImuSample, imu_to_msg
from ros_gs.sensors.pointcloud2 import array_to_pointcloud2
from ros_gs.sensors.poses import matrix_to_transform_stamped
from ros_gs.sensors.stamps import make_header

log = logging.getLogger("ros_gs.bags")

SENSOR_FRAME, LIDAR_FRAME, IMU_FRAME = "os_sensor", "os_lidar", "os_imu"
POINTS_TOPIC, IMU_TOPIC = "/lidar/points", "/imu/data"
#: Scans arrive up to one revolution (0.1 s at 10 Hz) after the IMU packets around them.
_REORDER_WINDOW_NS = 2 * 10**9


def _mm_to_m(T_mm: np.ndarray) -> np.ndarray:
    T = np.array(T_mm, dtype=np.float64)
    T[:3, 3] *= 1e-3
    return T


def ouster_pcap_to_bag(
    pcap: Path | str,
    metadata: Path | str,
    out: Path | str,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, int]:
    """Write the capture's scans and IMU samples to ``out`` (MCAP); returns counts per topic."""
    meta = OusterMetadata.from_json(metadata)
    stats = OusterReadStats()
    offset_ns: int | None = None
    pending: list[tuple[int, int, str, object]] = []
    seq = itertools.count()
    with BagWriter(out, overwrite=overwrite) as bag:
        make = bag.factory

        def flush(before_ns: float) -> None:
            while pending and pending[0][0] < before_ns:
                t, _, topic, item = heapq.heappop(pending)
                if isinstance(item, LidarScan):
                    msg = array_to_pointcloud2(make, item.points, t, SENSOR_FRAME)
                    bag.write(topic, "sensor_msgs/msg/PointCloud2", msg, t, SENSOR_QOS)
                else:
                    sample = ImuSample(t, IMU_FRAME, None, item.angular_velocity, item.linear_acceleration)
                    bag.write(topic, "sensor_msgs/msg/Imu", imu_to_msg(make, sample), t, SENSOR_QOS)

        for item in tqdm(read_ouster_pcap(pcap, meta, stats), desc="packets", unit="msg", disable=not progress):
            if offset_ns is None:
                offset_ns = item.capture_ns - item.stamp_ns
                static_stamp = item.capture_ns
                T_imu = _mm_to_m(meta.imu_to_sensor_transform)
                T_imu[:3, :3] = np.eye(3)  # samples are already in sensor axes
                transforms = [
                    matrix_to_transform_stamped(make, _mm_to_m(meta.lidar_to_sensor_transform), make_header(make, static_stamp, SENSOR_FRAME), LIDAR_FRAME),
                    matrix_to_transform_stamped(make, T_imu, make_header(make, static_stamp, SENSOR_FRAME), IMU_FRAME),
                ]
                bag.write("/tf_static", "tf2_msgs/msg/TFMessage", make("tf2_msgs/msg/TFMessage", transforms=transforms), static_stamp, LATCHED_QOS)
            stamp = item.stamp_ns + offset_ns
            if isinstance(item, LidarScan):
                if not item.complete:
                    log.warning("scan %d is incomplete (%d of %d columns)", item.frame_id, int(item.column_valid.sum()), meta.columns_per_frame)
                heapq.heappush(pending, (stamp, next(seq), POINTS_TOPIC, item))
            elif isinstance(item, ImuPacket):
                heapq.heappush(pending, (stamp, next(seq), IMU_TOPIC, item))
            flush(stamp - _REORDER_WINDOW_NS)
        flush(float("inf"))
        counts = dict(bag.counts)
    if stats.skipped:
        log.warning("skipped %d malformed or foreign packets/records: %s", stats.skipped, stats)
    if offset_ns is None:
        log.warning("%s holds no Ouster lidar or IMU packets for this metadata", pcap)
    return counts
