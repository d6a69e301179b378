"""Execute a planned grasp in MuJoCo: a floating parallel-jaw gripper with the planner's
dimensions (mocap hand, two position-controlled fingers) approaches, closes and lifts.
Shared by the grasp tests (not a test module)."""

from __future__ import annotations

import numpy as np

from ros_gs.grasping import Grasp, ParallelGripper
from ros_gs.sim.geometry import matrix_to_quat


def gripper_xml(g: ParallelGripper) -> tuple[str, str]:
    """(body XML for the worldbody, actuator XML).  Each finger slides 0 .. max_opening/2 (40 mm
    for the Franka, 42.5 mm for the 2F-85); its position servo takes targets down to
    -max_opening/2, past closed: the finger then squeezes what it holds (force-limited)."""
    t, w, L, p = g.finger_thickness / 2, g.finger_width / 2, g.finger_length / 2, g.palm_depth / 2
    span = g.max_opening / 2 + g.finger_thickness
    finger = 'type="box" size="{t} {w} {L}" friction="1.0 0.005 0.0001" mass="0.05" rgba="0.2 0.2 0.22 1"'.format(t=t, w=w, L=L)
    # a free hand welded to a mocap target: a mocap body has no velocity, so fingers moved with it
    # would slide along the object without friction; the weld gives the hand real motion
    body = (
        '  <body name="hand_target" mocap="true" pos="0 0 2"/>\n'
        '  <body name="hand" pos="0 0 2"><freejoint name="hand_joint"/>\n'
        f'    <geom name="palm" type="box" size="{span} {w} {p}" pos="0 0 {-L - p}" rgba="0.3 0.3 0.32 1" mass="0.3"/>\n'
        f'    <body name="finger_l"><joint name="slide_l" type="slide" axis="-1 0 0" range="0 {g.max_opening / 2}" damping="5"/>\n'
        f'      <geom name="finger_l" {finger} pos="{-t} 0 0"/></body>\n'
        f'    <body name="finger_r"><joint name="slide_r" type="slide" axis="1 0 0" range="0 {g.max_opening / 2}" damping="5"/>\n'
        f'      <geom name="finger_r" {finger} pos="{t} 0 0"/></body>\n'
        "  </body>\n"
    )
    act = ('  <equality><weld body1="hand_target" body2="hand" solref="0.005 1"/></equality>\n'
           '  <actuator>\n'
           f'    <position name="act_l" joint="slide_l" kp="300" forcerange="-15 15" ctrlrange="{-g.max_opening / 2} {g.max_opening / 2}"/>\n'
           f'    <position name="act_r" joint="slide_r" kp="300" forcerange="-15 15" ctrlrange="{-g.max_opening / 2} {g.max_opening / 2}"/>\n'
           '  </actuator>\n')
    return body, act


def execute(scene_xml: str, grasp: Grasp, gripper: ParallelGripper, object_body: str, lift: float = 0.15,
            squeeze: float = 0.0, close_speed: float = 0.1) -> float:
    """Run approach (from 12 cm back along the approach), close, lift by ``lift``; returns how
    far the object rose (m).

    Closing: with the default ``squeeze=0`` each finger's servo target jumps to 0 (closed) and
    the grip is 300 N/m x the finger's position at contact (7.5 N on a 5 cm object, 0.6 N on a
    4 mm wall).  With ``squeeze > 0`` the target moves at ``close_speed`` (m/s, per finger) to
    ``-squeeze``, past closed: the fingers meet the object slowly (a jump would slam them
    through a thin wall) and grip it with 300 N/m x (position + squeeze), up to the 15 N force
    limit, as a real gripper closing with a set force does."""
    import mujoco

    body, act = gripper_xml(gripper)
    xml = scene_xml.replace("</worldbody>", body + "  </worldbody>", 1).replace("</mujoco>", act + "</mujoco>", 1)
    m = mujoco.MjModel.from_xml_string(xml)
    d = mujoco.MjData(m)
    if m.nkey:
        mujoco.mj_resetDataKeyframe(m, d, 0)
    obj = m.body(object_body).id
    hand = m.body("hand_target").mocapid[0]
    R, target = grasp.pose[:3, :3], grasp.pose[:3, 3]
    approach = R[:, 2]
    quat = matrix_to_quat(R)  # MuJoCo's order: w, x, y, z
    start = target - 0.12 * approach
    d.mocap_quat[hand] = quat
    d.mocap_pos[hand] = start
    free = m.joint("hand_joint").qposadr[0]
    d.qpos[free: free + 3], d.qpos[free + 3: free + 7] = start, quat  # the hand starts at its target
    half = grasp.opening / 2
    d.ctrl[:] = half
    d.qpos[m.joint("slide_l").qposadr[0]] = d.qpos[m.joint("slide_r").qposadr[0]] = half

    def run(seconds: float, pos_at, ctrl_at=None) -> None:
        n = int(round(seconds / m.opt.timestep))
        for k in range(n):
            d.mocap_pos[hand] = pos_at((k + 1) / n)
            if ctrl_at is not None:
                d.ctrl[:] = ctrl_at((k + 1) * m.opt.timestep)
            mujoco.mj_step(m, d)

    mujoco.mj_forward(m, d)
    run(0.3, lambda a: start)  # settle, open
    z0 = d.xpos[obj][2]
    run(0.6, lambda a: start + a * (target - start))  # approach
    if squeeze > 0:  # close at close_speed to past closed (the force limit holds the object)
        goal = -min(squeeze, gripper.max_opening / 2)
        run(max(0.6, (half - goal) / close_speed + 0.2), lambda a: target, lambda t: max(goal, half - close_speed * t))
    else:
        d.ctrl[:] = 0.0  # close (the force limit holds the object)
        run(0.6, lambda a: target)
    up = np.array([0.0, 0.0, lift])
    run(1.0, lambda a: target + a * up)  # lift
    run(0.3, lambda a: target + up)  # hold
    return float(d.xpos[obj][2] - z0)


def record_tabletop(seed: int = 0, width: int = 320, height: int = 240):
    """MuJoCo's tabletop at rest: (spec, one CameraFrame per table camera, GroundTruth,
    {object index: world depth points})."""
    import os

    os.environ.setdefault("MUJOCO_GL", "osmesa")
    from ros_gs.semantics.instances import DepthView, instance_points
    from ros_gs.sim.recorder import CameraFrame, GroundTruth, MujocoRecorder
    from ros_gs.sim.scenes import build_scene

    spec = build_scene("tabletop", seed=seed, width=width, height=height, num_cameras=3)
    rec = MujocoRecorder(spec, camera_rate_hz=10.0)
    frames, gt = [], None
    for ev in rec.run(0.05):
        if isinstance(ev, CameraFrame):
            frames.append(ev)
        elif isinstance(ev, GroundTruth) and gt is None:
            gt = ev
    rec.close()
    frames = frames[:3]
    # the recorder's segmentation is the object index (-1 = none); instance ids start at 1
    views = [DepthView(f.depth, f.segmentation + 1, f.K, f.T_world_cam) for f in frames]
    return spec, frames, gt, {i - 1: p for i, p in instance_points(views).items()}


def look_at_xyaxes(pos, target, up=(0.0, 0.0, 1.0)) -> str:
    """MJCF ``xyaxes`` of a camera at ``pos`` looking at ``target`` (a MuJoCo camera looks along -z)."""
    pos, target, up = (np.asarray(v, dtype=float) for v in (pos, target, up))
    back = pos - target
    back /= np.linalg.norm(back)
    x = np.cross(up, back)
    x /= np.linalg.norm(x)
    y = np.cross(back, x)
    return " ".join(f"{v:.6f}" for v in (*x, *y))


def depth_points(xml: str, cameras: list[str], body: str, width: int = 320, height: int = 240):
    """What depth cameras see of ``body`` in the scene at rest: (world points (N, 3), the centre of
    the camera that saw each point (N, 3)).  Rendered with MuJoCo's renderer; pixels keep the
    points on the body's geoms (segmentation)."""
    import os

    os.environ.setdefault("MUJOCO_GL", "osmesa")
    import mujoco

    m = mujoco.MjModel.from_xml_string(xml)
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    geoms = np.flatnonzero(m.geom_bodyid == m.body(body).id)
    pts, views = [], []
    with mujoco.Renderer(m, height, width) as r:
        for name in cameras:
            cam = m.camera(name).id
            r.update_scene(d, camera=cam)
            r.enable_depth_rendering()
            depth = r.render().copy()
            r.disable_depth_rendering()
            r.enable_segmentation_rendering()
            seg = r.render().copy()
            r.disable_segmentation_rendering()
            hit = np.isin(seg[..., 0], geoms) & (seg[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)) & (depth > 0)
            f = (height / 2.0) / np.tan(np.radians(m.cam_fovy[cam]) / 2.0)
            v, u = np.nonzero(hit)
            z = depth[v, u]
            local = np.stack([(u - (width - 1) / 2) * z / f, -(v - (height - 1) / 2) * z / f, -z], axis=1)
            R, c = d.cam_xmat[cam].reshape(3, 3), d.cam_xpos[cam].copy()
            pts.append(local @ R.T + c)
            views.append(np.broadcast_to(c, (len(z), 3)))
    return np.concatenate(pts), np.concatenate(views).copy()
