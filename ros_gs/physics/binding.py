"""Gaussians that ride on bodies: each Gaussian is stored in its body's frame and posed by the
body's current pose, so the simulator's state renders as the scene it predicts.

Each bound Gaussian also names the particle nearest to it in its body: visual forces on the
Gaussian act on that particle (:mod:`ros_gs.physics.visual_forces`).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from ros_gs.errors import ConfigError
from ros_gs.quaternion import matrix_to_wxyz, wxyz_mul


class GaussianBinding:
    """Gaussians (``means`` (N, 3), ``quats`` (N, 4) w, x, y, z, world frame) bound to bodies:
    ``body`` (N,) indexes ``T_world_body`` (B, 4, 4), the bodies' poses when the Gaussians were
    observed.  ``particles`` (list of (P_b, 3) particle centres per body, body frame) gives each
    Gaussian its nearest particle, as a row of the world's particle arrays (bodies in order)."""

    def __init__(self, means, quats, body, T_world_body, particles: list[np.ndarray]) -> None:
        mu = np.asarray(torch.as_tensor(means).detach().cpu(), dtype=np.float64).reshape(-1, 3)
        q = np.asarray(torch.as_tensor(quats).detach().cpu(), dtype=np.float64).reshape(-1, 4)
        b = np.asarray(body, dtype=np.int64).reshape(-1)
        T = np.asarray(T_world_body, dtype=np.float64).reshape(-1, 4, 4)
        if not (len(mu) == len(q) == len(b)):
            raise ConfigError(f"binding: means, quats and body need one row per Gaussian ({len(mu)}, {len(q)}, {len(b)})")
        if len(particles) != len(T) or ((b < 0) | (b >= len(T))).any():
            raise ConfigError("binding: body indices must index T_world_body, with one particle set per body")
        if not (np.isfinite(mu).all() and np.isfinite(q).all() and np.isfinite(T).all()):
            raise ConfigError("binding: means, quats and poses must be finite")
        R, t = T[b, :3, :3], T[b, :3, 3]
        self.means_local = torch.as_tensor(np.einsum("nji,nj->ni", R, mu - t))  # R^T (mu - t)
        q_inv = matrix_to_wxyz(np.transpose(T[:, :3, :3], (0, 2, 1)))[b]
        norm = np.linalg.norm(q, axis=1, keepdims=True)
        if (norm < 1e-12).any():
            raise ConfigError(f"binding: {int((norm < 1e-12).sum())} quaternions are zero")
        qn = q / norm
        self.quats_local = wxyz_mul(torch.as_tensor(q_inv), torch.as_tensor(qn))
        self.body = torch.as_tensor(b)
        offsets = np.cumsum([0] + [len(p) for p in particles])
        self.particle = np.empty(len(b), dtype=np.int64)
        for i, pts in enumerate(particles):
            sel = np.flatnonzero(b == i)
            if len(sel):
                _, nearest = cKDTree(np.asarray(pts, dtype=np.float64)).query(self.means_local[sel].numpy())
                self.particle[sel] = offsets[i] + nearest
        self.num_particles = int(offsets[-1])

    def __len__(self) -> int:
        return len(self.body)

    def posed(self, T_world_body, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        """World ``means`` (N, 3) and ``quats`` (N, 4, w x y z) for the bodies at ``T_world_body``."""
        T = np.asarray(T_world_body, dtype=np.float64).reshape(-1, 4, 4)
        R = torch.as_tensor(T[:, :3, :3])[self.body]
        t = torch.as_tensor(T[:, :3, 3])[self.body]
        means = torch.einsum("nij,nj->ni", R, self.means_local) + t
        quats = wxyz_mul(torch.as_tensor(matrix_to_wxyz(T[:, :3, :3]))[self.body], self.quats_local)
        return means.to(dtype), quats.to(dtype)
