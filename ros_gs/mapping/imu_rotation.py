"""Gyroscope integration between two stamps: the rotation prior of LiDAR odometry.

A full IMU preintegration (velocity, gravity, biases) is future work; the rotation alone already
removes the worst failure of a constant-velocity model, sudden turns, and needs no gravity or
bias estimate over the 0.1 s between scans.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from scipy.spatial.transform import Rotation


class GyroIntegrator:
    """Keeps recent (stamp, angular velocity) samples; :meth:`rotation` integrates them."""

    def __init__(self, max_samples: int = 4000) -> None:
        self._t: deque[int] = deque(maxlen=max_samples)
        self._w: deque[np.ndarray] = deque(maxlen=max_samples)
        self.out_of_order = 0

    def __len__(self) -> int:
        return len(self._t)

    def add(self, stamp_ns: int, omega: np.ndarray) -> bool:
        """Add a sample (rad/s, sensor frame); samples not newer than the last are dropped
        (counted in ``out_of_order``) and False is returned."""
        w = np.asarray(omega, dtype=np.float64).reshape(3)
        if not np.isfinite(w).all() or (self._t and int(stamp_ns) <= self._t[-1]):
            self.out_of_order += 1
            return False
        self._t.append(int(stamp_ns))
        self._w.append(w)
        return True

    def rotation(self, t0_ns: int, t1_ns: int, max_gap_s: float = 0.05) -> np.ndarray | None:
        """``R_t0_t1`` (3x3: the frame at t1 expressed in the frame at t0), integrating the
        piecewise-linear angular velocity on [t0, t1]; None if the samples do not cover the
        interval (a gap longer than ``max_gap_s`` or no sample at or beyond either end)."""
        if t1_ns <= t0_ns or len(self._t) < 2:
            return None
        t = np.fromiter(self._t, dtype=np.int64)
        if t[0] > t0_ns + max_gap_s * 1e9 or t[-1] < t1_ns - max_gap_s * 1e9:
            return None
        w = np.array(self._w)
        grid = np.concatenate([[t0_ns], t[(t > t0_ns) & (t < t1_ns)], [t1_ns]])
        if np.diff(grid).max() > max_gap_s * 1e9:
            return None
        ws = np.stack([np.interp(grid, t, w[:, k]) for k in range(3)], axis=1)
        R = Rotation.identity()
        for i in range(len(grid) - 1):
            dt = (grid[i + 1] - grid[i]) * 1e-9
            R = R * Rotation.from_rotvec(0.5 * (ws[i] + ws[i + 1]) * dt)
        return R.as_matrix()
