"""Wrong physical parameters (issue 15): the ``physics_tracker`` node with its objects' mass
(``density``) or friction (``world.friction``) mis-set by x0.3 and x3, judged against MuJoCo on
``push`` and ``drop`` (160x120, 3 cameras at 30 Hz, ``--noise``, MuJoCo's masks as in
``config/objects_mujoco.yaml``, ground truth stripped from the input, seed 5).

Three ways to run with the wrong parameters:

* open loop: no visual forces and no drag (``forces.gain`` 0, ``forces.damping`` 0): the world
  runs from the first frame's objects on its own;
* corrected: visual forces, the friction left as set (``estimate_friction`` false);
* corrected + measured friction: as shipped (each object's friction measured from its free slides
  and used by the predictions; tracking keeps the friction as set, so its tracking error is the
  same as "corrected").

The figures are the median position error of every moving object's tracked motion (``ros-gs
eval-objects``), the ratio open loop / corrected, and for the corrected runs the median error of
the predictions 0.5 s ahead while objects move (on ``push`` those made after the paddle lets go).  On ``push`` the open loop also misses the
paddle it cannot see (the box stays where it was), so its error is mostly that; on ``drop``
nothing unseen acts and the open loop error is the parameters' and the first view's.

Writes ``benchmarks/results/wrong_params.json``.  Usage: ``python benchmarks/bench_wrong_params.py [--seed 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "osmesa")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_prediction import DURATION, make_bags  # noqa: E402

from ros_gs.bags.evaluate import evaluate_objects, evaluate_predictions  # noqa: E402
from ros_gs.bags.reader import BagReader  # noqa: E402
from ros_gs.sim.contacts import last_contact_s  # noqa: E402

DENSITY, FRICTION = 500.0, 0.5  # the node's defaults (PhysicsTrackerParams.density, WorldConfig.friction)
CASES = {"mass x0.3": {"density": 0.3 * DENSITY}, "mass x3": {"density": 3 * DENSITY},
         "friction x0.3": {"world.friction": 0.3 * FRICTION}, "friction x3": {"world.friction": 3 * FRICTION}}
MODES = {"open loop": {"forces.gain": 0.0, "forces.damping": 0.0, "estimate_friction": False},
         "corrected": {"estimate_friction": False}, "corrected + measured friction": {}}


def params_file(path: Path, overrides: dict) -> Path:
    lines = ["physics_tracker:", "  ros__parameters:", "    cameras: [/cameras/front, /cameras/left, /cameras/right]",
             "    world.ground_height: 0.75", "    use_segmentation: true"]
    lines += [f"    {k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in overrides.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def errors(inp: Path, full: Path, overrides: dict, work: Path, tag: str, scene: str, seed: int) -> tuple[float, float | None]:
    """(median tracking error of the moving objects, median prediction error or None) in metres."""
    out = work / f"{tag}.mcap"
    res = subprocess.run([sys.executable, "-m", "ros_gs.cli.main", "replay", str(inp), "--node", "physics_tracker",
                          "--params", str(params_file(work / f"{tag}.yaml", overrides)), "--out", str(out), "--overwrite"],
                         capture_output=True, text=True, cwd=REPO)
    if res.returncode != 0:
        raise RuntimeError(f"replay {tag} failed: {res.stdout[-1500:]} {res.stderr[-1500:]}")
    track = evaluate_objects(out, full)
    moving = track.moved_m > 0.02
    tracking = float(np.median(track.position_error_m[:, moving])) if moving.any() else float("nan")
    if overrides.get("forces.gain") == 0.0:
        return tracking, None
    since = None
    if scene == "push":
        with BagReader(full) as reader:
            since = reader.start_ns + int(last_contact_s("push", "pusher_paddle", DURATION["push"], seed=seed) * 1e9)
    return tracking, evaluate_predictions(out, full).summary(since_ns=since)["predicted_m"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--scenes", nargs="+", default=["push", "drop"])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "wrong_params.json")
    ap.add_argument("--work", type=Path, default=REPO / "out" / "bench_wrong_params")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for scene in args.scenes:
        full, inp = make_bags(scene, args.seed, args.work)
        for case, wrong in CASES.items():
            row = {"scene": scene, "seed": args.seed, "wrong": case}
            for mode, how in MODES.items():
                tag = f"{scene}_{case}_{mode}".replace(" ", "_").replace("+", "and")
                row[mode], row[f"{mode}: prediction"] = errors(inp, full, {**wrong, **how}, args.work, tag, scene, args.seed)
            row["ratio_open_loop_over_corrected"] = row["open loop"] / min(row["corrected"], row["corrected + measured friction"])
            pred = lambda m: "n/a" if row[f"{m}: prediction"] is None else f"{row[f'{m}: prediction'] * 100:.2f} cm"  # noqa: E731
            print(f"{scene} {case}: tracking " + ", ".join(f"{m} {row[m] * 100:.2f} cm" for m in MODES)
                  + f"; open loop / corrected {row['ratio_open_loop_over_corrected']:.1f}x; prediction "
                  + ", ".join(f"{m} {pred(m)}" for m in list(MODES)[1:]), flush=True)
            rows.append(row)
    result = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "rows": rows,
              "summary": {s: {"ratio_min": min(r["ratio_open_loop_over_corrected"] for r in rows if r["scene"] == s)}
                          for s in args.scenes}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["summary"], indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
