"""Unit tests of the mapping helpers: metrics, K conventions, downscaling, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from ros_gs.errors import ConfigError
from ros_gs.mapping import Mapper, MapperConfig, RgbdFrame, ate_rmse, downscale, psnr, render_K, scale_K, ssim
from ros_gs.mapping.mapper import Keyframe, orthonormalize


def _traj(n=50, seed=0):
    rng = np.random.default_rng(seed)
    Ts = []
    for i in range(n):
        T = np.eye(4)
        T[:3, :3] = Rotation.from_rotvec(rng.normal(0, 0.2, 3)).as_matrix()
        T[:3, 3] = [np.sin(i / 5.0), 0.3 * i / n, np.cos(i / 7.0)]
        Ts.append(T)
    return np.array(Ts)


def test_ate_rigid_transform_is_zero():
    gt = _traj()
    A = np.eye(4)
    A[:3, :3] = Rotation.from_rotvec([0.3, -1.0, 2.0]).as_matrix()
    A[:3, 3] = [5.0, -2.0, 1.0]
    rmse, aligned = ate_rmse([A @ T for T in gt], gt)
    assert rmse < 1e-9
    np.testing.assert_allclose(aligned[:, :3, 3], gt[:, :3, 3], atol=1e-9)


def test_ate_noise_gives_expected_rmse():
    gt = _traj(2000)
    rng = np.random.default_rng(1)
    est = gt.copy()
    sigma = 0.01
    est[:, :3, 3] += rng.normal(0, sigma, (len(gt), 3))
    rmse, _ = ate_rmse(est, gt)
    assert rmse == pytest.approx(sigma * np.sqrt(3), rel=0.05)


def test_ate_rejects_mismatched():
    with pytest.raises(ValueError):
        ate_rmse(_traj(5), _traj(6))


def test_psnr_ssim():
    rng = np.random.default_rng(0)
    a = rng.random((40, 50, 3)).astype(np.float32)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-5)
    b = np.clip(a + 0.1, 0, 1)
    mse = ((a - b) ** 2).mean()
    assert psnr(a, b) == pytest.approx(10 * np.log10(1 / mse), abs=1e-3)
    assert psnr((a * 255).round().astype(np.uint8), a) > 45
    assert ssim(a, rng.random((40, 50, 3))) < 0.2


def test_K_conventions():
    K = np.array([[585.0, 0, 320.0], [0, 585.0, 240.0], [0, 0, 1]])
    Ks = scale_K(K, 2)
    # pixel u' of the half image covers u = 2u', 2u'+1: centre 2u' + 0.5
    assert Ks[0, 0] == 292.5 and Ks[0, 2] == pytest.approx(159.75) and Ks[1, 2] == pytest.approx(119.75)
    Kr = render_K(Ks)
    assert Kr[0, 2] == pytest.approx(160.25) and Kr[1, 2] == pytest.approx(120.25)
    # a point projecting to full-res pixel (2u'+0.5) projects to u' in the half image
    X = np.array([0.3, -0.2, 2.0])
    u_full = K[0, 0] * X[0] / X[2] + K[0, 2]
    u_half = Ks[0, 0] * X[0] / X[2] + Ks[0, 2]
    assert u_half == pytest.approx((u_full - 0.5) / 2)


def test_downscale_keeps_depth_edges_invalid():
    d = np.full((4, 4), 2.0, np.float32)
    d[:, 3] = 3.0  # an edge inside the right column blocks
    d[0, 0] = 0.0  # one invalid pixel
    f = RgbdFrame(0, np.zeros((4, 4, 3), np.uint8), d, np.eye(3) * [1, 1, 1] + [[0, 0, 2], [0, 0, 2], [0, 0, 0]])
    s = downscale(f, 2)
    assert s.depth.shape == (2, 2)
    assert s.depth[0, 0] == 0 and s.depth[0, 1] == 0 and s.depth[1, 1] == 0 and s.depth[1, 0] == 2.0


def test_frame_validation():
    with pytest.raises(ConfigError):
        RgbdFrame(0, np.zeros((4, 4, 3), np.float32), np.zeros((4, 4)), np.eye(3))
    with pytest.raises(Exception):
        MapperConfig(not_a_param=1)
    with pytest.raises(Exception):
        MapperConfig(seed_stride=0)


def test_orthonormalize():
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec([0.1, 0.2, 0.3]).as_matrix() * 1.01
    R = orthonormalize(T)[:3, :3]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)


def _plane_frame(w=64, h=48, z=2.0):
    K = np.array([[60.0, 0, (w - 1) / 2], [0, 60.0, (h - 1) / 2], [0, 0, 1]])
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[..., 1] = np.linspace(0, 255, w, dtype=np.uint8)[None]
    depth = np.full((h, w), z, np.float32)
    return RgbdFrame(0, rgb, depth, K)


def test_seeding_places_gaussians_on_the_surface_and_not_twice():
    cfg = MapperConfig(target_width=64, seed_stride=2, map_iterations=0)
    m = Mapper(cfg)
    f = _plane_frame()
    kf = Keyframe(0, 0, np.eye(4), f)
    n = m.seed(kf)
    assert n == 32 * 24
    means = m.map.means.numpy()
    np.testing.assert_allclose(means[:, 2], 2.0, atol=1e-5)
    assert np.abs(means[:, 0]).max() == pytest.approx(2.0 * 31.5 / 60.0, rel=1e-3)
    # colour: SH DC decodes to the pixel colour
    np.testing.assert_allclose(m.map.colors_dc.numpy()[:, 0], 200 / 255, atol=1e-5)
    # sigma = factor * z / fx * stride
    np.testing.assert_allclose(m.map.scales.numpy(), 0.7 * 2.0 / 60.0 * 2, rtol=1e-5)
    # the render now explains the frame: its alpha is high, colour close, and a second seed adds nothing
    out = m.render(np.eye(4), f.K, f.width, f.height)
    assert float(out.alpha[4:-4, 4:-4].min()) > 0.9
    assert psnr(out.rgb.clamp(0, 1).numpy()[4:-4, 4:-4], f.rgb[4:-4, 4:-4]) > 25
    assert abs(float(out.depth[4:-4, 4:-4].mean()) - 2.0) < 0.02
    assert m.seed(kf) == 0
    # a surface in front of the map is seeded
    near = RgbdFrame(0, f.rgb, np.full_like(f.depth, 1.0), f.K)
    kf2 = Keyframe(1, 0, np.eye(4), near)
    assert m.seed(kf2) == 32 * 24


def test_mapper_respects_the_cap():
    cfg = MapperConfig(target_width=64, seed_stride=1, max_gaussians=500, map_iterations=2)
    m = Mapper(cfg)
    est = m.process(_plane_frame())
    assert est.keyframe and est.ok and m.map.num_gaussians <= 500


def test_motion_prior_replaces_constant_velocity():
    """With no tracking iterations the pose is the prediction itself: T_prev @ motion_prior when a
    prior is given, else the constant-velocity extrapolation; a non-finite prior is refused."""
    from ros_gs.errors import InputError

    cfg = MapperConfig(target_width=64, odometry_iterations=(0, 0, 0), map_iterations=0, map_iterations_coarse=0,
                       pose_graph=False)
    m = Mapper(cfg)
    m.process(_plane_frame())
    prior = np.eye(4)
    prior[:3, :3] = Rotation.from_rotvec([0.0, 0.05, 0.0]).as_matrix()
    prior[:3, 3] = [0.05, 0.0, 0.01]
    T1 = m.process(_plane_frame(), motion_prior=prior).T_world_cam
    np.testing.assert_allclose(T1, prior, atol=1e-9)
    T2 = m.process(_plane_frame()).T_world_cam  # no prior: constant velocity from the last motion
    np.testing.assert_allclose(T2, T1 @ T1, atol=1e-9)
    with pytest.raises(InputError, match="motion_prior"):
        m.process(_plane_frame(), motion_prior=np.full((4, 4), np.nan))


def test_depth_fusion_averages_observations_along_the_rays():
    """Gaussians seeded on a plane at 2.00 m, then 3 frames seeing it at 2.06 m: each mean
    slides along its own viewing ray to the count-weighted mean (1 x 2.00 + 3 x 2.06) / 4;
    a surface outside the band (3 m) moves nothing."""
    cfg = MapperConfig(target_width=64, seed_stride=2, map_iterations=0, fuse_band=0.05)
    m = Mapper(cfg)
    f = _plane_frame()
    kf = Keyframe(0, 0, np.eye(4), f)
    m.seed(kf)
    before = m.map.means.numpy().copy()
    far = RgbdFrame(0, f.rgb, np.full_like(f.depth, 3.0), f.K)
    assert m.fuse_depth(far, np.eye(4)) == 0
    near = RgbdFrame(0, f.rgb, np.full_like(f.depth, 2.06), f.K)
    for _ in range(3):
        assert m.fuse_depth(near, np.eye(4)) == m.map.num_gaussians
    after = m.map.means.numpy()
    expect_z = (2.0 + 3 * 2.06) / 4
    np.testing.assert_allclose(after[:, 2], expect_z, atol=1e-4)
    # along the ray: x/z and y/z unchanged
    np.testing.assert_allclose(after[:, :2] / after[:, 2:], before[:, :2] / before[:, 2:], atol=1e-6)
    np.testing.assert_allclose(m.map.confidence.numpy(), 4.0)
    # a moved camera sees the same points at other pixels: fusion works in the world frame
    T = np.eye(4)
    T[:3, 3] = [0.6, 0.0, 0.0]
    shifted = RgbdFrame(0, f.rgb, np.full_like(f.depth, expect_z), f.K)
    n = m.fuse_depth(shifted, T)
    assert 0 < n < m.map.num_gaussians  # the ones that project into the shifted view
    np.testing.assert_allclose(m.map.means.numpy()[:, 2], expect_z, atol=1e-4)  # consistent depth: no motion


@pytest.mark.parametrize("freeze", [True, False])
def test_unseen_gaussians_do_not_drift_on_optimizer_momentum(freeze):
    """Plane A is fitted from keyframe 0; keyframe 1 looks at the plane from 1 m to the side.
    Gaussians of A just outside keyframe 1's image (within the optimisation's frustum margin, so
    in the step, but unseen) must stay exactly where they were with freeze_unseen, whereas the
    carried Adam momentum alone moves them otherwise.  Gaussians nowhere near the window's views
    are not in the optimisation at all (the plane seen by a keyframe looking the other way)."""
    cfg = MapperConfig(target_width=64, seed_stride=2, map_iterations=5, map_iterations_coarse=0, window_size=1,
                       freeze_unseen=freeze, prune_opacity=0.0)
    m = Mapper(cfg)
    f = _plane_frame()
    rgb_shift = f.rgb.copy()
    rgb_shift[..., 2] = 90  # a colour the seeds do not have: a real gradient on A
    fa = RgbdFrame(0, rgb_shift, f.depth, f.K)
    kf0 = Keyframe(0, 0, np.eye(4), fa)
    m.seed(kf0)
    m.keyframes.append(kf0)
    m.optimise(5)
    n_a = m.map.num_gaussians
    means0, sh0 = m.map.means[:n_a].clone(), m.map.sh[:n_a].clone()
    T1 = np.eye(4)
    T1[0, 3] = 1.0  # 1 m to the right: A's left part (u < 30 px in keyframe 0) leaves the image
    kf1 = Keyframe(1, 1, T1, fa)
    m.seed(kf1)
    m.keyframes.append(kf1)
    m.optimise(5)
    u1 = f.K[0, 0] * (means0[:, 0].numpy() - 1.0) / means0[:, 2].numpy() + f.K[0, 2]
    margin = (u1 > -9.0) & (u1 < -5.0)  # outside the image, inside the 15% (9.6 px) margin, > 3 sigma from the edge
    assert margin.sum() >= 10
    moved = (m.map.sh[:n_a] - sh0).abs().amax(dim=(1, 2)) + (m.map.means[:n_a] - means0).abs().amax(dim=1)
    inside = u1 > 5.0
    assert float(moved[torch.from_numpy(inside)].max()) > 1e-4  # in view: optimised
    if freeze:
        assert float(moved[torch.from_numpy(margin)].max()) == 0.0
    else:
        assert float(moved[torch.from_numpy(margin)].max()) > 1e-5
    far = u1 < -20.0  # beyond the margin: never in this step
    assert far.sum() >= 10 and float(moved[torch.from_numpy(far)].max()) == 0.0


def test_ssim_loss_term_is_differentiable_and_matches_the_metric():
    from ros_gs.mapping.evaluation import ssim_torch

    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (24, 32, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)
    x = torch.from_numpy(a).permute(2, 0, 1)[None].requires_grad_(True)
    y = torch.from_numpy(b).permute(2, 0, 1)[None]
    s = ssim_torch(x, y)
    assert abs(float(s.detach()) - ssim(a, b)) < 1e-6 and abs(ssim(a, a) - 1.0) < 1e-6
    (1 - s).backward()
    # a gradient step on D-SSIM moves x towards y
    with torch.no_grad():
        x2 = x - 0.5 * x.grad / x.grad.abs().max()
    assert float(ssim_torch(x2, y)) > float(s.detach())
