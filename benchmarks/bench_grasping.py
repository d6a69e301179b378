"""Grasping benchmark on MuJoCo's tabletop: for several scene seeds and a query per object
(paraphrased, not the label itself), plan with the depth points of the three table cameras,
then let MuJoCo execute the best grasp (approach, close, lift 15 cm).  Reports which object the
query chose, the lift success rate, planning time; draws the grasps of seed 0 over the front
camera image.  Writes ``benchmarks/results/grasping.json`` and ``grasping_tabletop.png``.
Usage: ``python benchmarks/bench_grasping.py [--seeds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "osmesa")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "grasping"))

from mujoco_gripper import execute, record_tabletop  # noqa: E402

from ros_gs.grasping import GraspPlanner, SceneObject  # noqa: E402
from ros_gs.grasping.draw import draw_grasps  # noqa: E402
from ros_gs.sim.scenes import TABLE_TOP_Z  # noqa: E402

QUERIES = {  # object -> a query that does not repeat its label
    "red_box": "the red block",
    "blue_mug": "a cup",
    "yellow_banana": "the banana",
    "green_ball": "pick up the ball",
    "orange_egg": "the egg",
    "purple_carton": "the tall purple package",
    "white_book": "a book",
    "cyan_can": "the tin can",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "grasping.json")
    args = ap.parse_args()
    rows = []
    print(f"{'seed':>4} {'query':28} {'chosen':16} {'grasps':>6} {'plan s':>7} {'lift cm':>8}")
    for seed in range(args.seeds):
        spec, frames, _, points = record_tabletop(seed)
        seen = sorted(points)
        planner = GraspPlanner()
        planner.set_scene([SceneObject(spec.objects[i].label, points[i]) for i in seen], TABLE_TOP_Z)
        drawn = []
        for obj in spec.objects:
            query = QUERIES[obj.name]
            t = time.perf_counter()
            r = planner.query(query)
            sec = time.perf_counter() - t
            chosen = spec.objects[seen[r.object_index]].name if r.object_index >= 0 else ""
            lift = execute(spec.xml, r.grasps[0], planner.config.gripper, chosen) if r.grasps else 0.0
            rows.append({"seed": seed, "object": obj.name, "query": query, "chosen": chosen, "correct": chosen == obj.name,
                         "grasps": len(r.grasps), "plan_s": sec, "lift_m": lift, "lifted": lift > 0.12,
                         "message": r.message})
            drawn += r.grasps[:3]
            print(f"{seed:4d} {query:28} {chosen:16} {len(r.grasps):6d} {sec:7.2f} {lift * 100:8.1f}", flush=True)
        if seed == 0:
            from PIL import Image

            f = next(fr for fr in frames if fr.camera == "front")
            png = args.out.with_name("grasping_tabletop.png")
            Image.fromarray(draw_grasps(f.rgb, f.K, f.T_world_cam, drawn, planner.config.gripper, max_grasps=len(drawn))).save(png)
    planned = [r for r in rows if r["grasps"]]
    summary = {
        "queries": len(rows),
        "object_chosen_correctly": sum(r["correct"] for r in rows),
        "with_grasps": len(planned),
        "lifted_of_planned": sum(r["lifted"] for r in planned),
        "median_plan_s": float(np.median([r["plan_s"] for r in rows])),
    }
    print(json.dumps(summary))
    machine = {"python": platform.python_version(), "cpu_count": os.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "summary": summary, "results": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
