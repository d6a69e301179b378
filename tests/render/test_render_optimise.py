"""Fitting a random map to a target image with Adam through the CPU renderer."""

from __future__ import annotations

import time

import torch
from render_testutils import make_camera, psnr, random_scene

from ros_gs.render import render_tensors


def test_adam_fit_raises_psnr():
    torch.manual_seed(0)
    W, H = 48, 36
    cam = make_camera(W, H, dtype=torch.float32)
    true = random_scene(80, sh_degree=0, seed=21, dtype=torch.float32, extremes=False)
    true.scales = true.scales * 3.0
    with torch.no_grad():
        target = render_tensors(true.means, true.quats, true.scales, true.opacities, true.sh, cam, backend="cpu").rgb

    n = 120
    g = torch.Generator().manual_seed(5)
    means = (torch.randn(n, 3, generator=g) * 0.8).requires_grad_()
    log_scales = torch.full((n, 3), -2.0).add_(torch.randn(n, 3, generator=g) * 0.2).requires_grad_()
    quats = torch.randn(n, 4, generator=g).requires_grad_()
    logit_op = torch.full((n,), -1.0).requires_grad_()
    sh = (torch.randn(n, 1, 3, generator=g) * 0.5).requires_grad_()
    opt = torch.optim.Adam(
        [
            {"params": [means], "lr": 0.02},
            {"params": [log_scales], "lr": 0.03},
            {"params": [quats], "lr": 0.02},
            {"params": [logit_op], "lr": 0.1},
            {"params": [sh], "lr": 0.05},
        ]
    )

    def current():
        return render_tensors(means, quats, torch.exp(log_scales), torch.sigmoid(logit_op), sh, cam, backend="cpu").rgb

    with torch.no_grad():
        start = psnr(current(), target)
    t0 = time.perf_counter()
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.l1_loss(current(), target)
        loss.backward()
        opt.step()
    with torch.no_grad():
        end = psnr(current(), target)
    print(f"Adam fit: PSNR {start:.1f} -> {end:.1f} dB in {time.perf_counter() - t0:.1f} s")
    assert end - start > 10.0
