"""The arrows that must never exist (../shared/ARCHITECTURE.md), checked on the import statements."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "ros_gs"
CORE = ("sensors", "datasets", "gaussians", "render", "mapping", "physics", "semantics", "objects", "grasping")
FORBIDDEN = {
    # the core is testable with arrays alone: no ROS, no runtime, no nodes, no bag library, no simulator
    **{layer: {"ros_gs.runtime", "ros_gs.nodes", "ros_gs.bags", "ros_gs.cli", "ros_gs.sim", "mujoco", "rclpy", "rosbags"} for layer in CORE},
    # conversions know messages and arrays, nothing of the core
    "sensors": {"ros_gs.runtime", "ros_gs.nodes", "ros_gs.bags", "ros_gs.cli", "ros_gs.sim", "rclpy", "rosbags",
                "ros_gs.mapping", "ros_gs.render", "ros_gs.physics", "ros_gs.gaussians", "ros_gs.semantics"},
    # rendering is a leaf everyone uses
    "render": {"ros_gs.runtime", "ros_gs.nodes", "ros_gs.bags", "ros_gs.cli", "ros_gs.sim", "rclpy", "rosbags",
               "ros_gs.mapping", "ros_gs.physics", "ros_gs.semantics"},
    # nodes and the runtimes run on real robots: the simulator only records bags and judges them
    "nodes": {"ros_gs.sim", "mujoco"},
    "runtime": {"ros_gs.sim", "mujoco"},
    # MuJoCo is the judge, not a part
    "sim": {"ros_gs.runtime", "ros_gs.nodes", "ros_gs.bags", "ros_gs.cli", "rclpy", "rosbags", "ros_gs.mapping",
            "ros_gs.render", "ros_gs.physics", "ros_gs.gaussians", "ros_gs.semantics", "ros_gs.sensors"},
}


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_forbidden_imports(layer: str) -> None:
    files = sorted((PKG / layer).rglob("*.py"))
    assert files or layer == "physics", f"ros_gs/{layer} is empty"
    bad = [
        f"{f.relative_to(PKG.parent)} imports {name}"
        for f in files
        for name in sorted(imports(f))
        if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN[layer])
    ]
    assert not bad, "\n".join(bad)


def test_the_check_sees_a_forbidden_arrow(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from ros_gs.runtime.replay import ReplayRuntime\nimport rclpy\n")
    assert {"ros_gs.runtime.replay", "rclpy"} <= imports(probe)
