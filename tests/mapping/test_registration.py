"""Colour registered onto the depth grid (``register_color_to_depth``), checked against scenes
whose colour and depth images are computed in closed form, and the frame plumbing around it."""

from __future__ import annotations

import numpy as np
import pytest

from ros_gs.errors import ConfigError
from ros_gs.mapping import RgbdFrame, downscale
from ros_gs.mapping.frames import register_color_to_depth, register_frame

KD = np.array([[80.0, 0.0, 39.5], [0.0, 80.0, 29.5], [0.0, 0.0, 1.0]])  # depth camera, 80x60
KC = np.array([[70.0, 0.0, 51.0], [0.0, 72.0, 35.0], [0.0, 0.0, 1.0]])  # colour camera, 100x70


def texture(X: np.ndarray) -> np.ndarray:
    """Colour painted on the world surface: smooth in x and y so bilinear sampling is exact to
    well under one grey level."""
    r = 128 + 100 * np.sin(6.0 * X[..., 0])
    g = 128 + 100 * np.cos(5.0 * X[..., 1])
    b = 60 + 40 * X[..., 0] + 30 * X[..., 1]
    return np.stack([r, g, b], -1)


def plane_scene(T_color_depth: np.ndarray, n: np.ndarray, d0: float):
    """Depth image of the plane n . X = d0 (depth-camera frame) and the colour image the colour
    camera sees of it, both exact."""
    v, u = np.mgrid[0:60, 0:80].astype(float)
    rays = np.stack([(u - KD[0, 2]) / KD[0, 0], (v - KD[1, 2]) / KD[1, 1], np.ones_like(u)], -1)
    depth = d0 / (rays @ n)  # z of the intersection (rays have z = 1)
    X_depth = rays * depth[..., None]
    # colour image: each colour pixel's ray, intersected with the plane in colour coordinates
    R, t = T_color_depth[:3, :3], T_color_depth[:3, 3]
    n_c, d_c = R @ n, d0 + (R @ n) @ t  # plane in colour coordinates: n_c . Y = d_c
    vc, uc = np.mgrid[0:70, 0:100].astype(float)
    rays_c = np.stack([(uc - KC[0, 2]) / KC[0, 0], (vc - KC[1, 2]) / KC[1, 1], np.ones_like(uc)], -1)
    Y = rays_c * (d_c / (rays_c @ n_c))[..., None]
    X_of_colour = (Y - t) @ R  # back to depth-camera coordinates
    rgb = np.round(texture(X_of_colour)).clip(0, 255).astype(np.uint8)
    return rgb, depth.astype(np.float32), texture(X_depth)


def offset(x: float, yaw_deg: float = 0.0) -> np.ndarray:
    T = np.eye(4)
    a = np.radians(yaw_deg)
    T[:3, :3] = [[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
    T[0, 3] = x
    return T


@pytest.mark.parametrize("n", [np.array([0.0, 0.0, 1.0]), np.array([0.3, -0.2, 1.0]) / np.linalg.norm([0.3, -0.2, 1.0])])
def test_registered_colour_is_what_the_depth_pixel_sees(n: np.ndarray) -> None:
    T = offset(-0.05, yaw_deg=3.0)  # another camera 5 cm aside, slightly turned, other intrinsics
    rgb, depth, want = plane_scene(T, n, 1.2)
    got = register_color_to_depth(rgb, depth, KD, KC, T).astype(float)
    naive = rgb[:60, :80].astype(float)  # treating the colour image as registered
    inside = np.ones((60, 80), bool)
    inside[:2], inside[-2:], inside[:, :2], inside[:, -2:] = False, False, False, False
    err = np.abs(got - want)[inside]
    assert err.max() < 3.0 and err.mean() < 0.8  # bilinear on a smooth texture + 8-bit rounding
    assert np.abs(naive - want)[inside].mean() > 10 * err.mean()


def test_pixels_without_depth_use_the_fill_depth() -> None:
    T = offset(-0.05)
    rgb, depth, want = plane_scene(T, np.array([0.0, 0.0, 1.0]), 1.2)
    holes = depth.copy()
    holes[20:30, 30:50] = 0.0
    holes[5, 5] = np.nan
    got = register_color_to_depth(rgb, holes, KD, KC, T)  # the median valid depth is the plane's
    assert np.array_equal(got, register_color_to_depth(rgb, depth, KD, KC, T))


def test_frames_register_before_downscaling() -> None:
    T = offset(-0.05)
    rgb, depth, _ = plane_scene(T, np.array([0.0, 0.0, 1.0]), 1.2)
    f = RgbdFrame(5, rgb, depth, KD, color_K=KC, T_color_depth=T)  # colour 100x70, depth 80x60
    assert not f.registered and (f.width, f.height) == (80, 60)
    r = register_frame(f)
    assert r.registered and r.rgb.shape == (60, 80, 3) and r.depth is f.depth
    small = downscale(f, 2)
    assert small.rgb.shape == (30, 40, 3) and np.array_equal(small.rgb, downscale(r, 2).rgb)
    # one camera described twice: no resampling at all
    same = RgbdFrame(5, rgb[:60, :80], depth, KD, color_K=KD.copy(), T_color_depth=np.eye(4))
    assert register_frame(same).rgb is same.rgb


def test_bad_calibration_is_a_clear_error() -> None:
    rgb, depth, _ = plane_scene(np.eye(4), np.array([0.0, 0.0, 1.0]), 1.0)
    with pytest.raises(ConfigError, match="T_color_depth"):
        RgbdFrame(0, rgb, depth, KD, color_K=KC, T_color_depth=np.full((4, 4), 2.0))
    with pytest.raises(ConfigError, match="color_K"):
        RgbdFrame(0, rgb, depth, KD, color_K=np.zeros((3, 3)))
    with pytest.raises(ConfigError, match="registered"):
        RgbdFrame(0, rgb, depth, KD)  # colour and depth differ in size and no colour camera
    with pytest.raises(ConfigError, match="needs color_K"):
        RgbdFrame(0, rgb[:60, :80], depth, KD, T_color_depth=np.eye(4))
