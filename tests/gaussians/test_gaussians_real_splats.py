"""The real splat scenes: the compressed and the INRIA file of each scene decode to the same Gaussians.

Data: ../shared/data/splats (see its README): guitar (90,854 Gaussians) and biker (152,746),
each as ``*.compressed.ply`` (SuperSplat) and ``*.3dgs.ply`` (the same scene in INRIA layout).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from ros_gs.gaussians import GaussianMap, VoxelIndex, read_ply, read_ply_data, write_ply

SPLATS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "splats"
COUNTS = {"guitar": 90_854, "biker": 152_746}


def scene_files(name: str) -> tuple[Path, Path]:
    inria, comp = SPLATS / f"{name}.3dgs.ply", SPLATS / f"{name}.compressed.ply"
    if not (inria.exists() and comp.exists()):
        pytest.skip(f"real splat data {SPLATS} is absent (expected ../shared/data/splats beside the repo)")
    return inria, comp


def match(a: GaussianMap, b: GaussianMap, step: np.ndarray) -> np.ndarray:
    """Index of b for each Gaussian of a: identity when the files share the order, else nearest mean."""
    d = (a.means - b.means).abs().numpy()
    if (d <= 0.5 * step + 1e-5).all():
        return np.arange(len(a))
    _, nn = cKDTree(b.means.numpy()).query(a.means.numpy())
    return nn


def quat_angle_deg(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Rotation angle between unit quaternions (q ~ -q), stable for tiny angles."""
    a = a.double() / a.double().norm(dim=1, keepdim=True)
    b = b.double() / b.double().norm(dim=1, keepdim=True)
    b = b * torch.where((a * b).sum(1, keepdim=True) < 0, -1.0, 1.0)
    return np.degrees(4 * torch.atan2((a - b).norm(dim=1), (a + b).norm(dim=1)).numpy())


@pytest.mark.parametrize("name", ["guitar", "biker"])
def test_both_formats_agree(name, capsys):
    inria_path, comp_path = scene_files(name)
    t0 = time.perf_counter()
    a = read_ply(inria_path)
    t1 = time.perf_counter()
    b = read_ply(comp_path)
    t2 = time.perf_counter()
    assert len(a) == len(b) == COUNTS[name]
    assert a.sh_degree == b.sh_degree == 0

    raw = read_ply_data(comp_path)
    ch = raw.elements["chunk"]
    ci = np.arange(len(b)) // 256
    lo = np.stack([ch["min_x"], ch["min_y"], ch["min_z"]], 1)[ci]
    hi = np.stack([ch["max_x"], ch["max_y"], ch["max_z"]], 1)[ci]
    step = (hi - lo) / np.array([2047, 1023, 2047])
    slo = np.stack([ch["min_scale_x"], ch["min_scale_y"], ch["min_scale_z"]], 1)[ci]
    shi = np.stack([ch["max_scale_x"], ch["max_scale_y"], ch["max_scale_z"]], 1)[ci]
    sstep = (shi - slo) / np.array([2047, 1023, 2047])
    clo = np.stack([ch["min_r"], ch["min_g"], ch["min_b"]], 1)[ci]
    chi = np.stack([ch["max_r"], ch["max_g"], ch["max_b"]], 1)[ci]
    cstep = (chi - clo) / 255

    idx = match(b, a, step)
    same_order = bool((idx == np.arange(len(b))).all())
    a = a.select(torch.from_numpy(idx))

    dpos = (a.means - b.means).abs().numpy()
    assert (dpos <= 0.5 * step + 1e-6 * (1 + np.abs(b.means.numpy()))).all()
    dls = (a.log_scales - b.log_scales).abs().numpy()
    assert (dls <= 0.5 * sstep + 1e-5).all()
    ang = quat_angle_deg(a.quats, b.quats)
    assert np.percentile(ang, 99) < 1.0 and ang.max() < 2.0
    dop = (a.opacities - b.opacities).abs().numpy()
    assert (dop <= 0.5 / 255 + 1e-6).all()
    dcol = (a.colors_dc - b.colors_dc).abs().numpy()
    assert (dcol <= 0.5 * cstep + 1e-6).all()

    with capsys.disabled():
        print(f"\n{name}: n={len(b)} same_order={same_order} read 3dgs {t1 - t0:.3f}s compressed {t2 - t1:.3f}s")
        for q, d in (("mean [m]", dpos), ("log_scale", dls), ("rot [deg]", ang), ("opacity", dop), ("colour_dc", dcol)):
            print(f"  {q:10s} max {d.max():.3g} median {np.median(d):.3g}")


def test_real_map_round_trips_and_indexes(tmp_path):
    inria_path, comp_path = scene_files("guitar")
    b = read_ply(comp_path)
    r = read_ply(write_ply(b, tmp_path / "g.ply"))
    for n in ("means", "raw_quats", "log_scales", "opacity_logits", "sh"):
        assert torch.equal(getattr(r, n), getattr(b, n))
    # the voxel hash on a real (very non-uniform) scene agrees with a k-d tree
    pts = b.means
    idx = VoxelIndex.build(pts, 0.02)
    rng = np.random.default_rng(0)
    q = pts[rng.choice(len(pts), 500, replace=False)] + torch.from_numpy(rng.normal(0, 0.01, (500, 3))).float()
    offsets, indices = idx.query_radius(q, 0.015)
    tree = cKDTree(pts.numpy().astype(np.float64))
    want = tree.query_ball_point(q.numpy().astype(np.float64), 0.015)
    got = [indices[offsets[i]:offsets[i + 1]].tolist() for i in range(500)]
    # float64 both sides; a point exactly on the sphere could differ by rounding, so compare sets loosely
    mismatch = sum(set(g) != set(w) for g, w in zip(got, want))
    assert mismatch == 0 and sum(map(len, got)) > 500
