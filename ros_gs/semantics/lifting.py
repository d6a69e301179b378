"""Lift per-pixel features (labels, embeddings, image errors) onto the Gaussians that drew them.

For every Gaussian g: ``accum[g] = sum_p w_gp * feat[p]`` and ``weight[g] = sum_p w_gp``, where
``w_gp`` is g's compositing weight at pixel p under the renderer's conventions.  The mean
feature of g is ``accum / weight`` where ``weight > 0``.

CPU (and the reference): rendered features are ``sum_g w_gp f_g``, so the gradient of
``sum_p <render(p), feat(p)>`` with respect to per-Gaussian features f is exactly ``accum``
(and with a constant 1 channel, ``weight``): one forward and one backward pass of the CPU
renderer, no new kernel.  CUDA: gsplat projects and bins the Gaussians into tiles and our
fused kernel (``cuda/lift_features.cu``) accumulates in one pass.
"""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ros_gs.errors import ConfigError
from ros_gs.render.api import render_tensors
from ros_gs.render.camera import Camera

log = logging.getLogger("ros_gs.semantics")
# Kernel sources: cuda/ in a source checkout, <prefix>/share/ros_gs/cuda when installed by pip
# (prefix = sys.prefix) or colcon (prefix = five levels above ros_gs/semantics/).
_HERE = Path(__file__).resolve()
_CANDIDATES = [_HERE.parents[2] / "cuda", Path(sys.prefix) / "share" / "ros_gs" / "cuda"]
if len(_HERE.parents) > 5:
    _CANDIDATES.append(_HERE.parents[5] / "share" / "ros_gs" / "cuda")
CUDA_DIR = next((d for d in _CANDIDATES if d.is_dir()), _CANDIDATES[0])
TILE = 16


def lift_features(gaussians: Any, camera: Camera, pixel_features: Tensor, backend: str = "auto") -> tuple[Tensor, Tensor]:
    """``(accum (N, F), weight (N,))`` for ``pixel_features`` (H, W, F) seen from ``camera``."""
    feats = torch.as_tensor(pixel_features)
    if feats.dim() != 3 or tuple(feats.shape[:2]) != (camera.height, camera.width):
        raise ConfigError(f"pixel_features must be ({camera.height}, {camera.width}, F), got {tuple(feats.shape)}")
    if backend == "auto":
        backend = "cuda" if torch.cuda.is_available() else "cpu"
    if backend == "cuda":
        return _lift_cuda(gaussians, camera, feats)
    if backend not in ("cpu", "reference"):
        raise ConfigError(f"lift_features backend must be auto, cpu, reference or cuda, got {backend!r}")
    return _lift_autograd(gaussians, camera, feats, backend)


def _lift_autograd(gaussians: Any, camera: Camera, feats: Tensor, backend: str) -> tuple[Tensor, Tensor]:
    N, F = gaussians.means.shape[0], feats.shape[2]
    dtype = gaussians.means.dtype
    probe = torch.zeros(N, F + 1, dtype=dtype, requires_grad=True)
    with torch.enable_grad():
        out = render_tensors(
            gaussians.means.detach(), gaussians.quats.detach(), gaussians.scales.detach(),
            gaussians.opacities.detach(), gaussians.sh.detach(), camera, features=probe, backend=backend,
        )
        target = torch.cat([feats.to(dtype), torch.ones_like(feats[..., :1], dtype=dtype)], dim=-1)
        (out.features * target).sum().backward()
    grad = probe.grad
    return grad[:, :F], grad[:, F]


@functools.lru_cache(maxsize=1)
def _cuda_extension():
    from torch.utils.cpp_extension import load

    log.info("building the CUDA lifting kernel (first use only) ...")
    return load(
        "ros_gs_lift_features",
        sources=[str(CUDA_DIR / "lift_features_binding.cpp"), str(CUDA_DIR / "lift_features.cu")],
        extra_cuda_cflags=["-O3"],
    )


def _lift_cuda(gaussians: Any, camera: Camera, feats: Tensor) -> tuple[Tensor, Tensor]:
    if not torch.cuda.is_available():
        raise ConfigError("lift_features backend 'cuda' needs a CUDA GPU")
    from gsplat import fully_fused_projection, isect_offset_encode, isect_tiles

    dev = torch.device("cuda")
    f32 = dict(device=dev, dtype=torch.float32)
    W, H = camera.width, camera.height
    radii, means2d, depths, conics, _ = fully_fused_projection(
        gaussians.means.to(**f32), None, gaussians.quats.to(**f32), gaussians.scales.to(**f32),
        camera.viewmat.to(**f32)[None], camera.K.to(**f32)[None], W, H,
        eps2d=0.3, near_plane=camera.near, far_plane=camera.far,
    )
    tiles_x, tiles_y = (W + TILE - 1) // TILE, (H + TILE - 1) // TILE
    _, isect_ids, flatten_ids = isect_tiles(means2d, radii, depths, TILE, tiles_x, tiles_y)
    offsets = isect_offset_encode(isect_ids, 1, tiles_x, tiles_y)
    accum, weight = _cuda_extension().lift_features(
        means2d[0].contiguous(), conics[0].contiguous(), gaussians.opacities.to(**f32).reshape(-1).contiguous(),
        offsets.reshape(-1).to(torch.int32).contiguous(), flatten_ids.to(torch.int32).contiguous(),
        feats.to(**f32).contiguous(), TILE,
    )
    return accum, weight
