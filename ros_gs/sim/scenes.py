"""MuJoCo scene library: named, labelled objects with exactly known shapes, sizes and poses.

Why: to judge mapping, tracking, physics and grasping we need data whose truth is known
exactly.  MuJoCo is the independent judge here: it integrates the rigid-body dynamics,
renders the images and casts the LiDAR rays, and ros_gs never imports it in its core.  Every
scene is plain MJCF written by this module (no assets from elsewhere), so the geometry the
sensors see is exactly the primitives listed in :class:`SceneSpec.objects`.

Scenes (``build_scene(name)``):

* ``tabletop`` -- seven rigid objects (three boxes, a cylinder, a capsule, a sphere, an
  ellipsoid) resting on a textured table; up to 3 static RGB-D cameras looking at the table from
  different sides.  Objects are placed exactly at rest and settled before recording; the seed
  jitters their positions (+-1.5 cm) and headings (+-15 deg).
* ``push`` -- a kinematic paddle (mocap body, one fast minimum-jerk stroke) shoves a smooth box
  (friction 0.15 on the table) and stops; the box slides on free for ~0.35 s until it hits a
  cylinder, which stops it; same cameras.
* ``drop`` -- five objects (chosen from the catalogue minus the ellipsoid, placed, oriented and
  spun by the seed) fall from 0.2-0.5 m above the table top onto it and tumble to rest (~1.2 s).
* ``walkthrough`` -- an 8 m x 6 m room (floor, 4 walls, table, shelf, pillars of different
  sections, a ramp, crates, a barrel, a ball) and a sensor rig (forward camera, optional side
  camera, 16 x 720 spinning LiDAR at 10 Hz with +-15 deg vertical field, IMU) rigidly mounted
  with non-identity extrinsics, following a smooth 6-DoF loop (:class:`LoopTrajectory`).

* ``orbit`` -- the tabletop's objects in a seeded layout and one RGB-D camera with an IMU (the
  walkthrough rig's front camera and IMU) carried around the table at head height on a smooth
  path, looking at it (:class:`OrbitTrajectory`); at 4.0-4.6 s a paddle pushes the red box 12 cm.
  The whole world model on a moving camera (issue 17).

Conventions: z up, metres, table top at ``TABLE_TOP_Z`` (0.75 m) in the table scenes.  The rig
frame is x forward, y left, z up (REP 103); the LiDAR frame likewise (azimuth 0 along +x,
counter-clockwise); camera frames in MJCF are MuJoCo's (look along -z, y up) -- the recorder
reports OpenCV optical frames.  Quaternions in MJCF are MuJoCo's ``(w, x, y, z)``.
Sites and the rig carry no visible geometry (sites are in group 4, hidden), so cameras and
rays only see the scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ros_gs.errors import ConfigError
from ros_gs.sim.geometry import matrix_to_quat, mug_parts, pose, quat_to_matrix

SCENES: tuple[str, ...] = ("tabletop", "push", "drop", "walkthrough", "orbit")

TABLE_TOP_Z = 0.75
TABLE_HALF = (0.5, 0.35, 0.02)  # table top half-extents (x, y, thickness)
TIMESTEP = 0.001  # s; <= 2 ms as required, 1 ms keeps contacts stiff and the IMU exact
MAX_IMAGE = 1920  # largest width/height accepted

PALETTE = {
    "red": (0.85, 0.12, 0.10, 1.0),
    "green": (0.15, 0.70, 0.25, 1.0),
    "blue": (0.15, 0.30, 0.85, 1.0),
    "yellow": (0.95, 0.85, 0.10, 1.0),
    "orange": (0.95, 0.50, 0.08, 1.0),
    "purple": (0.55, 0.22, 0.70, 1.0),
    "white": (0.92, 0.92, 0.90, 1.0),
    "cyan": (0.10, 0.75, 0.80, 1.0),
    "brown": (0.55, 0.35, 0.18, 1.0),
}


@dataclass
class ObjectSpec:
    """A labelled rigid object: one MuJoCo body holding one primitive geom at its origin (a
    ``mug``: the geoms of :func:`~ros_gs.sim.geometry.mug_parts`, the first named ``geom``)."""

    name: str
    label: str
    shape: str  # "box" | "sphere" | "cylinder" | "capsule" | "ellipsoid" | "mug"
    size: tuple  # MuJoCo geom size semantics (see ros_gs.sim.geometry)
    rgba: tuple
    mass: float
    friction: float
    body: str
    geom: str
    dynamic: bool = True  # False: welded to the world (static furniture-like objects)


@dataclass
class CameraSpec:
    name: str
    width: int
    height: int
    fovy_deg: float  # vertical field of view
    mounted_on: str | None  # None: static in the world; else the body it is fixed to


@dataclass
class LidarSpec:
    name: str
    channels: int
    horizontal: int  # rays per revolution (azimuth columns)
    vfov_deg: tuple[float, float]  # (lowest, highest) elevation, channels spaced evenly
    max_range: float
    rate_hz: float
    mounted_on: str | None
    site: str = "lidar"  # MuJoCo site giving the LiDAR frame (x forward, y left, z up)
    min_range: float = 0.05


@dataclass
class SceneSpec:
    name: str
    xml: str  # MJCF
    objects: list[ObjectSpec]
    cameras: list[CameraSpec]
    lidar: LidarSpec | None
    imu_site: str | None
    rig_body: str | None
    world_frame: str = "world"
    timestep: float = TIMESTEP
    settle_s: float = 0.0  # simulated before recording starts (objects come to rest)
    table_top_z: float | None = None  # height of the table top, where there is a table
    rig_trajectory: "LoopTrajectory | OrbitTrajectory | None" = None  # pose of rig_body vs recording time
    mocap: dict[str, Callable[[float], np.ndarray]] = field(default_factory=dict)  # body -> t -> 4x4
    seed: int = 0


# --------------------------------------------------------------------------- trajectories


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


@dataclass(frozen=True)
class LoopTrajectory:
    """A smooth 6-DoF loop: an ellipse in xy with sums of sines on height, heading, pitch, roll.

    ``theta = omega t + phase``; position ``(cx + rx cos theta + x(t), cy + ry sin theta + y(t),
    z0 + z(t))`` where ``x, y, z`` are sums ``sum a sin(w t + p)`` (a sway that excites the IMU);
    heading along the ellipse's tangent plus a sine wobble;
    ``R = Rz(yaw) Ry(pitch) Rx(roll)``.  All derivatives are continuous (analytic functions).
    """

    centre: tuple[float, float] = (0.0, 0.0)
    radii: tuple[float, float] = (2.2, 1.4)
    omega: float = 0.3  # rad/s around the loop
    phase: float = 0.0
    z0: float = 1.2
    x_sines: tuple = ((0.05, 2.7, 0.0),)  # (amplitude m or rad, rad/s, phase rad), added to the loop
    y_sines: tuple = ((0.05, 3.3, 1.0),)
    z_sines: tuple = ((0.10, 0.9, 0.3), (0.04, 2.3, 1.1), (0.02, 4.1, 0.5))
    yaw_sines: tuple = ((0.30, 0.7, 0.0), (0.08, 1.9, 0.4))
    pitch_sines: tuple = ((0.08, 1.1, 0.2), (0.03, 2.9, 1.0))
    roll_sines: tuple = ((0.06, 1.7, 0.5), (0.03, 3.1, 2.0))

    @staticmethod
    def _sines(terms, t: float) -> float:
        return sum(a * math.sin(w * t + p) for a, w, p in terms)

    def pose(self, t: float) -> np.ndarray:
        th = self.omega * t + self.phase
        rx, ry = self.radii
        x = self.centre[0] + rx * math.cos(th) + self._sines(self.x_sines, t)
        y = self.centre[1] + ry * math.sin(th) + self._sines(self.y_sines, t)
        z = self.z0 + self._sines(self.z_sines, t)
        heading = math.atan2(ry * math.cos(th), -rx * math.sin(th)) if self.omega >= 0 else math.atan2(
            -ry * math.cos(th), rx * math.sin(th)
        )
        yaw = heading + self._sines(self.yaw_sines, t)
        R = _rot_z(yaw) @ _rot_y(self._sines(self.pitch_sines, t)) @ _rot_x(self._sines(self.roll_sines, t))
        return pose(R, (x, y, z))

    __call__ = pose


@dataclass(frozen=True)
class MinJerkPath:
    """Constant orientation; position moves from ``start`` to ``end`` between ``t0`` and ``t1``
    with the minimum-jerk profile ``10 s^3 - 15 s^4 + 6 s^5`` (zero velocity and acceleration
    at both ends), held before and after."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]
    t0: float
    t1: float
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)

    def pose(self, t: float) -> np.ndarray:
        s = min(max((t - self.t0) / (self.t1 - self.t0), 0.0), 1.0)
        f = s**3 * (10 - 15 * s + 6 * s * s)
        p = np.asarray(self.start) + f * (np.asarray(self.end) - np.asarray(self.start))
        return pose(quat_to_matrix(self.quat), p)

    __call__ = pose


@dataclass(frozen=True)
class OrbitTrajectory:
    """Around ``target`` on a circle at head height, always looking at it (x forward, y left,
    z up): ``theta = omega t + phase``; the radius, height, heading, pitch and roll sway with
    sums of sines ``sum a sin(w t + p)`` (as :class:`LoopTrajectory`: smooth, and they excite the
    IMU); ``aim_down`` tilts the look below the target (a camera mounted pitched down)."""

    target: tuple[float, float, float] = (0.0, 0.0, 0.78)
    radius: float = 0.85
    z0: float = 1.32
    omega: float = 0.22  # rad/s around the target
    phase: float = 0.0
    aim_down: float = 0.0  # rad
    radius_sines: tuple = ((0.04, 0.9, 0.0),)
    z_sines: tuple = ((0.03, 1.3, 0.4), (0.01, 3.1, 1.0))
    yaw_sines: tuple = ((0.05, 1.1, 0.2),)
    pitch_sines: tuple = ((0.03, 1.7, 0.6),)
    roll_sines: tuple = ((0.04, 1.4, 1.3), (0.015, 3.7, 0.2))

    def pose(self, t: float) -> np.ndarray:
        th = self.omega * t + self.phase
        r = self.radius + LoopTrajectory._sines(self.radius_sines, t)
        tx, ty, tz = self.target
        p = np.array([tx + r * math.cos(th), ty + r * math.sin(th), self.z0 + LoopTrajectory._sines(self.z_sines, t)])
        d = np.asarray(self.target) - p
        yaw = math.atan2(d[1], d[0]) + LoopTrajectory._sines(self.yaw_sines, t)
        pitch = math.atan2(-d[2], math.hypot(d[0], d[1])) - self.aim_down + LoopTrajectory._sines(self.pitch_sines, t)
        R = _rot_z(yaw) @ _rot_y(pitch) @ _rot_x(LoopTrajectory._sines(self.roll_sines, t))
        return pose(R, p)

    __call__ = pose


# --------------------------------------------------------------------------- MJCF helpers


def _f(values) -> str:
    return " ".join(f"{float(v):.9g}" for v in values)


def _quat_attr(R: np.ndarray) -> str:
    return _f(matrix_to_quat(R))


def _look_at_xyaxes(pos, target, up=(0.0, 0.0, 1.0)) -> str:
    """MJCF ``xyaxes`` of a MuJoCo camera at ``pos`` looking at ``target`` (camera looks along -z)."""
    f = np.asarray(target, float) - np.asarray(pos, float)
    f /= np.linalg.norm(f)
    right = np.cross(f, up)
    right /= np.linalg.norm(right)
    upv = np.cross(right, f)
    return _f(np.concatenate([right, upv]))


def _header(model: str, extent: float, centre, width: int, height: int) -> str:
    off_w, off_h = max(640, width), max(480, height)
    return f"""<mujoco model="{model}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{TIMESTEP}" gravity="0 0 -9.81" integrator="Euler" cone="elliptic" impratio="5"/>
  <statistic extent="{extent}" center="{_f(centre)}"/>
  <visual>
    <global offwidth="{off_w}" offheight="{off_h}"/>
    <quality shadowsize="1024" offsamples="0" numslices="64" numstacks="32" numquads="4"/>
    <map znear="0.01" zfar="40"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.45 0.45 0.45" specular="0.1 0.1 0.1"/>
  </visual>
  <default>
    <geom solref="0.004 1" solimp="0.95 0.99 0.001"/>
    <site group="4"/>
  </default>
  <asset>
    <texture name="floor_tex" type="2d" builtin="checker" rgb1="0.30 0.32 0.36" rgb2="0.42 0.44 0.48" width="512" height="512" mark="random" random="0.02" markrgb="0.8 0.8 0.8"/>
    <material name="floor_mat" texture="floor_tex" texrepeat="6 6" reflectance="0"/>
    <texture name="sky_tex" type="skybox" builtin="gradient" rgb1="0.55 0.65 0.78" rgb2="0.12 0.14 0.18" width="256" height="256"/>
    <texture name="wood_tex" type="2d" builtin="flat" rgb1="0.62 0.45 0.30" width="128" height="128" mark="random" random="0.25" markrgb="0.42 0.28 0.16"/>
    <material name="wood_mat" texture="wood_tex" texrepeat="2 2"/>
    <texture name="wall_tex" type="2d" builtin="checker" rgb1="0.78 0.76 0.70" rgb2="0.70 0.68 0.62" width="256" height="256" mark="random" random="0.03" markrgb="0.3 0.3 0.3"/>
    <material name="wall_mat" texture="wall_tex" texrepeat="8 3"/>
  </asset>
"""


def _table_xml(name: str, x: float, y: float, half=TABLE_HALF, top_z: float = TABLE_TOP_Z, yaw: float = 0.0) -> str:
    hx, hy, ht = half
    leg_h = (top_z - 2 * ht) / 2
    legs = "".join(
        f'    <geom name="{name}_leg{i}" type="box" size="0.025 0.025 {leg_h:.6g}" pos="{sx * (hx - 0.05):.6g} {sy * (hy - 0.05):.6g} {leg_h:.6g}" rgba="0.35 0.25 0.18 1"/>\n'
        for i, (sx, sy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1)))
    )
    return (
        f'  <body name="{name}" pos="{x:.6g} {y:.6g} 0" quat="{_quat_attr(_rot_z(yaw))}">\n'
        f'    <geom name="{name}_top" type="box" size="{hx} {hy} {ht}" pos="0 0 {top_z - ht:.6g}" material="wood_mat" friction="0.6 0.005 0.0001"/>\n'
        f"{legs}  </body>\n"
    )


def _object_xml(obj: ObjectSpec, T: np.ndarray, *, condim: int = 6, priority: int = 0) -> str:
    """MJCF of one object; ``priority`` 1: its own friction holds in its contacts."""
    joint = f'    <freejoint name="{obj.body}_joint"/>\n' if obj.dynamic else ""
    common = f'rgba="{_f(obj.rgba)}" friction="{obj.friction} 0.005 0.002" condim="{condim}" priority="{priority}"'
    if obj.shape == "mug":  # a compound: the first part carries the object's geom name, all end in _geom
        parts = mug_parts(*obj.size)
        volumes = [_volume(shape, size) for shape, size, _ in parts]
        geoms = ""
        for k, ((shape, size, Tp), v) in enumerate(zip(parts, volumes)):
            name = obj.geom if k == 0 else f"{obj.body}_part{k}_geom"
            geoms += (f'    <geom name="{name}" type="{shape}" size="{_f(size)}" pos="{_f(Tp[:3, 3])}" '
                      f'quat="{_quat_attr(Tp[:3, :3])}" mass="{obj.mass * v / sum(volumes):.6g}" {common}/>\n')
    else:
        geoms = f'    <geom name="{obj.geom}" type="{obj.shape}" size="{_f(obj.size)}" mass="{obj.mass}" {common}/>\n'
    return f'  <body name="{obj.body}" pos="{_f(T[:3, 3])}" quat="{_quat_attr(T[:3, :3])}">\n{joint}{geoms}  </body>\n'


def _volume(shape: str, size) -> float:
    """Volume of a box or cylinder (the parts of a compound), to share its mass among them."""
    if shape == "box":
        return 8.0 * size[0] * size[1] * size[2]
    return math.pi * size[0] ** 2 * 2.0 * size[1]  # cylinder


def _rest_rotation(shape: str, yaw: float) -> np.ndarray:
    """Orientation at rest on a horizontal surface: capsules lie on their side, others upright."""
    if shape == "capsule":
        return _rot_z(yaw) @ _rot_y(math.pi / 2)
    return _rot_z(yaw)


def _rest_height(shape: str, size) -> float:
    """Height of the body origin above the support when resting as in :func:`_rest_rotation`."""
    if shape in ("box", "ellipsoid"):
        return float(size[2])
    if shape in ("sphere", "capsule"):
        return float(size[0])
    return float(size[1])  # cylinder or mug upright


# Catalogue of table-top objects: (name, label, shape, size, colour, mass, friction)
CATALOGUE = (
    ("red_box", "red box", "box", (0.045, 0.035, 0.03), "red", 0.25, 0.6),
    ("blue_mug", "blue mug", "mug", (0.04, 0.05), "blue", 0.3, 0.7),
    ("yellow_banana", "yellow banana-like capsule", "capsule", (0.018, 0.065), "yellow", 0.12, 0.8),
    ("green_ball", "green ball", "sphere", (0.035,), "green", 0.1, 0.8),
    ("orange_egg", "orange egg-like ellipsoid", "ellipsoid", (0.055, 0.04, 0.032), "orange", 0.15, 0.8),
    ("purple_carton", "purple carton-like tall box", "box", (0.035, 0.025, 0.07), "purple", 0.2, 0.6),
    ("white_book", "white book-like flat box", "box", (0.075, 0.055, 0.014), "white", 0.3, 0.6),
    ("cyan_can", "cyan can-like small cylinder", "cylinder", (0.028, 0.04), "cyan", 0.15, 0.7),
)

# tabletop layout: catalogue name -> (x, y, yaw)
TABLETOP_LAYOUT = {
    "red_box": (-0.28, 0.12, 0.35),
    "blue_mug": (0.02, 0.17, 0.0),
    "yellow_banana": (0.26, 0.14, 1.0),
    "green_ball": (0.22, -0.10, 0.0),
    "orange_egg": (-0.05, -0.06, 0.6),
    "purple_carton": (-0.22, -0.17, -0.3),
    "white_book": (0.38, -0.12, 0.2),
}


def _catalogue_object(name: str, *, dynamic: bool = True) -> ObjectSpec:
    for n, label, shape, size, colour, mass, friction in CATALOGUE:
        if n == name:
            return ObjectSpec(n, label, shape, size, PALETTE[colour], mass, friction, n, f"{n}_geom", dynamic)
    raise ConfigError(f"no catalogue object {name!r}")


def _table_cameras(num: int, width: int, height: int, fovy: float = 50.0) -> tuple[list[CameraSpec], str]:
    target = np.array([0.0, 0.0, TABLE_TOP_Z + 0.03])
    # (name, azimuth deg, elevation deg, distance m)
    placements = (("front", -90.0, 42.0, 1.05), ("left", 35.0, 38.0, 1.1), ("right", 150.0, 50.0, 1.0))
    specs, xml = [], ""
    for name, az, el, dist in placements[:num]:
        a, e = math.radians(az), math.radians(el)
        pos = target + dist * np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
        xml += f'  <camera name="{name}" mode="fixed" pos="{_f(pos)}" xyaxes="{_look_at_xyaxes(pos, target)}" fovy="{fovy}"/>\n'
        specs.append(CameraSpec(name, width, height, fovy, None))
    return specs, xml


def _table_world() -> str:
    return (
        '  <light name="key" pos="0.6 -0.8 2.4" dir="-0.25 0.33 -1" diffuse="0.6 0.6 0.6" castshadow="true"/>\n'
        '  <light name="fill" pos="-1 1 2.5" dir="0.3 -0.3 -1" diffuse="0.25 0.25 0.25" castshadow="false"/>\n'
        '  <geom name="floor" type="plane" size="3 3 0.1" material="floor_mat"/>\n' + _table_xml("table", 0.0, 0.0)
    )


# --------------------------------------------------------------------------- scenes


def _tabletop(seed: int, width: int, height: int, num_cameras: int) -> SceneSpec:
    rng = np.random.default_rng(seed)
    cams, cam_xml = _table_cameras(num_cameras, width, height)
    objects, body_xml = [], ""
    for name, (x, y, yaw) in TABLETOP_LAYOUT.items():
        obj = _catalogue_object(name)
        x, y = x + rng.uniform(-0.015, 0.015), y + rng.uniform(-0.015, 0.015)
        yaw += rng.uniform(-0.26, 0.26)
        T = pose(_rest_rotation(obj.shape, yaw), (x, y, TABLE_TOP_Z + _rest_height(obj.shape, obj.size)))
        objects.append(obj)
        body_xml += _object_xml(obj, T)
    xml = _header("tabletop", 2.0, (0, 0, 0.8), width, height) + "  <worldbody>\n" + _table_world() + cam_xml + body_xml
    xml += "  </worldbody>\n</mujoco>\n"
    return SceneSpec("tabletop", xml, objects, cams, None, None, None, settle_s=0.5, table_top_z=TABLE_TOP_Z, seed=seed)


def _push(seed: int, width: int, height: int, num_cameras: int) -> SceneSpec:
    rng = np.random.default_rng(seed)
    cams, cam_xml = _table_cameras(num_cameras, width, height)
    # a smooth box (friction 0.15, its own in every contact: MuJoCo takes the larger of two geoms'
    # otherwise, the table's 0.6) slides ~20 cm after the paddle lets go, so the prediction of a
    # free slide and a collision can be judged (issue 15); the cylinder keeps the table's friction
    box = ObjectSpec("red_box", "red box", "box", (0.05, 0.04, 0.03), PALETTE["red"], 0.3, 0.15, "red_box", "red_box_geom")
    cyl = ObjectSpec("blue_cylinder", "blue mug-like cylinder", "cylinder", (0.04, 0.05), PALETTE["blue"], 0.25, 0.4,
                     "blue_cylinder", "blue_cylinder_geom")
    box_y = 0.035 + rng.uniform(-0.005, 0.005)
    T_box = pose(_rot_z(rng.uniform(-0.05, 0.05)), (-0.22, box_y, TABLE_TOP_Z + box.size[2]))
    T_cyl = pose(np.eye(3), (0.16, 0.035 + rng.uniform(-0.01, 0.01), TABLE_TOP_Z + cyl.size[1]))
    # paddle: a thin box at table height; one 18 cm stroke in 0.35 s (peak ~1 m/s): it slows
    # faster than friction slows the box, which leaves it at ~0.8 m/s (t ~0.45 s)
    paddle_half = (0.012, 0.06, 0.03)
    pz = TABLE_TOP_Z + paddle_half[2] + 0.004
    path = MinJerkPath((-0.34, 0.03, pz), (-0.16, 0.03, pz), 0.2, 0.55)
    xml = _header("push", 2.0, (0, 0, 0.8), width, height) + "  <worldbody>\n" + _table_world() + cam_xml
    xml += (
        f'  <body name="pusher" mocap="true" pos="{_f(path.start)}">\n'
        f'    <geom name="pusher_paddle" type="box" size="{_f(paddle_half)}" rgba="0.3 0.3 0.32 1" friction="0.3 0.005 0.0001"/>\n'
        f'    <geom name="pusher_rod" type="cylinder" size="0.008 0.2" pos="0 0 0.23" rgba="0.5 0.5 0.52 1" contype="0" conaffinity="0"/>\n'
        "  </body>\n"
    )
    xml += _object_xml(box, T_box, priority=1) + _object_xml(cyl, T_cyl) + "  </worldbody>\n</mujoco>\n"
    return SceneSpec("push", xml, [box, cyl], cams, None, None, None, settle_s=0.2, table_top_z=TABLE_TOP_Z,
                     mocap={"pusher": path}, seed=seed)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    return quat_to_matrix(q / np.linalg.norm(q))


def _drop(seed: int, width: int, height: int, num_cameras: int) -> SceneSpec:
    rng = np.random.default_rng(seed)
    cams, cam_xml = _table_cameras(num_cameras, width, height)
    # no ellipsoid: MuJoCo's general convex ellipsoid contacts do not let a tumbling ellipsoid
    # come to rest (it rocks and can gain energy), the other primitives settle within ~1.5 s
    names = [c[0] for c in CATALOGUE if c[2] != "ellipsoid"]
    chosen = [names[i] for i in rng.choice(len(names), size=5, replace=False)]
    # positions on a jittered 3 x 2 grid (one slot left free) so falling objects do not start inside each other
    slots = [(x, y) for x in (-0.24, 0.0, 0.24) for y in (-0.11, 0.11)]
    slot_idx = rng.choice(len(slots), size=5, replace=False)
    objects, body_xml, vel_lines = [], "", []
    for name, si in zip(chosen, slot_idx):
        obj = _catalogue_object(name)
        x, y = slots[si][0] + rng.uniform(-0.03, 0.03), slots[si][1] + rng.uniform(-0.02, 0.02)
        z = TABLE_TOP_Z + rng.uniform(0.2, 0.5)
        objects.append(obj)
        body_xml += _object_xml(obj, pose(_random_rotation(rng), (x, y, z)))
        vel_lines.append(rng.uniform(-2.0, 2.0, size=3))  # initial spin, rad/s
    xml = _header("drop", 2.0, (0, 0, 0.8), width, height) + "  <worldbody>\n" + _table_world() + cam_xml + body_xml
    # initial angular velocities through a keyframe (free joint qvel: lin(3) then ang(3), local)
    qvel = " ".join(_f(np.concatenate([np.zeros(3), w])) for w in vel_lines)
    xml += "  </worldbody>\n" + f'  <keyframe><key name="start" qvel="{qvel}"/></keyframe>\n</mujoco>\n'
    return SceneSpec("drop", xml, objects, cams, None, None, None, settle_s=0.0, table_top_z=TABLE_TOP_Z, seed=seed)


# rig-mounted sensors: (pos in rig frame, rotation rig->sensor)
RIG_CAMERA_FRONT = ((0.09, 0.015, 0.03), _rot_y(math.radians(8.0)))  # pitched 8 deg down, rig x forward
RIG_CAMERA_SIDE = ((0.02, 0.07, 0.03), _rot_z(math.radians(75.0)) @ _rot_y(math.radians(5.0)))
RIG_LIDAR = ((-0.02, 0.0, 0.14), _rot_z(math.radians(30.0)) @ _rot_x(math.radians(2.0)))
RIG_IMU = ((-0.04, 0.025, -0.015), _rot_z(math.radians(-90.0)) @ _rot_x(math.radians(180.0)))


def _mj_camera_from_body(R_rig_sensor: np.ndarray) -> np.ndarray:
    """MuJoCo camera orientation whose view direction is the sensor's +x (x fwd, y left, z up)."""
    # MuJoCo camera axes in the sensor frame: x_cam = -y, y_cam = +z, z_cam = -x
    return R_rig_sensor @ np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _rig(T0: np.ndarray, cameras, width: int, height: int, lidar: bool = False) -> tuple[list[CameraSpec], str, str]:
    """The sensor rig: a free body (no geoms) at ``T0`` carrying ``cameras`` ((name, (pos, R))
    in the rig frame), the IMU site and, with ``lidar``, the LiDAR site; its camera specs, its
    MJCF body and the IMU's sensor block."""
    specs, cam_xml = [], ""
    for name, (pos, R) in cameras:
        cam_xml += f'    <camera name="{name}" mode="fixed" pos="{_f(pos)}" quat="{_quat_attr(_mj_camera_from_body(R))}" fovy="60"/>\n'
        specs.append(CameraSpec(name, width, height, 60.0, "rig"))
    lidar_xml = f'    <site name="lidar" pos="{_f(RIG_LIDAR[0])}" quat="{_quat_attr(RIG_LIDAR[1])}" size="0.03"/>\n' if lidar else ""
    body = (
        f'  <body name="rig" pos="{_f(T0[:3, 3])}" quat="{_quat_attr(T0[:3, :3])}">\n'
        '    <freejoint name="rig_joint"/>\n'
        '    <inertial pos="0 0 0" mass="2.0" diaginertia="0.02 0.02 0.02"/>\n'
        + lidar_xml
        + f'    <site name="imu" pos="{_f(RIG_IMU[0])}" quat="{_quat_attr(RIG_IMU[1])}" size="0.01"/>\n'
        + cam_xml + "  </body>\n"
    )
    sensors = '  <sensor>\n    <gyro name="imu_gyro" site="imu"/>\n    <accelerometer name="imu_accel" site="imu"/>\n  </sensor>\n'
    return specs, body, sensors


def _walkthrough(seed: int, width: int, height: int, num_cameras: int) -> SceneSpec:
    rng = np.random.default_rng(seed)
    traj = LoopTrajectory(phase=float(rng.uniform(0, 2 * math.pi)), omega=0.3 if seed % 2 == 0 else -0.3)
    wall_h, lx, ly, t = 1.5, 4.0, 3.0, 0.05  # half-height, room half sizes, wall half-thickness
    world = (
        '  <light name="sun" pos="0 0 6" dir="0.2 0.3 -1" directional="true" diffuse="0.55 0.55 0.55" castshadow="false"/>\n'
        '  <light name="lamp" pos="2 -1 2.8" dir="0 0 -1" diffuse="0.3 0.3 0.3" castshadow="false"/>\n'
        f'  <geom name="floor" type="plane" size="{lx} {ly} 0.1" material="floor_mat"/>\n'
        f'  <geom name="wall_n" type="box" size="{lx + 2 * t} {t} {wall_h}" pos="0 {ly + t} {wall_h}" material="wall_mat"/>\n'
        f'  <geom name="wall_s" type="box" size="{lx + 2 * t} {t} {wall_h}" pos="0 {-ly - t} {wall_h}" material="wall_mat"/>\n'
        f'  <geom name="wall_e" type="box" size="{t} {ly} {wall_h}" pos="{lx + t} 0 {wall_h}" material="wall_mat"/>\n'
        f'  <geom name="wall_w" type="box" size="{t} {ly} {wall_h}" pos="{-lx - t} 0 {wall_h}" material="wall_mat"/>\n'
        # pillars of different sections
        '  <geom name="pillar_round" type="cylinder" size="0.22 1.5" pos="0 0 1.5" rgba="0.75 0.75 0.78 1"/>\n'
        f'  <geom name="pillar_square" type="box" size="0.18 0.28 1.5" pos="3.45 -0.35 1.5" quat="{_quat_attr(_rot_z(0.5))}" rgba="0.6 0.62 0.7 1"/>\n'
        f'  <geom name="pillar_capsule" type="capsule" size="0.15 0.6" pos="-2.9 -0.4 0.75" quat="{_quat_attr(_rot_x(0.0))}" rgba="0.7 0.55 0.5 1"/>\n'
        # a ramp (tilted plane segment) and a shelf against the north wall
        f'  <geom name="ramp" type="box" size="0.6 0.45 0.03" pos="1.0 -2.45 0.22" quat="{_quat_attr(_rot_x(0.35))}" rgba="0.45 0.5 0.4 1"/>\n'
        '  <body name="shelf" pos="-1.6 2.72 0">\n'
        '    <geom name="shelf_side_l" type="box" size="0.02 0.22 0.9" pos="-0.7 0 0.9" material="wood_mat"/>\n'
        '    <geom name="shelf_side_r" type="box" size="0.02 0.22 0.9" pos="0.7 0 0.9" material="wood_mat"/>\n'
        '    <geom name="shelf_b0" type="box" size="0.68 0.22 0.015" pos="0 0 0.3" material="wood_mat"/>\n'
        '    <geom name="shelf_b1" type="box" size="0.68 0.22 0.015" pos="0 0 0.9" material="wood_mat"/>\n'
        '    <geom name="shelf_b2" type="box" size="0.68 0.22 0.015" pos="0 0 1.5" material="wood_mat"/>\n'
        "  </body>\n" + _table_xml("table", 3.0, 1.9, half=(0.6, 0.4, 0.02), yaw=0.2)
    )
    objs = [
        (ObjectSpec("red_crate", "red crate", "box", (0.3, 0.22, 0.2), PALETTE["red"], 5.0, 0.7, "red_crate", "red_crate_geom", False),
         pose(_rot_z(0.25), (-3.3, -2.3, 0.2))),
        (ObjectSpec("brown_crate", "brown crate", "box", (0.18, 0.15, 0.12), PALETTE["brown"], 2.0, 0.7, "brown_crate", "brown_crate_geom", False),
         pose(_rot_z(-0.4), (-3.25, -2.28, 0.52))),
        (ObjectSpec("blue_barrel", "blue barrel", "cylinder", (0.25, 0.45), PALETTE["blue"], 8.0, 0.7, "blue_barrel", "blue_barrel_geom", False),
         pose(np.eye(3), (-3.35, 1.6, 0.45))),
        (ObjectSpec("green_ball", "green exercise ball", "sphere", (0.3,), PALETTE["green"], 1.0, 0.8, "green_ball", "green_ball_geom", False),
         pose(np.eye(3), (3.25, -2.3, 0.3))),
        (ObjectSpec("yellow_box", "yellow box", "box", (0.12, 0.08, 0.06), PALETTE["yellow"], 0.5, 0.7, "yellow_box", "yellow_box_geom", False),
         pose(_rot_z(0.7), (2.8, 1.75, TABLE_TOP_Z + 0.06))),
        (ObjectSpec("purple_bolster", "purple bolster-like capsule", "capsule", (0.12, 0.4), PALETTE["purple"], 2.0, 0.7, "purple_bolster", "purple_bolster_geom", False),
         pose(_rot_z(0.3) @ _rot_y(math.pi / 2), (-1.0, -2.55, 0.12))),
        (ObjectSpec("orange_egg", "orange egg-like ellipsoid", "ellipsoid", (0.25, 0.18, 0.15), PALETTE["orange"], 1.0, 0.7, "orange_egg", "orange_egg_geom", False),
         pose(_rot_z(-0.5), (1.6, 2.45, 0.15))),
    ]
    objects = [o for o, _ in objs]
    body_xml = "".join(_object_xml(o, T) for o, T in objs)

    cams, rig_xml, sensors = _rig(traj.pose(0.0), (("rig_front", RIG_CAMERA_FRONT), ("rig_side", RIG_CAMERA_SIDE))[:num_cameras],
                                  width, height, lidar=True)
    xml = _header("walkthrough", 5.0, (0, 0, 1.2), width, height) + "  <worldbody>\n" + world + body_xml + rig_xml
    xml += "  </worldbody>\n" + sensors + "</mujoco>\n"
    # contacts: the rig has no geoms; nothing else moves, so no collisions are computed at all
    lidar = LidarSpec("lidar", channels=16, horizontal=720, vfov_deg=(-15.0, 15.0), max_range=20.0, rate_hz=10.0, mounted_on="rig")
    return SceneSpec("walkthrough", xml, objects, cams, lidar, "imu", "rig", settle_s=0.0, rig_trajectory=traj, seed=seed)


#: when (s) and how far the orbit scene's paddle pushes its box
ORBIT_PUSH_S, ORBIT_PUSH_M = (4.0, 4.6), 0.12


def _orbit(seed: int, width: int, height: int, num_cameras: int) -> SceneSpec:
    rng = np.random.default_rng(seed)
    # the tabletop's objects in a seeded layout (+-3 cm, +-30 deg: more than tabletop's jitter)
    objects, body_xml, placed = [], "", {}
    for name, (x, y, yaw) in TABLETOP_LAYOUT.items():
        obj = _catalogue_object(name)
        x, y = x + rng.uniform(-0.03, 0.03), y + rng.uniform(-0.03, 0.03)
        yaw += rng.uniform(-0.52, 0.52)
        placed[name] = (x, y)
        objects.append(obj)
        body_xml += _object_xml(obj, pose(_rest_rotation(obj.shape, yaw), (x, y, TABLE_TOP_Z + _rest_height(obj.shape, obj.size))))
    # a paddle the graph does not know pushes the red box 12 cm towards the table's back edge
    # (+y, open table there) at 4.0-4.6 s; it waits beside the box before and after
    bx, by = placed["red_box"]
    paddle_half = (0.012, 0.06, 0.03)
    pz = TABLE_TOP_Z + paddle_half[2] + 0.004
    y0 = by - 0.045 - 0.03  # 3 cm short of the box's near side (its half-extents are <= 4.5 cm)
    q = (math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4))  # the paddle's face across y
    path = MinJerkPath((bx, y0, pz), (bx, y0 + 0.03 + ORBIT_PUSH_M, pz), *ORBIT_PUSH_S, quat=q)
    paddle = (
        f'  <body name="pusher" mocap="true" pos="{_f(path.start)}" quat="{_f(q)}">\n'
        f'    <geom name="pusher_paddle" type="box" size="{_f(paddle_half)}" rgba="0.3 0.3 0.32 1" friction="0.3 0.005 0.0001"/>\n'
        f'    <geom name="pusher_rod" type="cylinder" size="0.008 0.2" pos="0 0 0.23" rgba="0.5 0.5 0.52 1" contype="0" conaffinity="0"/>\n'
        "  </body>\n"
    )
    # a head camera with an IMU carried around the table at head height, looking at it
    traj = OrbitTrajectory(phase=float(rng.uniform(0, 2 * math.pi)), omega=0.22 if seed % 2 == 0 else -0.22,
                           aim_down=math.radians(8.0))  # the front camera is mounted 8 deg down
    cams, rig_xml, sensors = _rig(traj.pose(0.0), (("head", RIG_CAMERA_FRONT),)[:num_cameras], width, height)
    xml = _header("orbit", 2.5, (0, 0, 0.9), width, height) + "  <worldbody>\n" + _table_world() + paddle + body_xml + rig_xml
    xml += "  </worldbody>\n" + sensors + "</mujoco>\n"
    return SceneSpec("orbit", xml, objects, cams, None, "imu", "rig", settle_s=0.5, table_top_z=TABLE_TOP_Z,
                     rig_trajectory=traj, mocap={"pusher": path}, seed=seed)


_BUILDERS = {"tabletop": _tabletop, "push": _push, "drop": _drop, "walkthrough": _walkthrough, "orbit": _orbit}
#: cameras each scene has (3 static table cameras, 2 rig cameras on the walkthrough rig, the head camera of orbit)
MAX_CAMERAS = {"tabletop": 3, "push": 3, "drop": 3, "walkthrough": 2, "orbit": 1}


def build_scene(name: str, *, seed: int = 0, width: int = 320, height: int = 240, num_cameras: int = 3) -> SceneSpec:
    """Build one of :data:`SCENES`.  ``num_cameras`` is capped at what the scene has (3 static
    cameras for the table scenes, 2 rig cameras for ``walkthrough``); 0 gives no cameras."""
    if name not in _BUILDERS:
        raise ConfigError(f"unknown scene {name!r}; expected one of {SCENES}")
    for key, value in (("width", width), ("height", height)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 8 <= value <= MAX_IMAGE:
            raise ConfigError(f"{key} must be an integer in [8, {MAX_IMAGE}], got {value!r}")
    if not isinstance(num_cameras, (int, np.integer)) or isinstance(num_cameras, bool) or num_cameras < 0:
        raise ConfigError(f"num_cameras must be a non-negative integer, got {num_cameras!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    num_cameras = min(int(num_cameras), MAX_CAMERAS[name])
    return _BUILDERS[name](int(seed), int(width), int(height), num_cameras)
