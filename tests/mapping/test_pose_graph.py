"""Keyframe pose graph: drift removed by overlap and loop edges, wrong loop edges pruned, and
the mapper moving keyframes together with the Gaussians they seeded."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ros_gs.mapping import Mapper, MapperConfig
from ros_gs.mapping.mapper import Keyframe, _inv
from ros_gs.mapping.pose_graph import KeyframePoseGraph, view_overlap_candidates


def _T(rotvec, t) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    T[:3, 3] = t
    return T


def _circle(n=24, r=1.0):
    """Camera poses on a circle looking outwards: the last comes back next to the first."""
    out = []
    for i in range(n):
        a = 2 * np.pi * i / n
        out.append(_T([0, a, 0], [r * np.sin(a), 0.0, r * np.cos(a)]))
    return out


def _rel(Ta, Tb):  # T_a_b
    return _inv(Ta) @ Tb


def _drifted_chain(gt, rng):
    """Odometry edges with a systematic bias + noise, and the dead-reckoned poses they give."""
    edges, poses = [], [gt[0].copy()]
    bias = _T([0, 0.002, 0.0], [0.003, 0.0, 0.0])
    for k in range(1, len(gt)):
        meas = _rel(gt[k - 1], gt[k]) @ bias @ _T(rng.normal(0, 1e-3, 3), rng.normal(0, 1e-3, 3))
        edges.append((k, k - 1, meas))
        poses.append(poses[-1] @ meas)
    return edges, poses


def _err(poses, gt):
    return max(np.linalg.norm(p[:3, 3] - g[:3, 3]) for p, g in zip(poses, gt))


def test_loop_edge_removes_drift():
    gt = _circle()
    edges, dead = _drifted_chain(gt, np.random.default_rng(0))
    g = KeyframePoseGraph()
    for p in dead:
        g.add_node(p)
    for s, t, T in edges:
        g.add_edge(s, t, T, np.eye(6) * 100)
    assert _err(dead, gt) > 0.05  # the chain alone drifts by centimetres
    assert _err(g.optimise(), gt) > 0.05  # and no other constraint can fix it
    n = len(gt) - 1
    g.add_edge(n, 0, _rel(gt[0], gt[n]), np.eye(6) * 1000, uncertain=True)
    out = g.optimise()
    assert np.allclose(out[0], gt[0])  # node 0 is the fixed reference
    assert _err(out, gt) < 0.5 * _err(dead, gt)
    assert g.residuals().max() < 0.05


def test_wrong_loop_edge_is_pruned():
    gt = _circle()
    g = KeyframePoseGraph()
    rng = np.random.default_rng(1)
    for p in gt:
        g.add_node(p @ _T(rng.normal(0, 1e-3, 3), rng.normal(0, 1e-3, 3)))
    for k in range(1, len(gt)):
        g.add_edge(k, k - 1, _rel(gt[k - 1], gt[k]), np.eye(6) * 1000)
    # a false loop closure: claims keyframe 12 sits 40 cm from where it is relative to 0
    g.add_edge(12, 0, _rel(gt[0], gt[12]) @ _T([0, 0.3, 0], [0.4, 0, 0]), np.eye(6) * 1000, uncertain=True)
    out = g.optimise()
    assert _err(out, gt) < 0.01


def test_overlap_candidates():
    poses = [_T([0, 0, 0], [0, 0, 0]), _T([0, 0, 0], [0.3, 0, 0]), _T([0, np.pi, 0], [0.1, 0, 0]),
             _T([0, 0, 0], [2.0, 0, 0]), _T([0, 0.2, 0], [0.05, 0, 0])]
    # 4 sees what 0 and 1 see (near, similar axis); 2 looks the other way, 3 is far
    assert view_overlap_candidates(poses, 4, 0.5, 35.0) == [0, 1]
    assert view_overlap_candidates(poses, 4, 0.5, 35.0, exclude={0}) == [1]


def test_mapper_moves_gaussians_with_their_keyframe(kitchen_dir):
    """Correcting keyframe poses moves the Gaussians each keyframe seeded with it (and the
    non-keyframe poses expressed against it); one common correction moves the whole map
    rigidly, so a render from the corrected pose equals the render before."""
    from ros_gs.datasets.rgbd_folder import RgbdFolder
    from ros_gs.mapping import RgbdFrame

    ds = RgbdFolder(kitchen_dir, color="kinect-v1")  # 7-Scenes colour is not registered to depth
    m = Mapper(MapperConfig(target_width=160, pose_graph=False, map_iterations=0, map_iterations_coarse=0,
                            kf_max_interval=3))
    for i in range(0, 12):
        m.process(RgbdFrame.from_folder_frame(ds[i], ds.K, ds.color))
    assert len(m.keyframes) >= 3
    old = [k.T_world_cam.copy() for k in m.keyframes]
    means_before = m.map.means.clone().double()
    created = m.map.created_ns.clone()
    traj_before = m.optimised_trajectory()
    deltas = [_T([0.0, 0.02 * j, 0.01], [0.05 * j, -0.02, 0.0]) for j in range(len(old))]
    m._move_keyframes(old, [D @ T for D, T in zip(deltas, old)])
    for j, (kf, D) in enumerate(zip(m.keyframes, deltas)):
        assert np.allclose(kf.T_world_cam, D @ old[j], atol=1e-9)
        own = created == kf.stamp_ns
        assert int(own.sum()) > 0
        expect = means_before[own] @ torch.as_tensor(D[:3, :3]).T + torch.as_tensor(D[:3, 3])
        assert torch.allclose(m.map.means[own].double(), expect, atol=1e-5)
    traj_after = m.optimised_trajectory()
    for i, p in enumerate(m.trajectory):
        assert np.allclose(traj_after[i], deltas[p.ref_keyframe] @ traj_before[i], atol=1e-9)

    kf: Keyframe = m.keyframes[0]
    w, h = kf.rgb.shape[1], kf.rgb.shape[0]
    before = m.render(kf.T_world_cam, kf.K, w, h)
    D = _T([0.1, -0.2, 0.05], [0.3, 0.1, -0.2])
    now = [k.T_world_cam.copy() for k in m.keyframes]
    m._move_keyframes(now, [D @ T for T in now])
    after = m.render(kf.T_world_cam, kf.K, w, h)
    assert float(before.alpha.mean()) > 0.5
    diff = (before.rgb - after.rgb).abs()
    print("rigid move: rgb max diff", float(diff.max()), "mean", float(diff.mean()))
    assert float(diff.mean()) < 1e-4 and float(diff.max()) < 0.05
    assert float((before.depth - after.depth).abs().mean()) < 1e-4
