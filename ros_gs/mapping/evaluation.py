"""Trajectory and image metrics: ATE RMSE with Umeyama SE(3) alignment, PSNR, SSIM."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def umeyama_se3(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rigid 4x4 T (no scale) minimising sum |T src_i - dst_i|^2 (Umeyama 1991)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    cov = (dst - mu_d).T @ (src - mu_s) / len(src)
    U, _, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vt
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = mu_d - R @ mu_s
    return T


def ate_rmse(est_T: list | np.ndarray, gt_T: list | np.ndarray) -> tuple[float, np.ndarray]:
    """Absolute trajectory error: RMSE of camera positions after the best rigid alignment of the
    estimate onto the ground truth.  Returns (rmse in metres, aligned estimated poses (N, 4, 4))."""
    est = np.asarray(est_T, np.float64)
    gt = np.asarray(gt_T, np.float64)
    if est.shape != gt.shape or est.ndim != 3 or est.shape[1:] != (4, 4) or len(est) == 0:
        raise ValueError(f"ate_rmse: need two (N, 4, 4) pose lists of one length, got {est.shape} and {gt.shape}")
    A = umeyama_se3(est[:, :3, 3], gt[:, :3, 3]) if len(est) >= 3 else np.eye(4)
    aligned = A @ est
    err = aligned[:, :3, 3] - gt[:, :3, 3]
    return float(np.sqrt((err**2).sum(1).mean())), aligned


def _as_chw(x) -> torch.Tensor:
    t = (x if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x))).detach().float()  # np.array copies: inputs may be read-only
    if t.max() > 1.5:  # uint8-range images
        t = t / 255.0
    if t.dim() == 2:
        t = t[..., None]
    return t.permute(2, 0, 1)[None]


def psnr(a, b, mask=None) -> float:
    """PSNR in dB of two images in [0, 1] (or uint8 0..255), (H, W, C); optional (H, W) mask."""
    x, y = _as_chw(a), _as_chw(b)
    d2 = (x - y) ** 2
    if mask is not None:
        m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).bool()
        mse = d2[0][:, m].mean()
    else:
        mse = d2.mean()
    return float(10.0 * torch.log10(1.0 / mse.clamp_min(1e-12)))


def ssim(a, b, window: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM (Wang et al. 2004; Gaussian window 11, sigma 1.5, valid region) of two
    (H, W, C) images in [0, 1] (or uint8)."""
    return float(ssim_torch(_as_chw(a), _as_chw(b), window, sigma))


def ssim_torch(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM of (1, C, H, W) float tensors in [0, 1], differentiable (the mapper's D-SSIM
    loss term and the :func:`ssim` metric share it)."""
    c = x.shape[1]
    g = torch.exp(-((torch.arange(window, dtype=x.dtype) - (window - 1) / 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :]).expand(c, 1, window, window).contiguous()

    def blur(t):
        return F.conv2d(t, k, groups=c)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx**2
    syy = blur(y * y) - my**2
    sxy = blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return s.mean()
