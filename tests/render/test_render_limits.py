"""Input limits: the rasteriser's memory budget, non-finite inputs, bad cameras, and gsplat's
opacity-aware per-axis radii at tile borders."""

from __future__ import annotations

import math

import pytest
import torch
from render_testutils import TinyMap

from ros_gs.errors import ConfigError
from ros_gs.render import Camera, project_gaussians, render, render_tensors
from ros_gs.render import rasterize_cpu as rc
from ros_gs.render.sh import C0

F64 = torch.float64


def _cam(w=40, h=30, f=50.0, cx=20.5, cy=15.5) -> Camera:
    K = torch.tensor([[f, 0, cx], [0, f, cy], [0, 0, 1]], dtype=F64)
    return Camera(K, torch.eye(4, dtype=F64), w, h)


def _map(means, scale, opac) -> TinyMap:
    means = torch.as_tensor(means, dtype=F64).reshape(-1, 3)
    n = len(means)
    return TinyMap(
        means=means,
        quats=torch.tensor([[1.0, 0, 0, 0]] * n, dtype=F64),
        scales=torch.as_tensor(scale, dtype=F64).reshape(-1, 1).expand(n, 3).clone(),
        opacities=torch.as_tensor(opac, dtype=F64).reshape(-1).expand(n).clone(),
        sh=torch.full((n, 1, 3), 0.3 / C0, dtype=F64),
    )


def _args(m):
    return m.means, m.quats, m.scales, m.opacities, m.sh


def test_intersection_budget_raises_config_error_before_allocating(monkeypatch):
    # 50 big Gaussians right in front of the camera: each covers all 6 tiles of a 40x30 image
    m = _map([[0.0, 0.0, 0.5]] * 50, 0.5, 0.9)
    cam = _cam()
    ok = render_tensors(*_args(m), cam, backend="cpu")
    assert ok.alpha.max() > 0.9
    # forward only: 4 bytes per intersection; 300 intersections = 1200 bytes
    monkeypatch.setenv("ROS_GS_RENDER_MAX_BYTES", "1000")
    with pytest.raises(ConfigError, match=r"300 tile intersections .*ROS_GS_RENDER_MAX_BYTES"):
        render_tensors(*_args(m), cam, backend="cpu")
    monkeypatch.setenv("ROS_GS_RENDER_MAX_BYTES", "1200")
    render_tensors(*_args(m), cam, backend="cpu")  # exactly at the budget: fine
    # with a gradient each intersection also needs (6 + C) slot values (C = 3 rgb + 1 depth)
    means = m.means.clone().requires_grad_()
    with pytest.raises(ConfigError, match=r"300 tile intersections x 84 bytes"):
        render_tensors(means, m.quats, m.scales, m.opacities, m.sh, cam, backend="cpu")
    monkeypatch.delenv("ROS_GS_RENDER_MAX_BYTES")
    monkeypatch.setattr(rc, "MAX_BYTES", 100)
    with pytest.raises(ConfigError, match="tile intersections"):
        render_tensors(*_args(m), cam, backend="cpu")
    monkeypatch.setenv("ROS_GS_RENDER_MAX_BYTES", "lots")
    with pytest.raises(ConfigError, match="not a number"):
        render_tensors(*_args(m), cam, backend="cpu")


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("field", ["means", "quats", "scales", "opacities", "sh", "features", "background"])
def test_non_finite_inputs_raise_config_error(backend, field):
    m = _map([[0.0, 0.0, 2.0], [0.1, 0.0, 2.0], [0.0, 0.1, 2.0]], 0.02, 0.8)
    t = dict(zip(("means", "quats", "scales", "opacities", "sh"), _args(m)))
    t = {k: v.clone() for k, v in t.items()}
    t["features"] = torch.zeros(3, 2, dtype=F64)
    t["background"] = torch.zeros(3, dtype=F64)
    bad = t[field]
    if field == "background":
        bad[1] = math.nan
    elif field == "scales":
        bad[1, 0] = math.inf
        bad[2, 2] = math.inf
    else:
        bad.view(bad.shape[0], -1)[1, 0] = math.nan
        if bad.shape[0] == 3 and field != "background":
            bad.view(bad.shape[0], -1)[2, -1] = -math.inf
    n_bad = 1 if field == "background" else 2
    with pytest.raises(ConfigError, match=rf"{field} has {n_bad} rows with NaN or inf"):
        render_tensors(t["means"], t["quats"], t["scales"], t["opacities"], t["sh"], _cam(),
                       features=t["features"], background=t["background"], backend=backend)


def test_overflowing_scale_no_longer_poisons_the_pose_gradient():
    m = _map([[0.0, 0.0, 2.0], [0.1, 0.0, 2.0]], 0.02, 0.8)
    scales = torch.exp(torch.tensor([[-4.0] * 3, [100.0] * 3]))  # float32 exp overflow -> inf
    assert not torch.isfinite(scales).all()
    with pytest.raises(ConfigError, match="scales has 1 rows"):
        render_tensors(m.means.float(), m.quats.float(), scales, m.opacities.float(), m.sh.float(),
                       _cam().to(dtype=torch.float32), backend="cpu")


def test_camera_rejects_non_finite_and_non_positive_focal():
    K = torch.tensor([[50.0, 0, 20], [0, 50, 15], [0, 0, 1]])
    for bad, match in [((0, 0), "fx > 0"), ((1, 1), "fy > 0")]:
        Kb = K.clone()
        Kb[bad] = -1.0 if bad == (1, 1) else 0.0
        with pytest.raises(ConfigError, match=match):
            Camera(Kb, torch.eye(4), 40, 30)
    Kb = K.clone()
    Kb[0, 2] = math.nan
    with pytest.raises(ConfigError, match="K has NaN"):
        Camera(Kb, torch.eye(4), 40, 30)
    V = torch.eye(4)
    V[0, 3] = math.inf
    with pytest.raises(ConfigError, match="viewmat has NaN"):
        Camera(K, V, 40, 30)
    with pytest.raises(ValueError):  # ConfigError is a ValueError: old callers still catch it
        Camera(K, V, 40, 30)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_gaussian_reaching_past_3_sigma_is_drawn_across_the_tile_border(backend):
    """Sigma2D_xx = 9 (sigma 3 px), opacity 0.999: extend = 3.33, radius_x = 10.  With the mean at
    x = 6.8 the old radius ceil(3 sigma) = 9 kept it in tile 0 (6.8 + 9 < 16); gsplat's box
    6.8 + 10 reaches tile 1, and pixel column 16 (centre 16.5, 3.23 sigma away) has
    alpha = 0.999 exp(-3.23^2 / 2) >= 1/255, so it must be drawn there."""
    f, z, o = 50.0, 2.0, 0.999
    s = math.sqrt(9.0 - 0.3) * z / f  # J Sigma J^T + 0.3 = 9
    cam = _cam(cx=6.8, cy=15.5)
    m = _map([0.0, 0.0, z], s, o)
    p = project_gaussians(m.means, m.quats, m.scales, cam.viewmat, cam.K, 40, 30, opacities=m.opacities)
    extend = min(3.33, math.sqrt(2 * math.log(255 * o)))
    assert p.radii.tolist() == [[math.ceil(extend * 3.0)] * 2] == [[10, 10]]
    assert 6.8 + math.ceil(3 * 3.0) < 16 < 6.8 + 10
    out = render(m, cam, backend=backend)
    d = 16.5 - 6.8
    expected = o * math.exp(-0.5 * d * d / 9.0)
    assert expected >= 1 / 255
    assert out.alpha[15, 16].item() == pytest.approx(expected, rel=1e-9)
    # a faint Gaussian gets a smaller box: sqrt(2 ln(255 o)) sigma
    m2 = _map([0.0, 0.0, z], s, 0.05)
    p2 = project_gaussians(m2.means, m2.quats, m2.scales, cam.viewmat, cam.K, 40, 30, opacities=m2.opacities)
    assert p2.radii.tolist() == [[math.ceil(math.sqrt(2 * math.log(255 * 0.05)) * 3.0)] * 2]
    # opacity below 1/255: culled
    m3 = _map([0.0, 0.0, z], s, 0.003)
    p3 = project_gaussians(m3.means, m3.quats, m3.scales, cam.viewmat, cam.K, 40, 30, opacities=m3.opacities)
    assert p3.radii.tolist() == [[0, 0]] and not p3.valid.item()


def test_cpu_and_reference_agree_with_anisotropic_radii():
    """Per-axis radii: an elongated Gaussian; both backends draw the same pixels."""
    m = _map([[0.0, 0.0, 2.0], [0.2, 0.1, 2.5]], 0.02, [0.9, 0.4])
    m.scales[0] = torch.tensor([0.3, 0.01, 0.01], dtype=F64)
    m.scales[1] = torch.tensor([0.01, 0.2, 0.01], dtype=F64)
    cam = _cam(w=64, h=48, cx=30.3, cy=22.7)
    p = project_gaussians(m.means, m.quats, m.scales, cam.viewmat, cam.K, 64, 48, opacities=m.opacities)
    assert p.radii[0, 0] > 2 * p.radii[0, 1] and p.radii[1, 1] > 2 * p.radii[1, 0]
    a = render(m, cam, backend="cpu")
    b = render(m, cam, backend="reference")
    assert torch.equal(a.alpha > 0, b.alpha > 0)
    assert torch.allclose(a.rgb, b.rgb, atol=1e-12)
