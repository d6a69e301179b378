"""How fast the MuJoCo ground-truth recorder runs: ``python benchmarks/bench_sim.py``.

Why: recording is the price of an independent judge (MuJoCo simulates, renders and casts the
rays), so its cost per camera frame and per simulated second is worth knowing before asking for
long bags.  Prints, per scene, the wall time to record ``--duration`` seconds with the scene's
default sensors and the time per camera frame (RGB + depth + segmentation render and the
conversion to arrays) at ``--width x --height``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "osmesa")

from ros_gs.sim.recorder import CameraFrame, MujocoRecorder
from ros_gs.sim.scenes import SCENES, build_scene


def bench_scene(scene: str, *, duration: float = 2.0, width: int = 320, height: int = 240, frames: int = 20) -> dict:
    spec = build_scene(scene, width=width, height=height)
    rec = MujocoRecorder(spec)
    try:
        t0 = time.perf_counter()
        counts: dict[str, int] = {}
        for event in rec.run(duration):
            counts[type(event).__name__] = counts.get(type(event).__name__, 0) + 1
        total = time.perf_counter() - t0
        per_frame = None
        if spec.cameras:
            cam, cid = spec.cameras[0], rec._cam_ids[0]
            rec._camera(0, cam, cid, None)  # warm-up
            t0 = time.perf_counter()
            for _ in range(frames):
                frame = rec._camera(0, cam, cid, None)
            per_frame = (time.perf_counter() - t0) / frames
            assert isinstance(frame, CameraFrame)
    finally:
        rec.close()
    return {
        "scene": scene,
        "duration_s": duration,
        "cameras": len(spec.cameras),
        "size": [width, height],
        "wall_s": round(total, 3),
        "ms_per_camera_frame": None if per_frame is None else round(per_frame * 1e3, 2),
        "events": counts,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--scenes", nargs="*", default=list(SCENES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = [bench_scene(s, duration=args.duration, width=args.width, height=args.height) for s in args.scenes]
    out = Path(__file__).resolve().parent / "results" / "sim.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'scene':<12} {'cams':>4} {'size':>9} {'sim s':>6} {'wall s':>7} {'ms/frame':>9}  events")
    for r in rows:
        ms = "-" if r["ms_per_camera_frame"] is None else f"{r['ms_per_camera_frame']:.1f}"
        print(f"{r['scene']:<12} {r['cameras']:>4} {r['size'][0]:>4}x{r['size'][1]:<4} {r['duration_s']:>6.1f} "
              f"{r['wall_s']:>7.2f} {ms:>9}  {r['events']}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
