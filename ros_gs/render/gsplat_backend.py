"""The CUDA backend: gsplat's ``rasterization`` with ros_gs's conventions (which are gsplat's
defaults: pinhole, OpenCV frame, near 0.01, eps2d 0.3, classic mode, colour = SH + 0.5 clamped
at 0).  Imported only when CUDA is available; gsplat compiles its kernels at first use.

Rendered features take a second rasterisation pass with the features as colours (gsplat
composites any channel count); median depth is not provided by gsplat (``None``).
"""

from __future__ import annotations

from typing import Optional

import torch
from gsplat import rasterization
from torch import Tensor

from ros_gs.render.api import RenderOutput
from ros_gs.render.camera import Camera

GSPLAT_KWARGS = dict(packed=False, eps2d=0.3, rasterize_mode="classic", camera_model="pinhole")


def render_gsplat(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    sh: Tensor,
    camera: Camera,
    background: Optional[Tensor] = None,
    sh_degree: int = 0,
    features: Optional[Tensor] = None,
) -> RenderOutput:
    """Render on the GPU; outputs stay on the GPU (H, W, ...) like the CPU backend's."""
    dev = torch.device("cuda")
    f32 = dict(device=dev, dtype=torch.float32)
    means, quats, scales = means.to(**f32), quats.to(**f32), scales.to(**f32)
    opacities = opacities.to(**f32).reshape(-1)
    viewmats = camera.viewmat.to(**f32)[None]
    Ks = camera.K.to(**f32)[None]
    W, H = camera.width, camera.height
    common = dict(
        viewmats=viewmats, Ks=Ks, width=W, height=H, near_plane=camera.near, far_plane=camera.far, **GSPLAT_KWARGS
    )
    # gsplat appends the zero background of the depth channel itself in "RGB+ED" mode.
    bg = None if background is None else torch.as_tensor(background).to(**f32).reshape(1, 3)
    colors, alphas, _ = rasterization(
        means, quats, scales, opacities, sh.to(**f32)[:, : (sh_degree + 1) ** 2], sh_degree=sh_degree,
        render_mode="RGB+ED", backgrounds=bg, **common,
    )
    feats = None
    if features is not None:
        feats, _, _ = rasterization(means, quats, scales, opacities, features.to(**f32), render_mode="RGB", **common)
        feats = feats[0]
    alpha = alphas[0, ..., 0]
    depth = torch.where(alpha > 0, colors[0, ..., 3], torch.zeros_like(alpha))
    return RenderOutput(rgb=colors[0, ..., :3], depth=depth, alpha=alpha, median_depth=None, features=feats, backend="gsplat")
