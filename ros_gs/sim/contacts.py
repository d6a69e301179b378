"""When a scene's geoms touch, from MuJoCo's contacts (the judge of "after the paddle lets go").

Simulated like :class:`ros_gs.sim.recorder.MujocoRecorder` does (settle with the mocap bodies held
at their start, then the trajectories from t = 0) but without rendering, so it is cheap.
"""

from __future__ import annotations

from ros_gs.errors import ConfigError
from ros_gs.sim.scenes import build_scene


def last_contact_s(scene: str, geom: str, duration_s: float, seed: int = 0) -> float:
    """The last time (s from the recording's start) that ``geom`` touches any object of the
    scene within ``duration_s``; 0 when it never does."""
    import mujoco

    spec = build_scene(scene, seed=seed, width=32, height=24)
    m = mujoco.MjModel.from_xml_string(spec.xml)
    d = mujoco.MjData(m)
    gid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, geom)
    if gid < 0:
        raise ConfigError(f"scene {scene!r} has no geom {geom!r}")
    objects = {int(m.geom(o.geom).bodyid[0]) for o in spec.objects}
    mocap = [(int(m.body(b).mocapid[0]), path) for b, path in spec.mocap.items()]
    n_settle = int(round(spec.settle_s / m.opt.timestep))
    last = 0.0
    for k in range(n_settle + int(round(duration_s / m.opt.timestep))):
        t = max(0.0, (k - n_settle) * m.opt.timestep)
        for mid, path in mocap:
            d.mocap_pos[mid] = path.pose(t)[:3, 3]
        mujoco.mj_step(m, d)
        for c in d.contact[: d.ncon]:
            if gid in (c.geom1, c.geom2) and {int(m.geom_bodyid[c.geom1]), int(m.geom_bodyid[c.geom2])} & objects:
                last = t
    return last
