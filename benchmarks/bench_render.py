"""Render benchmark: frames/s and peak memory for 10k, 100k and 1M Gaussians at 320x240 and
640x480, forward and forward+backward, for every backend this machine has (cpu; gsplat on
CUDA).  Each case runs in its own process so peak memory is that case's alone.

Scenes are synthetic: N Gaussians filling the view 2-8 m in front of the camera with sizes
like a trained 3DGS map (log-normal around 2 cm), SH degree 0.  Prints a table and writes
``benchmarks/results/render.json``.  Usage: ``python benchmarks/bench_render.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def synthetic_scene(n: int, seed: int = 0, device: str = "cpu") -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=g) * torch.tensor([4.0, 3.0, 6.0]) - torch.tensor([2.0, 1.5, -2.0])
    scales = torch.exp(torch.randn(n, 3, generator=g) * 0.6 + math.log(0.02))
    quats = torch.randn(n, 4, generator=g)
    opacities = torch.sigmoid(torch.randn(n, generator=g) * 2.0)
    sh = torch.randn(n, 1, 3, generator=g) * 0.3
    return [t.to(device) for t in (means, quats, scales, opacities, sh)]


def run_case(n: int, width: int, height: int, backward: bool, backend: str, repeats: int) -> dict:
    """One case in this process: median seconds over ``repeats`` after a warm-up, peak memory."""
    from ros_gs.render.api import render_tensors
    from ros_gs.render.camera import Camera

    device = "cuda" if backend == "gsplat" else "cpu"
    params = synthetic_scene(n, device=device)
    cam = Camera.from_fov(60.0, torch.eye(4), width, height)
    times = []
    for k in range(repeats + 1):
        ps = [p.detach().requires_grad_(backward) for p in params]
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        if backward:
            out = render_tensors(*ps, cam, backend=backend)
            (out.rgb.sum() + out.depth.sum() + out.alpha.sum()).backward()
        else:
            with torch.no_grad():
                render_tensors(*ps, cam, backend=backend)
        if device == "cuda":
            torch.cuda.synchronize()
        if k:
            times.append(time.perf_counter() - t)
    times.sort()
    seconds = times[len(times) // 2]
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "n": n, "width": width, "height": height, "pass": "fwd+bwd" if backward else "fwd", "backend": backend,
        "seconds": seconds, "fps": 1.0 / seconds, "peak_mem_mb": peak / 2**20,
        "peak_mem_kind": "cuda allocated" if device == "cuda" else "process RSS",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="10k and 100k only")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "render.json")
    ap.add_argument("--backends", nargs="+", choices=["cpu", "gsplat"], default=None,
                    help="backends to measure (default: cpu, and gsplat when CUDA is available)")
    ap.add_argument("--case", nargs=5, metavar=("N", "W", "H", "PASS", "BACKEND"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        n, w, h, which, backend = args.case
        print(json.dumps(run_case(int(n), int(w), int(h), which == "fwd+bwd", backend, args.repeats)))
        return
    backends = args.backends or (["cpu"] + (["gsplat"] if torch.cuda.is_available() else []))
    sizes = [10_000, 100_000] + ([] if args.quick else [1_000_000])
    rows = []
    print(f"{'backend':8} {'N':>9} {'res':>8} {'pass':8} {'ms':>9} {'fps':>8} {'peak MB':>9}")
    for backend in backends:
        for n in sizes:
            for w, h in ((320, 240), (640, 480)):
                for which in ("fwd", "fwd+bwd"):
                    repeats = max(1, args.repeats if n < 1_000_000 else 2)
                    proc = subprocess.run(
                        [sys.executable, __file__, "--repeats", str(repeats), "--case", str(n), str(w), str(h), which, backend],
                        capture_output=True, text=True,
                    )
                    if proc.returncode != 0:
                        print(f"{backend:8} {n:>9} {w}x{h:<4} {which:8} FAILED: {proc.stderr.strip().splitlines()[-1:]}")
                        continue
                    r = json.loads(proc.stdout.strip().splitlines()[-1])
                    rows.append(r)
                    print(f"{backend:8} {n:>9} {w}x{h:<4} {which:8} {r['seconds'] * 1e3:9.1f} {r['fps']:8.2f} {r['peak_mem_mb']:9.0f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "cpu_count": __import__("os").cpu_count(), "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    args.out.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
