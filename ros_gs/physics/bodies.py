"""Particles that make up a rigid object: from an object's points (its Gaussians' means, a depth
cloud) or from a box.

A body is a set of equal spheres on a voxel grid of pitch about ``spacing`` (radius
``spacing / 2``, so neighbours touch), filling the object's volume: surface voxels are the occupied ones, and a
voxel counts as inside when occupied voxels enclose it along all three grid axes (exact for
convex objects, a fair guess for mugs and boxes seen from all sides).
"""

from __future__ import annotations

import numpy as np

from ros_gs.errors import ConfigError

MAX_PARTICLES_PER_BODY = 200_000


def voxel_particles(points: np.ndarray, spacing: float, fill: bool = True, floor: float | None = None) -> np.ndarray:
    """Particle centres (P, 3) for the object sampled by ``points`` (N, 3).  ``floor``: the
    object rests on a support at this height (z up): every occupied column is filled from the
    floor up to its highest occupied cell, for the underside no camera sees."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if not (np.isfinite(spacing) and spacing > 0):
        raise ConfigError(f"particle spacing must be > 0, got {spacing}")
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) == 0:
        raise ConfigError("a body needs at least one finite point")
    if floor is not None:
        if not np.isfinite(floor) or floor > pts[:, 2].max():
            raise ConfigError(f"floor {floor} must be finite and below the object's top")
        pts = np.concatenate([pts, np.c_[pts[:, :2], np.full(len(pts), floor)]])
    # cells per axis = extent / spacing rounded (the pitch adapts a little), so the outermost
    # spheres end at the points' extent rather than up to a cell beyond it; an axis without
    # extent keeps its one cell centred on the points
    lo = pts.min(axis=0)
    extent = pts.max(axis=0) - lo
    dims = np.maximum(1, np.round(extent / spacing)).astype(np.int64)
    pitch = np.where(extent > 0, extent / dims, spacing)
    origin = np.where(extent > 0, lo, lo - 0.5 * spacing)
    idx = np.minimum(np.floor((pts - origin) / pitch).astype(np.int64), dims - 1)
    if int(np.prod(dims)) > 50 * MAX_PARTICLES_PER_BODY:
        raise ConfigError(f"body of extent {dims * spacing} m at spacing {spacing} m needs a {tuple(dims)} grid: "
                          "use a larger spacing")
    occ = np.zeros(dims, dtype=bool)
    occ[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    if floor is not None:  # columns from the floor (cell 0) up to their highest occupied cell
        top = np.where(occ.any(axis=2), dims[2] - 1 - np.argmax(occ[:, :, ::-1], axis=2), -1)
        occ |= np.arange(dims[2])[None, None, :] <= top[:, :, None]
    if fill:
        inside = np.ones_like(occ)
        for axis in range(3):
            before = np.maximum.accumulate(occ, axis=axis)
            after = np.flip(np.maximum.accumulate(np.flip(occ, axis=axis), axis=axis), axis=axis)
            inside &= before & after
        occ |= inside
    cells = np.argwhere(occ)
    if len(cells) > MAX_PARTICLES_PER_BODY:
        raise ConfigError(f"body would have {len(cells)} particles (> {MAX_PARTICLES_PER_BODY}): use a larger spacing")
    return origin + (cells + 0.5) * pitch


def box_particles(half_extents, spacing: float) -> np.ndarray:
    """Particle centres filling a box centred at the origin on a grid of pitch close to
    ``spacing`` (exactly ``spacing`` where it divides the extents; then spheres of radius
    ``spacing / 2`` are flush with the faces)."""
    h = np.asarray(half_extents, dtype=np.float64).reshape(3)
    if not (np.isfinite(h).all() and (h > 0).all()):
        raise ConfigError(f"box half extents must be > 0, got {h}")
    if not (np.isfinite(spacing) and spacing > 0):
        raise ConfigError(f"particle spacing must be > 0, got {spacing}")
    counts = np.maximum(1, np.round(2 * h / spacing).astype(int))
    axes = [(np.arange(c) + 0.5) * (2 * hh / c) - hh for c, hh in zip(counts, h)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
