"""Visual forces tracking MuJoCo's push scene (shared by the test and benchmarks/bench_physics.py;
not a test module).

MuJoCo pushes a box across the table with a paddle that our world does not know.  Our world
holds the box and the cylinder as particle bodies, starting at MuJoCo's first poses; each
camera frame (3 static cameras) its instance segmentation, coloured one code colour per object,
is the observation, and the objects' Gaussians carry the same code colours.  Only the visual
forces can move our box, so the tracking error says how well they pull the simulation to what
the cameras see.
"""

from __future__ import annotations

import os

import numpy as np
import torch

os.environ.setdefault("MUJOCO_GL", "osmesa")

from ros_gs.gaussians.model import C0  # noqa: E402
from ros_gs.physics import Appearance, GaussianBinding, Observation, VisualForceConfig, World, WorldConfig, visual_forces  # noqa: E402
from ros_gs.physics.primitives import primitive_particles, primitive_surface  # noqa: E402
from ros_gs.render import Camera  # noqa: E402
from ros_gs.render.camera import render_K  # noqa: E402

CODES = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0], [1.0, 1.0, 0]])
PUSH_FORCES = VisualForceConfig(backend="cpu")  # the defaults were measured on this scene


def record_push(width: int = 160, height: int = 120, duration: float = 2.2, rate_hz: float = 30.0):
    """(spec, stamps, frames by stamp, ground truth by stamp) of MuJoCo's push scene."""
    from ros_gs.sim.recorder import CameraFrame, GroundTruth, MujocoRecorder
    from ros_gs.sim.scenes import build_scene

    spec = build_scene("push", width=width, height=height, num_cameras=3)
    rec = MujocoRecorder(spec, camera_rate_hz=rate_hz)
    frames, gts = {}, {}
    for ev in rec.run(duration):
        if isinstance(ev, CameraFrame):
            frames.setdefault(ev.stamp_ns, []).append(ev)
        elif isinstance(ev, GroundTruth):
            gts[ev.stamp_ns] = ev
    rec.close()
    return spec, sorted(frames), frames, gts


def track(spec, stamps, frames, gts, config: VisualForceConfig | None, spacing: float = 0.02) -> np.ndarray:
    """Position error (len(stamps), objects) in metres of our bodies against MuJoCo's; no visual
    forces when ``config`` is None."""
    g0 = gts[stamps[0]]
    world = World(WorldConfig(device="cpu", ground_height=spec.table_top_z))
    parts, pts, cols, body = [], [], [], []
    for i, o in enumerate(spec.objects):
        T = g0.objects[o.name]
        parts.append(primitive_particles(o.shape, o.size, spacing))
        world.add_body(parts[-1], T, mass=o.mass, radius=spacing / 2, name=o.name)
        s = primitive_surface(o.shape, o.size, 0.008)
        pts.append(s @ T[:3, :3].T + T[:3, 3])
        cols.append(np.repeat(CODES[i][None], len(s), axis=0))
        body.append(np.full(len(s), i))
    world.finalize()
    pts, cols, body = np.concatenate(pts), np.concatenate(cols), np.concatenate(body)
    n = len(pts)
    app = Appearance(scales=torch.full((n, 3), 0.005), opacities=torch.full((n,), 0.95),
                     sh=torch.as_tensor((cols - 0.5) / C0, dtype=torch.float32)[:, None, :])
    poses0 = np.stack([g0.objects[o.name] for o in spec.objects])
    bind = GaussianBinding(pts, np.tile([1.0, 0, 0, 0], (n, 1)), body, poses0, parts)
    errors = []
    for k, st in enumerate(stamps):
        if k > 0:
            forces = None
            if config is not None:
                obs = []
                for f in frames[st]:
                    h, w = f.segmentation.shape
                    cam = Camera.from_pose(torch.as_tensor(render_K(f.K), dtype=torch.float32),
                                           torch.as_tensor(f.T_world_cam, dtype=torch.float32), w, h)
                    code = np.zeros((h, w, 3), np.float32)
                    seen = f.segmentation >= 0
                    code[seen] = CODES[f.segmentation[seen]]
                    obs.append(Observation(cam, torch.as_tensor(code)))
                forces, _ = visual_forces(world, bind, app, obs, config, dt=(st - stamps[k - 1]) * 1e-9)
            world.step((st - stamps[k - 1]) * 1e-9, forces)
        P = world.poses()
        errors.append([np.linalg.norm(P[i, :3, 3] - gts[st].objects[o.name][:3, 3]) for i, o in enumerate(spec.objects)])
    return np.array(errors)
