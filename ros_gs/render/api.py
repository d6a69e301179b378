"""``render``: Gaussian map + camera -> RGB, depth, alpha (+ median depth, features).

Backends: ``"cpu"`` (torch projection and SH + the C++ tile rasteriser, differentiable),
``"gsplat"`` (CUDA, :mod:`ros_gs.render.gsplat_backend`), ``"auto"`` (gsplat when CUDA is
available and the gsplat backend imports, else cpu) and ``"reference"`` (the brute-force
torch rasteriser, tiny scenes and tests only).  All follow the conventions in
:mod:`ros_gs.render`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor

from ros_gs.errors import ConfigError
from ros_gs.render.camera import Camera
from ros_gs.render.projection import project_gaussians
from ros_gs.render.sh import eval_sh, sh_degree_from_coeffs

BACKENDS = ("auto", "cpu", "gsplat", "reference")


@dataclass
class RenderOutput:
    """One rendered view (H = camera.height, W = camera.width).

    rgb: (H, W, 3) ``sum_i w_i c_i + T_final * background``.
    depth: (H, W) expected depth normalised by alpha, ``sum_i w_i z_i / alpha`` where
        alpha > 0, else 0 (gsplat's "ED"; the unnormalised sum is ``depth * alpha``).
    alpha: (H, W) ``1 - T_final``.
    median_depth: (H, W) depth of the Gaussian at which T falls from > 0.5 to <= 0.5, 0 where
        T never reaches 0.5 (None if the backend does not provide it).
    features: (H, W, F) ``sum_i w_i f_i`` (no background), or None.
    backend: the backend that rendered ("cpu", "gsplat" or "reference").
    """

    rgb: Tensor
    depth: Tensor
    alpha: Tensor
    median_depth: Optional[Tensor]
    features: Optional[Tensor]
    backend: str


_GSPLAT_IMPORT: Any = None  # cached: the module, or the ImportError


def _gsplat_backend():
    global _GSPLAT_IMPORT
    if _GSPLAT_IMPORT is None:
        try:
            from ros_gs.render import gsplat_backend

            _GSPLAT_IMPORT = gsplat_backend
        except Exception as exc:  # ImportError, or a broken CUDA install
            _GSPLAT_IMPORT = exc
    return _GSPLAT_IMPORT


def select_backend(backend: str = "auto") -> str:
    """Resolve ``backend`` to the one that will run; ConfigError if it cannot."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown render backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        if torch.cuda.is_available() and not isinstance(_gsplat_backend(), Exception):
            return "gsplat"
        return "cpu"
    if backend == "gsplat":
        if not torch.cuda.is_available():
            raise ConfigError(
                "render backend 'gsplat' needs a CUDA GPU, and torch.cuda.is_available() is False; "
                "use backend='cpu' (or 'auto')"
            )
        mod = _gsplat_backend()
        if isinstance(mod, Exception):
            raise ConfigError(f"render backend 'gsplat' is unavailable: {mod}")
    return backend


def _check_shapes(means, quats, scales, opacities, sh, features) -> int:
    N = means.shape[0]

    def need(ok: bool, what: str, t: Tensor) -> None:
        if not ok:
            raise ValueError(f"render: {what} expected, got shape {tuple(t.shape)} (N={N})")

    need(means.dim() == 2 and means.shape[1] == 3, "means (N, 3)", means)
    need(tuple(quats.shape) == (N, 4), "quats (N, 4) wxyz", quats)
    need(tuple(scales.shape) == (N, 3), "scales (N, 3)", scales)
    need(opacities.numel() == N and opacities.shape[0] == N, "opacities (N,)", opacities)
    need(sh.dim() == 3 and sh.shape[0] == N and sh.shape[2] == 3 and sh.shape[1] >= 1, "sh (N, K, 3)", sh)
    if features is not None:
        need(features.dim() == 2 and features.shape[0] == N, "features (N, F)", features)
    return N


def _check_finite(**tensors: Optional[Tensor]) -> None:
    """ConfigError naming the first tensor with a NaN/inf and how many of its rows are bad
    (a non-finite mean or scale is culled by the projection but poisons the pose gradient)."""
    for name, t in tensors.items():
        if t is None or not isinstance(t, Tensor) or not t.is_floating_point():
            continue
        with torch.no_grad():
            ok = torch.isfinite(t)
            if bool(ok.all()):
                continue
            rows = ok.reshape(t.shape[0], -1).all(dim=1) if t.dim() > 1 else ok.reshape(-1)
            n_bad = int((~rows).sum())
            first = int((~rows).nonzero()[0, 0]) if t.dim() >= 1 else 0
        unit = "rows" if t.dim() >= 1 else "values"
        raise ConfigError(
            f"render: {name} has {n_bad} {unit} with NaN or inf (first at index {first}, "
            f"shape {tuple(t.shape)}); fix or drop those Gaussians before rendering"
        )


def render_tensors(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    sh: Tensor,
    camera: Camera,
    *,
    features: Optional[Tensor] = None,
    background: Optional[Tensor] = None,
    sh_degree: Optional[int] = None,
    backend: str = "auto",
) -> RenderOutput:
    """Render N Gaussians given as tensors (activated scales > 0, opacities in [0, 1]).

    ``sh`` is (N, K, 3) with ``K >= (sh_degree + 1)^2`` (``sh_degree`` defaults to the largest
    degree K holds, at most 3); ``features`` (N, F), if given, are composited like colour and
    returned as ``RenderOutput.features``; ``background`` (3,) defaults to black.
    Raises :class:`ros_gs.errors.ConfigError` if any input holds NaN or inf (naming the
    tensor and the number of bad rows) or, on the cpu backend, if the rasteriser's
    intersection buffers would exceed their memory budget
    (:data:`ros_gs.render.rasterize_cpu.MAX_BYTES`).
    """
    _check_shapes(means, quats, scales, opacities, sh, features)
    _check_finite(
        means=means, quats=quats, scales=scales, opacities=opacities, sh=sh, features=features,
        background=None if background is None else torch.as_tensor(background),
    )
    if sh_degree is None:
        sh_degree = sh_degree_from_coeffs(sh.shape[1])
    if not 0 <= sh_degree <= 3 or (sh_degree + 1) ** 2 > sh.shape[1]:
        raise ValueError(f"render: sh_degree={sh_degree} does not fit sh with K={sh.shape[1]} (max degree 3)")
    chosen = select_backend(backend)
    if chosen == "gsplat":
        return _gsplat_backend().render_gsplat(
            means=means, quats=quats, scales=scales, opacities=opacities, sh=sh, camera=camera,
            background=background, sh_degree=sh_degree, features=features,
        )
    return _render_torch_pipeline(
        means, quats, scales, opacities, sh, camera, features, background, sh_degree, chosen
    )


def _render_torch_pipeline(means, quats, scales, opacities, sh, camera, features, background, sh_degree, backend):
    out_device = means.device
    dt = means.dtype if means.dtype in (torch.float32, torch.float64) else torch.float32
    cpu = torch.device("cpu")

    def prep(t):
        return None if t is None else t.to(device=cpu, dtype=dt)

    means, quats, scales, sh, features = map(prep, (means, quats, scales, sh, features))
    opacities = prep(opacities).reshape(-1)
    K = camera.K.to(device=cpu, dtype=dt)
    viewmat = camera.viewmat.to(device=cpu, dtype=dt)
    W, H = camera.width, camera.height
    N = means.shape[0]

    proj = project_gaussians(means, quats, scales, viewmat, K, W, H, camera.near, camera.far, opacities=opacities)
    if sh_degree > 0:
        R, t = viewmat[:3, :3], viewmat[:3, 3]
        center = -(R.transpose(0, 1) @ t)
        dirs = means - center
    else:
        dirs = None
    colors = torch.clamp_min(eval_sh(sh_degree, sh, dirs) + 0.5, 0.0)
    F = 0 if features is None else features.shape[1]
    chans = [colors] + ([features] if features is not None else []) + [proj.depths[:, None]]
    chans = torch.cat(chans, dim=1)

    if backend == "reference":
        from ros_gs.render.reference import rasterize_reference as rasterize
    else:
        from ros_gs.render.rasterize_cpu import rasterize_cpu as rasterize
    out, alpha, med = rasterize(proj.means2d, proj.conics, chans, opacities, proj.depths, proj.radii, W, H)

    rgb = out[..., :3]
    if background is not None:
        bg = prep(torch.as_tensor(background)).reshape(3)
        rgb = rgb + (1.0 - alpha)[..., None] * bg
    ed = out[..., -1]
    depth = torch.where(alpha > 0, ed / alpha.clamp_min(1e-10), torch.zeros_like(ed))
    med = med.long()
    if N > 0:
        median = torch.where(med >= 0, proj.depths[med.clamp_min(0)], torch.zeros_like(ed))
    else:
        median = torch.zeros_like(ed)
    feats = out[..., 3 : 3 + F] if features is not None else None

    def back(t):
        return None if t is None else t.to(out_device)

    return RenderOutput(
        rgb=back(rgb), depth=back(depth), alpha=back(alpha), median_depth=back(median),
        features=back(feats), backend=backend,
    )


def render(
    gaussians: Any,
    camera: Camera,
    *,
    backend: str = "auto",
    background: Optional[Tensor] = None,
    sh_degree: Optional[int] = None,
    render_features: bool = False,
) -> RenderOutput:
    """Render a Gaussian map: any object with ``.means (N,3)``, ``.quats (N,4)`` (w, x, y, z),
    ``.scales (N,3)`` (activated), ``.opacities (N,)`` (activated), ``.sh (N,K,3)`` and
    ``.features (N,F) or None``.  ``render_features=True`` also composites the features
    (ConfigError if the map has none)."""
    features = None
    if render_features:
        features = getattr(gaussians, "features", None)
        if features is None:
            raise ConfigError("render(render_features=True) but the Gaussian map has no features")
    return render_tensors(
        gaussians.means, gaussians.quats, gaussians.scales, gaussians.opacities, gaussians.sh, camera,
        features=features, background=background, sh_degree=sh_degree, backend=backend,
    )
