"""GaussianMap: storage growth, removal/compaction, eviction policies, autograd."""

from __future__ import annotations

import math

import numpy as np

import pytest
import torch

from ros_gs.errors import ConfigError
from ros_gs.gaussians import C0, GaussianMap


def xs(m: GaussianMap) -> list[float]:
    return m.means[:, 0].tolist()


def line(n: int, start: float = 0.0) -> torch.Tensor:
    p = torch.zeros(n, 3)
    p[:, 0] = torch.arange(n, dtype=torch.float32) + start
    return p


def test_defaults_and_activated_properties():
    m = GaussianMap(sh_degree=1)
    q = torch.tensor([[2.0, 0, 0, 0], [0, 0, 3.0, 4.0]])
    sh = torch.zeros(2, 4, 3)
    sh[:, 0] = torch.tensor([[1.0, -1.0, -10.0], [0.0, 2.0, 0.5]])
    r = m.add(line(2), q, torch.tensor([[0.0, math.log(2), -1.0]] * 2), torch.tensor([0.0, 2.0]), sh,
              ids=[7, -1], stamp_ns=5)
    assert (r.added, r.evicted, r.indices.tolist()) == (2, 0, [0, 1])
    assert len(m) == m.num_gaussians == 2 and m.sh_degree == 1 and m.num_sh_coeffs == 4
    assert torch.allclose(m.quats, torch.tensor([[1.0, 0, 0, 0], [0, 0, 0.6, 0.8]]))
    assert torch.equal(m.raw_quats, q)  # stored raw, w x y z
    assert torch.allclose(m.scales[0], torch.tensor([1.0, 2.0, math.exp(-1)]))
    assert torch.allclose(m.opacities, torch.sigmoid(torch.tensor([0.0, 2.0])))
    expect = torch.clamp_min(0.5 + C0 * sh[:, 0], 0)
    assert torch.allclose(m.colors_dc, expect) and m.colors_dc[0, 2] == 0.0
    assert m.ids.tolist() == [7, -1] and m.created_ns.tolist() == [5, 5] and m.last_seen_ns.tolist() == [5, 5]
    assert m.confidence.tolist() == [1.0, 1.0] and m.features is None
    for t in (m.means, m.quats, m.log_scales, m.opacity_logits, m.sh, m.confidence):
        assert t.dtype == torch.float32
    # defaults: identity rotation, 1 cm, opacity 0.1, grey; DC-only sh (M, 3) is padded
    m.add(line(1, 10.0), sh=torch.tensor([[0.1, 0.2, 0.3]]))
    assert m.quats[2].tolist() == [1.0, 0, 0, 0]
    assert torch.allclose(m.scales[2], torch.full((3,), 0.01))
    assert torch.allclose(m.opacities[2], torch.tensor(0.1))
    assert torch.allclose(m.sh[2, 0], torch.tensor([0.1, 0.2, 0.3])) and m.sh[2, 1:].abs().sum() == 0
    assert m.ids[2] == -1


def test_features_and_from_tensors():
    f = torch.randn(5, 4)
    m = GaussianMap.from_tensors(line(5), features=f, ids=torch.arange(5), sh=torch.randn(5, 9, 3))
    assert m.feature_dim == 4 and m.sh_degree == 2 and torch.equal(m.features, f)
    with pytest.raises(ConfigError):
        GaussianMap().add(line(1), features=torch.ones(1, 3))  # map has no features
    with pytest.raises(ConfigError):
        m.add(line(1), features=torch.ones(1, 3))  # wrong F


def test_bad_arguments():
    m = GaussianMap()
    bad = line(2)
    bad[1, 1] = float("nan")
    with pytest.raises(ConfigError, match="non-finite"):
        m.add(bad)
    with pytest.raises(ConfigError, match=r"\(N, 3\)"):
        m.add(torch.zeros(3, 2))
    with pytest.raises(ConfigError, match="zero-norm"):
        m.add(line(1), quats=torch.zeros(1, 4))
    with pytest.raises(ConfigError, match="coefficients"):
        m.add(line(1), sh=torch.zeros(1, 4, 3))  # degree 1 into a degree-0 map
    with pytest.raises(ConfigError):
        m.add(line(2), log_scales=torch.zeros(3, 3))
    with pytest.raises(ConfigError):
        GaussianMap(sh_degree=4)
    with pytest.raises(ConfigError):
        GaussianMap(policy="random")
    with pytest.raises(ConfigError):
        GaussianMap(max_gaussians=0)
    m.add(line(3))
    with pytest.raises(ConfigError, match="indices"):
        m.remove([3])
    with pytest.raises(ConfigError, match="mask"):
        m.remove(torch.ones(2, dtype=torch.bool))
    assert len(m) == 3 and m.add(torch.zeros(0, 3)).added == 0


def test_add_within_capacity_does_not_copy_and_growth_is_geometric():
    m = GaussianMap(capacity=8)
    m.add(line(3))
    ptr = m.storage("means").data_ptr()
    buf = m.storage("sh")
    m.add(line(4, 3))
    m.add(line(1, 7))
    assert m.capacity == 8 and m.storage("means").data_ptr() == ptr and m.storage("sh") is buf
    assert m.storage_version == 0
    assert xs(m) == list(range(8))
    m.add(line(1, 8))  # full: grows once, geometric
    assert m.capacity == 16 and m.storage_version == 1 and m.storage("means").data_ptr() != ptr
    assert xs(m) == list(range(9))
    # many single adds: reallocations are logarithmic in the count
    m2 = GaussianMap(capacity=1)
    for i in range(1000):
        m2.add(line(1, i))
    assert len(m2) == 1000 and m2.storage_version <= 10
    assert xs(m2) == list(range(1000))
    # without holes the properties are views of the buffers (no copy)
    assert m2.means.data_ptr() == m2.storage("means").data_ptr()


def test_remove_marks_free_then_compacts_past_threshold():
    m = GaussianMap(capacity=10, compact_threshold=0.25)
    m.add(line(10))
    ptr = m.storage("means").data_ptr()
    assert m.remove([1, 3]) == 2  # 2/10 freed: not compacted yet
    assert len(m) == 8 and m.high_water == 10 and m.storage_version == 0
    assert xs(m) == [0, 2, 4, 5, 6, 7, 8, 9]
    assert m.active_slots().tolist() == [0, 2, 4, 5, 6, 7, 8, 9]
    mask = torch.zeros(8, dtype=torch.bool)
    mask[0] = True
    assert m.remove(mask) == 1  # 3/10 > 0.25: repacked in place, order kept
    assert len(m) == 7 and m.high_water == 7 and m.storage_version == 1
    assert m.storage("means").data_ptr() == ptr
    assert xs(m) == [2, 4, 5, 6, 7, 8, 9]
    assert m.active_slots().tolist() == list(range(7))
    assert m.remove([]) == 0 and m.remove(torch.tensor([6, 6])) == 1  # duplicates counted once
    assert xs(m) == [2, 4, 5, 6, 7, 8]
    assert m.compact(force=True) and m.high_water == 6 and not m.compact(force=True)
    assert m.remove(torch.ones(6, dtype=torch.bool)) == 6 and len(m) == 0 and m.high_water == 0


def test_full_buffers_reuse_freed_rows():
    m = GaussianMap(capacity=4, auto_compact=False)
    m.add(line(4))
    m.remove([1])  # 1/4 freed, not over the threshold: no repack
    r = m.add(line(1, 10))
    assert m.capacity == 4 and m.storage_version == 0
    assert r.indices.tolist() == [1] and xs(m) == [0, 10, 2, 3]


def test_evict_lowest_opacity():
    m = GaussianMap(capacity=4, max_gaussians=4, policy="lowest_opacity")
    m.add(line(4), opacity_logits=torch.tensor([0.0, -3.0, 2.0, -1.0]))
    r = m.add(line(2, 10), opacity_logits=torch.tensor([5.0, 6.0]))
    assert (r.added, r.evicted) == (2, 2) and m.evicted_total == 2
    assert len(m) == 4 and m.capacity == 4
    assert m.opacity_logits.tolist() == [0.0, 2.0, 5.0, 6.0] and xs(m) == [0, 2, 10, 11]
    assert m.means[r.indices, 0].tolist() == [10, 11]


def test_evict_oldest_seen_and_lowest_confidence():
    m = GaussianMap(max_gaussians=3, policy="oldest_seen")
    m.add(line(3), last_seen_ns=torch.tensor([30, 10, 20]))
    r = m.add(line(1, 10), stamp_ns=50)
    assert r.evicted == 1 and xs(m) == [0, 2, 10]
    assert sorted(m.last_seen_ns.tolist()) == [20, 30, 50]
    # ties go to the lower slot
    m = GaussianMap(max_gaussians=3, policy="oldest_seen")
    m.add(line(3), stamp_ns=7)
    m.add(line(1, 10), stamp_ns=8)
    assert xs(m) == [1, 2, 10]

    m = GaussianMap(max_gaussians=3, policy="lowest_confidence")
    m.add(line(3), confidence=torch.tensor([0.9, 0.5, 0.7]))
    r = m.add(line(2, 10), confidence=torch.tensor([0.8, 0.95]))
    assert r.evicted == 2 and xs(m) == [0, 10, 11] and m.evicted_total == 2


def test_batch_larger_than_cap_keeps_its_best():
    m = GaussianMap(max_gaussians=3, policy="lowest_opacity")
    m.add(line(2, 100), opacity_logits=9.0)
    r = m.add(line(5), opacity_logits=torch.tensor([1.0, 5.0, 2.0, 4.0, 3.0]))
    # both existing evicted (the batch fills the cap), and 2 of the batch dropped
    assert (r.added, r.evicted) == (3, 4) and m.evicted_total == 4
    assert m.opacity_logits.tolist() == [5.0, 4.0, 3.0] and xs(m) == [1, 3, 4]


def test_select_update_clone_to():
    m = GaussianMap(feature_dim=2)
    m.add(line(5), features=torch.arange(10.0).reshape(5, 2), ids=torch.arange(5))
    m.remove([2])
    s = m.select(torch.tensor([0, 3]))
    assert xs(s) == [0, 4] and s.ids.tolist() == [0, 4] and s.features.tolist() == [[0, 1], [8, 9]]
    m.update([1], last_seen_ns=99, means=torch.tensor([[7.0, 7.0, 7.0]]), ids=42)
    assert m.last_seen_ns.tolist() == [0, 99, 0, 0] and xs(m) == [0, 7, 3, 4] and m.ids[1] == 42
    with pytest.raises(ConfigError):
        m.update([0], colour=1)
    c = m.clone()
    c.update([0], means=torch.ones(1, 3))
    assert xs(m)[0] == 0 and xs(c)[0] == 1 and len(c) == len(m) and c.high_water == m.high_water
    assert m.to("cpu") is m


def test_autograd_through_properties_and_adam_updates_in_place():
    torch.manual_seed(0)
    m = GaussianMap(sh_degree=1, capacity=16)
    m.add(torch.randn(6, 3), torch.randn(6, 4), torch.randn(6, 3) * 0.1, torch.randn(6), torch.randn(6, 4, 3))
    m.remove([2])  # a hole: properties go through a mask, still differentiable
    params = m.parameters()
    assert set(params) == {"means", "quats", "log_scales", "opacity_logits", "sh"}
    assert all(p.is_leaf and p.requires_grad for p in params.values())
    loss = m.scales.sum() + m.opacities.sum() + m.colors_dc.sum() + m.quats[:, 0].sum() + (m.means ** 2).sum()
    loss.backward()
    slots = m.active_slots()
    g = params["log_scales"].grad
    assert torch.allclose(g[slots], torch.exp(params["log_scales"][slots].detach()))
    inactive = torch.ones(16, dtype=torch.bool)
    inactive[slots] = False
    assert g[inactive].abs().sum() == 0 and params["means"].grad[inactive].abs().sum() == 0
    s = torch.sigmoid(params["opacity_logits"][slots].detach())
    assert torch.allclose(params["opacity_logits"].grad[slots], s * (1 - s))
    assert torch.allclose(params["means"].grad[slots], 2 * params["means"][slots].detach())
    # optimise: the map itself is updated
    m.zero_grad()
    target = torch.zeros(len(m), 3)
    opt = torch.optim.Adam(params.values(), lr=0.05)
    first = None
    for _ in range(50):
        opt.zero_grad()
        loss = ((m.means - target) ** 2).sum()
        first = first if first is not None else float(loss.detach())
        loss.backward()
        opt.step()
    assert float(((m.means.detach() - target) ** 2).sum()) < 0.2 * first
    # adds and growth keep the buffers trainable leaves (storage_version says rebuild)
    v = m.storage_version
    m.add(torch.randn(40, 3))
    assert m.storage_version > v and all(p.is_leaf and p.requires_grad for p in m.parameters().values())
    m.means.sum().backward()
    assert m.storage("means").grad is not None
    assert m.clone().requires_grad


def test_package_is_a_leaf_of_the_core():
    import subprocess
    import sys

    code = (
        "import sys, ros_gs.gaussians\n"
        "mods = sorted(m for m in sys.modules if m.startswith(('ros_gs', 'rosbags', 'rclpy')))\n"
        "print(' '.join(mods))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    allowed = {"ros_gs", "ros_gs.errors", "ros_gs.quaternion"}  # the shared leaves every layer may use
    assert [m for m in out if m not in allowed and not m.startswith("ros_gs.gaussians")] == []


def test_log_scales_that_overflow_exp_are_rejected():
    from ros_gs.errors import ConfigError
    from ros_gs.gaussians import GaussianMap
    from ros_gs.gaussians.model import MAX_LOG_SCALE

    ok = GaussianMap.from_tensors(torch.zeros(2, 3), log_scales=torch.full((2, 3), MAX_LOG_SCALE))
    assert torch.isfinite(ok.scales).all()
    bad = torch.zeros(3, 3)
    bad[1, 2] = 100.0
    with pytest.raises(ConfigError, match="log_scales above 80.*1 of 3 rows"):
        GaussianMap.from_tensors(torch.zeros(3, 3), log_scales=bad)
    with pytest.raises(ConfigError, match="log_scales above"):
        ok.add(torch.zeros(1, 3), log_scales=torch.full((1, 3), 89.0))


def _random_map(n: int = 200, seed: int = 0) -> GaussianMap:
    g = torch.Generator().manual_seed(seed)
    m = GaussianMap(sh_degree=0)
    means = torch.randn(n, 3, generator=g) * 0.3 + torch.tensor([0.0, 0.0, 3.0])
    m.add(means, torch.randn(n, 4, generator=g), torch.randn(n, 3, generator=g) * 0.3 - 3.0,
          torch.randn(n, generator=g), torch.rand(n, 1, 3, generator=g))
    return m


def test_transform_groups_moves_geometry_rigidly():
    """A group moved by (R, t) renders, seen from a camera moved by the same (R, t), exactly as
    before: means and covariances (via the quaternions) turned with the frame."""
    from scipy.spatial.transform import Rotation

    from ros_gs.render import Camera, render

    m = _random_map()
    K = torch.tensor([[80.0, 0, 32], [0, 80.0, 24], [0, 0, 1]])
    T_cam = torch.eye(4)
    before = render(m, Camera.from_pose(K, T_cam, 64, 48), backend="cpu").rgb
    R = Rotation.from_euler("xyz", [20, -35, 50], degrees=True).as_matrix()
    t = np.array([0.3, -1.2, 0.7])
    moved = m.transform_groups_(torch.zeros(m.num_gaussians, dtype=torch.int64), R[None], t[None])
    assert moved == m.num_gaussians
    D = torch.eye(4)
    D[:3, :3] = torch.as_tensor(R, dtype=torch.float32)
    D[:3, 3] = torch.as_tensor(t, dtype=torch.float32)
    after = render(m, Camera.from_pose(K, D @ T_cam, 64, 48), backend="cpu").rgb
    assert before.abs().max() > 0.1
    assert torch.allclose(before, after, atol=2e-4)


def test_transform_groups_selects_and_validates():
    m = _random_map(10)
    m.remove(torch.tensor([0, 3]))  # holes: groups index the active set
    mu = m.means.clone()
    group = torch.tensor([-1, 0, 1, -1, 0, 1, -1, -1])
    R = np.stack([np.eye(3)] * 2)
    t = np.array([[1.0, 0, 0], [0, 0, -2.0]])
    assert m.transform_groups_(group, R, t) == 4
    expect = mu.clone()
    expect[group == 0] += torch.tensor([1.0, 0, 0])
    expect[group == 1] += torch.tensor([0, 0, -2.0])
    assert torch.allclose(m.means, expect)
    with pytest.raises(ConfigError):
        m.transform_groups_(group[:-1], R, t)
    with pytest.raises(ConfigError):
        m.transform_groups_(group + 1, R, t)  # index 2 does not exist
    with pytest.raises(ConfigError):
        m.transform_groups_(group, R, t * np.nan)
