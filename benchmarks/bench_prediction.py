"""Tracking and prediction of the shipped ``physics_tracker`` node against MuJoCo, judged the way
issue 15 asks: ``ros-gs replay BAG --node physics_tracker --params config/objects_mujoco.yaml``
on ``push`` and ``drop`` bags (160x120, cameras at 30 Hz, ``--noise``), ground-truth topics
stripped from the input; seeds no default was tuned on (the visual-force gain was set on push
seed 0, the friction window on push seed 1; the push scene's stroke and the friction estimate
were developed looking at seed 5 too).  That config uses MuJoCo's perfect masks as an upstream
detector's; every case runs again with ``use_segmentation: false`` (objects found in depth and
colour: sensor data alone).

* tracking: per moving object (true displacement > 2 cm) the median and worst position error and
  the median rotation error of its motion since the first frame (``ros-gs eval-objects``);
* prediction 0.5 s ahead (``/ros_gs/objects/predicted``): the median position error over the
  predictions whose target time falls while the object moves (> 1 cm between the prediction and
  its target), against "it stays where it is" and "it keeps its velocity" from the same tracked
  states; on ``push`` also for the predictions made after the paddle lets go of the box (from
  MuJoCo's contacts: the world cannot know what the paddle will do, but it can know a free slide);
* friction: what the node measured for each object, against MuJoCo's (the box's 0.15).

Writes ``benchmarks/results/prediction.json`` and ``prediction.png`` (predicted against true
paths).  Usage: ``python benchmarks/bench_prediction.py [--seeds 5 6 7] [--quick]``.
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

import numpy as np

os.environ.setdefault("MUJOCO_GL", "osmesa")
REPO = Path(__file__).resolve().parents[1]

from ros_gs.bags.evaluate import evaluate_objects, evaluate_predictions  # noqa: E402
from ros_gs.bags.from_mujoco import mujoco_scene_to_bag  # noqa: E402
from ros_gs.bags.reader import BagReader  # noqa: E402
from ros_gs.bags.writer import BagWriter  # noqa: E402
from ros_gs.sim.contacts import last_contact_s  # noqa: E402

DURATION = {"push": 2.2, "drop": 2.5}


def make_bags(scene: str, seed: int, folder: Path) -> tuple[Path, Path]:
    """(full bag with ground truth, sensor-only input with /ground_truth/* removed)."""
    full = folder / f"{scene}_{seed}.mcap"
    mujoco_scene_to_bag(scene, full, duration_s=DURATION[scene], seed=seed, width=160, height=120, num_cameras=3,
                        camera_rate_hz=30.0, noise=True, overwrite=True, progress=False)
    inp = folder / f"{scene}_{seed}_input.mcap"
    with BagReader(full) as reader, BagWriter(inp, overwrite=True) as writer:
        for raw, _ in reader.messages():
            if not raw.topic.startswith("/ground_truth/"):
                writer.write_raw(raw.topic, raw.msgtype, raw.raw, raw.log_ns)
    return full, inp


def no_masks_params(folder: Path) -> Path:
    """config/objects_mujoco.yaml with use_segmentation false."""
    text = (REPO / "config" / "objects_mujoco.yaml").read_text()
    out = folder / "objects_no_masks.yaml"
    out.write_text(text.replace("use_segmentation: true", "use_segmentation: false"))
    return out


def measured_friction(tracked: Path, full: Path, names: list[str]) -> dict:
    """name -> (measured, MuJoCo's) friction of the objects paired with ground truth."""
    import json as _json

    from ros_gs.bags.evaluate import _match_tracked, _object_states, tf_ground_truth

    with BagReader(full) as reader:
        truth = {o["name"]: o["friction"] for _, m in reader.messages(["/ground_truth/objects"])
                 for o in _json.loads(m.data)["objects"]}
    now = _object_states(tracked, "/ros_gs/objects")
    ids, matched = _match_tracked(now, names, tf_ground_truth(full))
    with BagReader(tracked) as reader:
        last = [m for _, m in reader.messages(["/ros_gs/objects"])][-1]
    got = {int(o.id): float(o.friction) for o in last.objects}
    return {matched[i]: {"measured": got.get(i), "mujoco": truth.get(matched[i])} for i in ids}


def run_case(scene: str, seed: int, folder: Path, masks: bool = True) -> dict:
    full, inp = make_bags(scene, seed, folder)
    out = folder / f"{scene}_{seed}_{'masks' if masks else 'no_masks'}_tracked.mcap"
    params = REPO / "config" / "objects_mujoco.yaml" if masks else no_masks_params(folder)
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "ros_gs.cli.main", "replay", str(inp), "--node", "physics_tracker",
                          "--params", str(params), "--out", str(out), "--overwrite"],
                         capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise RuntimeError(f"replay of {inp} failed ({res.returncode}): {res.stdout[-2000:]} {res.stderr[-2000:]}")
    track = evaluate_objects(out, full)
    objects = []
    for k, name in enumerate(track.names):
        e, rot = track.position_error_m[:, k], track.rotation_error_deg[:, k]
        objects.append({"name": name, "moved_m": float(track.moved_m[k]), "moving": bool(track.moved_m[k] > 0.02),
                        "median_m": float(np.median(e)), "max_m": float(e.max()),
                        # modulo the shape's symmetry; None for a sphere (no rotation shows)
                        "rotation_median_deg": float(np.median(rot)) if np.isfinite(rot).all() else None})
    pred = evaluate_predictions(out, full)
    row = {"scene": scene, "seed": seed, "masks": masks, "replay_s": wall, "objects": objects, "prediction": pred.summary(),
           "friction": measured_friction(out, full, track.names)}
    with BagReader(full) as reader:
        start = reader.start_ns
    if scene == "push":
        release = last_contact_s("push", "pusher_paddle", DURATION["push"], seed=seed)
        row["paddle_release_s"] = release
        row["prediction_after_release"] = pred.summary(since_ns=start + int(release * 1e9))
    row["_paths"] = _paths(pred, track)
    moving = ", ".join("%s %.2f cm / %s deg" % (o["name"], o["median_m"] * 100, "-" if o["rotation_median_deg"] is None else f"{o['rotation_median_deg']:.1f}")
                       for o in objects if o["moving"])
    print(f"{scene} seed {seed} {'(MuJoCo masks)' if masks else '(no masks)'}: replay {wall:.0f} s; tracking (moving objects) median {moving}; "
          f"prediction 0.5 s: {row['prediction']}" + (f"; after release: {row['prediction_after_release']}" if scene == "push" else ""))
    return row


def _paths(pred, track) -> dict:
    """For the plot: per object the true positions at the predictions' target times and where
    the predictions put them (x, y, z), and how far it moved in all."""
    out = {}
    for k, name in enumerate(pred.names):
        sel = pred.object == k
        out[name] = {"target_s": ((pred.target_ns[sel] - pred.source_ns[0]) * 1e-9).tolist(),
                     "true": pred.true_xyz[sel].tolist(), "predicted": pred.predicted_xyz[sel].tolist(),
                     "moved_m": float(track.moved_m[track.names.index(name)]) if name in track.names else 0.0}
    return out


def plot(rows: list[dict], png: Path) -> None:
    """Predicted against true paths: per case the two objects that move most, along the axis
    they move most (x on push, z on drop), 0.5 s ahead."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, (len(rows) + 1) // 2, figsize=(3.6 * ((len(rows) + 1) // 2), 6.4), squeeze=False)
    for ax, row in zip(axes.T.ravel(), rows):
        movers = sorted(row["_paths"].items(), key=lambda kv: -kv[1]["moved_m"])[:2]
        for name, p in movers:
            t, true, pred = np.array(p["target_s"]), np.array(p["true"]), np.array(p["predicted"])
            if len(t) == 0:
                continue
            axis = int(np.argmax(np.ptp(true, axis=0)))
            line, = ax.plot(t, true[:, axis] * 100, label=f"{name} true {'xyz'[axis]}")
            ax.plot(t, pred[:, axis] * 100, ".", ms=3, color=line.get_color(), label="predicted 0.5 s before")
        if row.get("paddle_release_s") is not None:
            ax.axvline(row["paddle_release_s"], color="grey", lw=0.6, ls="--")
        ax.set_title(f"{row['scene']} seed {row['seed']}, {'MuJoCo masks' if row['masks'] else 'no masks'}", fontsize=8)
        ax.set_xlabel("time (s)", fontsize=7)
        ax.set_ylabel("position (cm)", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=5)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[5, 6, 7], help="scene seeds (none tuned on)")
    ap.add_argument("--scenes", nargs="+", default=["push", "drop"])
    ap.add_argument("--quick", action="store_true", help="one seed per scene")
    ap.add_argument("--masks-only", action="store_true", help="only with MuJoCo's masks (the issue's judge config)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "prediction.json")
    ap.add_argument("--work", type=Path, default=REPO / "out" / "bench_prediction")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    seeds = args.seeds[:1] if args.quick else args.seeds
    rows = [run_case(scene, seed, args.work, masks) for scene in args.scenes for seed in seeds
            for masks in ([True] if args.masks_only else [True, False])]
    plot(rows, args.out.with_suffix(".png"))
    summary = {}
    for scene in args.scenes:
        for masks in sorted({r["masks"] for r in rows}, reverse=True):
            rs = [r for r in rows if r["scene"] == scene and r["masks"] == masks]
            moving = [o for r in rs for o in r["objects"] if o["moving"]]
            # after the paddle lets go: only where some prediction was made then with the objects moving
            keys = ["prediction"] + (["prediction_after_release"] if any(r.get("prediction_after_release", {}).get("n") for r in rs) else [])
            key = f"{scene} ({'MuJoCo masks' if masks else 'no masks'})"
            summary[key] = {
                "tracking_median_m_worst_object": max(o["median_m"] for o in moving) if moving else None,
                "tracking_rotation_median_deg_worst_object": max((o["rotation_median_deg"] for o in moving if o["rotation_median_deg"] is not None), default=None),
                **{k: {"predicted_m": float(np.median([r[k]["predicted_m"] for r in rs if r[k]["n"]])),
                       "best_baseline_m": float(np.median([min(r[k]["stays_m"], r[k]["velocity_m"]) for r in rs if r[k]["n"]])),
                       "gain_min": float(min(r[k]["gain_over_best_baseline"] for r in rs if r[k]["n"])),
                       "gain_max": float(max(r[k]["gain_over_best_baseline"] for r in rs if r[k]["n"]))} for k in keys},
                "friction": {f"seed {r['seed']} {n}": f for r in rs for n, f in r["friction"].items()}}
            if scene == "push":
                summary[key]["paddle_touches_objects_until_s"] = max(r["paddle_release_s"] for r in rs)
    for r in rows:
        r.pop("_paths")
    result = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "rows": rows, "summary": summary}
    print(json.dumps(summary, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
