"""The whole graph on a moving camera (issue 17), through the shipped launch file: ``ros-gs bag
from-mujoco orbit`` bags (320x240 RGB-D at 10 Hz with IMU, ``--noise``) with the ground truth and
MuJoCo's masks stripped from the input, replayed with ``--launch launch/ros_gs.launch.yaml
--arg camera:=/cameras/head``; judged by MuJoCo's camera path (ATE after a rigid alignment) and
by the map rendered at the estimated poses against the camera images (PSNR); each node's time per
input from its /diagnostics.  No default was tuned on orbit bags (the mapper's were on the
kitchen frames); the seeds here (10-12) are used nowhere else.

Writes ``benchmarks/results/graph.json`` and one HTML report per run under ``out/bench_graph/``.
Usage: ``python benchmarks/bench_graph.py [--seeds 10 11 12] [--duration 8] [--imu]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "osmesa")
REPO = Path(__file__).resolve().parents[1]

from ros_gs.bags.from_mujoco import mujoco_scene_to_bag  # noqa: E402
from ros_gs.bags.reader import BagReader  # noqa: E402
from ros_gs.bags.writer import BagWriter  # noqa: E402
from ros_gs.report import graph_report  # noqa: E402
from ros_gs.report.graph import _diagnostics  # noqa: E402

STRIP = ("/ground_truth/", "/segmentation/", "/cameras/head/segmentation")  # what a real camera would not give


def make_bags(seed: int, duration: float, folder: Path) -> tuple[Path, Path]:
    full = folder / f"orbit_{seed}.mcap"
    mujoco_scene_to_bag("orbit", full, duration_s=duration, seed=seed, width=320, height=240, num_cameras=1,
                        camera_rate_hz=10.0, noise=True, overwrite=True, progress=False)
    inp = folder / f"orbit_{seed}_input.mcap"
    with BagReader(full) as reader, BagWriter(inp, overwrite=True) as writer:
        for raw, _ in reader.messages():
            if not raw.topic.startswith(STRIP):
                writer.write_raw(raw.topic, raw.msgtype, raw.raw, raw.log_ns)
    return full, inp


def run(seed: int, duration: float, imu: bool, folder: Path) -> dict:
    full, inp = make_bags(seed, duration, folder)
    tag = f"orbit_{seed}{'_imu' if imu else ''}"
    out = folder / f"{tag}_out.mcap"
    cmd = [sys.executable, "-m", "ros_gs.cli.main", "replay", str(inp), "--launch", str(REPO / "launch" / "ros_gs.launch.yaml"),
           "--arg", "camera:=/cameras/head", "--out", str(out), "--overwrite"]
    if imu:
        cmd += ["--arg", "camera_imu:=/imu/data"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"replay failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    html, figures = graph_report(full, out, folder / f"{tag}_report.html")
    (mapper,) = [s for s in _diagnostics(out) if s["name"] == "/mapper"]
    values = dict(mapper["values"])
    row = {"seed": seed, "imu": imu, "duration_s": duration, "wall_s": wall, "report": str(html),
           "ate_cm": float(figures["ATE RMSE (cm)"]), "path_m": float(figures["path (m)"]),
           "map_psnr_db": float(figures["map render PSNR (dB, median)"]), "gaussians": int(figures["map Gaussians"]),
           "frames": int(values["frames processed"]), "keyframes": int(values["keyframes"]),
           "ms_per_frame": wall * 1000 / max(int(values["frames processed"]), 1)}
    print(f"seed {seed}{' imu' if imu else ''}: ATE {row['ate_cm']:.2f} cm over {row['path_m']:.2f} m, map PSNR "
          f"{row['map_psnr_db']:.1f} dB, {row['frames']} frames in {wall:.0f} s ({row['ms_per_frame']:.0f} ms per frame incl. start-up)",
          flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12])
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--imu", action="store_true", help="also run each seed with the camera's IMU as the mapper's motion prior")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "graph.json")
    args = ap.parse_args()
    folder = REPO / "out" / "bench_graph"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [run(seed, args.duration, imu, folder) for seed in args.seeds for imu in ((False, True) if args.imu else (False,))]
    result = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "rows": rows,
              "summary": {"ate_cm_max": max(r["ate_cm"] for r in rows), "ate_cm_mean": sum(r["ate_cm"] for r in rows) / len(rows),
                          "map_psnr_db_min": min(r["map_psnr_db"] for r in rows)}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["summary"], indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
