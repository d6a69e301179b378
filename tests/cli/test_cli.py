"""The installed ``ros-gs`` command: bad input ends in one ``error:`` line, never a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ros_gs.bags.writer import BagWriter

ROS_GS = shutil.which("ros-gs") or str(Path(sys.executable).with_name("ros-gs"))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ROS_GS, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["bag", "info", "/no/such/bag"], "does not exist"),
        (["bag", "from-rgbd", "/no/such/folder", "OUT"], "not a folder"),
        (["replay", "/no/such/bag", "--node", "image_stats"], "does not exist"),
        (["replay", "BAG", "--node", "no_such_node"], "unknown node"),
        (["replay", "BAG", "--node", "image_stats", "--set", "image_stats.heartbeat_period_s=-1"], "heartbeat_period_s"),
        (["replay", "BAG", "--node", "mapper", "--set", "image_stats.heartbeat_period_s=2"], "does not run"),
        (["replay", "BAG"], "no RGB-D"),  # no --node: chosen from the topics, and this bag has no sensors
        # no hang, no quiet clamp, no empty look-alike output
        (["replay", "BAG", "--node", "image_stats", "--set", "image_stats.heartbeat_period_s=1e-9"], "heartbeat_period_s"),
        (["replay", "BAG", "--node", "image_stats", "--rate", "1e-9"], "rate"),
        (["replay", "BAG", "--node", "image_stats", "--duration", "inf"], "duration"),
        (["bag", "from-mujoco", "tabletop", "OUT", "--cameras", "99"], "cameras"),
        (["bag", "from-mujoco", "walkthrough", "OUT", "--cameras", "3"], "cameras"),
        (["bag", "from-mujoco", "push", "OUT", "--duration", "inf"], "duration"),
        (["bag", "from-rgbd", "KITCHEN", "OUT", "--max-frames", "-1"], "max_frames"),
        (["bag", "from-rgbd", "KITCHEN", "OUT", "--first-frame", "100000"], "past the folder's last frame"),
        (["replay", "BAG", "--launch", "OUT.launch.yaml"], "No such file"),
        (["replay", "BAG", "--launch", "LAUNCH", "--arg", "nope:=1"], "are not declared"),
        (["replay", "BAG", "--launch", "LAUNCH", "--arg", "lidar:=maybe"], "neither true/1 nor false/0"),
        (["replay", "BAG", "--launch", "LAUNCH", "--arg", "mapper:=false"], "no node is launched"),
        (["replay", "BAG", "--launch", "LAUNCH", "--node", "mapper"], "give one"),
        (["replay", "BAG", "--arg", "lidar:=true"], "needs --launch"),
        (["bag", "from-mujoco", "orbit", "OUT", "--cameras", "2"], "cameras"),
        (["render", "BAG", "OUT.notanimage"], "unknown image type"),
        (["render", "BAG", "OUT.png", "--size", "1", "67000000"], "8192x8192"),
    ],
)
def test_bad_input_is_one_error_line(args: list[str], needle: str, tmp_path: Path) -> None:
    bag = tmp_path / "in.mcap"
    with BagWriter(bag) as writer:
        writer.write("/chatter", "std_msgs/msg/String", writer.factory("std_msgs/msg/String", data="hi"), 10**18)
    kitchen = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "7scenes_kitchen"
    if "KITCHEN" in args and not kitchen.is_dir():
        pytest.skip(f"{kitchen} not found")
    launch = str(Path(__file__).resolve().parents[2] / "launch" / "ros_gs.launch.yaml")
    args = [launch if a == "LAUNCH" else str(bag) if a == "BAG" else str(tmp_path / a) if a.startswith("OUT") else str(kitchen) if a == "KITCHEN" else a for a in args]
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    assert not list(tmp_path.glob("OUT*"))  # nothing written that could pass for a result
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error:") and needle in proc.stderr


def test_junk_pcap_is_one_error_line(tmp_path: Path, ouster_dir: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a pcap at all" * 10)
    proc = run("bag", "from-ouster", str(junk), str(ouster_dir / "OS-1-128_v2.3.0_1024x10.json"), str(tmp_path / "o.mcap"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "pcap" in proc.stderr.lower()


def test_nodes_lists_every_node() -> None:
    from ros_gs.nodes import NODES

    proc = run("nodes")
    listed = [line.split()[0] for line in proc.stdout.splitlines()]
    assert proc.returncode == 0 and listed == sorted(NODES) and "image_stats" in listed


@pytest.mark.parametrize("args", [["bag"], ["--bogus"], ["bag", "info"], ["replay"]])
def test_usage_errors_print_usage_not_tracebacks(args: list[str]) -> None:
    proc = run(*args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    assert "Usage" in proc.stderr + proc.stdout


def test_bad_set_value_is_one_error_line(tmp_path: Path) -> None:
    proc = run("replay", str(tmp_path), "--set", "image_stats.image_topic=[1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "--set" in proc.stderr


@pytest.mark.parametrize("node", ["mapper", "lidar_odometry", "physics_tracker", "grasp_planner", "image_stats"])
def test_shipped_parameter_files_are_current(node: str) -> None:
    """config/<node>.yaml is what `ros-gs nodes --params <node>` generates: defaults and their
    descriptions cannot drift from the code."""
    proc = run("nodes", "--params", node)
    assert proc.returncode == 0, proc.stderr
    shipped = Path(__file__).resolve().parents[2] / "config" / f"{node}.yaml"
    assert proc.stdout == shipped.read_text(), f"regenerate with: ros-gs nodes --params {node} > config/{node}.yaml"
