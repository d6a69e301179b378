"""The C++ tile rasteriser against the brute-force reference (forward values)."""

from __future__ import annotations

import pytest
import torch
from render_testutils import TinyMap, make_camera, random_scene

from ros_gs.render import Camera, render
from ros_gs.render.projection import project_gaussians
from ros_gs.render.rasterize_cpu import rasterize_cpu
from ros_gs.render.reference import rasterize_reference

FIELDS = ("rgb", "depth", "alpha", "median_depth", "features")


def _compare(m, cam, bg):
    a = render(m, cam, backend="cpu", background=bg, render_features=m.features is not None)
    b = render(m, cam, backend="reference", background=bg, render_features=m.features is not None)
    assert a.backend == "cpu" and b.backend == "reference"
    errs = {}
    for k in FIELDS:
        x, y = getattr(a, k), getattr(b, k)
        if y is None:
            assert x is None
            continue
        assert x.shape == y.shape and x.dtype == y.dtype
        errs[k] = (x - y).abs().max().item()
    return a, b, errs


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sh_degree", [0, 3])
@pytest.mark.parametrize("seed,n", [(0, 50), (1, 120), (2, 200)])
def test_cpu_matches_reference(dtype, sh_degree, seed, n):
    m = random_scene(n, sh_degree=sh_degree, n_features=2 if seed != 1 else 0, seed=seed, dtype=dtype)
    cam = make_camera(40, 30, dtype=dtype)
    bg = torch.tensor([0.2, 0.5, 0.9], dtype=dtype) if seed != 0 else None
    a, b, errs = _compare(m, cam, bg)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert errs["rgb"] < tol, errs
    assert errs["alpha"] < tol, errs
    assert errs["depth"] < 100 * tol, errs  # depths are ~5, relative 2e-5
    assert errs["median_depth"] == 0.0, errs  # same Gaussian picked
    if m.features is not None:
        assert errs["features"] < 10 * tol, errs
    assert 0.2 < b.alpha.mean().item() < 0.95  # the scene is not trivial
    print(f"cpu vs reference {dtype} deg={sh_degree} n={n}: " + ", ".join(f"{k}={v:.2e}" for k, v in errs.items()))


def test_cpu_matches_reference_odd_size_and_many_tiles():
    """Image sizes that are not tile multiples, many tiles, Gaussians across tile borders."""
    dtype = torch.float64
    m = random_scene(300, sh_degree=1, n_features=3, seed=7, dtype=dtype)
    cam = make_camera(83, 37, dtype=dtype)
    _, b, errs = _compare(m, cam, torch.tensor([1.0, 0.0, 0.5], dtype=dtype))
    assert max(errs.values()) < 1e-9, errs
    assert 0.2 < b.alpha.mean().item() < 0.99


def test_many_gaussians_match_reference():
    """Thousands of Gaussians: the parallel depth sort and tile binning (chunked per thread) keep
    every tile list depth-ordered like the reference."""
    m = random_scene(3000, seed=13, dtype=torch.float32, extremes=False)
    m.scales = m.scales * 0.5
    m.opacities = m.opacities * 0.5
    cam = make_camera(40, 30, dtype=torch.float32)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        _, b, errs = _compare(m, cam, None)
    finally:
        torch.set_num_threads(old)
    assert errs["rgb"] < 1e-4 and errs["alpha"] < 1e-4 and errs["median_depth"] == 0.0, errs
    assert b.alpha.mean() > 0.5


def test_low_level_outputs_match_reference():
    """rasterize_cpu and rasterize_reference agree on out / alpha / median ids, and stopping pixels exist."""
    m = random_scene(200, seed=3, dtype=torch.float64)
    m.opacities[:] = 0.97  # opaque scene: many pixels hit the T <= 1e-4 stop
    cam = make_camera(40, 30, dtype=torch.float64)
    p = project_gaussians(m.means, m.quats, m.scales, cam.viewmat, cam.K, cam.width, cam.height)
    cols = torch.rand(200, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    args = (p.means2d, p.conics, cols, m.opacities, p.depths, p.radii, cam.width, cam.height)
    o1, a1, med1 = rasterize_cpu(*args)
    o2, a2, med2 = rasterize_reference(*args)
    assert (o1 - o2).abs().max() < 1e-12
    assert (a1 - a2).abs().max() < 1e-12
    assert torch.equal(med1.long(), med2)
    assert (1 - a1 < 1e-3).float().mean() > 0.03  # opaque pixels, where the T stop acts


def test_deterministic_and_float32_float64_agree():
    m64 = random_scene(150, sh_degree=2, n_features=1, seed=5, dtype=torch.float64)
    cam64 = make_camera(40, 30, dtype=torch.float64)
    m32 = TinyMap(*(None if t is None else t.float() for t in vars(m64).values()))
    cam32 = cam64.to(dtype=torch.float32)
    r1 = render(m32, cam32, backend="cpu", render_features=True)
    r2 = render(m32, cam32, backend="cpu", render_features=True)
    for k in FIELDS:
        assert torch.equal(getattr(r1, k), getattr(r2, k))
    r64 = render(m64, cam64, backend="cpu", render_features=True)
    assert (r1.rgb.double() - r64.rgb).abs().max() < 1e-4


def test_empty_map_renders_background():
    cam = make_camera(20, 10, dtype=torch.float32)
    z = torch.zeros
    m = TinyMap(z(0, 3), z(0, 4), z(0, 3), z(0), z(0, 1, 3), z(0, 4))
    bg = torch.tensor([0.1, 0.2, 0.3], requires_grad=True)
    for backend in ("cpu", "reference"):
        out = render(m, cam, backend=backend, background=bg, render_features=True)
        assert out.rgb.shape == (10, 20, 3) and out.features.shape == (10, 20, 4)
        assert torch.allclose(out.rgb, bg.detach().expand(10, 20, 3))
        assert out.alpha.abs().max() == 0 and out.depth.abs().max() == 0 and out.median_depth.abs().max() == 0
        out.rgb.sum().backward()
        assert torch.allclose(bg.grad, torch.full((3,), 200.0))
        bg.grad = None


def test_everything_culled():
    """Gaussians behind the camera, beyond the near plane and far outside the image."""
    cam = Camera(torch.tensor([[20.0, 0, 10], [0, 20, 5], [0, 0, 1]]), torch.eye(4), 20, 10)
    means = torch.tensor([[0.0, 0, -1], [0, 0, 0.005], [50, 0, 1], [0, -40, 1]])
    n = len(means)
    m = TinyMap(means, torch.tensor([[1.0, 0, 0, 0]] * n), torch.full((n, 3), 0.05), torch.full((n,), 0.9),
                torch.ones(n, 1, 3))
    p = project_gaussians(m.means, m.quats, m.scales, cam.viewmat, cam.K, 20, 10)
    assert not p.valid.any()
    out = render(m, cam, backend="cpu")
    assert out.alpha.abs().max() == 0 and out.rgb.abs().max() == 0
