"""Rendering the real guitar splat scene: both PLY formats give the same image, the views are
written as PNGs, and a small random map fitted to one of them gains more than 10 dB PSNR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ros_gs.gaussians.ply import read_ply
from ros_gs.render import render
from ros_gs.render.api import render_tensors
from ros_gs.render.camera import Camera
from ros_gs.sensors.poses import xyz_quat_to_matrix

SPLATS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "splats"
# Camera-to-world poses (x, y, z, qx, qy, qz, qw) around the guitar (the scene is y-down).
VIEWS = {
    "side": (0.2, -1.5, -4.0, 0.0, 0.0, 0.0, 1.0),
    "front": (4.2, -1.5, 0.2, 0.0, -0.7071068, 0.0, 0.7071068),
    "back": (-3.8, -1.5, 0.2, 0.0, 0.7071068, 0.0, 0.7071068),
}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(torch.mean((a - b) ** 2)))


def camera(view: str, w: int, h: int) -> Camera:
    f = 0.5 * w / np.tan(np.radians(30.0))
    K = torch.tensor([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], dtype=torch.float32)
    pose = VIEWS[view]
    return Camera.from_pose(K, torch.as_tensor(xyz_quat_to_matrix(pose[:3], pose[3:]), dtype=torch.float32), w, h)


@pytest.fixture(scope="module")
def guitar():
    if not (SPLATS / "guitar.3dgs.ply").exists():
        pytest.skip(f"real splats absent at {SPLATS}")
    return read_ply(SPLATS / "guitar.3dgs.ply"), read_ply(SPLATS / "guitar.compressed.ply")


def test_views_render_and_formats_agree(guitar, tmp_path: Path) -> None:
    inria, compressed = guitar
    for view in VIEWS:
        cam = camera(view, 160, 120)
        with torch.no_grad():
            a = render(inria, cam, backend="cpu")
            b = render(compressed, cam, backend="cpu")
        Image.fromarray((a.rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy()).save(tmp_path / f"guitar_{view}.png")
        covered = a.alpha > 0.5
        assert 0.05 < covered.float().mean() < 0.9, view  # the guitar fills part of the frame
        assert psnr(a.rgb, b.rgb) > 40.0, view  # the decoded compressed file renders the same scene
        d = a.depth[covered]
        assert 2.5 < float(d.median()) < 5.5, view  # ~4 m from the camera
    assert len(list(tmp_path.glob("guitar_*.png"))) == 3


def test_fit_small_map_to_a_guitar_render(guitar) -> None:
    inria, _ = guitar
    cam = camera("front", 64, 48)
    with torch.no_grad():
        target = render(inria, cam, backend="cpu").rgb
    torch.manual_seed(0)
    n = 1500
    # Start: random points spread where the guitar stands, in front of the camera.
    means = (torch.tensor([0.2, -1.8, 0.2]) + torch.randn(n, 3) * torch.tensor([0.4, 1.0, 0.4])).requires_grad_()
    log_scales = torch.full((n, 3), -3.0).requires_grad_()
    quats = torch.randn(n, 4).requires_grad_()
    logit = torch.full((n,), -2.0).requires_grad_()
    sh = (torch.randn(n, 1, 3) * 0.1).requires_grad_()
    opt = torch.optim.Adam([
        {"params": [means], "lr": 0.01}, {"params": [log_scales], "lr": 0.02}, {"params": [quats], "lr": 0.01},
        {"params": [logit], "lr": 0.05}, {"params": [sh], "lr": 0.03},
    ])

    def current() -> torch.Tensor:
        return render_tensors(means, quats, log_scales.exp(), logit.sigmoid(), sh, cam, backend="cpu").rgb

    with torch.no_grad():
        before = psnr(current(), target)
    for _ in range(250):
        opt.zero_grad()
        torch.nn.functional.l1_loss(current(), target).backward()
        opt.step()
    with torch.no_grad():
        after = psnr(current(), target)
    assert after - before > 10.0, (before, after)
