"""Scene and camera generators shared by the tests in tests/render (not a test module)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from ros_gs.render.camera import Camera


@dataclass
class TinyMap:
    """Stand-in for ros_gs.gaussians.GaussianMap: just the attributes render() reads."""

    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    sh: Tensor
    features: Optional[Tensor] = None


def look_at(eye, target, down=(0.0, 1.0, 0.0), dtype=torch.float64) -> Tensor:
    """Camera-to-world 4x4 of an OpenCV camera (x right, y down, z forward) at ``eye``."""
    eye = torch.as_tensor(eye, dtype=dtype)
    z = torch.as_tensor(target, dtype=dtype) - eye
    z = z / z.norm()
    x = torch.linalg.cross(torch.as_tensor(down, dtype=dtype), z)  # x = y cross z
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    T = torch.eye(4, dtype=dtype)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, eye
    return T


def make_camera(width=40, height=30, dtype=torch.float64, eye=(0.3, -0.2, -4.0), target=(0.0, 0.0, 0.0)) -> Camera:
    f = 0.9 * width
    K = torch.tensor([[f, 0.0, 0.5 * width + 0.3], [0.0, 1.05 * f, 0.5 * height - 0.4], [0.0, 0.0, 1.0]], dtype=dtype)
    return Camera.from_pose(K, look_at(eye, target, dtype=dtype), width, height)


def random_scene(n=100, sh_degree=0, n_features=0, seed=0, dtype=torch.float64, extremes=True) -> TinyMap:
    """Gaussians around the origin (seen by make_camera), with awkward cases mixed in."""
    g = torch.Generator().manual_seed(seed)

    def rand(*s):
        return torch.rand(*s, generator=g, dtype=dtype)

    def randn(*s):
        return torch.randn(*s, generator=g, dtype=dtype)

    means = randn(n, 3) * torch.tensor([1.2, 0.9, 1.0], dtype=dtype)
    scales = torch.exp(randn(n, 3) * 0.5 - 2.5)
    quats = randn(n, 4)
    opac = 0.05 + 0.94 * rand(n)
    if extremes and n >= 20:
        means[0:3, 2] = torch.tensor([-4.5, -5.0, -3.995], dtype=dtype)  # behind / at the near plane
        means[3:6, 0] = torch.tensor([9.0, -9.0, 4.0], dtype=dtype)  # outside the image / at the border
        scales[6:9] = 1e-4  # tiny: one-pixel blobs (the 0.3 px blur dominates)
        scales[9:11] = torch.tensor([[1.5, 0.8, 1.0], [0.05, 2.0, 0.3]], dtype=dtype)  # huge
        opac[11:16] = torch.tensor([1.0, 0.9995, 0.999, 0.998, 0.97], dtype=dtype)  # alpha clamp, T stop
        opac[16:18] = torch.tensor([0.003, 0.0045], dtype=dtype)  # below / near 1/255
    nb = (sh_degree + 1) ** 2
    sh = randn(n, nb, 3) * 0.3
    sh[:, 0, :] = randn(n, 3) * 1.2
    feats = randn(n, n_features) if n_features else None
    return TinyMap(means, quats, scales, opac, sh, feats)


def psnr(a: Tensor, b: Tensor) -> float:
    mse = torch.mean((a - b) ** 2).item()
    return 10.0 * math.log10(1.0 / max(mse, 1e-20))
