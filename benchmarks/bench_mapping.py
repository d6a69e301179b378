"""Mapping benchmark on the real 7-Scenes kitchen frames at 320x240: our online Gaussian mapper
(``ros_gs.mapping.Mapper``) against open3d's dense RGB-D SLAM (``open3d.t.pipelines.slam.Model``:
frame-to-model tracking + TSDF integration) on the same frames and resolution.

Reports ATE RMSE (Umeyama SE(3) alignment, no scale), render PSNR/SSIM at keyframes and at
non-keyframes (ours, at the estimated poses), the number of Gaussians, frames/s, peak RSS.
Each system runs in its own process so peak memory is its own.  Writes
``benchmarks/results/mapping.json``.  Usage:
``python benchmarks/bench_mapping.py [--frames 300] [--start 0] [--step 1] [--reverse] [--only ours|open3d]
[--data ../shared/data/7scenes_kitchen] [--out F.json]`` (``--start``, ``--step``, ``--reverse``: other
stretches, faster motion, the path backwards - checks that the defaults are not tuned to one stretch).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "7scenes_kitchen"


def _load(data: Path, n: int, start: int = 0, step: int = 1, reverse: bool = False):
    """Frames start, start+step, ... (n of them); ``reverse`` plays them backwards (stamps
    re-issued at the original spacing) - motions the defaults were not tuned on."""
    import dataclasses

    from ros_gs.datasets.rgbd_folder import RgbdFolder
    from ros_gs.mapping import RgbdFrame

    ds = RgbdFolder(data, color="kinect-v1")  # 7-Scenes: colour is not registered to depth
    ids = list(range(start, len(ds), step))[:n]
    frames = [RgbdFrame.from_folder_frame(ds[i], ds.K, ds.color) for i in ids]
    gt = np.array([ds[i].pose_c2w for i in ids])
    if reverse:
        stamps = [f.stamp_ns for f in frames]
        frames = [dataclasses.replace(f, stamp_ns=s) for f, s in zip(frames[::-1], stamps)]
        gt = gt[::-1].copy()
    return frames, gt


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_ours(data: Path, n: int, start: int = 0, step: int = 1, reverse: bool = False, overrides: dict | None = None) -> dict:
    import torch

    from ros_gs.mapping import Mapper, MapperConfig, ate_rmse, psnr, ssim

    frames, gt = _load(data, n, start, step, reverse)
    m = Mapper(MapperConfig(**(overrides or {})), initial_pose=gt[0])
    t = time.perf_counter()
    per_frame = []  # seconds per frame: does it stay flat while the map grows?
    for f in frames:
        t0 = time.perf_counter()
        m.process(f)
        per_frame.append(time.perf_counter() - t0)
    secs = time.perf_counter() - t
    q = max(1, len(per_frame) // 4)
    est = np.array([p.T_world_cam for p in m.trajectory])  # as published, frame by frame
    rmse, _ = ate_rmse(est, gt)
    rmse_opt, _ = ate_rmse(m.optimised_trajectory(), gt)  # after the keyframe pose-graph corrections
    kf = [i for i, p in enumerate(m.trajectory) if p.keyframe]
    nonkf = [i for i in range(len(frames)) if i not in set(kf)]
    every = max(1, len(nonkf) // 20)

    def quality(ids):
        ps, ss = [], []
        for i in ids:
            f = m.prepare(frames[i])
            out = m.render(est[i], f.K, f.width, f.height, everything=True)
            img = out.rgb.clamp(0, 1).numpy()
            ps.append(psnr(img, f.rgb))
            ss.append(ssim(img, f.rgb))
        return float(np.mean(ps)), float(np.mean(ss))

    kp, ks = quality(kf)
    np_, ns = quality(nonkf[::every])
    return {
        "system": "ros_gs.mapping (Gaussians, CPU)", "frames": len(frames), "ate_rmse_m": rmse,
        "ate_rmse_optimised_m": rmse_opt, "pose_graph": m.graph_stats,
        "fps": len(frames) / secs, "seconds": secs, "keyframes": len(kf), "num_gaussians": m.map.num_gaussians + m.offloaded.num_gaussians,
        "psnr_keyframes": kp, "ssim_keyframes": ks, "psnr_nonkeyframes": np_, "ssim_nonkeyframes": ns,
        "tracking_ok": int(sum(p.ok for p in m.trajectory)), "timing_s": m.timing,
        "ms_per_frame_first_quarter": 1000 * float(np.mean(per_frame[:q])),
        "ms_per_frame_last_quarter": 1000 * float(np.mean(per_frame[-q:])),
        "peak_rss_mb": _peak_rss_mb(), "threads": torch.get_num_threads(),
        "config_overrides": overrides or {}, "keyframe_images_resident_mb": m.frame_store.resident_bytes / 2**20,
        "keyframe_images_spilled": len(m.frame_store) - m.frame_store.num_resident,
        "gaussians_offloaded": m.offloaded.num_gaussians,
    }


def run_open3d(data: Path, n: int, start: int = 0, step: int = 1, reverse: bool = False, voxel: float = 0.01) -> dict:
    import open3d as o3d
    import open3d.core as o3c

    from ros_gs.mapping import ate_rmse, downscale
    from ros_gs.mapping.mapper import orthonormalize

    frames, gt = _load(data, n, start, step, reverse)
    small = [downscale(f, 2) for f in frames]
    K = o3c.Tensor(small[0].K)
    dev = o3c.Device("CPU:0")
    T0 = o3c.Tensor(orthonormalize(gt[0]))
    model = o3d.t.pipelines.slam.Model(voxel, 16, 40000, T0, dev)
    h, w = small[0].depth.shape
    inp = o3d.t.pipelines.slam.Frame(h, w, K, dev)
    ray = o3d.t.pipelines.slam.Frame(h, w, K, dev)
    depth_scale, depth_max, trunc = 1000.0, 4.0, 8.0  # trunc: voxel multiplier (open3d example)
    poses = []
    T = T0
    t = time.perf_counter()
    ok = 0
    for i, f in enumerate(small):
        d = (f.depth * 1000.0).round().astype(np.uint16)
        inp.set_data_from_image("depth", o3d.t.geometry.Image(o3c.Tensor(d)))
        inp.set_data_from_image("color", o3d.t.geometry.Image(o3c.Tensor(np.ascontiguousarray(f.rgb))))
        if i > 0:
            try:
                res = model.track_frame_to_model(inp, ray, depth_scale, depth_max)
                T = T @ res.transformation
                ok += 1
            except RuntimeError as err:
                if i < 3:
                    print("open3d tracking failed:", str(err)[-200:], file=sys.stderr)
        poses.append(T.numpy().copy())
        model.update_frame_pose(i, T)
        model.integrate(inp, depth_scale, depth_max, trunc)
        model.synthesize_model_frame(ray, depth_scale, 0.1, depth_max, trunc, False)
    secs = time.perf_counter() - t
    rmse, _ = ate_rmse(np.array(poses), gt)
    return {"system": f"open3d.t.pipelines.slam (TSDF voxel {voxel} m)", "frames": len(small), "ate_rmse_m": rmse,
            "fps": len(small) / secs, "seconds": secs, "tracking_ok": ok + 1, "peak_rss_mb": _peak_rss_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--start", type=int, default=0, help="first frame")
    ap.add_argument("--step", type=int, default=1, help="take every step-th frame (2: 15 Hz, twice the motion per frame)")
    ap.add_argument("--reverse", action="store_true", help="play the frames backwards")
    ap.add_argument("--only", choices=["ours", "open3d"], help="run one system")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON",
                    help="MapperConfig overrides for ours, e.g. --set keyframes_in_memory=8 offload_radius=1.0")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--case", choices=["ours", "open3d"], help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "mapping.json")
    args = ap.parse_args()
    if args.case:
        if args.case == "ours":
            overrides = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.set)}
            res = run_ours(args.data, args.frames, args.start, args.step, args.reverse, overrides)
        else:
            res = run_open3d(args.data, args.frames, args.start, args.step, args.reverse)
        print("RESULT " + json.dumps(res))
        return
    if not args.data.exists():
        sys.exit(f"data {args.data} is absent")
    results = []
    for case in [args.only] if args.only else ["ours", "open3d"]:
        p = subprocess.run([sys.executable, __file__, "--case", case, "--frames", str(args.frames), "--start", str(args.start),
                            "--step", str(args.step)] + (["--reverse"] if args.reverse else []) + ["--data", str(args.data)]
                           + (["--set", *args.set] if args.set and case == "ours" else []),
                           capture_output=True, text=True, cwd=REPO)
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
        if p.returncode or not line:
            sys.exit(f"{case} failed:\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
        results.append(json.loads(line[0][7:]))
    import torch

    out = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                       "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine()},
           "data": str(args.data.name), "first_frame": args.start, "step": args.step, "reverse": args.reverse, "resolution": "320x240", "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"{'system':48s} {'frames':>6s} {'ATE cm':>7s} {'fps':>6s} {'RSS MB':>7s} {'PSNR kf':>8s} {'PSNR non-kf':>11s} {'SSIM non-kf':>11s} {'Gaussians':>9s}")
    for r in results:
        f = lambda k, fmt: format(r[k], fmt) if k in r else "-"  # noqa: E731
        print(f"{r['system']:48s} {r['frames']:6d} {r['ate_rmse_m'] * 100:7.2f} {r['fps']:6.2f} {r['peak_rss_mb']:7.0f} "
              f"{f('psnr_keyframes', '8.2f'):>8s} {f('psnr_nonkeyframes', '11.2f'):>11s} {f('ssim_nonkeyframes', '11.3f'):>11s} "
              f"{f('num_gaussians', '9d'):>9s}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
