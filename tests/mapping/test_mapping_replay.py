"""A shortened replay of the real 7-Scenes kitchen frames (every 2nd of the first 120, at
320x240): tracking accuracy (ATE) and render quality at held-out frames."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ros_gs.datasets.rgbd_folder import RgbdFolder
from ros_gs.mapping import Mapper, MapperConfig, RgbdFrame, ate_rmse, psnr


@pytest.fixture(scope="module")
def replay(kitchen_dir):
    ds = RgbdFolder(kitchen_dir)
    idx = list(range(0, 120, 2))
    frames = [RgbdFrame.from_folder_frame(ds[i], ds.K) for i in idx]
    gt = np.array([ds[i].pose_c2w for i in idx])
    m = Mapper(MapperConfig(), initial_pose=gt[0])
    est = [m.process(f) for f in frames]
    return m, frames, gt, est


def test_replay_tracks_the_camera(replay):
    m, frames, gt, est = replay
    assert all(e.ok for e in est)
    path = np.linalg.norm(np.diff(gt[:, :3, 3], axis=0), axis=1).sum()
    assert path > 0.4  # enough motion for the bound to mean something
    rmse, _ = ate_rmse([e.T_world_cam for e in est], gt)
    identity, _ = ate_rmse([np.eye(4)] * len(gt), gt)
    assert identity > 0.08  # a tracker that does not move fails the bound below
    assert rmse < 0.03, f"ATE {rmse * 100:.2f} cm over a {path:.2f} m path"
    kfs = sum(e.keyframe for e in est)
    assert 2 <= kfs < len(est) // 2
    assert est[-1].num_gaussians == m.map.num_gaussians > 1000


def test_replay_renders_held_out_frames(replay):
    m, frames, gt, est = replay
    held = [i for i in range(5, len(frames), 9) if not est[i].keyframe]
    assert len(held) >= 4
    good, shifted = [], []
    for i in held:
        f = m.prepare(frames[i])
        T = est[i].T_world_cam
        out = m.render(T, f.K, f.width, f.height)
        good.append(psnr(out.rgb.clamp(0, 1).numpy(), f.rgb))
        off = T.copy()
        off[:3, :3] = off[:3, :3] @ Rotation.from_rotvec([0, np.radians(8), 0]).as_matrix()
        off[:3, 3] += off[:3, :3] @ np.array([0.08, 0, 0])
        shifted.append(psnr(m.render(off, f.K, f.width, f.height).rgb.clamp(0, 1).numpy(), f.rgb))
    empty = psnr(np.zeros_like(frames[0].rgb), frames[0].rgb)
    assert empty < 12
    assert np.mean(good) > 19, good
    assert np.mean(good) > np.mean(shifted) + 3, (good, shifted)


def test_save_load_roundtrip(replay, tmp_path):
    m = replay[0]
    m.save(tmp_path / "map")
    m2 = Mapper.load(tmp_path / "map")
    assert m2.map.num_gaussians == m.map.num_gaussians
    assert len(m2.trajectory) == len(m.trajectory)
    np.testing.assert_allclose(m2.trajectory[-1].T_world_cam, m.trajectory[-1].T_world_cam)
    np.testing.assert_allclose(m2.map.means.numpy(), m.map.means.numpy())
