"""Pinhole camera for the renderer (OpenCV optical frame, world-to-camera ``viewmat``).

See :mod:`ros_gs.render` for the full list of conventions.  ``Camera`` only holds tensors;
every quantity derived from it (``camera_center``, the projection) is computed with torch
ops, so gradients flow to ``K`` and ``viewmat`` (and through :meth:`Camera.from_pose` to
the camera-to-world pose).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ros_gs.errors import ConfigError


def _as_tensor(x, dtype: torch.dtype | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x if dtype is None else x.to(dtype)
    return torch.as_tensor(x, dtype=dtype if dtype is not None else torch.float32)


def render_K(K) -> np.ndarray:
    """A CameraInfo/OpenCV K (pixel centres at integer coordinates) as this renderer's K
    (pixel centres at +0.5, as gsplat): ``cx + 0.5``, ``cy + 0.5``."""
    Kr = np.array(K, dtype=np.float64, copy=True)
    Kr[0, 2] += 0.5
    Kr[1, 2] += 0.5
    return Kr


def rigid_inverse(T: Tensor) -> Tensor:
    """Inverse of a rigid 4x4 transform ``[R t; 0 1]`` -> ``[R^T -R^T t; 0 1]`` (differentiable)."""
    R = T[..., :3, :3]
    t = T[..., :3, 3:]
    Rt = R.transpose(-1, -2)
    top = torch.cat([Rt, -Rt @ t], dim=-1)
    bottom = torch.zeros_like(T[..., 3:, :])
    bottom = bottom + torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=T.dtype, device=T.device)
    return torch.cat([top, bottom], dim=-2)


@dataclass
class Camera:
    """A pinhole camera.

    Attributes:
        K: (3, 3) intrinsics ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels; the centre of
            pixel (row i, column j) is at ``(j + 0.5, i + 0.5)``.
        viewmat: (4, 4) world -> camera transform (camera frame: x right, y down, z forward).
        width, height: image size in pixels.
        near, far: Gaussians whose camera-frame depth is < near or > far are culled.
    """

    K: Tensor
    viewmat: Tensor
    width: int
    height: int
    near: float = 0.01
    far: float = 1e10

    def __post_init__(self) -> None:
        self.K = _as_tensor(self.K)
        if not isinstance(self.viewmat, Tensor):
            self.viewmat = _as_tensor(self.viewmat, self.K.dtype)
        if tuple(self.K.shape) != (3, 3):
            raise ValueError(f"Camera.K must be (3, 3), got {tuple(self.K.shape)}")
        if tuple(self.viewmat.shape) != (4, 4):
            raise ValueError(f"Camera.viewmat must be (4, 4), got {tuple(self.viewmat.shape)}")
        self.width = int(self.width)
        self.height = int(self.height)
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"Camera size must be positive, got {self.width}x{self.height}")
        with torch.no_grad():
            if not bool(torch.isfinite(self.K).all()):
                raise ConfigError(f"Camera.K has NaN or inf: {self.K.tolist()}")
            if not bool(torch.isfinite(self.viewmat).all()):
                raise ConfigError(f"Camera.viewmat has NaN or inf: {self.viewmat.tolist()}")
            fx, fy = float(self.K[0, 0]), float(self.K[1, 1])
        if not (fx > 0 and fy > 0):
            raise ConfigError(f"Camera.K needs fx > 0 and fy > 0, got fx={fx}, fy={fy}")
        if not (0.0 < self.near < self.far):
            raise ValueError(f"need 0 < near < far, got near={self.near}, far={self.far}")

    @classmethod
    def from_pose(
        cls, K, cam_to_world, width: int, height: int, near: float = 0.01, far: float = 1e10
    ) -> "Camera":
        """Camera from a camera-to-world pose (4x4, rigid); differentiable w.r.t. the pose."""
        c2w = _as_tensor(cam_to_world)
        K = _as_tensor(K, c2w.dtype)
        return cls(K=K, viewmat=rigid_inverse(c2w), width=width, height=height, near=near, far=far)

    @classmethod
    def from_fov(
        cls, fov_x_deg: float, cam_to_world, width: int, height: int, near: float = 0.01, far: float = 1e10
    ) -> "Camera":
        """Centred pinhole with square pixels and horizontal field of view ``fov_x_deg``."""
        import math

        c2w = _as_tensor(cam_to_world)
        f = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2)
        K = torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]], dtype=c2w.dtype)
        return cls.from_pose(K, c2w, width, height, near, far)

    @property
    def cam_to_world(self) -> Tensor:
        return rigid_inverse(self.viewmat)

    @property
    def camera_center(self) -> Tensor:
        """Camera centre in the world frame, ``-R^T t`` for ``viewmat = [R t]`` (differentiable)."""
        R = self.viewmat[:3, :3]
        t = self.viewmat[:3, 3]
        return -(R.transpose(0, 1) @ t)

    def to(self, device=None, dtype: torch.dtype | None = None) -> "Camera":
        return Camera(
            K=self.K.to(device=device, dtype=dtype),
            viewmat=self.viewmat.to(device=device, dtype=dtype),
            width=self.width,
            height=self.height,
            near=self.near,
            far=self.far,
        )
