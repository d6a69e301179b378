"""The RGB-D mapper on the MuJoCo walkthrough at 10 Hz: 7 cm and a few degrees between frames, so
each view turns into space the map has not seen yet.  Tracking is judged on the part of the view
the map covers; judged on the whole view it called 0.9 cm-accurate frames failures and drifted
off (57 cm after 1.5 s)."""

from __future__ import annotations

import numpy as np
import pytest


def test_tracks_a_fast_walkthrough_at_10_hz() -> None:
    pytest.importorskip("mujoco")
    from ros_gs.mapping import Mapper, MapperConfig, RgbdFrame
    from ros_gs.sim.recorder import CameraFrame, MujocoRecorder
    from ros_gs.sim.scenes import build_scene

    with MujocoRecorder(build_scene("walkthrough", num_cameras=1), camera_rate_hz=10.0) as rec:
        frames = [e for e in rec.run(1.5) if isinstance(e, CameraFrame)]
    m = Mapper(MapperConfig(relocalise=False), initial_pose=frames[0].T_world_cam)
    errors, steps = [], []
    for a, f in zip([frames[0]] + frames, frames):
        est = m.process(RgbdFrame(stamp_ns=f.stamp_ns, rgb=f.rgb, depth=f.depth, K=f.K))
        assert est.ok, (len(errors), est.fitness)
        errors.append(np.linalg.norm(est.T_world_cam[:3, 3] - f.T_world_cam[:3, 3]))
        steps.append(np.linalg.norm(f.T_world_cam[:3, 3] - a.T_world_cam[:3, 3]))
    print(f"{len(frames)} frames, steps up to {max(steps) * 100:.1f} cm, errors {np.round(np.array(errors) * 100, 2)} cm")
    assert len(frames) >= 15 and max(steps) > 0.05
    assert max(errors) < 0.05  # measured 2.75 cm at most after 1.5 s


def _scan_points_world(scans) -> list[np.ndarray]:
    """Each scan's points in the world, deskewed along the LiDAR's pose interpolated between
    consecutive scan stamps (the last scan is left out)."""
    from scipy.spatial.transform import Rotation, Slerp

    out = []
    for a, b in zip(scans, scans[1:]):
        dt = (b.stamp_ns - a.stamp_ns) * 1e-9
        s = np.clip(a.t.astype(np.float64) / dt, 0.0, 1.0)
        R = Slerp([0.0, 1.0], Rotation.from_matrix([a.T_world_lidar[:3, :3], b.T_world_lidar[:3, :3]]))(s)
        p = (1 - s)[:, None] * a.T_world_lidar[:3, 3] + s[:, None] * b.T_world_lidar[:3, 3]
        out.append(R.apply(a.points.astype(np.float64)) + p)
    return out


def test_lidar_points_complete_the_map_where_the_camera_did_not_look() -> None:
    """The mapper tracks the front camera; LiDAR scans (360 deg) seed the rest.  Rendered from the
    side camera (75 deg left, never used), the map's depth must match MuJoCo's depth there."""
    pytest.importorskip("mujoco")
    from ros_gs.mapping import Mapper, MapperConfig, RgbdFrame
    from ros_gs.sim.recorder import CameraFrame, LidarScan, MujocoRecorder
    from ros_gs.sim.scenes import build_scene

    with MujocoRecorder(build_scene("walkthrough", num_cameras=2), camera_rate_hz=10.0) as rec:
        events = list(rec.run(1.0))
    front = [e for e in events if isinstance(e, CameraFrame) and e.camera == "rig_front"]
    side = [e for e in events if isinstance(e, CameraFrame) and e.camera == "rig_side"]
    scans = [e for e in events if isinstance(e, LidarScan)]
    assert len(front) >= 8 and len(side) >= 8 and len(scans) >= 8

    def run(with_lidar: bool) -> Mapper:
        m = Mapper(MapperConfig(relocalise=False), initial_pose=front[0].T_world_cam)
        clouds = list(zip([s.stamp_ns for s in scans], _scan_points_world(scans))) if with_lidar else []
        for f in front:
            m.process(RgbdFrame(stamp_ns=f.stamp_ns, rgb=f.rgb, depth=f.depth, K=f.K))
            while clouds and clouds[0][0] <= f.stamp_ns:
                m.add_points(clouds.pop(0)[1])
        return m

    def side_view(m: Mapper, f) -> tuple[float, float]:
        out = m.render(f.T_world_cam, f.K, f.rgb.shape[1], f.rgb.shape[0], everything=True)
        valid = (f.depth > 0) & (f.depth < 6.0)
        a, d = out.alpha.numpy(), out.depth.numpy()
        covered = valid & (a > 0.5)
        good = covered & (np.abs(d - f.depth) < 0.1)
        return float(covered.sum() / valid.sum()), float(good.sum() / valid.sum())

    with_lidar, camera_only = run(True), run(False)
    late = side[len(side) // 2:]
    lid = np.array([side_view(with_lidar, f) for f in late])
    cam = np.array([side_view(camera_only, f) for f in late])
    print(f"side view: covered {cam[:, 0].mean():.2f} -> {lid[:, 0].mean():.2f}, "
          f"depth within 10 cm {cam[:, 1].mean():.2f} -> {lid[:, 1].mean():.2f}, "
          f"Gaussians {len(camera_only.map)} -> {len(with_lidar.map)}")
    # measured: covered 0.02 -> 0.55, depth within 10 cm 0.02 -> 0.43 (16 beams over +-15 deg:
    # floor and ceiling near the rig stay unseen, and 5 cm Gaussians leave gaps between the rings)
    assert lid[:, 1].mean() > 0.35 and lid[:, 1].mean() > cam[:, 1].mean() + 0.3
    assert lid[:, 1].mean() > 0.7 * lid[:, 0].mean()  # what LiDAR added is where the surfaces are
    assert with_lidar.add_points(np.full((5, 3), np.nan)) == 0
    # a keyframe replaces the range Gaussians its depth sees: none are left in the newest one's view
    from ros_gs.mapping.mapper import RANGE_SEEDED

    assert int((with_lidar.map.ids == RANGE_SEEDED).sum()) > 1000
    assert with_lidar._drop_range_seeded(with_lidar.keyframes[-1]) == 0

    def worst(m: Mapper) -> float:  # tracking is not disturbed by the LiDAR Gaussians
        return max(np.linalg.norm(p.T_world_cam[:3, 3] - f.T_world_cam[:3, 3]) for p, f in zip(m.trajectory, front))

    assert worst(with_lidar) < max(0.03, worst(camera_only) + 0.01), (worst(with_lidar), worst(camera_only))
