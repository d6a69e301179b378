"""CPU backend vs gsplat (CUDA) on the same scenes: image, depth and gradient agreement.

Needs a CUDA GPU (run it on a lent device machine, see ``benchmarks/gpu_check.sh``).  Scenes:
random Gaussians with awkward cases (near plane, tiny, huge, opacity clamp), 10k synthetic
Gaussians at 320x240 with SH degree 0 and with SH degree 3 + 16 feature channels + a
background, and the real guitar splat (../shared/data/splats) from three viewpoints.  Prints a
table, writes ``benchmarks/results/gsplat_parity.json`` and a PNG per guitar view
(CPU | gsplat | 10x absolute difference).  Figures are defined in :mod:`ros_gs.render.compare`.

The test ``tests/render/test_render_gsplat_parity.py`` asserts on these same cases.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
from pathlib import Path
from typing import Iterator, NamedTuple, Optional

import numpy as np
import torch
from torch import Tensor

REPO = Path(__file__).resolve().parents[1]
SPLATS = REPO.parent / "shared" / "data" / "splats"
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_render import synthetic_scene  # noqa: E402

from ros_gs.render.camera import Camera  # noqa: E402
from ros_gs.render.compare import compare_backends  # noqa: E402

# Camera-to-world poses (x, y, z, qx, qy, qz, qw) around the guitar, as tests/render/test_render_real_splats.py.
GUITAR_VIEWS = {
    "side": (0.2, -1.5, -4.0, 0.0, 0.0, 0.0, 1.0),
    "front": (4.2, -1.5, 0.2, 0.0, -0.7071068, 0.0, 0.7071068),
    "back": (-3.8, -1.5, 0.2, 0.0, 0.7071068, 0.0, 0.7071068),
}


class Case(NamedTuple):
    name: str
    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    sh: Tensor
    camera: Camera
    features: Optional[Tensor] = None
    background: Optional[Tensor] = None


def awkward_scene(n: int = 400, seed: int = 1) -> Case:
    """Random Gaussians 4 m ahead, with rows at the near plane, off-image, tiny, huge, at the
    alpha clamp and around the 1/255 opacity cut (the cases where backends tend to differ)."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * torch.tensor([1.2, 0.9, 1.0])
    scales = torch.exp(torch.randn(n, 3, generator=g) * 0.5 - 2.5)
    quats = torch.randn(n, 4, generator=g)
    opac = 0.05 + 0.94 * torch.rand(n, generator=g)
    means[0:3, 2] = torch.tensor([-4.5, -5.0, -3.98])  # behind / near the near plane
    means[3:6, 0] = torch.tensor([9.0, -9.0, 4.0])  # outside the image / at its border
    scales[6:9] = 1e-4  # one-pixel blobs (the 0.3 px blur dominates)
    scales[9:11] = torch.tensor([[1.5, 0.8, 1.0], [0.05, 2.0, 0.3]])  # huge
    opac[11:16] = torch.tensor([1.0, 0.9995, 0.999, 0.998, 0.97])  # alpha clamp, transmittance stop
    opac[16:18] = torch.tensor([0.003, 0.0045])  # below / near 1/255
    sh = torch.randn(n, 1, 3, generator=g) * 1.2
    w, h = 64, 48
    f = 0.9 * w
    K = torch.tensor([[f, 0.0, 0.5 * w + 0.3], [0.0, 1.05 * f, 0.5 * h - 0.4], [0.0, 0.0, 1.0]])
    T = torch.eye(4)
    T[2, 3] = -4.0  # camera 4 m behind the origin, looking down +z
    return Case("awkward_400_64x48", means, quats, scales, opac, sh, Camera.from_pose(K, T, w, h))


def synthetic_cases() -> Iterator[Case]:
    cam = Camera.from_fov(60.0, torch.eye(4), 320, 240)
    means, quats, scales, opac, sh = synthetic_scene(10_000)
    yield Case("synthetic_10k_sh0_320x240", means, quats, scales, opac, sh, cam)
    g = torch.Generator().manual_seed(3)
    sh3 = torch.cat([sh, 0.2 * torch.randn(sh.shape[0], 15, 3, generator=g)], dim=1)
    feats = torch.randn(sh.shape[0], 16, generator=g)
    pose = torch.eye(4)
    pose[:3, 3] = torch.tensor([0.3, -0.2, 0.5])
    cam2 = Camera.from_fov(60.0, pose, 320, 240)
    yield Case("synthetic_10k_sh3_feat16_bg_320x240", means, quats, scales, opac, sh3, cam2, feats,
               torch.tensor([0.2, 0.4, 0.6]))


def guitar_cases(width: int = 320, height: int = 240) -> Iterator[Case]:
    from ros_gs.gaussians.ply import read_ply
    from ros_gs.sensors.poses import xyz_quat_to_matrix

    m = read_ply(SPLATS / "guitar.3dgs.ply")
    f = 0.5 * width / math.tan(math.radians(30.0))
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=torch.float32)
    for view, pose in GUITAR_VIEWS.items():
        T = torch.as_tensor(xyz_quat_to_matrix(pose[:3], pose[3:]), dtype=torch.float32)
        yield Case(f"guitar_{view}_{width}x{height}", m.means, m.quats, m.scales, m.opacities, m.sh,
                   Camera.from_pose(K, T, width, height))


def all_cases(with_guitar: bool = True) -> Iterator[Case]:
    yield awkward_scene()
    yield from synthetic_cases()
    if with_guitar and (SPLATS / "guitar.3dgs.ply").exists():
        yield from guitar_cases()


def run_case(case: Case) -> dict[str, float]:
    return compare_backends(
        case.means, case.quats, case.scales, case.opacities, case.sh, case.camera,
        features=case.features, background=case.background,
    )


def side_by_side(case: Case, path: Path) -> None:
    """CPU | gsplat | 10x |difference| as one PNG."""
    from PIL import Image

    from ros_gs.render.api import render_tensors

    with torch.no_grad():
        a = render_tensors(case.means, case.quats, case.scales, case.opacities, case.sh, case.camera, backend="cpu")
        cuda = {k: getattr(case, k).cuda() for k in ("means", "quats", "scales", "opacities", "sh")}
        b = render_tensors(**cuda, camera=case.camera.to("cuda"), backend="gsplat")
    ca, cb = a.rgb.clamp(0, 1), b.rgb.cpu().clamp(0, 1)
    panel = torch.cat([ca, cb, ((ca - cb).abs() * 10).clamp(0, 1)], dim=1)
    Image.fromarray((panel.numpy() * 255).round().astype(np.uint8)).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "gsplat_parity.json")
    ap.add_argument("--png-dir", type=Path, default=None, help="where to write the guitar PNGs (default: beside --out)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gsplat_parity: needs a CUDA GPU (torch.cuda.is_available() is False)")
    png_dir = args.png_dir or args.out.parent
    png_dir.mkdir(parents=True, exist_ok=True)
    rows = {}
    cols = ["rgb_psnr", "rgb_max_abs", "alpha_max_abs", "depth_rel_median", "depth_rel_p99", "depth_rel_max",
            "grad_cos_means", "grad_rel_means", "grad_rel_sh", "grad_rel_opacities", "grad_rel_viewmat"]
    print(f"{'case':38} " + " ".join(f"{c[:16]:>16}" for c in cols))
    for case in all_cases():
        fig = run_case(case)
        rows[case.name] = fig
        print(f"{case.name:38} " + " ".join(f"{fig.get(c, float('nan')):16.4g}" for c in cols), flush=True)
        if case.name.startswith("guitar"):
            side_by_side(case, png_dir / f"parity_{case.name}.png")
    import gsplat

    machine = {"python": platform.python_version(), "torch": torch.__version__, "gsplat": gsplat.__version__,
               "cuda": torch.cuda.get_device_name()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "cases": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
