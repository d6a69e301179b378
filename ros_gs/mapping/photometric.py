"""Pose refinement through the differentiable renderer: the last step of tracking.

open3d's RGB-D odometry registers the frame against a *rendered image* of the map; this step
instead moves the camera so that the map rendered from it matches the frame (colour L1 where
the map is opaque + depth L1 where the sensor has depth), the way Gaussian-splatting SLAM
systems track.  Gradients reach the pose through ``ros_gs.render`` (CPU rasteriser or gsplat).
"""

from __future__ import annotations

import numpy as np
import torch

from ros_gs.gaussians.model import GaussianMap
from ros_gs.render import Camera, render_tensors
from ros_gs.render.camera import render_K


def _so3_exp(w: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, differentiable at w = 0 (series form for small angles)."""
    theta2 = (w * w).sum()
    z = torch.zeros((), dtype=w.dtype)
    W = torch.stack([torch.stack([z, -w[2], w[1]]), torch.stack([w[2], z, -w[0]]), torch.stack([-w[1], w[0], z])])
    if float(theta2.detach()) < 1e-8:
        a, b = 1.0 - theta2 / 6.0, 0.5 - theta2 / 24.0
    else:
        theta = torch.sqrt(theta2)
        a, b = torch.sin(theta) / theta, (1.0 - torch.cos(theta)) / theta2
    return torch.eye(3, dtype=w.dtype) + a * W + b * (W @ W)


def perturbed(T0: torch.Tensor, w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``T0 * [exp(w) | v]``: a pose perturbed in its own (camera) frame."""
    R = T0[:3, :3] @ _so3_exp(w)
    t = T0[:3, 3] + T0[:3, :3] @ v
    top = torch.cat([R, t[:, None]], dim=1)
    return torch.cat([top, T0[3:]], dim=0)


def refine_pose(
    gmap: GaussianMap,
    T_world_cam: np.ndarray,
    rgb: np.ndarray,
    depth: np.ndarray,
    K: np.ndarray,
    *,
    iterations: int = 10,
    lr: float = 1e-3,
    depth_weight: float = 1.0,
    min_alpha: float = 0.9,
) -> np.ndarray:
    """Refined ``T_world_cam`` of a frame (rgb uint8 (H, W, 3), depth metres with 0 = invalid,
    OpenCV ``K``) against the map, by ``iterations`` Adam steps on the camera-frame twist."""
    if iterations <= 0 or gmap.num_gaussians == 0:
        return np.asarray(T_world_cam, np.float64)
    h, w_ = depth.shape
    target_rgb = torch.from_numpy(rgb.astype(np.float32) / 255.0)
    target_d = torch.from_numpy(np.nan_to_num(depth).astype(np.float32))
    Kr = torch.as_tensor(render_K(K), dtype=torch.float32)
    T0 = torch.as_tensor(T_world_cam, dtype=torch.float32)
    w = torch.zeros(3, requires_grad=True)
    v = torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adam([w, v], lr=lr)
    with torch.no_grad():
        means, quats, scales, opac, sh = gmap.means, gmap.quats, gmap.scales, gmap.opacities, gmap.sh
    for _ in range(iterations):
        cam = Camera.from_pose(Kr, perturbed(T0, w, v), w_, h)
        out = render_tensors(means, quats, scales, opac, sh, cam, backend="auto")
        opaque = out.alpha.detach() > min_alpha
        if int(opaque.sum()) < 100:
            break
        loss = (out.rgb - target_rgb).abs().sum(-1)[opaque].mean()
        valid = opaque & (target_d > 0)
        if depth_weight > 0 and bool(valid.any()):
            loss = loss + depth_weight * (out.depth - target_d).abs()[valid].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        T = perturbed(T0, w, v).double().numpy()
    return T if np.isfinite(T).all() else np.asarray(T_world_cam, np.float64)
