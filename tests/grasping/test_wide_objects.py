"""Objects wider than the gripper opens: a mug (10 cm across, 4 mm wall, a handle) is taken by its
rim/wall or its handle, never across its diameter; a solid 10 cm cube cannot be taken at all; a
6 cm box still is, across its width.  The mug's points come with the cameras that saw them, which
turn the normals of its inner wall inwards (the centroid rule turns them outwards, and the wall
cannot be pinched).  Then MuJoCo: a hollow mug built from primitives, seen by depth cameras, is
lifted by the best grasp with the Franka-like gripper and with the Robotiq 2F-85 preset."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "osmesa")

from mujoco_gripper import depth_points, execute, gripper_xml, look_at_xyaxes  # noqa: E402

from ros_gs.errors import ConfigError  # noqa: E402
from ros_gs.grasping import AntipodalConfig, ParallelGripper  # noqa: E402
from ros_gs.grasping.antipodal import outward_normals, sample_grasps, suppress  # noqa: E402
from ros_gs.grasping.gripper import GRIPPER_PRESETS  # noqa: E402

# the mug (m): outer radius, wall, height, bottom thickness; a handle loop of 1 cm bar in the
# +x half of the xz plane, from the wall out to x = R + 35 mm, between z = 15 and 75 mm
R, WALL, H, FLOOR = 0.05, 0.004, 0.09, 0.006
BAR, HANDLE_OUT, HANDLE_LO, HANDLE_HI = 0.01, R + 0.035, 0.015, 0.075
HANDLE_BOXES = [  # (lo, hi): top arm, bottom arm, outer vertical bar
    (np.array([R - 0.002, -BAR / 2, HANDLE_HI - BAR]), np.array([HANDLE_OUT, BAR / 2, HANDLE_HI])),
    (np.array([R - 0.002, -BAR / 2, HANDLE_LO]), np.array([HANDLE_OUT, BAR / 2, HANDLE_LO + BAR])),
    (np.array([HANDLE_OUT - BAR, -BAR / 2, HANDLE_LO]), np.array([HANDLE_OUT, BAR / 2, HANDLE_HI])),
]


def cameras(target: np.ndarray, n: int = 4, elevation_deg: float = 50.0, dist: float = 0.6) -> np.ndarray:
    """``n`` camera centres around ``target``, above it ("above-ish": 50 degrees up), the first at 45 degrees azimuth."""
    az = np.radians(45.0 + 360.0 * np.arange(n) / n)
    e = math.radians(elevation_deg)
    return target + dist * np.stack([math.cos(e) * np.cos(az), math.cos(e) * np.sin(az), np.full(n, math.sin(e))], axis=1)


# -- analytic geometry -----------------------------------------------------------------------------------
def box_sdf(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    q = np.abs(p - (lo + hi) / 2) - (hi - lo) / 2
    return np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(axis=-1), 0.0)


def mug_sdf(p: np.ndarray) -> np.ndarray:
    """Signed distance (m) to the mug: wall shell, bottom and handle (min of the parts' distances)."""
    rz = np.stack([np.hypot(p[:, 0], p[:, 1]), p[:, 2], np.zeros(len(p))], axis=1)  # the wall and bottom are 2-D in (r, z)
    d = np.minimum(box_sdf(rz, np.array([R - WALL, 0, -1]), np.array([R, H, 1])),
                   box_sdf(rz, np.array([-R, 0, -1]), np.array([R, FLOOR, 1])))
    for lo, hi in HANDLE_BOXES:
        d = np.minimum(d, box_sdf(p, lo, hi))
    return d


def near_wall_or_handle(p: np.ndarray, within: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(near the wall or rim, near the handle): within ``within`` of either part."""
    rz = np.stack([np.hypot(p[:, 0], p[:, 1]), p[:, 2], np.zeros(len(p))], axis=1)
    wall = box_sdf(rz, np.array([R - WALL, FLOOR, -1]), np.array([R, H, 1])) < within
    handle = np.min([box_sdf(p, lo, hi) for lo, hi in HANDLE_BOXES], axis=0) < within
    return wall, handle


def _grid(a0: float, a1: float, b0: float, b1: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.meshgrid(np.arange(a0 + step / 2, a1, step), np.arange(b0 + step / 2, b1, step), indexing="ij")
    return a.ravel(), b.ravel()


def box_surface(lo: np.ndarray, hi: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Points and outward normals on a box's six faces, ``step`` apart."""
    pts, nrm = [], []
    for ax in range(3):
        o = [a for a in range(3) if a != ax]
        u, v = _grid(lo[o[0]], hi[o[0]], lo[o[1]], hi[o[1]], step)
        for side, val in ((-1.0, lo[ax]), (1.0, hi[ax])):
            p = np.zeros((len(u), 3))
            p[:, o[0]], p[:, o[1]], p[:, ax] = u, v, val
            n = np.zeros_like(p)
            n[:, ax] = side
            pts.append(p)
            nrm.append(n)
    return np.concatenate(pts), np.concatenate(nrm)


def mug_surface(step: float = 0.003) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points on the mug's surface, their outward normals and part: 0 outer wall, 1 inner wall,
    2 rim, 3 inner bottom, 4 handle."""
    pts, nrm, part = [], [], []

    def add(p, n, k):
        pts.append(p)
        nrm.append(n)
        part.append(np.full(len(p), k))

    for r, sign, k, z0 in ((R, 1.0, 0, 0.0), (R - WALL, -1.0, 1, FLOOR)):
        th, z = (a.ravel() for a in np.meshgrid(np.arange(0.0, 2 * math.pi, step / r), np.arange(z0 + step / 2, H, step), indexing="ij"))
        radial = np.stack([np.cos(th), np.sin(th), np.zeros_like(th)], axis=1)
        add(r * radial + np.outer(z, [0, 0, 1.0]), sign * radial, k)
    for rr in np.arange(R - WALL + step / 4, R, step / 2):
        th = np.arange(0.0, 2 * math.pi, step / rr)
        add(np.stack([rr * np.cos(th), rr * np.sin(th), np.full_like(th, H)], axis=1), np.tile([0, 0, 1.0], (len(th), 1)), 2)
    x, y = _grid(-R, R, -R, R, step)
    inside = np.hypot(x, y) < R - WALL
    add(np.stack([x[inside], y[inside], np.full(inside.sum(), FLOOR)], axis=1), np.tile([0, 0, 1.0], (inside.sum(), 1)), 3)
    for lo, hi in HANDLE_BOXES:
        p, n = box_surface(lo, hi, step)
        keep = np.hypot(p[:, 0], p[:, 1]) > R + 1e-6  # not inside the wall
        for lo2, hi2 in HANDLE_BOXES:  # nor inside another part of the handle
            keep &= ~np.all((p > lo2 + 1e-6) & (p < hi2 - 1e-6), axis=1)
        add(p[keep], n[keep], 4)
    P, N, K = np.concatenate(pts), np.concatenate(nrm), np.concatenate(part)
    hidden = (K == 0) & np.any([np.all((P > lo - 1e-4) & (P < hi + 1e-4), axis=1) for lo, hi in HANDLE_BOXES], axis=0)
    return P[~hidden], N[~hidden], K[~hidden]


def seen(P: np.ndarray, N: np.ndarray, cams: np.ndarray, inner: np.ndarray | None = None):
    """The points some camera sees (its face turned to it; a point inside the mug only through
    the mug's opening), each with the camera that sees it most squarely: (index, viewpoints)."""
    best, best_cos = np.full(len(P), -1), np.zeros(len(P))
    for k, c in enumerate(cams):
        d = c - P
        cos = np.einsum("ni,ni->n", N, d) / np.linalg.norm(d, axis=1)
        vis = cos > 0.05
        if inner is not None:
            at_rim = P + ((H - P[:, 2]) / d[:, 2])[:, None] * d
            vis &= ~inner | (np.hypot(at_rim[:, 0], at_rim[:, 1]) < R - WALL)
        better = vis & (cos > best_cos)
        best[better], best_cos[better] = k, cos[better]
    idx = np.flatnonzero(best >= 0)
    return idx, cams[best[idx]]


@pytest.fixture(scope="module")
def mug():
    """The mug's points seen by four cameras above it (outer wall, rim, inner wall and bottom,
    handle), with the camera of each, and the parts the points lie on."""
    P, N, K = mug_surface()
    idx, views = seen(P, N, cameras(np.array([0.0, 0.0, H / 2])), inner=(K == 1) | (K == 3))
    return P[idx], views, N[idx], K[idx]


def gripper_samples(gripper: ParallelGripper, g, step: float = 0.003) -> np.ndarray:
    """Points filling the gripper's boxes (world frame)."""
    pts = []
    for lo, hi in gripper.boxes(g.opening):
        axes = [np.linspace(a, b, max(2, int(math.ceil((b - a) / step)) + 1)) for a, b in zip(lo, hi)]
        pts.append(np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3))
    return np.concatenate(pts) @ g.pose[:3, :3].T + g.pose[:3, 3]


def widths(grasps) -> np.ndarray:
    return np.array([np.linalg.norm(g.contacts[1] - g.contacts[0]) for g in grasps])


# -- presets ---------------------------------------------------------------------------------------------
def test_gripper_presets() -> None:
    assert set(GRIPPER_PRESETS) == {"franka", "robotiq_2f85"}
    franka = ParallelGripper.preset("franka")
    assert franka == ParallelGripper() and franka.preset == "franka" and franka.max_opening == 0.08
    r = ParallelGripper.preset("robotiq_2f85")
    assert r == ParallelGripper(preset="robotiq_2f85") == ParallelGripper.model_validate({"preset": "robotiq_2f85"})
    assert (r.max_opening, r.finger_width) == (0.085, 0.022) and 0.035 <= r.finger_length <= 0.04
    assert 0.01 <= r.finger_thickness <= 0.012
    for name, g in GRIPPER_PRESETS.items():  # the table is built unvalidated: it must validate
        assert ParallelGripper.model_validate(g.model_dump()) == g == ParallelGripper.preset(name)
    wide = ParallelGripper(preset="robotiq_2f85", max_opening=0.1, finger_length=None)  # explicit numbers override, None keeps
    assert (wide.preset, wide.max_opening, wide.finger_length) == ("robotiq_2f85", 0.1, r.finger_length)
    assert ParallelGripper.preset("robotiq_2f85") is not ParallelGripper.preset("robotiq_2f85")  # fresh copies
    with pytest.raises(ConfigError, match="unknown gripper preset 'ur_hand'; known: franka, robotiq_2f85"):
        ParallelGripper.preset("ur_hand")
    with pytest.raises(ValueError, match="known: franka, robotiq_2f85"):  # pydantic's ValidationError
        ParallelGripper(preset="ur_hand")
    with pytest.raises(ValueError, match="greater than 0"):
        ParallelGripper(preset="robotiq_2f85", max_opening=-0.01)


def test_a_parameter_file_names_a_preset(tmp_path) -> None:
    from ros_gs.nodes.grasp_planner import GraspPlannerParams
    from ros_gs.runtime.params import load_params

    path = tmp_path / "p.yaml"
    path.write_text("grasp_planner:\n  ros__parameters:\n    planner:\n      gripper: {preset: robotiq_2f85}\n")
    assert load_params(GraspPlannerParams, "grasp_planner", [path]).planner.gripper == ParallelGripper.preset("robotiq_2f85")
    flat = {"planner.gripper.preset": "robotiq_2f85", "planner.gripper.finger_length": 0.05}  # flat ROS names, one override
    g = load_params(GraspPlannerParams, "grasp_planner", overrides=flat).planner.gripper
    assert (g.max_opening, g.finger_length) == (0.085, 0.05)
    assert load_params(GraspPlannerParams, "grasp_planner").planner.gripper == ParallelGripper()
    with pytest.raises(ConfigError, match="planner.gripper.*unknown gripper preset 'nope'; known: franka, robotiq_2f85"):
        load_params(GraspPlannerParams, "grasp_planner", overrides={"planner.gripper.preset": "nope"})


# -- normals ---------------------------------------------------------------------------------------------
def test_viewpoints_turn_both_walls_of_a_hollow_object_outward(mug) -> None:
    P, views, N, K = mug
    by_view, by_centroid = outward_normals(P, viewpoints=views), outward_normals(P)
    for part in (0, 1, 3):  # outer wall, inner wall, inner bottom: the true normals
        assert np.mean(np.einsum("ni,ni->n", by_view[K == part], N[K == part]) > 0.8) > 0.85, part
    assert np.mean(np.einsum("ni,ni->n", by_centroid[K == 1], N[K == 1]) < 0) > 0.95  # the centroid rule: inner wall reversed
    # one camera for all: open3d's orient_normals_towards_camera_location
    o3d = pytest.importorskip("open3d")
    cam = np.array([0.3, -0.2, 0.5])
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(P))
    pc.normals = o3d.utility.Vector3dVector(by_centroid)
    pc.orient_normals_towards_camera_location(cam)
    assert np.allclose(outward_normals(P, viewpoints=cam), np.asarray(pc.normals))
    for bad in (np.zeros((5, 3)), np.zeros(2), np.full(3, np.nan)):
        with pytest.raises(ConfigError, match="viewpoints"):
            outward_normals(P, viewpoints=bad)


# -- sampling --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["franka", "robotiq_2f85"])
def test_a_mug_wider_than_the_opening_is_grasped_by_its_wall_or_handle(mug, preset: str) -> None:
    P, views, _, _ = mug
    gripper = ParallelGripper.preset(preset)
    grasps = sample_grasps(P, outward_normals(P, viewpoints=views), P, gripper, AntipodalConfig(), support_height=0.0)
    assert len(suppress(grasps)) >= 10
    w = widths(grasps)
    for g, width in zip(grasps, w):
        assert width + 2 * gripper.clearance <= g.opening + 1e-9 and g.opening <= gripper.max_opening
        assert np.abs(mug_sdf(g.contacts)).max() < 2e-3  # on the mug's surface
        wall, handle = near_wall_or_handle(g.contacts)
        assert (wall | handle).all()  # within 1 cm of the rim/wall or the handle
        mid = g.contacts.mean(axis=0)
        assert math.hypot(mid[0], mid[1]) > R - WALL - 2e-3  # never closing across the mug's inside
        fill = gripper_samples(gripper, g)
        assert mug_sdf(fill).min() > 0.0 and fill[:, 2].min() > 0.0  # the gripper clear of the mug and above the floor
    assert w.max() < 2 * (R - WALL)  # no grasp spans the diameter
    wall, handle = near_wall_or_handle(np.concatenate([g.contacts for g in grasps]))
    on_wall = (wall & ~handle).reshape(-1, 2).all(axis=1) & (w < 2 * WALL)
    on_handle = handle.reshape(-1, 2).all(axis=1) & ~wall.reshape(-1, 2).any(axis=1)
    assert on_wall.sum() >= 10 and on_handle.sum() >= 3, (on_wall.sum(), on_handle.sum())  # both kinds
    # the centroid rule turns the inner wall's normals outward: only the handle can be taken then
    centroid = sample_grasps(P, outward_normals(P), P, gripper, AntipodalConfig(), support_height=0.0)
    assert centroid and near_wall_or_handle(np.concatenate([g.contacts for g in centroid]))[1].all()


def test_a_solid_cube_wider_than_the_opening_has_no_grasp_and_a_6cm_box_keeps_its_grasps() -> None:
    for preset in ("franka", "robotiq_2f85"):
        gripper = ParallelGripper.preset(preset)
        cube = (np.array([-0.05, -0.05, 0.0]), np.array([0.05, 0.05, 0.1]))
        P, N = box_surface(*cube, 0.003)
        idx, views = seen(P, N, cameras(np.array([0.0, 0.0, 0.05])))
        for normals in (outward_normals(P[idx], viewpoints=views), outward_normals(P[idx])):
            assert sample_grasps(P[idx], normals, P[idx], gripper, AntipodalConfig(), support_height=0.0) == [], preset
    box = (np.array([-0.03, -0.03, 0.0]), np.array([0.03, 0.03, 0.1]))  # 6 cm across, 10 cm tall
    P, N = box_surface(*box, 0.003)
    idx, views = seen(P, N, cameras(np.array([0.0, 0.0, 0.05])))
    gripper = ParallelGripper()
    for normals in (outward_normals(P[idx], viewpoints=views), outward_normals(P[idx])):
        grasps = sample_grasps(P[idx], normals, P[idx], gripper, AntipodalConfig(), support_height=0.0)
        assert len(suppress(grasps)) >= 5
        w = widths(grasps)
        assert np.all(np.abs(w - 0.06) < 0.004)  # across its width, face to face
        for g in grasps:
            assert np.abs(box_sdf(g.contacts, *box)).max() < 1e-3
            x = g.pose[:3, 0]
            assert max(abs(x[0]), abs(x[1])) > math.cos(math.radians(25))  # across two opposite side faces (friction cone + 5 deg)


# -- MuJoCo ----------------------------------------------------------------------------------------------
def mug_mjcf(segments: int = 20) -> str:
    """A hollow mug from primitives (a bottom cylinder, ``segments`` wall boxes, a handle of three
    boxes), 0.3 kg, on a floor, and four depth cameras above it."""
    half_w = R * math.tan(math.pi / segments)  # the boxes' outer faces meet: a polygon round the outer circle
    geoms = [f'<geom type="cylinder" size="{R} {FLOOR / 2}" pos="0 0 {FLOOR / 2}"/>']
    for k in range(segments):
        th = 2 * math.pi * k / segments
        c = (R - WALL / 2) * np.array([math.cos(th), math.sin(th)])
        geoms.append(f'<geom type="box" size="{WALL / 2} {half_w:.5f} {H / 2}" pos="{c[0]:.5f} {c[1]:.5f} {H / 2}" '
                     f'euler="0 0 {th:.6f}"/>')
    for lo, hi in HANDLE_BOXES:
        size, pos = (hi - lo) / 2, (hi + lo) / 2
        geoms.append(f'<geom type="box" size="{size[0]:.5f} {size[1]:.5f} {size[2]:.5f}" pos="{pos[0]:.5f} {pos[1]:.5f} {pos[2]:.5f}"/>')
    target = np.array([0.0, 0.0, H / 2])
    cams = "\n".join(f'    <camera name="cam{k}" mode="fixed" pos="{c[0]:.5f} {c[1]:.5f} {c[2]:.5f}" '
                     f'xyaxes="{look_at_xyaxes(c, target)}" fovy="45"/>' for k, c in enumerate(cameras(target, dist=0.5)))
    body = "\n".join("      " + g.replace("<geom ", '<geom rgba="0.2 0.4 0.8 1" ') for g in geoms)
    return f"""<mujoco model="mug">
  <compiler angle="radian"/>
  <option timestep="0.002"/>
  <worldbody>
    <light pos="0 0 2" dir="0 0 -1"/>
    <geom name="floor" type="plane" size="1 1 0.01" rgba="0.8 0.8 0.8 1"/>
{cams}
    <body name="mug" pos="0 0 0">
      <freejoint name="mug_joint"/>
      <inertial pos="0.006 0 0.04" mass="0.3" diaginertia="6e-4 6.5e-4 7e-4"/>
{body}
    </body>
  </worldbody>
</mujoco>
"""


@pytest.fixture(scope="module")
def mujoco_mug():
    xml = mug_mjcf()
    points, views = depth_points(xml, [f"cam{k}" for k in range(4)], "mug")
    keys = np.floor(points / 0.003).astype(np.int64)  # one point per 3 mm voxel, as the planner thins
    _, first = np.unique(keys, axis=0, return_index=True)
    first = np.sort(first)
    return xml, points[first], views[first]


def test_mujoco_depth_points_lie_on_the_mug(mujoco_mug) -> None:
    _, points, views = mujoco_mug
    assert len(points) > 2000
    # the primitives' polygon lies within ~1 mm of the round mug (sagitta of a 20-gon: 0.6 mm)
    assert np.percentile(np.abs(mug_sdf(points)), 99) < 2e-3
    wall, handle = near_wall_or_handle(points, within=0.002)
    inner = wall & (np.hypot(points[:, 0], points[:, 1]) < R - WALL / 2) & (points[:, 2] < H - 0.002)
    assert inner.sum() > 200 and handle.sum() > 100  # the cameras see into the mug and the handle
    assert np.allclose(np.linalg.norm(views - points, axis=1).max(), 0.6, atol=0.1)


@pytest.mark.parametrize("preset", ["franka", "robotiq_2f85"])
def test_mujoco_lifts_the_mug_by_its_wall_or_handle(mujoco_mug, preset: str) -> None:
    """The gripper of the preset's dimensions (fingers sliding 0 .. max_opening/2) plans on the
    depth points and MuJoCo executes the best three grasps: approach, close squeezing (a 4 mm wall
    gets no grip from a servo closing to 0), lift 15 cm.  The best grasp moved 8 cm back along
    its approach lifts nothing (the check can fail)."""
    import mujoco

    xml, points, views = mujoco_mug
    gripper = ParallelGripper.preset(preset)
    body, act = gripper_xml(gripper)
    m = mujoco.MjModel.from_xml_string(xml.replace("</worldbody>", body + "  </worldbody>").replace("</mujoco>", act + "</mujoco>"))
    for name in ("act_l", "act_r"):
        assert np.allclose(m.actuator(name).ctrlrange, [-gripper.max_opening / 2, gripper.max_opening / 2])
    for name in ("slide_l", "slide_r"):
        assert np.allclose(m.joint(name).range, [0.0, gripper.max_opening / 2])
    grasps = suppress(sample_grasps(points, outward_normals(points, viewpoints=views), points, gripper, AntipodalConfig(),
                                    support_height=0.0))
    assert len(grasps) >= 5
    for g in grasps[:3]:
        assert np.linalg.norm(g.contacts[1] - g.contacts[0]) < 0.045  # rim/wall or handle, not the diameter
        assert execute(xml, g, gripper, "mug", squeeze=0.03) > 0.10, (preset, g.pose, g.contacts)
    off = grasps[0]
    moved = type(off)(off.pose.copy(), off.opening, off.score, off.contacts)
    moved.pose[:3, 3] -= 0.08 * off.pose[:3, 2]  # 8 cm back along the approach: closing above the mug
    assert execute(xml, moved, gripper, "mug", squeeze=0.03) < 0.02
