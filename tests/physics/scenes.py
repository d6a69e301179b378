"""A coloured cube as Gaussians and cameras around it (shared by the physics tests; not a test module)."""

from __future__ import annotations

import numpy as np
import torch

from ros_gs.gaussians.model import C0
from ros_gs.physics import Appearance
from ros_gs.render import Camera

PALETTE = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=float)


def cube_surface_gaussians(half: float, step: float = 0.01) -> tuple[np.ndarray, Appearance]:
    """Gaussians on the faces of a cube centred at the origin (body frame), one colour per face."""
    u = np.arange(-half + step / 2, half, step)
    U, V = (a.ravel() for a in np.meshgrid(u, u))
    pts, cols = [], []
    for k, (axis, sign) in enumerate((a, s) for a in range(3) for s in (-1, 1)):
        p = np.zeros((len(U), 3))
        p[:, axis], p[:, (axis + 1) % 3], p[:, (axis + 2) % 3] = sign * half, U, V
        pts.append(p)
        cols.append(np.repeat(PALETTE[k][None], len(U), axis=0))
    pts, cols = np.concatenate(pts), np.concatenate(cols)
    n = len(pts)
    app = Appearance(scales=torch.full((n, 3), 0.6 * step), opacities=torch.full((n,), 0.95),
                     sh=torch.as_tensor((cols - 0.5) / C0, dtype=torch.float32)[:, None, :])
    return pts, app


def pose(pos, euler_deg=(0.0, 0.0, 0.0)) -> np.ndarray:
    """4x4 pose from a position and xyz Euler angles in degrees."""
    from scipy.spatial.transform import Rotation

    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("xyz", euler_deg, degrees=True).as_matrix()
    T[:3, 3] = pos
    return T


def look_at(eye, target) -> np.ndarray:
    """Camera-to-world pose of an OpenCV camera at ``eye`` looking at ``target`` (z up world)."""
    eye = np.asarray(eye, dtype=float)
    z = np.asarray(target, dtype=float) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, np.cross(z, x), z, eye
    return T


def cameras(target=(0.0, 0.0, 0.05), eyes=((0.45, 0.1, 0.3), (-0.1, 0.45, 0.3)), size=(96, 72)) -> list[Camera]:
    return [Camera.from_fov(60.0, torch.as_tensor(look_at(e, target), dtype=torch.float32), *size) for e in eyes]
