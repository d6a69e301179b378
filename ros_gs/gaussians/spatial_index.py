"""A voxel hash over Gaussian means: "which Gaussians are near these points".

``VoxelIndex.build(means, voxel)`` quantises the means to integer voxel coordinates, packs
them into one int64 key per point (row-major over the occupied bounding box), sorts by key
and keeps, for every occupied voxel, the run ``[start, end)`` of the sorted order.  A query
looks up the voxels of a point's neighbourhood (clipped to the occupied bounding box; when
that still holds more cells than there are occupied voxels, the occupied voxels are tested
directly) with ``searchsorted`` — vectorised over all
(point, neighbour-voxel) pairs, no Python loop over points — expands the runs into candidate
pairs and keeps those within the radius.  Everything is torch, on the means' device.

The index is a snapshot: rebuild it after the map changes (building is one sort, O(N log N)).
Indices refer to rows of the ``means`` given to ``build`` (for a GaussianMap: the active set).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ros_gs.errors import ConfigError

_MAX_KEY = 2**62


def as_points(x: Any, name: str, device: torch.device | None = None) -> torch.Tensor:
    """``x`` as an (N, 3) tensor, or a ConfigError naming ``name``."""
    try:
        t = torch.as_tensor(x.detach() if isinstance(x, torch.Tensor) else x)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{name}: cannot be made a tensor ({exc})") from None
    if t.dim() != 2 or t.shape[1] != 3:
        raise ConfigError(f"{name} must be (N, 3), got shape {tuple(t.shape)}")
    if device is not None:
        t = t.to(device)
    t = t.to(torch.float64) if t.dtype == torch.float64 else t.to(torch.float32)
    if not torch.isfinite(t).all():
        raise ConfigError(f"{name} has non-finite values")
    return t


class VoxelIndex:
    """Sorted voxel hash of a point set (see the module docstring)."""

    def __init__(self, points: torch.Tensor, voxel: float, origin: torch.Tensor, dims: torch.Tensor,
                 keys: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, order: torch.Tensor) -> None:
        self.points = points          # (N, 3) the indexed points, original order
        self.voxel = voxel
        self.origin = origin          # (3,) int64 voxel coordinate of the box corner
        self.dims = dims              # (3,) int64 box size in voxels
        self.keys = keys              # (V,) sorted unique keys of occupied voxels
        self.starts = starts          # (V,) run start in ``order``
        self.ends = ends              # (V,) run end in ``order``
        self.order = order            # (N,) point indices sorted by key

    @classmethod
    def build(cls, means: Any, voxel: float) -> "VoxelIndex":
        """Index ``means`` (N, 3) with cubic voxels of edge ``voxel`` (> 0)."""
        try:
            voxel = float(voxel)
        except (TypeError, ValueError):
            raise ConfigError(f"voxel must be a positive number, got {voxel!r}") from None
        if not (voxel > 0 and math.isfinite(voxel)):
            raise ConfigError(f"voxel must be a positive number, got {voxel!r}")
        pts = as_points(means, "means")
        dev = pts.device
        if pts.shape[0] == 0:
            z = torch.zeros(0, dtype=torch.int64, device=dev)
            return cls(pts, voxel, torch.zeros(3, dtype=torch.int64, device=dev),
                       torch.ones(3, dtype=torch.int64, device=dev), z, z, z, z)
        cells = torch.floor(pts.to(torch.float64) / voxel)
        lo = cells.min(0).values
        hi = cells.max(0).values
        dims_f = hi - lo + 1
        if float(torch.prod(dims_f)) >= _MAX_KEY:
            raise ConfigError(
                f"voxel {voxel} is too small for the extent of the points ({dims_f.tolist()} voxels per axis)")
        origin = lo.to(torch.int64)
        dims = dims_f.to(torch.int64)
        ijk = cells.to(torch.int64) - origin
        key = (ijk[:, 0] * dims[1] + ijk[:, 1]) * dims[2] + ijk[:, 2]
        sorted_key, order = torch.sort(key, stable=True)
        keys, counts = torch.unique_consecutive(sorted_key, return_counts=True)
        ends = torch.cumsum(counts, 0)
        starts = ends - counts
        return cls(pts, voxel, origin, dims, keys, starts, ends, order)

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def num_voxels(self) -> int:
        return int(self.keys.shape[0])

    # ------------------------------------------------------------------ lookups
    def _cell_runs(self, cells: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For integer voxel coords (M, 3): run start and count in ``order`` (0 if empty)."""
        ijk = cells - self.origin
        inside = ((ijk >= 0) & (ijk < self.dims)).all(dim=1)
        key = (ijk[:, 0] * self.dims[1] + ijk[:, 1]) * self.dims[2] + ijk[:, 2]
        key = torch.where(inside, key, torch.full_like(key, -1))
        if self.keys.numel() == 0:
            z = torch.zeros_like(key)
            return z, z
        pos = torch.searchsorted(self.keys, key).clamp_max(self.keys.numel() - 1)
        hit = inside & (self.keys[pos] == key)
        start = torch.where(hit, self.starts[pos], torch.zeros_like(pos))
        count = torch.where(hit, self.ends[pos] - self.starts[pos], torch.zeros_like(pos))
        return start, count

    def occupied(self, points: Any, radius: float | None = None) -> torch.Tensor:
        """(P,) bool.  radius None: the voxel containing the point holds a mean.  Otherwise:
        some mean lies within ``radius`` of the point."""
        q = as_points(points, "points", self.points.device)
        if radius is not None:
            offsets, _ = self.query_radius(q, radius)
            return offsets[1:] > offsets[:-1]
        cells = torch.floor(q.to(torch.float64) / self.voxel).to(torch.int64)
        _, count = self._cell_runs(cells)
        return count > 0

    def query_radius(self, points: Any, radius: float, max_pairs: int = 1 << 22) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices of the means within ``radius`` (inclusive) of each point, as CSR.

        Returns ``(offsets, indices)``: the neighbours of point p are
        ``indices[offsets[p]:offsets[p + 1]]`` (ascending).  ``offsets`` is (P + 1,) int64.
        Points are processed in batches so that candidate pairs stay under about ``max_pairs``.
        """
        try:
            radius = float(radius)
        except (TypeError, ValueError):
            raise ConfigError(f"radius must be a number >= 0, got {radius!r}") from None
        if not (radius >= 0 and math.isfinite(radius)):
            raise ConfigError(f"radius must be a number >= 0, got {radius!r}")
        q = as_points(points, "points", self.points.device)
        dev = q.device
        p = int(q.shape[0])
        if p == 0 or len(self) == 0:
            return torch.zeros(p + 1, dtype=torch.int64, device=dev), torch.zeros(0, dtype=torch.int64, device=dev)
        r = min(int(math.ceil(radius / self.voxel)), _MAX_KEY)
        r2 = radius * radius
        qcells = torch.floor(q.to(torch.float64) / self.voxel).to(torch.int64)
        counts_all = torch.zeros(p, dtype=torch.int64, device=dev)
        idx_parts: list[torch.Tensor] = []
        # neighbour offsets, clipped per axis to those that can reach the occupied bounding box
        top = self.origin + self.dims - 1
        olo = torch.maximum(self.origin - qcells.max(0).values, torch.full_like(self.origin, -r)).tolist()
        ohi = torch.minimum(top - qcells.min(0).values, torch.full_like(self.origin, r)).tolist()
        if any(a > b for a, b in zip(olo, ohi)):
            return torch.zeros(p + 1, dtype=torch.int64, device=dev), torch.zeros(0, dtype=torch.int64, device=dev)
        n_off = math.prod(b - a + 1 for a, b in zip(olo, ohi))
        n_vox = self.num_voxels
        direct = n_off > n_vox  # fewer occupied voxels than neighbour cells: test those directly
        if direct:
            k = self.keys
            vcells = torch.stack([k // (self.dims[1] * self.dims[2]), (k // self.dims[2]) % self.dims[1],
                                  k % self.dims[2]], 1) + self.origin  # (V, 3)
            n_off = n_vox
        else:
            axes = [torch.arange(a, b + 1, device=dev) for a, b in zip(olo, ohi)]
            nbr = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)  # (O, 3)
        batch = max(1, max_pairs // n_off)
        b0 = 0
        while b0 < p:
            b1 = min(p, b0 + batch)
            if direct:
                near = ((vcells[None] - qcells[b0:b1, None, :]).abs() <= r).all(-1)  # (B, V)
                start = torch.where(near, self.starts[None], torch.zeros_like(self.starts)[None]).reshape(-1)
                count = torch.where(near, (self.ends - self.starts)[None],
                                    torch.zeros_like(self.starts)[None]).reshape(-1)
            else:
                cells = (qcells[b0:b1, None, :] + nbr[None]).reshape(-1, 3)
                start, count = self._cell_runs(cells)
            total = int(count.sum())
            # keep candidate expansion bounded: halve the batch when a dense region explodes
            if total > 4 * max_pairs and b1 - b0 > 1:
                batch = max(1, (b1 - b0) // 2)
                continue
            pair_point = torch.arange(b0, b1, device=dev).repeat_interleave(n_off)
            if total:
                run = torch.repeat_interleave(torch.arange(count.numel(), device=dev), count)
                first = torch.cumsum(count, 0) - count
                within = torch.arange(total, device=dev) - first[run]
                cand = self.order[start[run] + within]
                cpoint = pair_point[run]
                d = self.points[cand].to(torch.float64) - q[cpoint].to(torch.float64)
                keep = (d * d).sum(1) <= r2
                cand, cpoint = cand[keep], cpoint[keep]
                if cand.numel():
                    skey = cpoint * len(self) + cand
                    skey = torch.sort(skey).values
                    cpoint = torch.div(skey, len(self), rounding_mode="floor")
                    cand = skey - cpoint * len(self)
                    counts_all += torch.bincount(cpoint, minlength=p)
                    idx_parts.append(cand)
            b0 = b1
        offsets = torch.zeros(p + 1, dtype=torch.int64, device=dev)
        offsets[1:] = torch.cumsum(counts_all, 0)
        indices = torch.cat(idx_parts) if idx_parts else torch.zeros(0, dtype=torch.int64, device=dev)
        return offsets, indices

    def query_radius_lists(self, points: Any, radius: float) -> list[torch.Tensor]:
        """Convenience: one index tensor per point (a Python list; use CSR for speed)."""
        offsets, indices = self.query_radius(points, radius)
        return list(torch.split(indices, torch.diff(offsets).tolist()))
