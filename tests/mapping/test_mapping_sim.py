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
