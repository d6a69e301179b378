"""How closely two render backends agree on the same Gaussians and camera.

Used by the CPU-vs-gsplat parity test (``tests/render/test_render_gsplat_parity.py``, run on a
GPU machine) and by ``benchmarks/gsplat_parity.py``, which records the figures.  Both backends
claim the conventions of :mod:`ros_gs.render`; these numbers are how that claim is checked.

Figures (all float):
* ``rgb_psnr`` (dB, peak 1) and ``rgb_max_abs`` over all pixels;
* ``alpha_max_abs``;
* ``depth_rel_median`` / ``depth_rel_p99`` / ``depth_rel_max``: ``|d_a - d_b| / d_b`` of the
  expected depth over pixels where both alphas exceed ``min_alpha`` (the expected depth is
  normalised by alpha, so where alpha is tiny it is dominated by rounding);
* ``features_psnr`` when features were rendered;
* with gradients: per input, ``grad_rel_<name> = |g_a - g_b| / |g_b|`` and ``grad_cos_<name>``,
  for one loss that weights every output channel with fixed random weights.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from ros_gs.render.api import RenderOutput, render_tensors
from ros_gs.render.camera import Camera

GRAD_INPUTS = ("means", "quats", "scales", "opacities", "sh", "features", "viewmat")


def psnr(a: Tensor, b: Tensor) -> float:
    mse = float(torch.mean((a.double() - b.double()) ** 2))
    return 10.0 * math.log10(1.0 / max(mse, 1e-30))


def compare_outputs(a: RenderOutput, b: RenderOutput, min_alpha: float = 0.5) -> dict[str, float]:
    """Agreement figures of two renders of one view (``b`` is the reference for relative errors)."""
    a_rgb, b_rgb = a.rgb.detach().cpu(), b.rgb.detach().cpu()
    a_al, b_al = a.alpha.detach().cpu(), b.alpha.detach().cpu()
    out = {
        "rgb_psnr": psnr(a_rgb, b_rgb),
        "rgb_max_abs": float((a_rgb - b_rgb).abs().max()),
        "alpha_max_abs": float((a_al - b_al).abs().max()),
    }
    both = (a_al > min_alpha) & (b_al > min_alpha)
    out["depth_pixels"] = float(both.sum())
    if bool(both.any()):
        da, db = a.depth.detach().cpu()[both].double(), b.depth.detach().cpu()[both].double()
        rel = (da - db).abs() / db.abs().clamp_min(1e-12)
        out["depth_rel_median"] = float(rel.median())
        out["depth_rel_p99"] = float(torch.quantile(rel, 0.99)) if rel.numel() > 1 else float(rel.max())
        out["depth_rel_max"] = float(rel.max())
    if a.features is not None and b.features is not None:
        out["features_psnr"] = psnr(a.features.detach().cpu(), b.features.detach().cpu())
    return out


def _loss_weights(H: int, W: int, F: int, seed: int) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "rgb": torch.rand(H, W, 3, generator=g),
        "depth": torch.rand(H, W, generator=g),
        "alpha": torch.rand(H, W, generator=g),
        "features": torch.rand(H, W, max(F, 1), generator=g)[..., :F],
    }


def _render_with_grads(
    inputs: dict[str, Optional[Tensor]], camera: Camera, backend: str, device: str,
    background: Optional[Tensor], weights: dict[str, Tensor], grads: bool,
) -> tuple[RenderOutput, dict[str, Tensor]]:
    leaves = {k: (None if v is None else v.detach().to(device).requires_grad_(grads)) for k, v in inputs.items()}
    cam = Camera(K=camera.K.to(device), viewmat=camera.viewmat.detach().to(device).requires_grad_(grads),
                 width=camera.width, height=camera.height, near=camera.near, far=camera.far)
    with torch.set_grad_enabled(grads):
        out = render_tensors(
            leaves["means"], leaves["quats"], leaves["scales"], leaves["opacities"], leaves["sh"], cam,
            features=leaves["features"], background=background, backend=backend,
        )
    got: dict[str, Tensor] = {}
    if grads:
        w = {k: v.to(out.rgb.device) for k, v in weights.items()}
        # depth * alpha is the unnormalised expected depth: smooth where alpha -> 0.
        loss = (out.rgb * w["rgb"]).sum() + (out.depth * out.alpha * w["depth"]).sum() + (out.alpha * w["alpha"]).sum()
        if out.features is not None:
            loss = loss + (out.features * w["features"]).sum()
        loss.backward()
        leaves["viewmat"] = cam.viewmat
        got = {k: v.grad.detach().cpu() for k, v in leaves.items() if v is not None and v.grad is not None}
    return out, got


def compare_backends(
    means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, sh: Tensor, camera: Camera, *,
    features: Optional[Tensor] = None, background: Optional[Tensor] = None,
    backend_a: str = "gsplat", backend_b: str = "cpu", grads: bool = True, min_alpha: float = 0.5, seed: int = 0,
) -> dict[str, float]:
    """Render the same float32 inputs with two backends (``gsplat`` runs on CUDA, the others on
    the CPU) and return :func:`compare_outputs`'s figures, plus gradient agreement if ``grads``."""
    inputs = {"means": means, "quats": quats, "scales": scales, "opacities": opacities, "sh": sh, "features": features}
    inputs = {k: (None if v is None else v.detach().float().cpu()) for k, v in inputs.items()}
    camera = camera.to(dtype=torch.float32)
    F = 0 if features is None else features.shape[1]
    weights = _loss_weights(camera.height, camera.width, F, seed)
    bg = None if background is None else torch.as_tensor(background, dtype=torch.float32)
    runs = []
    for backend in (backend_a, backend_b):
        device = "cuda" if backend == "gsplat" else "cpu"
        runs.append(_render_with_grads(inputs, camera, backend, device,
                                       None if bg is None else bg.to(device), weights, grads))
    (out_a, g_a), (out_b, g_b) = runs
    figures = compare_outputs(out_a, out_b, min_alpha=min_alpha)
    for name in GRAD_INPUTS:
        if name in g_a and name in g_b:
            ga, gb = g_a[name].double().reshape(-1), g_b[name].double().reshape(-1)
            nb = float(gb.norm())
            figures[f"grad_rel_{name}"] = float((ga - gb).norm()) / max(nb, 1e-30)
            figures[f"grad_cos_{name}"] = float(torch.dot(ga, gb)) / max(float(ga.norm()) * nb, 1e-30)
    return figures
