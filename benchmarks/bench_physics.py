"""Physics benchmark: World.step time (1/60 s, 10 substeps) for 1, 4 and 16 cubes of 125
particle spheres resting in a grid, and one visual-force step (two 96x72 views of a cube of
600 Gaussians: render, backward, forces, step), and MuJoCo's push scene tracked by visual forces
(error against MuJoCo over time, plotted to ``results/physics_push.png``).  Warp device: cpu here (cuda too when present).
Prints a table and writes ``benchmarks/results/physics.json``.  Usage: ``python benchmarks/bench_physics.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "physics"))

from ros_gs.physics import (GaussianBinding, Observation, VisualForceConfig, World, WorldConfig,  # noqa: E402
                            box_particles, visual_forces)

HALF, SPACING = 0.05, 0.02


def _pose(x, y, z):
    T = np.eye(4)
    T[:3, 3] = (x, y, z)
    return T


def bench_step(n_bodies: int, device: str, steps: int = 60) -> dict:
    w = World(WorldConfig(device=device))
    side = int(np.ceil(np.sqrt(n_bodies)))
    for k in range(n_bodies):
        w.add_body(box_particles([HALF] * 3, SPACING), _pose(0.15 * (k % side), 0.15 * (k // side), HALF + 0.01),
                   mass=0.5, radius=SPACING / 2)
    w.finalize()
    w.step(1 / 60)  # warm-up (kernel compile / load)
    t = time.perf_counter()
    for _ in range(steps):
        w.step(1 / 60)
    sec = (time.perf_counter() - t) / steps
    return {"case": "step", "bodies": n_bodies, "particles": w.num_particles, "device": device,
            "ms_per_step": sec * 1e3, "realtime_factor": (1 / 60) / sec}


def bench_visual(device: str, steps: int = 20) -> dict:
    import torch

    from ros_gs.render import render_tensors
    from scenes import cameras, cube_surface_gaussians

    pts, app = cube_surface_gaussians(HALF)
    particles = box_particles([HALF] * 3, SPACING)
    bind = GaussianBinding(pts, np.tile([1.0, 0, 0, 0], (len(pts), 1)), np.zeros(len(pts), int), np.eye(4)[None], [particles])
    m, q = bind.posed(_pose(0.03, -0.02, HALF)[None])
    obs = [Observation(c, render_tensors(m, q, app.scales, app.opacities, app.sh, c, backend="cpu").rgb.detach())
           for c in cameras()]
    w = World(WorldConfig(device=device))
    w.add_body(particles, _pose(0, 0, HALF), mass=0.2, radius=SPACING / 2)
    w.finalize()
    cfg = VisualForceConfig(gain=2e-4, damping=10.0, backend="cpu")
    w.step(1 / 30, visual_forces(w, bind, app, obs, cfg, dt=1 / 30)[0])
    t_forces = t_step = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        f, _ = visual_forces(w, bind, app, obs, cfg, dt=1 / 30)
        t1 = time.perf_counter()
        w.step(1 / 30, f)
        t_step += time.perf_counter() - t1
        t_forces += t1 - t0
    del torch
    return {"case": "visual_forces", "bodies": 1, "gaussians": len(pts), "views": len(obs), "device": device,
            "ms_forces": t_forces / steps * 1e3, "ms_step": t_step / steps * 1e3}


def bench_push(out_png: Path) -> dict:
    """MuJoCo's push scene tracked with and without visual forces; error over time as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from push_tracking import PUSH_FORCES, record_push, track

    spec, stamps, frames, gts = record_push()
    t0 = time.perf_counter()
    err = track(spec, stamps, frames, gts, PUSH_FORCES)
    sec = (time.perf_counter() - t0) / (len(stamps) - 1)
    blind = track(spec, stamps, frames, gts, None)
    t = (np.array(stamps) - stamps[0]) * 1e-9
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, o in enumerate(spec.objects):
        ax.plot(t, err[:, i] * 100, label=f"{o.label}: visual forces")
        ax.plot(t, blind[:, i] * 100, "--", label=f"{o.label}: physics only")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("position error vs MuJoCo (cm)")
    ax.set_title("MuJoCo push scene, 3 cameras 160x120 at 30 Hz")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return {"case": "push_tracking", "objects": [o.name for o in spec.objects], "frames": len(stamps),
            "mean_error_cm": (err.mean(axis=0) * 100).tolist(), "max_error_cm": (err.max(axis=0) * 100).tolist(),
            "blind_final_error_cm": (blind[-1] * 100).tolist(), "ms_per_frame": sec * 1e3, "plot": out_png.name}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "physics.json")
    args = ap.parse_args()
    import warp as wp

    wp.config.quiet = True
    devices = ["cpu"] + (["cuda"] if wp.is_cuda_available() else [])
    rows = []
    for dev in devices:
        for n in (1, 4, 16):
            r = bench_step(n, dev)
            rows.append(r)
            print(f"{dev:5} step    {n:3d} bodies {r['particles']:5d} particles  {r['ms_per_step']:8.2f} ms/step  "
                  f"{r['realtime_factor']:6.2f}x real time", flush=True)
        r = bench_visual(dev)
        rows.append(r)
        print(f"{dev:5} visual forces (2 views, {r['gaussians']} Gaussians): {r['ms_forces']:.1f} ms forces + "
              f"{r['ms_step']:.1f} ms step", flush=True)
    r = bench_push(args.out.with_name("physics_push.png"))
    rows.append(r)
    print(f"push tracking: box {r['mean_error_cm'][0]:.2f} cm mean / {r['max_error_cm'][0]:.2f} cm max, cylinder "
          f"{r['mean_error_cm'][1]:.2f} cm mean (physics only: {r['blind_final_error_cm'][0]:.1f} cm at the end), "
          f"{r['ms_per_frame']:.0f} ms per frame", flush=True)
    machine = {"python": platform.python_version(), "warp": wp.__version__, "cpu_count": __import__("os").cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
