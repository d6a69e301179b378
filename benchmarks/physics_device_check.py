"""The physics world on one Warp device (``--device cpu|cuda``): three scenes whose outcome is
known from MuJoCo and Coulomb (tilted drop, slide, stack; see tests/physics/test_world.py) and
step times for 1, 4 and 16 cubes.  Run it on the CPU and on a GPU machine and compare: the
CUDA path must give the CPU's outcome.  Prints one JSON line (and writes it with ``--out``)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import sys

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "physics"))
from scenes import pose  # noqa: E402

from ros_gs.physics import World, WorldConfig, box_particles  # noqa: E402

HALF, SPACING = 0.05, 0.02


def run(device: str, bodies, seconds: float) -> np.ndarray:
    w = World(WorldConfig(device=device))
    for T, v in bodies:
        w.add_body(box_particles([HALF] * 3, SPACING), T, mass=0.5, radius=SPACING / 2, velocity=v)
    w.finalize()
    while w.time < seconds - 1e-9:
        w.step(1 / 60)
    return w.poses()


def step_ms(device: str, n: int, steps: int = 60) -> float:
    w = World(WorldConfig(device=device))
    side = int(np.ceil(np.sqrt(n)))
    for k in range(n):
        w.add_body(box_particles([HALF] * 3, SPACING), pose((0.15 * (k % side), 0.15 * (k // side), HALF + 0.01)),
                   mass=0.5, radius=SPACING / 2)
    w.finalize()
    w.step(1 / 60)
    t = time.perf_counter()
    for _ in range(steps):
        w.step(1 / 60)
    return (time.perf_counter() - t) / steps * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    drop = run(args.device, [(pose((0, 0, 0.4), (30, 0, 0)), (0.5, 0, 0))], 1.5)[0]
    slide = run(args.device, [(pose((0, 0, HALF)), (1.0, 0, 0))], 1.0)[0]
    stack = run(args.device, [(pose((0, 0, HALF)), (0, 0, 0)), (pose((0.01, 0, 0.16), (0, 0, 20)), (0, 0, 0))], 1.5)[1]
    out = {
        "device": args.device,
        "drop_xyz": drop[:3, 3].round(4).tolist(),
        "drop_flat": float(np.abs(drop[:3, :3].T @ [0, 0, 1]).max()),
        "slide_x": round(float(slide[0, 3]), 4),
        "stack_top_z": round(float(stack[2, 3]), 4),
        "step_ms": {n: round(step_ms(args.device, n), 2) for n in (1, 4, 16)},
    }
    line = json.dumps(out)
    print(line)
    if args.out:
        args.out.write_text(line + "\n")


if __name__ == "__main__":
    main()
