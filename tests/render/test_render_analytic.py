"""Hand-computed cases: projection, alpha at a pixel, depth ordering, skip/stop rules, SH, API."""

from __future__ import annotations

import math

import pytest
import torch
from render_testutils import TinyMap, make_camera, random_scene

from ros_gs.errors import ConfigError
from ros_gs.render import Camera, project_gaussians, render, render_tensors, select_backend
from ros_gs.render import api as render_api
from ros_gs.render.sh import C0, eval_sh, sh_basis

F64 = torch.float64
BACKENDS = ("cpu", "reference")


def _cam(w=40, h=30, f=50.0, cx=20.5, cy=15.5, dtype=F64) -> Camera:
    K = torch.tensor([[f, 0, cx], [0, f, cy], [0, 0, 1]], dtype=dtype)
    return Camera(K, torch.eye(4, dtype=dtype), w, h)


def _blobs(means, scale, opac, rgb, dtype=F64) -> TinyMap:
    means = torch.as_tensor(means, dtype=dtype).reshape(-1, 3)
    n = len(means)
    rgb = torch.as_tensor(rgb, dtype=dtype).reshape(n, 3)
    return TinyMap(
        means=means,
        quats=torch.tensor([[1.0, 0, 0, 0]] * n, dtype=dtype),
        scales=torch.as_tensor(scale, dtype=dtype).reshape(-1, 1).expand(n, 3).clone(),
        opacities=torch.as_tensor(opac, dtype=dtype).reshape(-1).expand(n).clone(),
        sh=((rgb - 0.5) / C0)[:, None, :],
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_isotropic_gaussian_by_hand(backend):
    # mean on the optical axis at z=2 -> projects to (20.5, 15.5), the centre of pixel (15, 20)
    z, s, f, o = 2.0, 0.02, 50.0, 0.8
    m = _blobs([0.0, 0.0, z], s, o, [0.9, 0.4, 0.1])
    out = render(m, _cam(f=f), backend=backend)
    var = (f * s / z) ** 2 + 0.3  # J Sigma J^T + 0.3 blur, isotropic
    assert out.alpha[15, 20].item() == pytest.approx(o, abs=1e-12)
    for di, dj in [(0, 1), (1, 0), (1, 1), (-2, 1)]:
        d2 = di * di + dj * dj
        expected = o * math.exp(-0.5 * d2 / var)
        expected = expected if expected >= 1 / 255 else 0.0
        assert out.alpha[15 + di, 20 + dj].item() == pytest.approx(expected, abs=1e-12), (di, dj)
    assert torch.allclose(out.rgb[15, 20], torch.tensor([0.9, 0.4, 0.1], dtype=F64) * o)
    assert out.depth[15, 20].item() == pytest.approx(z)
    assert out.median_depth[15, 20].item() == pytest.approx(z)  # T = 0.2 <= 0.5 after it
    # gsplat 1.5.3's radii: ceil(min(3.33, sqrt(2 ln(255 o))) sqrt(Sigma2D_xx)) per axis (3.33
    # without opacities), and nothing is drawn beyond the 1/255 level
    p = project_gaussians(m.means, m.quats, m.scales, torch.eye(4, dtype=F64), _cam().K, 40, 30,
                          opacities=m.opacities)
    extend = min(3.33, math.sqrt(2 * math.log(255 * o)))
    assert extend < 3.33
    assert p.radii.tolist() == [[math.ceil(extend * math.sqrt(var))] * 2]
    p = project_gaussians(m.means, m.quats, m.scales, torch.eye(4, dtype=F64), _cam().K, 40, 30)
    assert p.radii.tolist() == [[math.ceil(3.33 * math.sqrt(var))] * 2]
    assert p.conics[0].tolist() == pytest.approx([1 / var, 0.0, 1 / var])
    far = o * math.exp(-0.5 * 4 * 4 / var)
    assert far < 1 / 255 and out.alpha[15, 24].item() == 0.0


def test_projection_matches_numeric_jacobian():
    """Sigma2D = J W Sigma W^T J^T + 0.3 I with J the numeric Jacobian of the pinhole."""
    torch.manual_seed(0)
    cam = make_camera(40, 30)
    means = torch.tensor([[0.3, -0.2, 0.5], [-0.4, 0.1, -0.3]], dtype=F64)
    quats = torch.randn(2, 4, dtype=F64)
    scales = torch.tensor([[0.1, 0.03, 0.2], [0.05, 0.05, 0.01]], dtype=F64)
    p = project_gaussians(means, quats, scales, cam.viewmat, cam.K, 40, 30)
    q = quats / quats.norm(dim=1, keepdim=True)
    for n in range(2):
        w, x, y, z = q[n]
        R = torch.tensor([
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ], dtype=F64)
        cov = R @ torch.diag(scales[n] ** 2) @ R.T

        def pix(pw):
            pc = cam.viewmat[:3, :3] @ pw + cam.viewmat[:3, 3]
            uvw = cam.K @ pc
            return uvw[:2] / uvw[2]

        J = torch.autograd.functional.jacobian(pix, means[n])  # (2, 3) w.r.t. the world point
        cov2d = J @ cov @ J.T + 0.3 * torch.eye(2, dtype=F64)
        conic = torch.linalg.inv(cov2d)
        assert torch.allclose(p.means2d[n], pix(means[n]))
        assert torch.allclose(p.conics[n], torch.stack([conic[0, 0], conic[0, 1], conic[1, 1]]), rtol=1e-10)
        pc = cam.viewmat[:3, :3] @ means[n] + cam.viewmat[:3, 3]
        assert p.depths[n].item() == pytest.approx(pc[2].item())
        # per-axis radii (gsplat 1.5.3), extend 3.33 without opacities
        assert p.radii[n].tolist() == [math.ceil(3.33 * math.sqrt(cov2d[0, 0].item())),
                                       math.ceil(3.33 * math.sqrt(cov2d[1, 1].item()))]


def test_jacobian_clamped_outside_the_field_of_view():
    """x/z in J is clamped to (W - cx)/fx + 0.3 tan(fov_x/2) (= 1.3 tan(fov_x/2) when centred)."""
    f, W, H = 50.0, 40, 30
    cam = _cam(w=W, h=H, f=f, cx=20.0, cy=15.0)
    lim = 1.3 * (0.5 * W / f)
    z = 1.0
    x = 2.0 * lim * z  # far right of the view; still drawn thanks to a large scale
    s = 0.05
    m = _blobs([x, 0.0, z], s, 0.5, [1, 1, 1])
    p = project_gaussians(m.means, m.quats, m.scales, cam.viewmat, cam.K, W, H)
    J = torch.tensor([[f / z, 0, -f * lim], [0, f / z, 0]], dtype=F64)
    cov2d = J @ (s * s * torch.eye(3, dtype=F64)) @ J.T + 0.3 * torch.eye(2, dtype=F64)
    conic = torch.linalg.inv(cov2d)
    assert torch.allclose(p.conics[0], torch.stack([conic[0, 0], conic[0, 1], conic[1, 1]]))


def test_near_far_and_image_culling():
    cam = _cam()
    zs = [0.009, 0.011, 5.0]
    m = _blobs([[0.0, 0.0, z] for z in zs] + [[30.0, 0.0, 1.0]], 0.01, 0.5, [[1, 1, 1]] * 4)
    p = project_gaussians(m.means, m.quats, m.scales, cam.viewmat, cam.K, 40, 30, near=0.01, far=4.0)
    assert p.valid.tolist() == [False, True, False, False]  # < near, kept, > far, off-image
    assert p.radii.dtype == torch.int32


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_gaussians_composite_by_depth(backend):
    red, green = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    z1, z2 = 2.0, 3.0
    for order in (1, -1):  # input order must not matter
        m = _blobs([[0, 0, z1], [0, 0, z2]][::order], [0.02, 0.03][::order], [0.6, 0.5][::order],
                   [red, green][::order])
        out = render(m, _cam(), backend=backend, background=torch.tensor([0.0, 0.0, 1.0], dtype=F64))
        T = (1 - 0.6) * (1 - 0.5)
        assert out.rgb[15, 20].tolist() == pytest.approx([0.6, 0.4 * 0.5, T])
        assert out.alpha[15, 20].item() == pytest.approx(1 - T)
        assert out.depth[15, 20].item() == pytest.approx((0.6 * z1 + 0.2 * z2) / (1 - T))
        assert out.median_depth[15, 20].item() == pytest.approx(z1)  # T: 1 -> 0.4 at the first
    # front one fainter: T 1 -> 0.7 -> 0.35, the median is the back one
    m = _blobs([[0, 0, z1], [0, 0, z2]], [0.02, 0.03], [0.3, 0.5], [red, green])
    out = render(m, _cam(), backend=backend)
    assert out.median_depth[15, 20].item() == pytest.approx(z2)
    m = _blobs([[0, 0, z1]], 0.02, 0.3, [red])  # T never reaches 0.5: median 0
    assert render(m, _cam(), backend=backend).median_depth[15, 20].item() == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_transmittance_stop_rule(backend):
    """Stacked Gaussians of alpha 0.95: T = 0.05, 0.0025, 1.25e-4, then 6.25e-6 <= 1e-4, so the
    4th (and all behind it) are not added; the 0.999 clamp caps an opacity of 1."""
    n = 6
    eye = torch.eye(n, 3, dtype=F64)
    rgb = torch.zeros(n, 3, dtype=F64)
    rgb[:3] = eye[:3] * 0.5 + 0.5  # only 1, 2, 3 are distinguishable by channel
    # colours via features: one-hot per Gaussian shows exactly who contributed
    m = _blobs([[0, 0, 2.0 + 0.1 * k] for k in range(n)], 0.02, 0.95, rgb)
    m.features = torch.eye(n, dtype=F64)
    out = render(m, _cam(), backend=backend, render_features=True)
    w = out.features[15, 20]
    expected = [0.95, 0.05 * 0.95, 0.0025 * 0.95, 0.0, 0.0, 0.0]
    assert w.tolist() == pytest.approx(expected, abs=1e-12)
    assert out.alpha[15, 20].item() == pytest.approx(1 - 1.25e-4, abs=1e-12)
    m = _blobs([[0, 0, 2.0]], 0.02, 1.0, [[1, 1, 1]])
    assert render(m, _cam(), backend=backend).alpha[15, 20].item() == pytest.approx(0.999)


@pytest.mark.parametrize("backend", BACKENDS)
def test_alpha_below_1_255_is_skipped(backend):
    base = _blobs([[0, 0, 2.0]], 0.02, 0.5, [[1, 0, 0]])
    faint = _blobs([[0, 0, 1.5], [0, 0, 1.6]], 0.02, [0.0035, 0.0045], [[0, 1, 0], [0, 0, 1]])
    both = TinyMap(*(torch.cat([getattr(faint, k), getattr(base, k)]) for k in ("means", "quats", "scales", "opacities", "sh")))
    out = render(both, _cam(), backend=backend)
    px = out.rgb[15, 20]
    # 0.0035 < 1/255 is skipped; 0.0045 >= 1/255 is added at its centre only (exp(-sigma) shrinks it below)
    assert px.tolist() == pytest.approx([0.5 * (1 - 0.0045), 0.0, 0.0045])
    assert out.rgb[15, 21, 2].item() == 0.0


def test_sh_degree0_colour_and_clamp():
    m = _blobs([[0, 0, 2.0]], 0.02, 0.5, [[0.2, 0.5, 0.8]])
    m.sh[0, 0, 0] = -5.0  # 0.5 + C0 * -5 < 0 -> clamped to 0
    out = render(m, _cam(), backend="cpu")
    assert out.rgb[15, 20].tolist() == pytest.approx([0.0, 0.25, 0.4])


def test_sh_basis_orthonormal_and_signs():
    # quadrature on a fine Fibonacci sphere: int Y_i Y_j = delta_ij
    n = 200_000
    k = torch.arange(n, dtype=F64) + 0.5
    zc = 1 - 2 * k / n
    phi = math.pi * (1 + 5 ** 0.5) * k
    r = torch.sqrt(1 - zc * zc)
    d = torch.stack([r * torch.cos(phi), r * torch.sin(phi), zc], -1)
    B = sh_basis(3, d)
    gram = B.T @ B * (4 * math.pi / n)
    assert torch.allclose(gram, torch.eye(16, dtype=F64), atol=1e-4)
    # degree-1 signs (gsplat / 3DGS): -C1 y, +C1 z, -C1 x
    C1 = 0.4886025119029199
    for axis, idx, sign in [(1, 1, -1), (2, 2, 1), (0, 3, -1)]:
        v = torch.zeros(1, 3, dtype=F64)
        v[0, axis] = 2.0  # eval_sh normalises
        sh = torch.zeros(1, 4, 3, dtype=F64)
        sh[0, idx] = 1.0
        assert eval_sh(1, sh, v)[0].tolist() == pytest.approx([sign * C1] * 3)


def test_sh_view_direction_from_camera_centre():
    """Degree 1 colour depends on the direction camera centre -> mean (here +z of the world)."""
    cam = _cam()
    m = _blobs([[0, 0, 2.0]], 0.02, 0.5, [[0.5, 0.5, 0.5]])
    m.sh = torch.cat([m.sh, torch.zeros(1, 3, 3, dtype=F64)], 1)
    m.sh[0, 2] = torch.tensor([1.0, 0.0, -1.0])  # the z basis function (+C1 z)
    out = render(m, cam, backend="cpu")
    C1 = 0.4886025119029199
    assert out.rgb[15, 20].tolist() == pytest.approx([0.5 * (0.5 + C1), 0.25, 0.5 * (0.5 - C1)])


def test_camera_from_pose_and_centre():
    c2w = torch.eye(4, dtype=F64)
    ang = 0.3
    c2w[:3, :3] = torch.tensor([[math.cos(ang), 0, math.sin(ang)], [0, 1, 0], [-math.sin(ang), 0, math.cos(ang)]])
    c2w[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    cam = Camera.from_pose(_cam().K, c2w, 40, 30)
    assert torch.allclose(cam.viewmat @ c2w, torch.eye(4, dtype=F64))
    assert torch.allclose(cam.camera_center, c2w[:3, 3])
    assert torch.allclose(cam.cam_to_world, c2w)
    with pytest.raises(ValueError):
        Camera(torch.eye(3), torch.eye(4), 0, 10)


def test_backend_selection(monkeypatch):
    m = random_scene(30, seed=0, dtype=torch.float32)
    cam = make_camera(16, 12, dtype=torch.float32)
    with pytest.raises(ConfigError):
        select_backend("vulkan")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA"):
        render(m, cam, backend="gsplat")
    assert select_backend("auto") == "cpu"
    assert render(m, cam).backend == "cpu"

    # CUDA present but the gsplat backend does not import -> auto falls back to cpu
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(render_api, "_GSPLAT_IMPORT", ImportError("no gsplat"))
    assert select_backend("auto") == "cpu"
    with pytest.raises(ConfigError, match="unavailable"):
        select_backend("gsplat")

    # CUDA present and the backend imports -> auto uses it, with the agreed keyword arguments
    calls = {}

    class FakeBackend:
        @staticmethod
        def render_gsplat(**kw):
            calls.update(kw)
            return "rendered"

    monkeypatch.setattr(render_api, "_GSPLAT_IMPORT", FakeBackend)
    assert select_backend("auto") == "gsplat"
    assert render(m, cam, background=torch.ones(3)) == "rendered"
    assert set(calls) == {"means", "quats", "scales", "opacities", "sh", "camera", "background", "sh_degree", "features"}
    assert calls["sh_degree"] == 0 and calls["features"] is None


def test_render_features_without_features_is_an_error():
    m = random_scene(10, seed=0, dtype=torch.float32)
    with pytest.raises(ConfigError):
        render(m, make_camera(16, 12, dtype=torch.float32), backend="cpu", render_features=True)
    with pytest.raises(ValueError):
        render_tensors(m.means, m.quats[:, :3], m.scales, m.opacities, m.sh, make_camera(16, 12), backend="cpu")
