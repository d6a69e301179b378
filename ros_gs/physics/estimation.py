"""Physical parameters from tracked motion: each object's friction on the support.

Why: a prediction is only as good as the parameters it rolls forward with.  A body sliding
freely on the support slows at ``mu * g`` whatever its mass (Coulomb), so the deceleration of
its tracked centre of mass while it slides, touching nothing else, measures its friction.  Mass
does not show in a free slide (it only shows in collisions, as a ratio of two bodies' masses),
so it is not estimated here.

One function per stage: :func:`sliding_friction` reads one stretch of one body's track;
:class:`FrictionEstimator` keeps the readings of every body and gives their median.
"""

from __future__ import annotations

import numpy as np


def sliding_friction(times: np.ndarray, com: np.ndarray, gravity: float = 9.81, min_speed: float = 0.1,
                     max_vertical: float = 0.05) -> float | None:
    """The friction coefficient that explains a stretch of sliding, or None when the stretch is
    no free slide on the support.

    ``times`` (T,) s and ``com`` (T, 3) world centres of mass (z up).  A quadratic fitted per
    axis gives the velocity and acceleration at the middle of the stretch; a slide is horizontal
    motion faster than ``min_speed`` (m/s) with the vertical speed under ``max_vertical`` and
    the body slowing down along its motion.  Returns ``-a . v / (|v| g)``."""
    t = np.asarray(times, float)
    p = np.asarray(com, float)
    if len(t) < 4 or p.shape != (len(t), 3) or not np.isfinite(p).all():
        return None
    tc = t - t.mean()
    if np.ptp(tc) <= 0:
        return None
    A = np.stack([np.ones_like(tc), tc, 0.5 * tc * tc], axis=1)
    coef, *_ = np.linalg.lstsq(A, p - p.mean(axis=0), rcond=None)
    v, a = coef[1], coef[2]
    speed = float(np.linalg.norm(v[:2]))
    if speed < min_speed or abs(v[2]) > max_vertical:
        return None
    along = -float(a[:2] @ v[:2]) / speed
    if along <= 0.0:  # speeding up: something pushes it
        return None
    return along / abs(gravity)


class FrictionEstimator:
    """Per body, the friction readings of its free slides; the estimate is their median once
    there are ``min_readings`` (one reading per update, so a few frames of sliding)."""

    def __init__(self, num_bodies: int, min_readings: int = 2, bounds: tuple[float, float] = (0.02, 2.0)) -> None:
        self.readings: list[list[float]] = [[] for _ in range(num_bodies)]
        self.min_readings = min_readings
        self.bounds = bounds

    def add(self, body: int, reading: float | None) -> None:
        """Keep a reading inside ``bounds`` (outside: a collision or a tracking jump, not friction)."""
        if reading is not None and self.bounds[0] <= reading <= self.bounds[1]:
            self.readings[body].append(float(reading))

    def estimate(self, body: int) -> float | None:
        r = self.readings[body]
        return float(np.median(r)) if len(r) >= self.min_readings else None
