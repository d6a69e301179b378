"""Brute-force reference rasteriser (tests only: O(N * P) memory, tiny scenes).

For every pixel and every Gaussian it computes alpha, orders Gaussians by depth (stable,
ties by index) and composites front to back with exactly the rules of the C++ rasteriser
and of gsplat (see :mod:`ros_gs.render`):

* a Gaussian only reaches the pixels of the 16x16 tiles its radius box touches (gsplat's
  tile culling: tiles ``floor((x - r)/16) .. ceil((x + r)/16) - 1``, clamped to the image);
* ``sigma = 1/2 (a dx^2 + c dy^2) + b dx dy``, ``alpha = min(0.999, o exp(-sigma))``; pairs
  with ``sigma < 0`` or ``alpha < 1/255`` are skipped (they do not change T);
* a pixel stops before the first Gaussian that would bring T to ``<= 1e-4``; that Gaussian
  and all behind it are left out;
* the median Gaussian of a pixel is the contributor at which T goes from > 0.5 to <= 0.5.

Everything is plain torch, so autograd gives the reference gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

TILE_SIZE = 16
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4


def as_radii2(radii: Tensor) -> Tensor:
    """(N, 2) int radii from (N, 2) or (N,) (square) radii."""
    if radii.dim() == 2 and radii.shape[-1] == 2:
        return radii
    r = radii.reshape(-1)
    return torch.stack([r, r], dim=-1)


def tile_mask(means2d: Tensor, radii: Tensor, width: int, height: int, tile_size: int = TILE_SIZE) -> Tensor:
    """(P, N) bool: pixel p lies in a tile that Gaussian n's radius box touches.

    ``radii`` is (N, 2) (radius_x, radius_y) or (N,) (the same radius on both axes)."""
    tw = (width + tile_size - 1) // tile_size
    th = (height + tile_size - 1) // tile_size
    m = means2d.detach()
    radii = as_radii2(radii)
    rx, ry = radii[:, 0].to(m.dtype), radii[:, 1].to(m.dtype)
    tx0 = torch.floor((m[:, 0] - rx) / tile_size).clamp(0, tw)
    tx1 = torch.ceil((m[:, 0] + rx) / tile_size).clamp(0, tw)
    ty0 = torch.floor((m[:, 1] - ry) / tile_size).clamp(0, th)
    ty1 = torch.ceil((m[:, 1] + ry) / tile_size).clamp(0, th)
    jj, ii = torch.meshgrid(torch.arange(width), torch.arange(height), indexing="xy")
    ptx = (jj // tile_size).reshape(-1, 1).to(m.dtype)
    pty = (ii // tile_size).reshape(-1, 1).to(m.dtype)
    return (ptx >= tx0) & (ptx < tx1) & (pty >= ty0) & (pty < ty1) & (radii > 0).all(dim=-1)


def rasterize_reference(
    means2d: Tensor,
    conics: Tensor,
    colors: Tensor,
    opacities: Tensor,
    depths: Tensor,
    radii: Tensor,
    width: int,
    height: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Composite N Gaussians into an image.

    Returns ``(out (H, W, C), alpha (H, W), median_ids (H, W) int64, -1 where none)``.
    ``out`` has no background; ``alpha = 1 - T_final``.
    """
    N, C = colors.shape
    dev, dt = means2d.device, means2d.dtype
    if N == 0:
        return (
            colors.new_zeros(height, width, C),
            means2d.new_zeros(height, width),
            torch.full((height, width), -1, dtype=torch.int64, device=dev),
        )
    order = torch.sort(depths.detach(), stable=True).indices
    m2, cn, col, op, rad = means2d[order], conics[order], colors[order], opacities[order], radii[order]

    jj, ii = torch.meshgrid(torch.arange(width, device=dev), torch.arange(height, device=dev), indexing="xy")
    px = (jj.reshape(-1, 1).to(dt) + 0.5)  # (P, 1)
    py = (ii.reshape(-1, 1).to(dt) + 0.5)
    dx = m2[:, 0] - px  # (P, N)
    dy = m2[:, 1] - py
    sigma = 0.5 * (cn[:, 0] * dx * dx + cn[:, 2] * dy * dy) + cn[:, 1] * dx * dy
    alpha = torch.clamp_max(op * torch.exp(-sigma), ALPHA_MAX)

    keep = tile_mask(m2, rad, width, height) & (sigma >= 0) & (alpha >= ALPHA_MIN)
    alpha = torch.where(keep, alpha, torch.zeros_like(alpha))
    t_after = torch.cumprod(1.0 - alpha, dim=1)  # T after each Gaussian
    with torch.no_grad():
        alive = t_after > T_MIN  # monotone: false from the stopping Gaussian on
    alpha = torch.where(alive, alpha, torch.zeros_like(alpha))
    one_minus = 1.0 - alpha
    t_after = torch.cumprod(one_minus, dim=1)
    t_before = torch.cat([torch.ones_like(t_after[:, :1]), t_after[:, :-1]], dim=1)
    weights = alpha * t_before  # (P, N)

    out = (weights @ col).reshape(height, width, C)
    t_final = t_after[:, -1]
    alpha_img = (1.0 - t_final).reshape(height, width)

    with torch.no_grad():
        contrib = keep & alive
        cross = contrib & (t_before > 0.5) & (t_after <= 0.5)
        has = cross.any(dim=1)
        first = torch.argmax(cross.to(torch.int8), dim=1)
        med = torch.where(has, order[first], torch.full_like(first, -1)).reshape(height, width)
    return out, alpha_img, med
