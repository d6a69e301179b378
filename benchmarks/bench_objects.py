"""Objects without masks: instance segmentation on MuJoCo's tabletop against its own masks
(precision / recall at IoU 0.5, 1 and 3 cameras, several seeds; seed 0 is the one the
defaults were looked at on, the others are held out), time to find the objects in one frame
set, and on the real GraspNet frame the query latency once the objects exist and whether each
query's top grasp lies on the named object (judged by meta.mat's poses).
Writes ``benchmarks/results/objects.json``.  Usage: ``python benchmarks/bench_objects.py [--seeds 4]``.
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
sys.path.insert(0, str(REPO / "tests" / "objects"))

from mujoco_gripper import record_tabletop  # noqa: E402

from ros_gs.grasping import GraspPlanner  # noqa: E402
from ros_gs.objects import ObjectFinder, View, find_objects  # noqa: E402
from ros_gs.objects.evaluation import instance_matches  # noqa: E402


def mujoco_rows(seeds: int) -> list[dict]:
    rows = []
    for seed in range(seeds):
        _, frames, _, _ = record_tabletop(seed=seed)
        for cams in (1, 3):
            views = [View(f.depth, f.K, f.T_world_cam, rgb=f.rgb) for f in frames[:cams]]
            t = time.perf_counter()
            scene = find_objects(ObjectFinder(), views, up=np.array([0.0, 0.0, 1.0]))
            dt = time.perf_counter() - t
            tp = npred = nref = 0
            for vi, f in enumerate(frames[:cams]):
                pred = np.zeros(f.depth.shape, dtype=np.int64)
                for o in scene.objects:
                    if vi in o.masks:
                        pred[o.masks[vi]] = o.id
                m = instance_matches(pred, f.segmentation + 1)
                tp, npred, nref = tp + m.true_positives, npred + m.predicted, nref + m.reference
            row = {"seed": seed, "split": "looked at" if seed == 0 else "held out", "cameras": cams,
                   "precision": tp / max(npred, 1), "recall": tp / max(nref, 1), "objects": len(scene.objects), "find_s": dt}
            print(f"tabletop seed {seed} cams {cams}: precision {row['precision']:.2f} recall {row['recall']:.2f} "
                  f"objects {row['objects']} find {dt:.2f} s")
            rows.append(row)
    return rows


def graspnet_rows() -> list[dict]:
    from test_objects_graspnet import DATA, QUERIES  # the test's queries and its data folder

    if not DATA.is_dir():
        print(f"skipping the GraspNet frame: {DATA} not found")
        return []
    import scipy.io as sio
    from PIL import Image

    meta = sio.loadmat(DATA / "meta.mat")
    rgb = np.array(Image.open(DATA / "color.png"))
    depth = np.array(Image.open(DATA / "depth.png")).astype(np.float64) / float(meta["factor_depth"].squeeze())
    roi = np.array(Image.open(DATA / "workspace_mask.png")).astype(bool)
    origins = {int(c): meta["poses"][:, 3, k] for k, c in enumerate(meta["cls_indexes"].ravel())}
    t = time.perf_counter()
    scene = find_objects(ObjectFinder(), [View(depth, meta["intrinsic_matrix"].astype(float), np.eye(4), rgb=rgb, roi=roi)])
    find_s = time.perf_counter() - t
    planner = GraspPlanner()
    planner.set_objects(scene)
    planner.query("warm up the text encoder")
    rows = []
    for q, ok in QUERIES:
        t = time.perf_counter()
        r = planner.query(q)
        dt = time.perf_counter() - t
        on = False
        if r.grasps:
            c = r.grasps[0].pose[:3, 3]
            d = {k: np.linalg.norm(p - c) for k, p in origins.items()}
            on = min(d, key=d.get) in ok and min(d.values()) < 0.1
        rows.append({"query": q, "object": r.description, "grasps": len(r.grasps), "on_named_object": bool(on),
                     "query_s": dt, "find_s": find_s})
        print(f"graspnet {q!r}: {r.description!r}, {len(r.grasps)} grasps, on the named object: {on}, {dt * 1000:.0f} ms")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "objects.json")
    args = ap.parse_args()
    result = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "tabletop": mujoco_rows(args.seeds), "graspnet": graspnet_rows()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
