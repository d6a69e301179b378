"""EWA projection of 3D Gaussians to the image (plain torch, differentiable by autograd).

Follows gsplat's pinhole projection (see :mod:`ros_gs.render` for the conventions):

* ``Sigma = R S S^T R^T`` from the normalised quaternion (w, x, y, z) and the scales;
* camera-frame mean ``t = R_v mu + t_v`` and covariance ``W Sigma W^T`` (``W = R_v``);
* ``J`` is the pinhole Jacobian at ``t`` with ``x/z`` and ``y/z`` clamped to the field of view
  widened by 30 % (``(W - cx)/fx + 0.3 tan(fov_x/2)`` on the right, ``cx/fx + 0.3 tan(fov_x/2)``
  on the left, the same for y): equal to ``+-1.3 tan(fov/2)`` for a centred principal point;
* ``Sigma2D = J W Sigma W^T J^T + 0.3 I`` (no opacity compensation), ``conic = Sigma2D^-1``
  stored as its upper triangle ``(a, b, c)`` so that ``sigma = 1/2 (a dx^2 + c dy^2) + b dx dy``;
* per-axis, opacity-aware radii (gsplat 1.5.3, ``ProjectionEWA3DGSFused.cu``):
  ``extend = min(3.33, sqrt(2 ln(255 o)))`` (3.33 when no opacities are given),
  ``radius_x = ceil(extend sqrt(Sigma2D_xx))``, ``radius_y = ceil(extend sqrt(Sigma2D_yy))``;
  a Gaussian gets radii (0, 0) (culled) when its depth is ``< near`` or ``> far``,
  ``det(Sigma2D) <= 0``, its opacity is < 1/255, or its radius box misses the image.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ros_gs.quaternion import quat_to_rotmat

EPS2D = 0.3  # low-pass filter added to the 2D covariance (pixels^2)
EXTEND_MAX = 3.33  # gsplat's largest radius extent, in standard deviations
ALPHA_THRESHOLD = 1.0 / 255.0  # gsplat's ALPHA_THRESHOLD: opacities below it are culled


class Projected(NamedTuple):
    """Per-Gaussian screen-space quantities (all length N, same order as the input)."""

    means2d: Tensor  # (N, 2) pixel coordinates (x right, y down)
    conics: Tensor  # (N, 3) upper triangle (a, b, c) of Sigma2D^-1
    depths: Tensor  # (N,) camera-frame z of the mean
    radii: Tensor  # (N, 2) int32 (radius_x, radius_y) in pixels, (0, 0) for culled Gaussians
    valid: Tensor  # (N,) bool, both radii > 0


def covariance_3d(quats: Tensor, scales: Tensor) -> Tensor:
    """(N, 3, 3) world covariances ``R S S^T R^T``."""
    M = quat_to_rotmat(quats) * scales[..., None, :]
    return M @ M.transpose(-1, -2)


def project_gaussians(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    viewmat: Tensor,
    K: Tensor,
    width: int,
    height: int,
    near: float = 0.01,
    far: float = 1e10,
    eps2d: float = EPS2D,
    opacities: Tensor | None = None,
) -> Projected:
    """Project N Gaussians with a pinhole camera (differentiable w.r.t. all tensor inputs).

    ``opacities`` (N,), if given, tighten the radii as gsplat does (see the module docstring)."""
    R = viewmat[:3, :3]
    tv = viewmat[:3, 3]
    means_c = means @ R.transpose(0, 1) + tv  # (N, 3)
    # camera-frame factor A = R_v R_q S of Sigma_c = A A^T, with one (3, 3) x (3, 3N) GEMM
    # instead of N batched 3x3 products (slow on CPU)
    RqS = quat_to_rotmat(quats) * scales[..., None, :]  # (N, 3, 3) = R_q S
    A = (R @ RqS.permute(1, 0, 2).reshape(3, -1)).reshape(3, -1, 3)  # A[i] = row i of A, (N, 3)
    A0, A1, A2 = A[0], A[1], A[2]

    tx, ty, tz = means_c.unbind(-1)
    depths = tz
    in_depth = (tz >= near) & (tz <= far)
    # Culled Gaussians never reach the rasteriser; a safe z keeps their (unused) values finite
    # so that no NaN/inf leaks into autograd.
    z = torch.where(in_depth, tz, torch.ones_like(tz))

    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tan_fovx = 0.5 * width / fx
    tan_fovy = 0.5 * height / fy
    lim_x_pos = (width - cx) / fx + 0.3 * tan_fovx
    lim_x_neg = cx / fx + 0.3 * tan_fovx
    lim_y_pos = (height - cy) / fy + 0.3 * tan_fovy
    lim_y_neg = cy / fy + 0.3 * tan_fovy
    u = tx / z
    v = ty / z
    uc = torch.maximum(torch.minimum(u, lim_x_pos), -lim_x_neg)
    vc = torch.maximum(torch.minimum(v, lim_y_pos), -lim_y_neg)

    # J = [[fx/z, 0, -fx uc/z], [0, fy/z, -fy vc/z]]; rows of J A, then Sigma2D = (J A)(J A)^T
    inv_z = 1.0 / z
    JA0 = (fx * inv_z)[:, None] * (A0 - uc[:, None] * A2)
    JA1 = (fy * inv_z)[:, None] * (A1 - vc[:, None] * A2)
    a = (JA0 * JA0).sum(-1) + eps2d
    b = (JA0 * JA1).sum(-1)
    c = (JA1 * JA1).sum(-1) + eps2d
    det_raw = a * c - b * b
    det = det_raw.clamp_min(1e-10)
    conics = torch.stack([c / det, -b / det, a / det], dim=-1)

    means2d = torch.stack([fx * u + cx, fy * v + cy], dim=-1)

    with torch.no_grad():
        ok = in_depth & (det_raw > 0)
        if opacities is None:
            extend = torch.full_like(a, EXTEND_MAX)
        else:
            o = opacities.detach().reshape(-1).to(a.dtype)
            ok = ok & (o >= ALPHA_THRESHOLD)
            extend = torch.sqrt(2.0 * torch.log(o.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD))
            extend = extend.clamp_max(EXTEND_MAX)
        rx = torch.ceil(extend * torch.sqrt(a.clamp_min(0)))
        ry = torch.ceil(extend * torch.sqrt(c.clamp_min(0)))
        ok = ok & ((rx > 0) | (ry > 0))
        mx, my = means2d[:, 0], means2d[:, 1]
        ok = ok & (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
        ok = ok & torch.isfinite(rx) & torch.isfinite(ry) & torch.isfinite(mx) & torch.isfinite(my)
        radius = torch.stack([rx, ry], dim=-1).clamp_max(float(2**30))  # stays representable as int32
        radii = torch.where(ok[:, None], radius, torch.zeros_like(radius)).to(torch.int32)
        valid = (radii > 0).all(dim=-1)
    return Projected(means2d, conics, depths, radii, valid)
