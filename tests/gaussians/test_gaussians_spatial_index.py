"""VoxelIndex against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ros_gs.errors import ConfigError
from ros_gs.gaussians import VoxelIndex


def brute(points: torch.Tensor, queries: torch.Tensor, radius: float) -> list[list[int]]:
    d2 = ((queries.double()[:, None, :] - points.double()[None, :, :]) ** 2).sum(-1)
    return [torch.nonzero(row <= radius * radius).squeeze(1).tolist() for row in d2]


@pytest.mark.parametrize("voxel,radius", [(0.1, 0.1), (0.1, 0.27), (0.25, 0.05), (0.1, 0.0)])
def test_query_radius_matches_brute_force(voxel, radius):
    g = torch.Generator().manual_seed(1)
    pts = torch.rand(3000, 3, generator=g) * 2 - 1
    pts[:50] = pts[50:100]  # duplicates
    q = torch.rand(400, 3, generator=g) * 2.4 - 1.2  # some outside the indexed box
    q[:20] = pts[:20]  # exact hits (radius 0 finds them)
    idx = VoxelIndex.build(pts, voxel)
    offsets, indices = idx.query_radius(q, radius)
    assert offsets.shape == (401,) and offsets[0] == 0 and offsets[-1] == indices.numel()
    got = [indices[offsets[i]:offsets[i + 1]].tolist() for i in range(len(q))]
    assert got == brute(pts, q, radius)  # same sets, ascending
    assert [t.tolist() for t in idx.query_radius_lists(q, radius)] == got
    # small batches give the same answer
    o2, i2 = idx.query_radius(q, radius, max_pairs=100)
    assert torch.equal(o2, offsets) and torch.equal(i2, indices)
    near = idx.occupied(q, radius)
    assert near.tolist() == [len(x) > 0 for x in got]


def test_occupied_voxel_semantics():
    g = torch.Generator().manual_seed(2)
    pts = torch.rand(500, 3, generator=g) * 4 - 2
    q = torch.rand(2000, 3, generator=g) * 5 - 2.5
    idx = VoxelIndex.build(pts, 0.3)
    cells = {tuple(c) for c in np.floor(pts.numpy().astype(np.float64) / 0.3).astype(np.int64).tolist()}
    expect = [tuple(c) in cells for c in np.floor(q.numpy().astype(np.float64) / 0.3).astype(np.int64).tolist()]
    assert idx.occupied(q).tolist() == expect
    assert idx.occupied(pts).all()
    assert idx.num_voxels == len(cells) and len(idx) == 500


def test_empty_and_bad_input():
    e = VoxelIndex.build(torch.zeros(0, 3), 0.1)
    off, ind = e.query_radius(torch.zeros(3, 3), 1.0)
    assert off.tolist() == [0, 0, 0, 0] and ind.numel() == 0
    assert e.occupied(torch.zeros(2, 3)).tolist() == [False, False]
    idx = VoxelIndex.build(np.zeros((2, 3)), 1.0)  # numpy input works
    assert idx.query_radius(np.zeros((0, 3)), 1.0)[0].tolist() == [0]
    for bad in (0.0, -1.0, float("nan"), "x"):
        with pytest.raises(ConfigError):
            VoxelIndex.build(torch.zeros(1, 3), bad)
    with pytest.raises(ConfigError):
        VoxelIndex.build(torch.zeros(4, 2), 0.1)
    with pytest.raises(ConfigError):
        VoxelIndex.build(torch.tensor([[0.0, 0, 0], [float("nan"), 0, 0]]), 0.1)
    with pytest.raises(ConfigError):
        idx.query_radius(torch.zeros(1, 3), -1.0)
    with pytest.raises(ConfigError, match="too small"):
        VoxelIndex.build(torch.tensor([[-1e6, -1e6, -1e6], [1e6, 1e6, 1e6]]), 1e-6)


def test_large_radius_small_voxel_is_fast_and_exact():
    """(2 ceil(r / voxel) + 1)^3 = 8e6 neighbour cells per point: the query must clip to the
    occupied box / test the occupied voxels directly, and still match brute force."""
    import time

    from ros_gs.gaussians.spatial_index import VoxelIndex

    g = torch.Generator().manual_seed(3)
    means = torch.rand(500, 3, generator=g, dtype=torch.float64) * 2 - 1
    idx = VoxelIndex.build(means, 0.01)
    q = torch.tensor([[0.0, 0.0, 0.0], [0.9, -0.9, 0.5], [5.0, 5.0, 5.0]], dtype=torch.float64)
    for radius in (1.0, 0.05, 1e9):
        t0 = time.perf_counter()
        offsets, indices = idx.query_radius(q, radius)
        assert time.perf_counter() - t0 < 2.0
        for i in range(len(q)):
            d = (means - q[i]).norm(dim=1)
            expected = torch.nonzero(d <= radius).squeeze(1)
            assert torch.equal(indices[offsets[i]:offsets[i + 1]], expected), (radius, i)
