"""ROS 2 YAML launch files read without ROS (ros_gs.runtime.launch), and replayed.

The expected meanings are ROS 2's (launch / launch_yaml / launch_ros, docs.ros.org "Using XML,
YAML, and Python for ROS 2 Launch Files"): conditions take true/1 and false/0 in any case; a
scoped group keeps its lets and namespace to itself; an absolute namespace replaces the pushed
one; parameters apply in the order listed; remap rules are names resolved like the node's own.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from ros_gs.bags.reader import BagReader
from ros_gs.bags.writer import BagWriter
from ros_gs.runtime.launch import LaunchError, join_namespace, load_launch, parse_arguments
from ros_gs.runtime.node_api import NodeContext
from ros_gs.runtime.params import NodeParams, load_params
from ros_gs.runtime.replay import ReplayRuntime

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000_000_000_000


def write(tmp_path: Path, entities: list, name: str = "t.launch.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"launch": entities}, sort_keys=False))
    return path


def node(name: str = "image_stats", **attrs) -> dict:
    return {"node": {"pkg": "ros_gs", "exec": "image_stats", "name": name, **attrs}}


# -- the shipped graph ----------------------------------------------------------------------------
def test_shipped_graph_parts_follow_their_arguments() -> None:
    path = REPO / "launch" / "ros_gs.launch.yaml"
    assert [n.name for n in load_launch(path).nodes] == ["mapper"]
    both = load_launch(path, {"lidar": "True", "objects": "1", "camera": "/head"})
    # with the mapper the camera moves: grasps in its map frame, camera poses from /tf; no physics yet
    assert [n.executable for n in both.nodes] == ["mapper", "lidar_odometry", "grasp_planner"]
    mapper = both.nodes[0]
    assert {"rgb_topic": "/head/color/image_raw"} in mapper.params and {"use_sim_time": False} in mapper.params
    assert mapper.params[0] == REPO / "config" / "ros_gs.yaml"
    planner = both.nodes[2]
    assert {"cameras": ["/head"]} in planner.params and {"world_frame": "map"} in planner.params
    assert {"camera_poses": "tf"} in planner.params and {"world_up": "camera"} in planner.params
    still = load_launch(path, {"mapper": "false", "objects": "true"})
    assert [n.executable for n in still.nodes] == ["physics_tracker", "grasp_planner"]
    assert {"world_frame": ""} in still.nodes[1].params and {"camera_poses": "tf_static"} in still.nodes[1].params
    assert still.nodes[0].params[-3:] == [{"world_frame": ""}, {"camera_poses": "tf_static"}, {"world_up": "z"}]
    # the graph's parameter file keeps the two odometries apart
    from ros_gs.nodes.lidar_odometry import LidarOdometryNodeParams

    lidar = load_params(LidarOdometryNodeParams, "lidar_odometry", both.nodes[1].params)
    assert lidar.odom_topic != "/ros_gs/odom" and lidar.points_topic == "/lidar/points"
    assert load_launch(path, {"mapper": "false"}).nodes == []


def test_wrappers_include_the_graph() -> None:
    mapper = load_launch(REPO / "launch" / "mapper.launch.yaml", {"camera": "/wrist"})
    assert [n.name for n in mapper.nodes] == ["mapper"]
    assert mapper.nodes[0].params[0] == REPO / "config" / "mapper.yaml"
    assert {"depth_topic": "/wrist/depth/image_raw"} in mapper.nodes[0].params
    # as under ros2 launch, an argument of the included file reaches it
    assert [n.name for n in load_launch(REPO / "launch" / "mapper.launch.yaml", {"objects": "true"}).nodes] == ["mapper", "grasp_planner"]
    objects = load_launch(REPO / "launch" / "objects.launch.yaml")
    assert [n.name for n in objects.nodes] == ["physics_tracker", "grasp_planner"]


# -- arguments, conditions, substitutions ------------------------------------------------------------
def test_arguments_are_declared_required_and_checked(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {"arg": {"name": "mode", "default": "fast", "choice": [{"value": "fast"}, {"value": "slow"}]}},
        {"arg": {"name": "where"}},
        node(namespace="$(var where)", param=[{"name": "image_topic", "value": "/$(var mode)/img"}]),
    ])
    with pytest.raises(LaunchError, match="required launch argument 'where'"):
        load_launch(path)
    with pytest.raises(LaunchError, match="not one of"):
        load_launch(path, {"where": "x", "mode": "medium"})
    with pytest.raises(LaunchError, match=r"\['typo'\] are not declared"):
        load_launch(path, {"where": "x", "typo": "1"})
    d = load_launch(path, {"where": "robot1", "mode": "slow"})
    assert d.nodes[0].namespace == "/robot1" and d.nodes[0].params == [{"image_topic": "/slow/img"}]
    assert parse_arguments(["a:=1", "b:=x:=y", "c:="]) == {"a": "1", "b": "x:=y", "c": ""}
    with pytest.raises(LaunchError, match="NAME:=VALUE"):
        parse_arguments(["a=1"])


@pytest.mark.parametrize("text, runs", [("true", True), ("TRUE", True), ("1", True), ("False", False), ("0", False)])
def test_conditions_take_what_ros_takes(tmp_path: Path, text: str, runs: bool) -> None:
    path = write(tmp_path, [node("a", **{"if": text}), node("b", unless=text)])
    assert [n.name for n in load_launch(path).nodes] == (["a"] if runs else ["b"])


def test_substitutions(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ROS_GS_TEST_NS", "from_env")
    monkeypatch.delenv("ROS_GS_UNSET", raising=False)
    path = write(tmp_path, [
        {"arg": {"name": "cam", "default": ""}},
        {"let": {"name": "both", "value": "$(and $(not false) 1)"}},
        node("a", namespace="$(env ROS_GS_TEST_NS)/$(env ROS_GS_UNSET 'fallback x')", **{"if": "$(var both)"}),
        node("b", **{"if": "$(equals $(var cam) '')"}),
        node("c", **{"if": "$(not-equals $(var cam) '')"}),
        node("d", param=[{"name": "image_topic", "value": "$(dirname)"}]),
    ])
    d = load_launch(path)
    assert [n.name for n in d.nodes] == ["a", "b", "d"]
    assert d.nodes[0].namespace == "/from_env/fallback x"
    assert d.nodes[2].params == [{"image_topic": str(tmp_path)}]
    assert [n.name for n in load_launch(path, {"cam": "/x"}).nodes] == ["a", "c", "d"]


def test_typed_values_after_substitution(tmp_path: Path) -> None:
    path = write(tmp_path, [{"arg": {"name": "n", "default": "5"}},
                            node(param=[{"name": "k", "value": "$(var n)"}, {"name": "s", "value": "text"},
                                        {"name": "l", "value": ["$(var n)", 2]}, {"name": "f", "value": "$(var n).5"},
                                        {"name": "nested", "param": [{"name": "x", "value": True}]}])])
    assert load_launch(path).nodes[0].params == [{"k": 5}, {"s": "text"}, {"l": [5, 2]}, {"f": 5.5}, {"nested": {"x": True}}]


@pytest.mark.parametrize("entities, needle", [
    ([{"nodes": {}}], "tag 'nodes' is not supported"),
    ([node(respawn_forever=True)], "respawn_forever"),
    ([node(ros_args="-r a:=b")], "cannot be honoured"),
    ([{"node": {"pkg": "other_pkg", "exec": "talker"}}], "runs the nodes of package 'ros_gs'"),
    ([node(namespace="$(eval 1+1)")], "$(eval ...) is not supported"),
    ([node(namespace="$(var nope)")], "'nope' is not set"),
    ([node(namespace="$(var x")], "unclosed"),
    ([node(**{"if": "yes"})], "neither true/1 nor false/0"),
    ([node(param=[{"from": "/no/such/params.yaml"}])], "not found"),
    ([node(param=[{"name": "x"}])], "needs either 'value' or nested 'param'"),
    ([node(remap=[{"from": "a"}])], "needs exactly 'from' and 'to'"),
    ([node(remap=[{"from": "__ns", "to": "/x"}])], "cannot be remapped"),
    ([node("twice"), node("twice")], "launched twice"),
    ([{"include": {"file": "other.launch.py"}}], "only YAML launch files"),
    ([{"group": {"scoped": "yes", "children": []}}], "true or false"),
    (["just a string"], "mapping with one key"),
])
def test_what_ros_or_replay_cannot_take_is_refused(tmp_path: Path, entities: list, needle: str) -> None:
    with pytest.raises(LaunchError) as err:
        load_launch(write(tmp_path, entities))
    assert needle in str(err.value)


def test_broken_files_are_launch_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("launch: [node: {pkg: ros_gs\n")
    (tmp_path / "root.yaml").write_text("nodes: []\n")
    for name, needle in (("bad.yaml", "not YAML"), ("root.yaml", "one 'launch:' key"), ("none.yaml", "No such file")):
        with pytest.raises(LaunchError, match=needle):
            load_launch(tmp_path / name)
    write(tmp_path, [{"include": {"file": "loop.launch.yaml"}}], "loop.launch.yaml")
    with pytest.raises(LaunchError, match="nested more than 16"):
        load_launch(tmp_path / "loop.launch.yaml")


# -- groups, namespaces, includes ---------------------------------------------------------------------
def test_groups_scope_lets_and_namespaces(tmp_path: Path) -> None:
    path = write(tmp_path, [
        {"let": {"name": "v", "value": "outer"}},
        {"group": {"children": [
            {"push_ros_namespace": {"namespace": "left"}},
            {"let": {"name": "v", "value": "inner"}},
            node("a", param=[{"name": "p", "value": "$(var v)"}]),
            node("b", namespace="arm"),
            node("c", namespace="/abs"),
        ]}},
        node("d", param=[{"name": "p", "value": "$(var v)"}]),
        {"group": {"scoped": False, "children": [{"push-ros-namespace": {"namespace": "/robot"}},
                                                   {"let": {"name": "v", "value": "leaked"}}]}},
        node("e", param=[{"name": "p", "value": "$(var v)"}]),
    ])
    got = {n.name: (n.namespace, n.params) for n in load_launch(path).nodes}
    assert got["a"] == ("/left", [{"p": "inner"}])
    assert got["b"][0] == "/left/arm" and got["c"][0] == "/abs"
    assert got["d"] == ("/", [{"p": "outer"}])
    assert got["e"] == ("/robot", [{"p": "leaked"}])
    assert join_namespace("/a", "b/") == "/a/b" and join_namespace("/a", "") == "/a" and join_namespace("/", "") == "/"


def test_include_passes_arguments_and_keeps_its_own_scope(tmp_path: Path) -> None:
    write(tmp_path, [{"arg": {"name": "who"}}, {"let": {"name": "secret", "value": "1"}}, node("$(var who)")], "inner.launch.yaml")
    path = write(tmp_path, [{"include": {"file": "$(dirname)/inner.launch.yaml", "arg": [{"name": "who", "value": "alice"}]}},
                            node("after", **{"if": "$(var secret)"})])
    with pytest.raises(LaunchError, match="'secret' is not set"):  # the include's let stays inside it
        load_launch(path)
    path = write(tmp_path, [{"include": {"file": "inner.launch.yaml", "arg": [{"name": "who", "value": "bob"}]}}], "top.launch.yaml")
    assert [n.name for n in load_launch(path).nodes] == ["bob"]


# -- in a replay: parameters in order, remappings ---------------------------------------------------------
class EchoParams(NodeParams):
    prefix: str = "default"
    other: int = 0


class Echo:
    NAME = "echo"

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.params = ctx.get_params(EchoParams)
        self.pub = ctx.create_publisher("std_msgs/msg/String", "~/out")
        self.got: list[str] = []
        ctx.create_subscription("std_msgs/msg/String", "input", self.on)

    def on(self, msg) -> None:
        self.got.append(msg.data)
        self.pub.publish(self.ctx.make("std_msgs/msg/String", data=f"{self.params.prefix}:{msg.data}"))


def test_replay_applies_launch_params_in_order_and_remaps(tmp_path: Path) -> None:
    bag = tmp_path / "in.mcap"
    with BagWriter(bag) as w:
        for i in range(3):
            w.write("/sensor/text", "std_msgs/msg/String", w.factory("std_msgs/msg/String", data=f"m{i}"), T0 + i * 10**8)
            w.write("/input", "std_msgs/msg/String", w.factory("std_msgs/msg/String", data="unmapped"), T0 + i * 10**8)
    pfile = tmp_path / "p.yaml"
    pfile.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"prefix": "file", "other": 7}}}))
    launch = write(tmp_path, [node("echo", namespace="robot", param=[{"name": "prefix", "value": "inline"}, {"from": str(pfile)}],
                                   remap=[{"from": "input", "to": "/sensor/text"}, {"from": "~/out", "to": "/echoed"}])])
    spec = load_launch(launch).nodes[0]
    out = tmp_path / "out.mcap"
    rt = ReplayRuntime(bag, out)
    echo = rt.add_node(Echo, spec.name, spec.namespace, params=spec.params, remaps=spec.remaps)
    rt.run()
    assert echo.params.prefix == "file" and echo.params.other == 7  # the file came after the inline value
    assert echo.got == ["m0", "m1", "m2"]  # /robot/input -> /sensor/text; the bag's /input is not it
    assert rt.silent_inputs() == {}
    with BagReader(out) as r:
        assert [m.data for _, m in r.messages(["/echoed"])] == ["file:m0", "file:m1", "file:m2"]
        assert "/robot/echo/out" not in r.topics()
    rt2 = ReplayRuntime(bag, None, overrides={"echo": {"prefix": "set"}})  # --set wins over the launch file
    assert rt2.add_node(Echo, spec.name, spec.namespace, params=spec.params).params.prefix == "set"


def test_cli_replays_the_graph_of_a_launch_file(tmp_path: Path) -> None:
    """`ros-gs replay --launch` on image_stats with a remapped camera: the stats come out."""
    bag = tmp_path / "cam.mcap"
    with BagWriter(bag) as w:
        for i in range(4):
            img = w.factory("sensor_msgs/msg/Image", height=4, width=6, encoding="rgb8", step=18,
                            data=np.full(72, 10 * i, dtype=np.uint8))
            img.header.stamp.sec, img.header.stamp.nanosec = divmod(T0 + i * 10**8, 10**9)
            w.write("/head/rgb", "sensor_msgs/msg/Image", img, T0 + i * 10**8)
    launch = write(tmp_path, [
        {"arg": {"name": "image", "default": "/camera/color/image_raw"}},
        node("stats", namespace="head", param=[{"from": str(REPO / "config" / "image_stats.yaml")}],
             remap=[{"from": "/camera/color/image_raw", "to": "$(var image)"}]),
    ])
    out = tmp_path / "out.mcap"
    cmd = [sys.executable, "-m", "ros_gs.cli.main", "replay", str(bag), "--launch", str(launch), "--arg", "image:=/head/rgb",
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "/head/stats (image_stats)" in proc.stdout
    with BagReader(out) as r:
        means = [list(m.channel_mean) for _, m in r.messages(["/head/stats/stats"])]
    assert np.allclose(means, [[v] * 3 for v in (0, 10, 20, 30)])
    # the argument forgotten: the node's input is not in the bag, and the summary says so
    proc = subprocess.run(cmd[:7] + ["--out", str(out), "--overwrite"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "no message on /camera/color/image_raw (input of stats)" in proc.stdout, proc.stdout
