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

from ros_gs.errors import ConfigError
from ros_gs.render.camera import render_K  # noqa: F401  (re-exported: part of the mapping API)


@dataclass
class RgbdFrame:
    """One RGB-D frame: rgb (H, W, 3) uint8; depth (H, W) float32 metres (NaN or 0 = invalid);
    K (3, 3) OpenCV/ROS convention (integer pixel centres)."""

    stamp_ns: int
    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray

    def __post_init__(self) -> None:
        self.rgb = np.asarray(self.rgb)
        self.depth = np.asarray(self.depth, dtype=np.float32)
        self.K = np.asarray(self.K, dtype=np.float64)
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3 or self.rgb.dtype != np.uint8:
            raise ConfigError(f"RgbdFrame.rgb must be (H, W, 3) uint8, got {self.rgb.dtype} {self.rgb.shape}")
        if self.depth.shape != self.rgb.shape[:2]:
            raise ConfigError(f"RgbdFrame.depth must be {self.rgb.shape[:2]}, got {self.depth.shape}")
        if self.K.shape != (3, 3) or not np.isfinite(self.K).all() or self.K[0, 0] <= 0 or self.K[1, 1] <= 0:
            raise ConfigError(f"RgbdFrame.K must be a finite 3x3 with positive focal lengths, got {self.K.tolist()}")

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @classmethod
    def from_folder_frame(cls, f, K: np.ndarray) -> "RgbdFrame":
        """From a :class:`ros_gs.datasets.rgbd_folder.RgbdFrame` (uint16 mm depth)."""
        depth = f.depth_mm.astype(np.float32) / 1000.0
        depth[f.depth_mm == 65535] = 0.0
        return cls(int(f.stamp_ns), f.rgb, depth, K)


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
    """Downscale by an integer factor: colour by block mean; depth by block mean of blocks whose
    pixels are all valid and agree within ``depth_rel_spread`` x depth (else invalid = 0), so no
    depth is invented across an edge.  Trailing rows/columns that do not fill a block are dropped."""
    f = int(factor)
    if f < 1:
        raise ConfigError(f"downscale factor must be >= 1, got {factor}")
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
