"""Helpers for the ros_gs.sim tests: recordings, the scene's surfaces as analytic primitives, pose lookups."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")

from dataclasses import dataclass  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from ros_gs.sim import geometry as G  # noqa: E402
from ros_gs.sim.recorder import CameraFrame, GroundTruth, ImuSample, LidarScan, MujocoRecorder  # noqa: E402
from ros_gs.sim.scenes import SceneSpec, build_scene  # noqa: E402

_TYPES = {
    mujoco.mjtGeom.mjGEOM_PLANE: "plane",
    mujoco.mjtGeom.mjGEOM_SPHERE: "sphere",
    mujoco.mjtGeom.mjGEOM_CAPSULE: "capsule",
    mujoco.mjtGeom.mjGEOM_ELLIPSOID: "ellipsoid",
    mujoco.mjtGeom.mjGEOM_CYLINDER: "cylinder",
    mujoco.mjtGeom.mjGEOM_BOX: "box",
}
_SIZE_LEN = {"plane": 3, "sphere": 1, "capsule": 2, "ellipsoid": 3, "cylinder": 2, "box": 3}


def static_surfaces(spec) -> list[tuple[str, str, tuple, np.ndarray]]:
    """(geom name, shape, size, T_world_geom) of every geom of the scene at its initial state
    (the whole world in ``walkthrough``, where nothing but the geom-less rig moves)."""
    m = mujoco.MjModel.from_xml_string(spec.xml)
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    out = []
    for g in range(m.ngeom):
        shape = _TYPES[mujoco.mjtGeom(int(m.geom_type[g]))]
        size = tuple(float(v) for v in m.geom_size[g][: _SIZE_LEN[shape]])
        out.append((m.geom(g).name, shape, size, G.pose(d.geom_xmat[g].reshape(3, 3), d.geom_xpos[g])))
    return out


def distance_to_surfaces(points: np.ndarray, surfaces) -> np.ndarray:
    """Unsigned distance of world points to the nearest of the given primitives."""
    best = np.full(len(points), np.inf)
    for _, shape, size, T in surfaces:
        best = np.minimum(best, np.abs(G.sdf(shape, size, T, points)))
    return best


def pose_at(stamps_ns: np.ndarray, poses: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
    """Poses (N, 4, 4) at times ``t_ns`` interpolated (linear + slerp) from a sampled track."""
    idx = np.clip(np.searchsorted(stamps_ns, t_ns, side="right") - 1, 0, len(stamps_ns) - 2)
    out = np.empty((len(t_ns), 4, 4))
    for i, (j, t) in enumerate(zip(idx, t_ns)):
        alpha = (t - stamps_ns[j]) / (stamps_ns[j + 1] - stamps_ns[j])
        out[i] = G.interpolate_pose(poses[j], poses[j + 1], float(alpha))
    return out


def backproject(frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World points of every pixel with depth (OpenCV K: pixel (u, v) centre at (u, v)),
    with their rows and columns."""
    v, u = np.nonzero(frame.depth > 0)
    z = frame.depth[v, u].astype(np.float64)
    x = (u - frame.K[0, 2]) / frame.K[0, 0] * z
    y = (v - frame.K[1, 2]) / frame.K[1, 1] * z
    pts = G.transform_points(frame.T_world_cam, np.stack([x, y, z], axis=1))
    return pts, v, u


@dataclass
class Recording:
    spec: SceneSpec
    extrinsics: dict
    events: list
    start_ns: int

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def gt(self) -> list[GroundTruth]:
        return self.of(GroundTruth)

    @property
    def imu(self) -> list[ImuSample]:
        return self.of(ImuSample)

    @property
    def frames(self) -> list[CameraFrame]:
        return self.of(CameraFrame)

    @property
    def scans(self) -> list[LidarScan]:
        return self.of(LidarScan)


def record(scene: str, duration: float, *, seed: int = 0, width: int = 160, height: int = 120, num_cameras: int = 3,
           **kwargs) -> Recording:
    spec = build_scene(scene, seed=seed, width=width, height=height, num_cameras=num_cameras)
    rec = MujocoRecorder(spec, seed=seed, **kwargs)
    try:
        events = list(rec.run(duration))
        return Recording(spec, rec.extrinsics(), events, rec.start_ns)
    finally:
        rec.close()
