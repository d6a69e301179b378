"""Foundation benchmark: message conversions, bag import and the replay runtime's overhead.

Prints a table and writes ``benchmarks/results/io.json``.  Each figure is the median of
several repetitions measured in this one run on this machine; compare ratios, not absolutes
across machines.  Usage: ``python benchmarks/bench_io.py [--frames 60]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ros_gs.bags.from_ouster import ouster_pcap_to_bag
from ros_gs.bags.from_rgbd import rgbd_folder_to_bag
from ros_gs.bags.reader import BagReader
from ros_gs.datasets.ouster import LidarScan, read_ouster_pcap
from ros_gs.nodes.image_stats import ImageStatsNode
from ros_gs.runtime.replay import ReplayRuntime
from ros_gs.runtime.typestore import MessageFactory
from ros_gs.sensors.image import image_to_numpy, numpy_to_image
from ros_gs.sensors.pointcloud2 import array_to_pointcloud2, pointcloud2_to_array
from ros_gs.sensors.tf_buffer import TfBuffer

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def timeit(fn, repeat: int = 7) -> float:
    """Median seconds of ``repeat`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class NullNode:
    """Subscribes to the image topics and does nothing: the runtime's own cost."""

    NAME = "null"

    def __init__(self, ctx) -> None:
        for topic in ("/camera/color/image_raw", "/camera/depth/image_raw"):
            ctx.create_subscription("sensor_msgs/msg/Image", topic, lambda m: None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=60, help="7-Scenes frames to import and replay")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "io.json")
    args = ap.parse_args()
    make = MessageFactory()
    rows: list[tuple[str, float, str]] = []

    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    img = numpy_to_image(make, rgb, "bgr8", 0, "cam")
    raw = make.serialize(img, "sensor_msgs/msg/Image")
    rows.append(("Image 640x480 bgr8 -> numpy rgb", timeit(lambda: image_to_numpy(img)) * 1e3, "ms"))
    rows.append(("Image 640x480 CDR deserialize", timeit(lambda: make.deserialize(raw, "sensor_msgs/msg/Image")) * 1e3, "ms"))

    ouster = DATA / "ouster"
    scan = next(x for x in read_ouster_pcap(ouster / "OS-1-128_v2.3.0_1024x10_lb_n3.pcap", ouster / "OS-1-128_v2.3.0_1024x10.json") if isinstance(x, LidarScan))
    cloud = array_to_pointcloud2(make, scan.points, 0, "os_sensor")
    n = len(scan.points)
    rows.append((f"PointCloud2 {n} pts -> structured array", timeit(lambda: pointcloud2_to_array(cloud)) * 1e3, "ms"))
    rows.append((f"structured array {n} pts -> PointCloud2", timeit(lambda: array_to_pointcloud2(make, scan.points, 0, "s")) * 1e3, "ms"))
    rows.append(("Ouster pcap 3 scans + 30 IMU decode", timeit(lambda: list(read_ouster_pcap(ouster / "OS-1-128_v2.3.0_1024x10_lb_n3.pcap", ouster / "OS-1-128_v2.3.0_1024x10.json")), 3), "s"))

    tf = TfBuffer()
    for k in range(300):
        tf.set_transform("world", "base", k * 10_000_000, [k * 0.01, 0, 0], [0, 0, np.sin(k * 0.001), np.cos(k * 0.001)])
    tf.set_transform("base", "cam", 0, [0.1, 0, 0.2], [0, 0, 0, 1], static=True)
    rows.append(("TF lookup world<-cam, interpolated", timeit(lambda: tf.lookup("world", "cam", 1_234_567_890), 51) * 1e6, "us"))

    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "k.mcap"
        t = time.perf_counter()
        rgbd_folder_to_bag(DATA / "7scenes_kitchen", bag, max_frames=args.frames, progress=False)
        rows.append((f"bag from-rgbd ({args.frames} frames)", args.frames / (time.perf_counter() - t), "frames/s"))

        def read_all() -> None:
            with BagReader(bag) as r:
                for m in r.raw_messages(["/camera/color/image_raw", "/camera/depth/image_raw"]):
                    r.decode(m)

        t_read = timeit(read_all, 3)
        msgs = 2 * args.frames

        def replay(node) -> None:
            rt = ReplayRuntime(bag, None)
            rt.add_node(node)
            rt.run()

        t_null = timeit(lambda: replay(NullNode), 3)
        t_stats = timeit(lambda: replay(ImageStatsNode), 3)
        rows.append(("read+decode images (no runtime)", msgs / t_read, "msgs/s"))
        rows.append(("replay, null node", msgs / t_null, "msgs/s"))
        rows.append(("replay overhead per message vs plain read", (t_null - t_read) / msgs * 1e6, "us"))
        rows.append(("replay, image_stats node", args.frames / t_stats, "frames/s"))
        t = time.perf_counter()
        ouster_pcap_to_bag(ouster / "OS-1-128_v2.3.0_1024x10_lb_n3.pcap", ouster / "OS-1-128_v2.3.0_1024x10.json", Path(tmp) / "o.mcap", progress=False)
        rows.append(("bag from-ouster (3 scans)", time.perf_counter() - t, "s"))

    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'value':>12}  unit")
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:12.3f}  {unit}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": {"cpu_count": __import__("os").cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
                "results": [{"name": n, "value": v, "unit": u} for n, v, u in rows],
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
