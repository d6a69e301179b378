"""Particles and surface samples of primitive shapes (box, sphere, cylinder), with sizes as
MuJoCo's geom ``size`` (box half-extents; sphere radius; cylinder radius and half-height along z).

Objects known only by their primitive (a CAD model, a scene description) become bodies with
:func:`primitive_particles` and get Gaussians on :func:`primitive_surface`.
"""

from __future__ import annotations

import math

import numpy as np

from ros_gs.errors import ConfigError
from ros_gs.physics.bodies import box_particles

PRIMITIVES = ("box", "sphere", "cylinder")


def _size(shape: str, size) -> np.ndarray:
    s = np.asarray(size, dtype=np.float64).reshape(-1)
    need = {"box": 3, "sphere": 1, "cylinder": 2}
    if shape not in need:
        raise ConfigError(f"unsupported primitive {shape!r}; expected one of {PRIMITIVES}")
    if len(s) < need[shape] or not np.isfinite(s).all() or (s[: need[shape]] <= 0).any():
        raise ConfigError(f"{shape} needs {need[shape]} positive sizes, got {list(s)}")
    return s[: need[shape]]


def primitive_particles(shape: str, size, spacing: float) -> np.ndarray:
    """Particle centres (P, 3) on a grid of pitch ``spacing`` inside the shape (at least one)."""
    s = _size(shape, size)
    if not (spacing > 0):
        raise ConfigError(f"particle spacing must be > 0, got {spacing}")
    if shape == "box":
        return box_particles(s, spacing)
    # the grid of the bounding box, then the centres inside the shape
    p = box_particles([s[0], s[0], s[0] if shape == "sphere" else s[1]], spacing)
    r2 = (p[:, 0] ** 2 + p[:, 1] ** 2 + (p[:, 2] ** 2 if shape == "sphere" else 0.0))
    keep = r2 <= s[0] ** 2
    return p[keep] if keep.any() else np.zeros((1, 3))


def primitive_surface(shape: str, size, step: float) -> np.ndarray:
    """Points (N, 3) spread over the shape's surface about ``step`` apart."""
    s = _size(shape, size)
    if not (step > 0):
        raise ConfigError(f"surface step must be > 0, got {step}")
    if shape == "box":
        pts = []
        for axis in range(3):
            u, v = (axis + 1) % 3, (axis + 2) % 3
            gu = np.arange(-s[u] + step / 2, s[u], step)
            gv = np.arange(-s[v] + step / 2, s[v], step)
            U, V = (a.ravel() for a in np.meshgrid(gu, gv))
            for sign in (-1.0, 1.0):
                p = np.zeros((len(U), 3))
                p[:, axis], p[:, u], p[:, v] = sign * s[axis], U, V
                pts.append(p)
        return np.concatenate(pts)
    if shape == "sphere":
        n = max(8, int(4 * math.pi * s[0] ** 2 / step**2))
        k = np.arange(n) + 0.5
        z = 1 - 2 * k / n
        phi = math.pi * (1 + 5**0.5) * k  # Fibonacci sphere: even spread
        r = np.sqrt(1 - z**2)
        return s[0] * np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    r, h = s
    n_ring = max(8, int(2 * math.pi * r / step))
    ang = 2 * math.pi * np.arange(n_ring) / n_ring
    zs = np.arange(-h + step / 2, h, step)
    side = np.stack([np.repeat(r * np.cos(ang)[None], len(zs), 0).ravel(), np.repeat(r * np.sin(ang)[None], len(zs), 0).ravel(),
                     np.repeat(zs[:, None], n_ring, 1).ravel()], axis=1)
    g = np.arange(-r + step / 2, r, step)
    X, Y = (a.ravel() for a in np.meshgrid(g, g))
    disk = np.stack([X, Y], axis=1)[X**2 + Y**2 <= r**2]
    caps = [np.concatenate([disk, np.full((len(disk), 1), z)], axis=1) for z in (-h, h)]
    return np.concatenate([side] + caps)
