"""Speed of the ``physics_tracker``'s predict-correct loop (issue 15 asks 30 Hz for the push
scene's objects, 3 cameras at 160x120, on this CPU): the shipped node replayed in-process on a
``push`` bag (MuJoCo's masks, as ``config/objects_mujoco.yaml``), with the core calls timed:

* ``update``: one image set, the predict-correct loop (render the bodies' Gaussians from the
  three cameras, the visual forces through the renderer's backward pass, the physics step);
* ``predict``: the 0.5 s rollout published on ``/ros_gs/objects/predicted`` at every update;
* the whole callback per set (image conversion, both of the above, the messages).

Writes ``benchmarks/results/tracker_speed.json``.  Usage: ``python benchmarks/bench_tracker_speed.py``.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "osmesa")
REPO = Path(__file__).resolve().parents[1]

from ros_gs.bags.from_mujoco import mujoco_scene_to_bag  # noqa: E402
from ros_gs.nodes.physics_tracker import PhysicsTrackerNode  # noqa: E402
from ros_gs.physics.tracker import ObjectTracker  # noqa: E402
from ros_gs.runtime.replay import ReplayRuntime  # noqa: E402


def timed(cls, name: str, store: list[float]) -> None:
    original = getattr(cls, name)

    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            store.append(time.perf_counter() - t)

    setattr(cls, name, wrapper)


def stats(xs: list[float]) -> dict:
    a = np.array(xs[1:] if len(xs) > 1 else xs) * 1e3  # the first call compiles kernels
    return {"calls": len(xs), "median_ms": float(np.median(a)), "mean_ms": float(a.mean()), "p90_ms": float(np.percentile(a, 90)),
            "hz_at_median": float(1e3 / np.median(a))}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench_tracker_speed_"))
    bag = work / "push.mcap"
    mujoco_scene_to_bag("push", bag, duration_s=2.2, seed=5, width=160, height=120, num_cameras=3, camera_rate_hz=30.0,
                        noise=True, progress=False)
    times: dict[str, list[float]] = {"update": [], "predict": [], "callback": []}
    timed(ObjectTracker, "update", times["update"])
    timed(ObjectTracker, "predict", times["predict"])
    timed(PhysicsTrackerNode, "on_set", times["callback"])
    rt = ReplayRuntime(bag, work / "out.mcap", overrides={"physics_tracker": {
        "cameras": ["/cameras/front", "/cameras/left", "/cameras/right"], "world.ground_height": 0.75, "use_segmentation": True}})
    node = rt.add_node(PhysicsTrackerNode)
    report = rt.run()
    assert not report.errors, report.errors
    result = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "device": str(node.world.device), "particles": node.world.num_particles, "gaussians": len(node.tracker.binding),
              **{k: stats(v) for k, v in times.items()}}
    out = REPO / "benchmarks" / "results" / "tracker_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print("| part | median | p90 | rate at the median |\n|---|---|---|---|")
    for k in ("update", "predict", "callback"):
        s = result[k]
        print(f"| {k} | {s['median_ms']:.1f} ms | {s['p90_ms']:.1f} ms | {s['hz_at_median']:.1f} Hz |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
