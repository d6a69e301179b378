"""Gradients: gradcheck of the C++ Function and of the whole pipeline, C++ vs reference grads."""

from __future__ import annotations

import pytest
import torch
from render_testutils import look_at, make_camera, random_scene

from ros_gs.render import Camera, project_gaussians, render_tensors
from ros_gs.render.rasterize_cpu import _RasterizeCPU, rasterize_cpu
from ros_gs.render.reference import rasterize_reference

F64 = torch.float64


def _tiny_projected(seed=0, n=5, w=12, h=10):
    """n Gaussians well inside a 12x10 image (one tile), PD conics, no threshold borderlines."""
    g = torch.Generator().manual_seed(seed)
    means2d = torch.rand(n, 2, generator=g, dtype=F64) * torch.tensor([w - 4.0, h - 4.0], dtype=F64) + 2.0
    L = torch.randn(n, 2, 2, generator=g, dtype=F64) * 0.6 + torch.eye(2, dtype=F64) * 1.5
    cov = L @ L.transpose(1, 2) + 0.3 * torch.eye(2, dtype=F64)
    inv = torch.linalg.inv(cov)
    conics = torch.stack([inv[:, 0, 0], inv[:, 0, 1], inv[:, 1, 1]], -1)
    colors = torch.rand(n, 4, generator=g, dtype=F64)
    opac = 0.3 + 0.6 * torch.rand(n, generator=g, dtype=F64)
    depths = torch.rand(n, generator=g, dtype=F64) + 1.0
    radii = torch.full((n,), 8, dtype=torch.int32)
    return means2d, conics, colors, opac, depths, radii


def test_gradcheck_cpp_function():
    m2, cn, col, op, dep, rad = _tiny_projected()
    ins = [t.clone().requires_grad_() for t in (m2, cn, col, op)]

    def f(m2, cn, col, op):
        out, alpha, _ = _RasterizeCPU.apply(m2, cn, col, op, dep, rad, 12, 10)
        return out, alpha

    assert torch.autograd.gradcheck(f, ins, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradcheck_cpp_function_opaque_pixels():
    """Many stacked, dense Gaussians: the T stop and the 0.999 clamp are active (away from the
    switching points, so the function is smooth at the checked point)."""
    m2, cn, col, op, dep, rad = _tiny_projected(seed=1, n=8)
    m2 = m2 * 0.3 + 4.0  # pile them up
    op = torch.tensor([0.99, 0.98, 0.97, 0.999, 1.0, 0.95, 0.9, 0.5], dtype=F64)
    ins = [t.clone().requires_grad_() for t in (m2, cn, col, op)]
    _, alpha, _ = _RasterizeCPU.apply(*ins, dep, rad, 12, 10)
    assert (alpha > 1 - 1e-3).any()

    def f(m2, cn, col, op):
        out, alpha, _ = _RasterizeCPU.apply(m2, cn, col, op, dep, rad, 12, 10)
        return out, alpha

    assert torch.autograd.gradcheck(f, ins, eps=1e-7, atol=1e-6, rtol=1e-5)


def _pipeline_inputs(sh_degree=1, n=5, seed=0):
    m = random_scene(n, sh_degree=sh_degree, n_features=2, seed=seed, dtype=F64, extremes=False)
    m.means = m.means * 0.5
    m.scales = torch.full_like(m.scales, 0.7) * torch.exp(
        torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=F64) * 0.3)
    m.opacities = torch.linspace(0.4, 0.9, n, dtype=F64)
    c2w = look_at((0.3, -0.2, -4.0), (0.0, 0.0, 0.0))
    K = torch.tensor([[14.0, 0, 6.2], [0, 14.5, 4.9], [0, 0, 1]], dtype=F64)
    return m, c2w, K


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_gradcheck_end_to_end(backend):
    """Through projection + SH + rasteriser w.r.t. means, quats, scales, opacities, SH,
    features and the camera pose (cam-to-world), plus the background."""
    m, c2w, K = _pipeline_inputs(sh_degree=1 if backend == "cpu" else 3)
    bg = torch.tensor([0.1, 0.3, 0.7], dtype=F64)
    ins = [t.clone().requires_grad_() for t in (m.means, m.quats, m.scales, m.opacities, m.sh, m.features, c2w, bg)]

    def f(means, quats, scales, opac, sh, feats, pose, bg):
        cam = Camera.from_pose(K, pose, 12, 10)
        out = render_tensors(means, quats, scales, opac, sh, cam, features=feats, background=bg, backend=backend)
        return out.rgb, out.depth, out.alpha, out.features

    with torch.no_grad():
        o = f(*ins)
    assert o[2].mean() > 0.3  # the Gaussians cover the image
    assert torch.autograd.gradcheck(f, ins, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_median_depth_gradient_goes_to_the_median_gaussian():
    m, c2w, K = _pipeline_inputs(sh_degree=0)
    means = m.means.clone().requires_grad_()
    cam = Camera.from_pose(K, c2w, 12, 10)
    out = render_tensors(means, m.quats, m.scales, m.opacities, m.sh, cam, backend="cpu")
    out.median_depth.sum().backward()
    p = project_gaussians(m.means, m.quats, m.scales, cam.viewmat, cam.K, 12, 10)
    # d(median)/d(mean) = sum over pixels choosing Gaussian g of d z_g / d mean = count_g * R[2]
    ref = render_tensors(m.means, m.quats, m.scales, m.opacities, m.sh, cam, backend="reference")
    assert torch.allclose(out.median_depth, ref.median_depth)
    counts = torch.stack([(out.median_depth == z).sum() for z in p.depths]).to(F64)
    assert torch.allclose(means.grad, counts[:, None] * cam.viewmat[2, :3])


@pytest.mark.parametrize("sh_degree", [0, 3])
def test_cpp_grads_equal_reference_grads_float32(sh_degree):
    m = random_scene(150, sh_degree=sh_degree, n_features=3, seed=11, dtype=torch.float32)
    cam0 = make_camera(40, 30, dtype=torch.float32)
    bg = torch.tensor([0.3, 0.3, 0.3])
    g = torch.Generator().manual_seed(0)
    w_rgb, w_d, w_a, w_f = (torch.randn(*s, generator=g) for s in [(30, 40, 3), (30, 40), (30, 40), (30, 40, 3)])
    grads = {}
    for backend in ("cpu", "reference"):
        ins = [t.clone().requires_grad_() for t in (m.means, m.quats, m.scales, m.opacities, m.sh, m.features)]
        pose = cam0.cam_to_world.clone().requires_grad_()
        cam = Camera.from_pose(cam0.K, pose, 40, 30)
        out = render_tensors(*ins[:5], cam, features=ins[5], background=bg, backend=backend)
        loss = (out.rgb * w_rgb).sum() + 0.1 * (out.depth * w_d).sum() + (out.alpha * w_a).sum() + (out.features * w_f).sum()
        loss.backward()
        grads[backend] = [t.grad for t in ins] + [pose.grad]
    names = ["means", "quats", "scales", "opacities", "sh", "features", "pose"]
    for name, a, b in zip(names, grads["cpu"], grads["reference"]):
        scale = b.abs().max().item()
        err = (a - b).abs().max().item()
        print(f"grad {name} deg={sh_degree}: max |cpu - ref| = {err:.2e} (max |ref| = {scale:.2e})")
        assert err <= 2e-4 * max(scale, 1.0), name


def test_cpp_grads_equal_reference_grads_low_level_float64():
    m = random_scene(200, seed=4, dtype=F64)
    cam = make_camera(40, 30, dtype=F64)
    p = project_gaussians(m.means, m.quats, m.scales, cam.viewmat, cam.K, 40, 30)
    col = torch.rand(200, 6, dtype=F64, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)
    w_o, w_a = torch.randn(30, 40, 6, generator=g, dtype=F64), torch.randn(30, 40, generator=g, dtype=F64)
    res = []
    for fn in (rasterize_cpu, rasterize_reference):
        ins = [t.detach().clone().requires_grad_() for t in (p.means2d, p.conics, col, m.opacities)]
        out, alpha, _ = fn(*ins, p.depths, p.radii, 40, 30)
        ((out * w_o).sum() + (alpha * w_a).sum()).backward()
        res.append([t.grad for t in ins])
    for a, b in zip(*res):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-9)


def test_cpp_results_do_not_depend_on_thread_count():
    """Tiles are independent and the per-(tile, Gaussian) gradient slots are summed in a fixed
    order, so forward and backward are bitwise identical for any number of threads."""
    m = random_scene(5000, sh_degree=1, n_features=2, seed=9, dtype=torch.float32)
    m.scales = m.scales * 0.4
    cam = make_camera(70, 50, dtype=torch.float32)
    old = torch.get_num_threads()
    results = []
    try:
        for nt in (1, 2, 3):
            torch.set_num_threads(nt)
            ins = [t.clone().requires_grad_() for t in (m.means, m.quats, m.scales, m.opacities, m.sh)]
            out = render_tensors(*ins, cam, features=m.features, backend="cpu")
            (out.rgb.sum() + out.depth.sum() + out.features.sum()).backward()
            results.append([out.rgb, out.depth, out.alpha] + [t.grad for t in ins])
    finally:
        torch.set_num_threads(old)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)
