"""sim.scenes and sim.geometry: the scene library compiles, is labelled, rejects bad arguments;
the analytic primitives are right."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from ros_gs.errors import ConfigError
from ros_gs.sim import geometry as G
from ros_gs.sim.scenes import SCENES, TABLE_TOP_Z, build_scene


@pytest.mark.parametrize("name", SCENES)
def test_scene_compiles_and_names_resolve(name):
    spec = build_scene(name, width=64, height=48)
    m = mujoco.MjModel.from_xml_string(spec.xml)
    assert m.opt.timestep <= 0.002
    assert spec.name == name and spec.world_frame == "world"
    labels = [o.label for o in spec.objects]
    assert len(set(labels)) == len(labels) and len({o.name for o in spec.objects}) == len(labels)
    for o in spec.objects:
        assert o.shape in ("box", "sphere", "cylinder", "capsule", "ellipsoid", "mug")
        g = m.geom(o.geom)
        assert g.bodyid[0] == m.body(o.body).id
        size = G.mug_parts(*o.size)[0][1] if o.shape == "mug" else o.size  # a mug's first part: its floor
        assert np.allclose(m.geom_size[g.id][: len(size)], size)
        assert np.allclose(m.geom_rgba[g.id], o.rgba)
        assert math.isclose(m.body_mass[m.body(o.body).id], o.mass, rel_tol=1e-6)
        assert math.isclose(m.geom_friction[g.id][0], o.friction)
    for c in spec.cameras:
        assert m.camera(c.name).id >= 0 and (c.width, c.height) == (64, 48)
    if name == "walkthrough":
        assert spec.lidar is not None and spec.imu_site == "imu" and spec.rig_body == "rig"
        assert all(c.mounted_on == "rig" for c in spec.cameras) and spec.lidar.mounted_on == "rig"
        assert 16 <= spec.lidar.channels <= 32 and 360 <= spec.lidar.horizontal <= 1024
    elif name == "orbit":
        assert spec.lidar is None and spec.imu_site == "imu" and spec.rig_body == "rig" and spec.table_top_z == TABLE_TOP_Z
        assert [c.mounted_on for c in spec.cameras] == ["rig"] and "pusher" in spec.mocap
    else:
        assert spec.lidar is None and spec.rig_body is None and spec.table_top_z == TABLE_TOP_Z
        assert all(c.mounted_on is None for c in spec.cameras)


def test_scene_contents():
    assert 5 <= len(build_scene("tabletop").objects) <= 8
    assert {o.shape for o in build_scene("tabletop").objects} == {"box", "mug", "capsule", "sphere", "ellipsoid"}
    assert [o.shape for o in build_scene("push").objects] == ["box", "cylinder"]
    assert "pusher" in build_scene("push").mocap
    assert len(build_scene("drop").objects) >= 4
    assert build_scene("drop", seed=0).xml != build_scene("drop", seed=1).xml
    assert build_scene("tabletop", seed=1).xml == build_scene("tabletop", seed=1).xml
    assert [o.name for o in build_scene("orbit").objects] == [o.name for o in build_scene("tabletop").objects]
    assert build_scene("orbit", seed=0).xml != build_scene("orbit", seed=1).xml


def test_camera_count_and_resolution():
    assert len(build_scene("tabletop", num_cameras=2).cameras) == 2
    assert len(build_scene("tabletop", num_cameras=0).cameras) == 0
    assert len(build_scene("tabletop", num_cameras=7).cameras) == 3  # capped at what the scene has
    assert len(build_scene("walkthrough", num_cameras=3).cameras) == 2
    assert len(build_scene("orbit", num_cameras=3).cameras) == 1
    assert build_scene("push", width=100, height=50).cameras[0].width == 100


@pytest.mark.parametrize(
    "kwargs",
    [dict(name="kitchen"), dict(name="tabletop", width=0), dict(name="tabletop", height=10**5),
     dict(name="tabletop", width=12.5), dict(name="drop", seed=-1), dict(name="push", num_cameras=-1)],
)
def test_bad_arguments_raise_config_error(kwargs):
    name = kwargs.pop("name")
    with pytest.raises(ConfigError):
        build_scene(name, **kwargs)


def test_sdf_primitives():
    I = np.eye(4)
    pts = np.array([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.0, 0.0, 0.5], [0.2, 0.2, 0.2]])
    assert np.allclose(G.sdf("sphere", (0.1,), I, pts), [-0.1, 0.2, 0.4, math.sqrt(0.12) - 0.1])
    assert np.allclose(G.sdf("box", (0.1, 0.2, 0.3), I, pts), [-0.1, 0.2, 0.2, math.sqrt(0.1**2)])
    assert np.allclose(G.sdf("cylinder", (0.1, 0.3), I, pts), [-0.1, 0.2, 0.2, math.sqrt(0.08) - 0.1])
    assert np.allclose(G.sdf("capsule", (0.1, 0.3), I, pts), [-0.1, 0.2, 0.1, math.sqrt(0.08) - 0.1])
    assert np.allclose(G.sdf("plane", (1, 1, 1), I, pts), pts[:, 2])
    # ellipsoid: exact on the surface, close near it
    a = np.array([0.3, 0.2, 0.1])
    rng = np.random.default_rng(0)
    n = rng.normal(size=(500, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    surf = n * a
    assert np.abs(G.sdf("ellipsoid", a, I, surf)).max() < 1e-12
    normal = surf / a**2
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    assert np.allclose(G.sdf("ellipsoid", a, I, surf + 0.05 * normal), 0.05, atol=1e-9)
    assert np.allclose(G.sdf("ellipsoid", a, I, surf - 0.0005 * normal), -0.0005, atol=2e-5)
    # mug (r 4 cm, 10 cm tall, 5 mm wall, 8 mm floor, handle on +x): hollow, so its middle is outside
    mug = [[0.0, 0.0, 0.0], [0.0, 0.0, -0.05 + 0.004], [0.0375, 0.0, 0.0], [0.0, 0.0425, 0.0], [0.065, 0.0, 0.0],
           [0.05, 0.0, 0.0], [0.0, 0.0, 0.06]]
    assert np.allclose(G.sdf("mug", (0.04, 0.05), I, mug), [0.035, -0.004, -0.0025, 0.0025, -0.005, 0.01, math.hypot(0.035, 0.01)], atol=1e-3)
    # posed: a box turned 90 deg about z and moved
    T = G.pose(G.so3_exp([0, 0, math.pi / 2]), (1.0, 2.0, 3.0))
    assert np.isclose(G.sdf("box", (0.1, 0.2, 0.3), T, [[1.0 + 0.25, 2.0, 3.0]])[0], 0.05)


def test_lowest_point_and_rotations():
    R = G.so3_exp([0.3, -0.7, 1.1])
    T = G.pose(R, (0.1, 0.2, 1.0))
    rng = np.random.default_rng(1)
    for shape, size in (("box", (0.1, 0.2, 0.05)), ("sphere", (0.07,)), ("cylinder", (0.04, 0.1)),
                        ("capsule", (0.03, 0.1)), ("ellipsoid", (0.1, 0.06, 0.04)), ("mug", (0.04, 0.05))):
        low = G.lowest_z(shape, size, T)
        # no point of the solid is below it, and some are just above it
        p = rng.uniform(-0.25, 0.25, size=(200000, 3)) + T[:3, 3]
        inside = p[G.sdf(shape, size, T, p) <= 0]
        assert inside[:, 2].min() >= low - 1e-9 and inside[:, 2].min() < low + 0.01
    for _ in range(20):
        v = rng.normal(size=3)
        R = G.so3_exp(v)
        assert np.allclose(G.quat_to_matrix(G.matrix_to_quat(R)), R)
        assert np.allclose(G.so3_exp(G.so3_log(R)), R)
    assert np.allclose(G.so3_log(G.so3_exp([math.pi - 1e-6, 0, 0])), [math.pi - 1e-6, 0, 0], atol=1e-5)
    T0, T1 = G.pose(np.eye(3), (0, 0, 0)), G.pose(G.so3_exp([0, 0, 1.0]), (1, 2, 3))
    Tm = G.interpolate_pose(T0, T1, 0.25)
    assert np.allclose(Tm[:3, 3], (0.25, 0.5, 0.75)) and np.allclose(G.so3_log(Tm[:3, :3]), (0, 0, 0.25))
    assert np.allclose(G.invert(T1) @ T1, np.eye(4))


def test_sim_imports_only_numpy_scipy_mujoco_and_errors():
    """ros_gs.sim is a tool beside the core: no ROS, no rosbags, no other ros_gs module."""
    import ast
    from pathlib import Path

    import ros_gs.sim

    allowed_roots = {"numpy", "scipy", "mujoco", "__future__", "argparse", "dataclasses", "heapq", "json", "math",
                     "os", "time", "typing"}
    for path in Path(ros_gs.sim.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for name in names:
                ok = name.split(".")[0] in allowed_roots or name == "ros_gs.errors" or name.startswith("ros_gs.sim")
                assert ok, f"{path.name} imports {name}"
