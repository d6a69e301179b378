"""Bounded memory: keyframe images spilled to disk and far-away Gaussians off-loaded.

Both are lossless, so they are checked against runs that keep everything in memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from ros_gs.mapping import Mapper, MapperConfig, RgbdFrame
from ros_gs.mapping.mapper import Keyframe
from ros_gs.mapping.offload import FrameStore

K = np.array([[20.0, 0, 8], [0, 20.0, 6], [0, 0, 1]])


def _frame(stamp: int, seed: int) -> RgbdFrame:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 3.0, (12, 16)).astype(np.float32)
    return RgbdFrame(stamp, rgb, depth, K)


def _pose(x: float, rotvec=(0.0, 0.0, 0.0)) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    T[:3, 3] = [x, 0.0, 0.0]
    return T


def test_frame_store_spills_the_least_recently_used_and_reads_back_exactly(tmp_path):
    store = FrameStore(resident=2, directory=tmp_path)
    frames = [_frame(100 + i, i) for i in range(5)]
    frames[3] = RgbdFrame(103, frames[3].rgb, frames[3].depth, K, color_K=K * 2, T_color_depth=_pose(0.05))
    for i, f in enumerate(frames):
        store.put(i, f)
    assert len(store) == 5 and store.num_resident == 2 and store.writes == 3
    assert store.resident_bytes == 2 * (frames[0].rgb.nbytes + frames[0].depth.nbytes)
    assert len(list(tmp_path.rglob("frame_*.npz"))) == 3
    for i in [0, 3, 1, 4, 2]:
        g = store.get(i)
        np.testing.assert_array_equal(g.rgb, frames[i].rgb)
        np.testing.assert_array_equal(g.depth, frames[i].depth)
        assert g.stamp_ns == frames[i].stamp_ns
        np.testing.assert_array_equal(g.K, K)
        assert store.num_resident <= 2
    np.testing.assert_array_equal(store.get(3).color_K, K * 2)
    np.testing.assert_array_equal(store.get(3).T_color_depth, _pose(0.05))
    assert store.reads >= 4 and store.writes == 5  # each image written once: spilled again, not rewritten
    before = list(store._mem)
    store.get(0, promote=False)
    assert list(store._mem) == before  # a pass over all keyframes leaves the cache be
    with pytest.raises(KeyError):
        store.get(99)
    # a second store in the same folder has files of its own; each folder goes with its store
    other = FrameStore(resident=1, directory=tmp_path)
    other.put(0, frames[4])
    other.put(1, frames[4])
    np.testing.assert_array_equal(store.get(0).rgb, frames[0].rgb)
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2
    del store, other
    import gc

    gc.collect()
    assert list(tmp_path.iterdir()) == []


def _mapper_with_three_keyframes(radius: float, tmp_path) -> Mapper:
    """Keyframes at x = 0, 3, 6 m, each with 50 Gaussians of its own (anchored by its stamp)."""
    m = Mapper(MapperConfig(offload_radius=radius, offload_hysteresis=0.5, offload_dir=str(tmp_path)))
    rng = np.random.default_rng(0)
    for i, x in enumerate([0.0, 3.0, 6.0]):
        stamp = 1000 * (i + 1)
        m.keyframes.append(Keyframe(i, stamp, _pose(x), _frame(stamp, i), m.frame_store))
        n = 50
        q = rng.normal(size=(n, 4))
        m.map.add(torch.as_tensor(rng.normal([x, 0.0, 1.5], 0.4, (n, 3)), dtype=torch.float32),
                  quats=torch.as_tensor(q, dtype=torch.float32),
                  log_scales=torch.as_tensor(rng.normal(-4, 0.3, (n, 3)), dtype=torch.float32),
                  opacity_logits=torch.as_tensor(rng.normal(0, 1, n), dtype=torch.float32),
                  sh=torch.as_tensor(rng.normal(0, 1, (n, 3)), dtype=torch.float32),
                  ids=torch.arange(i * n, (i + 1) * n), stamp_ns=stamp)
    return m


def _by_id(gmap) -> dict[str, np.ndarray]:
    order = torch.argsort(gmap.ids)
    return {"ids": gmap.ids[order].numpy(), "means": gmap.means[order].detach().numpy(),
            "quats": gmap.quats[order].detach().numpy(), "log_scales": gmap.log_scales[order].detach().numpy(),
            "opacity": gmap.opacity_logits[order].detach().numpy(), "sh": gmap.sh[order].detach().numpy(),
            "created": gmap.created_ns[order].numpy()}


def test_offloaded_gaussians_return_moved_with_their_keyframe(tmp_path):
    m = _mapper_with_three_keyframes(2.0, tmp_path)
    ref = _mapper_with_three_keyframes(0.0, tmp_path / "ref")  # never off-loads
    assert m.page(np.array([6.0, 0.0, 0.0])) == (2, 0)  # keyframes 0 and 1 are beyond 2 m
    assert len(m.map) == 50 and m.offloaded.num_gaussians == 100
    assert set(m.map.created_ns.tolist()) == {3000}
    assert len(list(tmp_path.rglob("gaussians_*.npz"))) == 2
    assert len(m.full_map()) == 150

    # the pose graph corrects keyframe 0 while its Gaussians are on disk
    old = [kf.T_world_cam.copy() for kf in m.keyframes]
    new = [_pose(0.1, (0.05, -0.2, 0.1)), old[1], _pose(6.02, (0.0, 0.03, 0.0))]
    m._move_keyframes(old, new)
    ref._move_keyframes([kf.T_world_cam.copy() for kf in ref.keyframes], new)

    # back at x = 0: keyframe 0 returns (within 2 - 0.5 m), keyframe 2 leaves, keyframe 1 stays out
    assert m.page(np.array([0.0, 0.0, 0.0])) == (1, 1)
    assert set(m.map.created_ns.tolist()) == {1000}
    got, want = _by_id(m.map), _by_id(ref.map.select(ref.map.created_ns == 1000))
    np.testing.assert_array_equal(got["ids"], want["ids"])
    for k in ("means", "quats", "log_scales", "opacity", "sh"):
        np.testing.assert_allclose(got[k], want[k], atol=2e-6, err_msg=k)
    full, all_ref = _by_id(m.full_map()), _by_id(ref.map)
    for k in all_ref:
        np.testing.assert_allclose(full[k], all_ref[k], atol=2e-6, err_msg=k)
    # a moved keyframe's Gaussians really moved (the check above is not vacuous)
    assert np.abs(all_ref["means"][:50] - _by_id(_mapper_with_three_keyframes(0.0, tmp_path / "r2").map)["means"][:50]).max() > 0.05


def test_saved_map_holds_offloaded_gaussians_and_their_anchors(tmp_path):
    m = _mapper_with_three_keyframes(2.0, tmp_path / "spill")
    m.page(np.array([6.0, 0.0, 0.0]))
    m.save(tmp_path / "map")
    m2 = Mapper.load(tmp_path / "map", MapperConfig(offload_radius=2.0, offload_hysteresis=0.5))
    assert len(m2.map) == 150
    np.testing.assert_array_equal(np.sort(m2.map.created_ns.numpy()), np.repeat([1000, 2000, 3000], 50))
    # each stamp still names the Gaussians its keyframe seeded (map.ply and gaussians.npz rows agree)
    def rows(g):  # (stamp, x, y, z) rows in a canonical order (the PLY does not keep ids)
        r = np.column_stack([g.created_ns.numpy().astype(np.float64), g.means.detach().numpy()])
        return r[np.lexsort(r.T[::-1])]

    np.testing.assert_allclose(rows(m2.map), rows(m.full_map()), atol=1e-6)
    np.testing.assert_array_equal(np.sort(m2.map.ids.numpy()), np.arange(150))  # ids too (range-seeded marks)
    # the stamps tie the loaded Gaussians to their keyframes: a correction moves them
    old = [kf.T_world_cam.copy() for kf in m2.keyframes]
    before = m2.map.means[m2.map.created_ns == 2000].clone()
    m2._move_keyframes(old, [old[0], _pose(3.5), old[2]])
    np.testing.assert_allclose((m2.map.means[m2.map.created_ns == 2000] - before).numpy(),
                               np.tile([0.5, 0.0, 0.0], (50, 1)), atol=1e-5)
    assert m2.page(np.array([0.0, 0.0, 0.0])) == (2, 0)  # keyframes 1 (now 3.5 m) and 2 (6 m) leave
    assert len(m2.map) == 50 and len(m2.full_map()) == 150


def test_unwritable_offload_dir_is_a_config_error(tmp_path):
    from ros_gs.errors import ConfigError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="offload_dir"):
        Mapper(MapperConfig(offload_dir=str(blocker / "sub")))
    with pytest.raises(ValueError, match="offload_hysteresis"):
        MapperConfig(offload_radius=1.0, offload_hysteresis=1.0)


def test_paging_at_the_cap_offloads_before_it_restores(tmp_path):
    m = _mapper_with_three_keyframes(3.5, tmp_path)
    assert m.page(np.array([6.0, 0.0, 0.0])) == (1, 0)  # keyframe 0 (6 m) leaves
    m.map.max_gaussians = 100  # the map is now full
    assert m.page(np.array([0.0, 0.0, 0.0])) == (1, 1)  # keyframe 2 leaves, keyframe 0 returns
    assert m.map.evicted_total == 0 and len(m.map) == 100 and len(m.full_map()) == 150
    assert set(m.map.created_ns.tolist()) == {1000, 2000}


@pytest.mark.parametrize("pruned", [3, 12])  # few: rows only freed; many: the map repacks
def test_adam_moments_follow_their_gaussians_through_pruning(pruned):
    m = Mapper(MapperConfig(prune_opacity=0.05))
    n = 20
    m.map.add(torch.randn(n, 3), opacity_logits=torch.zeros(n), ids=torch.arange(n))
    cap = m.map.storage("means").shape[0]
    by_row = torch.full((cap,), -1.0)
    by_row[m.map.active_slots()] = m.map.ids.float()
    m._moments = {"means": (by_row[:, None].repeat(1, 3).clone(), by_row[:, None].repeat(1, 3).clone(), 5.0)}
    m._opt_version = m.map.storage_version
    version = m.map.storage_version
    m.map.update(torch.arange(pruned), opacity_logits=-10.0)  # ids 0..pruned-1 are pruned
    assert m._prune() == pruned
    assert (m.map.storage_version != version) == (pruned == 12)
    avg, avg_sq, _ = m._moments["means"]
    slots = m.map.active_slots()
    np.testing.assert_array_equal(avg[slots, 0].numpy(), m.map.ids.float().numpy())
    np.testing.assert_array_equal(avg_sq[slots, 1].numpy(), m.map.ids.float().numpy())
    alive = torch.zeros(cap, dtype=torch.bool)
    alive[slots] = True
    assert bool((avg[~alive] == 0).all()) and bool((avg_sq[~alive] == 0).all())


def test_camera_seeds_at_the_cap_push_out_range_gaussians_first(tmp_path):
    """A full map of camera and range-seeded Gaussians: seeding a keyframe removes the range
    ones (farthest first), not the camera ones the opacity policy would pick."""
    from ros_gs.mapping.mapper import RANGE_SEEDED

    m = Mapper(MapperConfig(max_gaussians=300, seed_stride=2))
    n_cam, n_rng = 200, 100
    m.map.add(torch.randn(n_cam, 3) * 0.1 + torch.tensor([0.0, 0.0, 5.0]), opacity_logits=torch.full((n_cam,), -2.0))
    far = torch.randn(n_rng, 3) * 0.1 + torch.tensor([0.0, 0.0, -5.0])
    far[:50, 2] -= 10.0  # half of them farther still
    m.map.add(far, opacity_logits=torch.full((n_rng,), 2.0), ids=RANGE_SEEDED)
    kf = Keyframe(0, 7, np.eye(4), _frame(7, 0), m.frame_store)
    m.keyframes.append(kf)
    added = m.seed(kf)  # 6 x 8 pixels, nothing rendered there yet
    assert added == 48 and len(m.map) == 300 and m.map.evicted_total == 0
    ranged = m.map.ids == RANGE_SEEDED
    assert int(ranged.sum()) == n_rng - added and int((~ranged).sum()) == n_cam + added
    assert int((m.map.means[ranged][:, 2] < -12.0).sum()) == 50 - added  # the farthest went first
