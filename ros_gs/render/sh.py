"""Real spherical harmonics up to degree 3, gsplat's (= the 3DGS paper's) basis and signs.

``eval_sh`` returns the raw SH sum; the renderer turns it into a colour with
``max(value + 0.5, 0)`` (gsplat's ``rasterization``), so a degree-0 colour is
``max(0.5 + C0 * f_dc, 0)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def num_sh_bases(degree: int) -> int:
    return (degree + 1) ** 2


def sh_degree_from_coeffs(num_coeffs: int) -> int:
    """Largest degree whose basis fits in ``num_coeffs`` coefficients (must be 1, 4, 9 or 16+)."""
    d = int(math.isqrt(num_coeffs)) - 1
    if d < 0:
        raise ValueError("sh needs at least one coefficient")
    return min(d, 3)


def sh_basis(degree: int, dirs: Tensor) -> Tensor:
    """(..., 3) unit directions -> (..., (degree+1)^2) basis values."""
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree must be 0..3, got {degree}")
    out = [torch.full_like(dirs[..., 0], C0)]
    if degree >= 1:
        x, y, z = dirs.unbind(-1)
        out += [-C1 * y, C1 * z, -C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        xy, yz, xz = x * y, y * z, x * z
        out += [
            C2[0] * xy,
            C2[1] * yz,
            C2[2] * (2.0 * zz - xx - yy),
            C2[3] * xz,
            C2[4] * (xx - yy),
        ]
    if degree >= 3:
        out += [
            C3[0] * y * (3.0 * xx - yy),
            C3[1] * xy * z,
            C3[2] * y * (4.0 * zz - xx - yy),
            C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy),
            C3[4] * x * (4.0 * zz - xx - yy),
            C3[5] * z * (xx - yy),
            C3[6] * x * (xx - 3.0 * yy),
        ]
    return torch.stack(out, dim=-1)


def eval_sh(degree: int, sh: Tensor, dirs: Tensor | None) -> Tensor:
    """Evaluate SH: ``sh`` (N, K, 3) with K >= (degree+1)^2, ``dirs`` (N, 3) (normalised here).

    Returns the raw sum (N, 3) (no +0.5, no clamp).  ``dirs`` may be None for degree 0.
    """
    nb = num_sh_bases(degree)
    if sh.shape[-2] < nb:
        raise ValueError(f"SH degree {degree} needs {nb} coefficients, got {sh.shape[-2]}")
    if degree == 0:
        return C0 * sh[..., 0, :]
    d = F.normalize(dirs, p=2, dim=-1)
    basis = sh_basis(degree, d)  # (N, nb)
    return (basis.unsqueeze(-2) @ sh[..., :nb, :]).squeeze(-2)


def sh_to_rgb_dc(sh_dc: Tensor) -> Tensor:
    """Colour of the degree-0 term: ``0.5 + C0 * f_dc`` (unclamped)."""
    return 0.5 + C0 * sh_dc


def rgb_to_sh_dc(rgb: Tensor) -> Tensor:
    """Inverse of :func:`sh_to_rgb_dc`."""
    return (rgb - 0.5) / C0
