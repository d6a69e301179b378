"""Lifting per-pixel features onto Gaussians, checked through identities of the renderer:
lifted one-hot pixel indicators are the compositing weights w_gp, and those weights must
reproduce the rendered colour (sum_g w_gp c_g) and alpha (sum_g w_gp) of every pixel."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from ros_gs.errors import ConfigError
from ros_gs.render.api import render_tensors
from ros_gs.render.camera import Camera
from ros_gs.semantics.lifting import lift_features

W, H = 40, 20  # 3 x 2 tiles of 16 px: binning across tiles is exercised


@dataclass
class Scene:
    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    sh: torch.Tensor


def scene(n: int = 30, seed: int = 0, dtype=torch.float64) -> tuple[Scene, Camera]:
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=g, dtype=dtype) * torch.tensor([2.0, 1.6, 2.0], dtype=dtype) - torch.tensor([1.0, 0.8, -2.0], dtype=dtype)
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.exp(torch.randn(n, 3, generator=g, dtype=dtype) * 0.3 + math.log(0.15))
    opac = torch.rand(n, generator=g, dtype=dtype) * 0.9 + 0.05
    sh = torch.randn(n, 1, 3, generator=g, dtype=dtype) * 0.5
    K = torch.tensor([[25.0, 0, W / 2], [0, 25.0, H / 2], [0, 0, 1]], dtype=dtype)
    return Scene(means, quats, scales, opac, sh), Camera.from_pose(K, torch.eye(4, dtype=dtype), W, H)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_lifted_weights_reproduce_the_render(backend: str) -> None:
    s, cam = scene()
    onehot = torch.eye(H * W, dtype=torch.float64).reshape(H, W, H * W)
    weights, total = lift_features(s, cam, onehot, backend=backend)  # weights[g, p] = w_gp
    out = render_tensors(s.means, s.quats, s.scales, s.opacities, s.sh, cam, backend=backend)
    colors = torch.clamp_min(0.5 + 0.28209479177387814 * s.sh[:, 0], 0.0)
    assert torch.allclose((weights.T @ colors).reshape(H, W, 3), out.rgb, atol=1e-9)
    assert torch.allclose(weights.sum(0).reshape(H, W), out.alpha, atol=1e-9)
    assert torch.allclose(total, weights.sum(1), atol=1e-9)
    assert (weights >= 0).all() and (total > 0).sum() >= 5  # the scene is visible


def test_constant_features_lift_to_themselves() -> None:
    s, cam = scene(seed=3)
    label = torch.tensor([0.2, -1.0, 3.0], dtype=torch.float64)
    accum, weight = lift_features(s, cam, label.expand(H, W, 3).clone(), backend="cpu")
    seen = weight > 1e-6
    assert seen.any()
    assert torch.allclose(accum[seen] / weight[seen, None], label.expand(int(seen.sum()), 3), atol=1e-9)


def test_bad_shapes_and_backends() -> None:
    s, cam = scene()
    with pytest.raises(ConfigError, match="pixel_features"):
        lift_features(s, cam, torch.zeros(H + 1, W, 2))
    with pytest.raises(ConfigError, match="backend"):
        lift_features(s, cam, torch.zeros(H, W, 2), backend="tpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on the lent device)")
def test_cuda_kernel_matches_cpu_reference() -> None:
    s, cam = scene(n=200, dtype=torch.float32)
    feats = torch.randn(H, W, 5)
    a_cpu, w_cpu = lift_features(s, cam, feats, backend="cpu")
    a_gpu, w_gpu = lift_features(s, cam, feats, backend="cuda")
    assert torch.allclose(w_gpu.cpu(), w_cpu, atol=1e-4, rtol=1e-3)
    assert torch.allclose(a_gpu.cpu(), a_cpu, atol=1e-4, rtol=1e-3)
