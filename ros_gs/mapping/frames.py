"""RGB-D frames and the camera-intrinsics conventions of the mapper.

Two pixel-centre conventions meet here:

* OpenCV / ROS ``CameraInfo`` (and :class:`RgbdFrame.K`, open3d): the centre of pixel (row i,
  column j) is at ``(j, i)``.
* ``ros_gs.render`` (gsplat): the centre is at ``(j + 0.5, i + 0.5)``.

:func:`render_K` converts the first to the second (``cx + 0.5``, ``cy + 0.5``);
:func:`scale_K` gives the OpenCV K of an image downscaled by an integer factor (pixel ``j'``
of the small image covers pixels ``f j' .. f j' + f - 1``, centred on ``f j' + (f - 1) / 2``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ros_gs.errors import ConfigError
from ros_gs.render.camera import render_K  # noqa: F401  (re-exported: part of the mapping API)


@dataclass
class RgbdFrame:
    """One RGB-D frame: rgb (H, W, 3) uint8; depth (H, W) float32 metres (NaN or 0 = invalid);
    K (3, 3) OpenCV/ROS convention (integer pixel centres).

    Registered frames (colour pixel (i, j) sees what depth pixel (i, j) measured) leave
    ``color_K`` None.  Unregistered ones give the colour camera's own ``color_K`` and the rigid
    ``T_color_depth`` (depth-camera coordinates -> colour-camera coordinates); ``K`` and the
    estimated poses are then the depth camera's, and the colour image may have any size:
    :func:`register_frame` resamples it onto the depth grid."""

    stamp_ns: int
    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    color_K: np.ndarray | None = None
    T_color_depth: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.rgb = np.asarray(self.rgb)
        self.depth = np.asarray(self.depth, dtype=np.float32)
        self.K = _check_K(self.K, "K")
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3 or self.rgb.dtype != np.uint8:
            raise ConfigError(f"RgbdFrame.rgb must be (H, W, 3) uint8, got {self.rgb.dtype} {self.rgb.shape}")
        if self.depth.ndim != 2:
            raise ConfigError(f"RgbdFrame.depth must be (H, W), got {self.depth.shape}")
        if self.color_K is None:
            if self.T_color_depth is not None:
                raise ConfigError("RgbdFrame.T_color_depth needs color_K (the colour camera's intrinsics)")
            if self.depth.shape != self.rgb.shape[:2]:
                raise ConfigError(f"RgbdFrame.depth must be {self.rgb.shape[:2]} (registered), got {self.depth.shape}")
            return
        self.color_K = _check_K(self.color_K, "color_K")
        T = np.eye(4) if self.T_color_depth is None else np.asarray(self.T_color_depth, dtype=np.float64)
        if T.shape != (4, 4) or not np.isfinite(T).all() or not np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-4):
            raise ConfigError(f"RgbdFrame.T_color_depth must be a finite rigid 4x4, got {T.tolist()}")
        self.T_color_depth = T

    @property
    def registered(self) -> bool:
        """True when colour and depth share one pixel grid (no resampling needed)."""
        return self.color_K is None

    @property
    def height(self) -> int:
        return int(self.depth.shape[0])

    @property
    def width(self) -> int:
        return int(self.depth.shape[1])

    @classmethod
    def from_folder_frame(cls, f, K: np.ndarray, color=None) -> "RgbdFrame":
        """From a :class:`ros_gs.datasets.rgbd_folder.RgbdFrame` (uint16 mm depth); ``color``: the
        folder's :class:`ros_gs.datasets.rgbd_folder.ColorCamera` when colour is not registered."""
        depth = f.depth_mm.astype(np.float32) / 1000.0
        depth[f.depth_mm == 65535] = 0.0
        if color is None:
            return cls(int(f.stamp_ns), f.rgb, depth, K)
        return cls(int(f.stamp_ns), f.rgb, depth, K, color.K, color.T_color_depth)


def _check_K(K, name: str) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ConfigError(f"RgbdFrame.{name} must be a finite 3x3 with positive focal lengths, got {K.tolist()}")
    return K


def scale_K(K: np.ndarray, factor: int) -> np.ndarray:
    """OpenCV K of the image downscaled by the integer ``factor`` (block averaging)."""
    f = float(factor)
    Ks = np.array(K, dtype=np.float64, copy=True)
    Ks[0, 0] /= f
    Ks[1, 1] /= f
    Ks[0, 1] /= f
    Ks[0, 2] = (Ks[0, 2] + 0.5) / f - 0.5
    Ks[1, 2] = (Ks[1, 2] + 0.5) / f - 0.5
    return Ks


def downscale(frame: RgbdFrame, factor: int, *, depth_rel_spread: float = 0.05) -> RgbdFrame:
    """Downscale by an integer factor, after registering colour to depth: colour by block mean;
    depth by block mean of blocks whose pixels are all valid and agree within
    ``depth_rel_spread`` x depth (else invalid = 0), so no depth is invented across an edge.
    Trailing rows/columns that do not fill a block are dropped."""
    f = int(factor)
    if f < 1:
        raise ConfigError(f"downscale factor must be >= 1, got {factor}")
    frame = register_frame(frame)
    depth = np.nan_to_num(frame.depth, nan=0.0, posinf=0.0, neginf=0.0)
    if f == 1:
        return RgbdFrame(frame.stamp_ns, frame.rgb, depth, frame.K)
    h, w = frame.height // f, frame.width // f
    rgb = frame.rgb[: h * f, : w * f].reshape(h, f, w, f, 3).astype(np.float32).mean(axis=(1, 3))
    d = depth[: h * f, : w * f].reshape(h, f, w, f)
    valid = (d > 0).all(axis=(1, 3))
    dmax, dmin = d.max(axis=(1, 3)), d.min(axis=(1, 3))
    dmean = d.mean(axis=(1, 3))
    ok = valid & (dmax - dmin <= depth_rel_spread * dmean)
    out_d = np.where(ok, dmean, 0.0).astype(np.float32)
    return RgbdFrame(frame.stamp_ns, np.round(rgb).clip(0, 255).astype(np.uint8), out_d, scale_K(frame.K, f))


def backproject(depth: np.ndarray, K: np.ndarray, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame points (M, 3) of the valid depth pixels (OpenCV K), and their (M, 2) pixel
    (row, col) indices, sampling every ``stride``-th pixel."""
    d = depth[::stride, ::stride]
    rows, cols = np.nonzero(np.isfinite(d) & (d > 0))
    z = d[rows, cols].astype(np.float64)
    r, c = rows * stride, cols * stride
    x = (c - K[0, 2]) / K[0, 0] * z
    y = (r - K[1, 2]) / K[1, 1] * z
    return np.stack([x, y, z], axis=1), np.stack([r, c], axis=1)


def project(points_world: np.ndarray, T_world_cam: np.ndarray, K: np.ndarray, near: float = 1e-3):
    """The inverse of :func:`backproject` for world points: camera-frame points (N, 3), pixel
    coordinates u, v (N,) (OpenCV K; meaningless where not ``front``) and ``front`` (z > near)."""
    pc = (np.asarray(points_world, np.float64) - T_world_cam[:3, 3]) @ T_world_cam[:3, :3]
    front = pc[:, 2] > near
    z = np.where(front, pc[:, 2], 1.0)
    return pc, K[0, 0] * pc[:, 0] / z + K[0, 2], K[1, 1] * pc[:, 1] / z + K[1, 2], front


def register_color_to_depth(rgb: np.ndarray, depth: np.ndarray, K_depth: np.ndarray, K_color: np.ndarray,
                            T_color_depth: np.ndarray, *, fill_depth: float | None = None) -> np.ndarray:
    """Colour image resampled onto the depth camera's pixel grid (bilinear), so that pixel (i, j)
    of the result sees the surface point that depth pixel (i, j) measured.

    Why: RGB-D cameras whose streams are not hardware-registered (Kinect v1 raw, 7-Scenes) have
    a colour camera with other intrinsics a few centimetres beside the depth camera; tracking
    with colour and depth and colouring Gaussians both assume one camera.  Pixels without depth
    are mapped as if at ``fill_depth`` (default: the median valid depth) so the image has no holes.
    ``T_color_depth`` (4x4) maps depth-camera coordinates to colour-camera coordinates; both K in
    the OpenCV convention.  The poses the mapper estimates are the depth camera's.

    Our own code: open3d has no colour-to-depth registration, and OpenCV's ``rgbd.registerDepth``
    (contrib, not a dependency) goes the other way, depth onto the colour grid."""
    h, w = depth.shape
    d = torch.from_numpy(np.nan_to_num(np.asarray(depth, np.float32), nan=0.0, posinf=0.0, neginf=0.0))
    valid = d > 0
    if fill_depth is None:
        fill_depth = float(d[valid].median()) if bool(valid.any()) else 2.0
    d = torch.where(valid, d, torch.tensor(fill_depth, dtype=d.dtype))
    Kd = np.asarray(K_depth, np.float64)
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    X = torch.stack([(u - Kd[0, 2]) / Kd[0, 0] * d, (v - Kd[1, 2]) / Kd[1, 1] * d, d], -1)
    T = torch.as_tensor(np.asarray(T_color_depth, np.float64), dtype=torch.float32)
    Xc = X @ T[:3, :3].T + T[:3, 3]
    z = Xc[..., 2].clamp_min(1e-6)
    Kc = np.asarray(K_color, np.float64)
    uc = Kc[0, 0] * Xc[..., 0] / z + Kc[0, 1] * Xc[..., 1] / z + Kc[0, 2]
    vc = Kc[1, 1] * Xc[..., 1] / z + Kc[1, 2]
    # bilinear sampling at (vc, uc), border pixels beyond the image (torch: all channels at once)
    hc, wc = rgb.shape[:2]
    grid = torch.stack([2.0 * uc / max(wc - 1, 1) - 1.0, 2.0 * vc / max(hc - 1, 1) - 1.0], -1)[None]
    img = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1)[None]  # a copy: inputs may be read-only
    out = torch.nn.functional.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def register_frame(frame: RgbdFrame) -> RgbdFrame:
    """The frame with its colour resampled onto the depth grid (:func:`register_color_to_depth`);
    registered frames are returned as they are."""
    if frame.registered:
        return frame
    same = frame.rgb.shape[:2] == frame.depth.shape and np.allclose(frame.color_K, frame.K) and np.allclose(frame.T_color_depth, np.eye(4))
    if same:  # one camera described twice (e.g. identity TF between the optical frames)
        return RgbdFrame(frame.stamp_ns, frame.rgb, frame.depth, frame.K)
    rgb = register_color_to_depth(frame.rgb, frame.depth, frame.K, frame.color_K, frame.T_color_depth)
    return RgbdFrame(frame.stamp_ns, rgb, frame.depth, frame.K)
