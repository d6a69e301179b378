"""grasp_planner in replay on a MuJoCo tabletop bag: queries through its service return grasps
on the named object, and MuJoCo lifts that object with them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from ros_gs.bags.from_mujoco import mujoco_scene_to_bag
from ros_gs.bags.reader import BagReader
from ros_gs.grasping import Grasp, ParallelGripper
from ros_gs.nodes.grasp_planner import GraspPlannerNode
from ros_gs.runtime.replay import ReplayRuntime, ServiceCall
from ros_gs.sensors.poses import pose_msg_to_matrix
from ros_gs.sim.scenes import build_scene

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "grasping"))
from mujoco_gripper import execute  # noqa: E402

CAMERAS = ["/cameras/front", "/cameras/left", "/cameras/right"]


@pytest.fixture(scope="module")
def tabletop_bag(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tabletop") / "tabletop.mcap"
    mujoco_scene_to_bag("tabletop", out, duration_s=0.35, width=320, height=240, progress=False)
    return out


def test_grasp_service_on_a_replayed_tabletop(tabletop_bag: Path, tmp_path: Path) -> None:
    calls = [ServiceCall(0.1, "/grasp_planner/query_grasps", {"query": "the banana", "max_grasps": 3}),
             ServiceCall(0.11, "/grasp_planner/query_grasps", {"query": "pick up the ball", "max_grasps": 0}),
             ServiceCall(0.12, "/grasp_planner/query_grasps", {"query": "   ", "max_grasps": 0}),
             ServiceCall(0.13, "/grasp_planner/query_grasps", {"query": "weather forecast for tomorrow", "max_grasps": 0}),
             ServiceCall(0.14, "/grasp_planner/query_grasps", {"query": "the banana", "max_grasps": -1}),
             ServiceCall(0.15, "/grasp_planner/query_grasps", {"query": "the banana", "max_grasps": "abc"})]
    out = tmp_path / "grasps.mcap"
    # MuJoCo's perfect instance masks and labels (an upstream detector's, as if perfect)
    rt = ReplayRuntime(tabletop_bag, out, service_calls=calls,
                       overrides={"grasp_planner": {"cameras": CAMERAS, "use_segmentation": True}})
    node = rt.add_node(GraspPlannerNode)
    report = rt.run()
    assert not report.errors, report.errors
    banana, ball, empty, nothing, negative, word = (c.response for c in report.services)
    for bad in (negative, word):  # refused with the reason, no grasps, no traceback
        assert not bad.ok and "max_grasps" in bad.message and len(bad.grasps.poses) == 0
    assert banana.ok and banana.label == "yellow banana-like capsule" and len(banana.grasps.poses) == 3
    assert ball.ok and ball.label == "green ball" and 3 <= len(ball.grasps.poses) <= 10
    assert list(banana.scores) == sorted(banana.scores, reverse=True)
    assert not empty.ok and "empty" in empty.message
    assert not nothing.ok and "no object matches" in nothing.message
    assert node.queries == 6
    with BagReader(out) as reader:
        published = [m for _, m in reader.messages(["/grasp_planner/grasps"])]
    assert [len(m.poses) for m in published] == [3, len(ball.grasps.poses), 0]  # an answer with none clears the display
    assert published[0].header.frame_id == "world"
    # the service's grasps, executed by MuJoCo, lift their objects
    spec = build_scene("tabletop", width=320, height=240)
    for resp, body in ((banana, "yellow_banana"), (ball, "green_ball")):
        for pose, opening in list(zip(resp.grasps.poses, resp.openings))[:2]:
            g = Grasp(pose_msg_to_matrix(pose), float(opening), 1.0, np.zeros((2, 3)))
            assert execute(spec.xml, g, ParallelGripper(), body) > 0.12


def test_grasp_service_before_any_image(tabletop_bag: Path, tmp_path: Path) -> None:
    rt = ReplayRuntime(tabletop_bag, tmp_path / "none.mcap", service_calls=[
        ServiceCall(0.1, "/grasp_planner/query_grasps", {"query": "the banana", "max_grasps": 3})],
        overrides={"grasp_planner": {"cameras": ["/cameras/nowhere"]}})
    rt.add_node(GraspPlannerNode)
    (call,) = rt.run().services
    assert not call.response.ok and "no complete camera set" in call.response.message


def test_grasp_command_answers_and_draws(tabletop_bag: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ros_gs.cli.main import app

    params = str(Path(__file__).resolve().parents[2] / "config" / "grasp_planner_tabletop.yaml")
    png = tmp_path / "grasps.png"
    res = CliRunner().invoke(app, ["grasp", str(tabletop_bag), "pick up the ball", "--params", params, "--png", str(png)])
    assert res.exit_code == 0, res.output
    assert "'green ball'" in res.output and "0: score" in res.output and png.stat().st_size > 10_000
    res = CliRunner().invoke(app, ["grasp", str(tabletop_bag), "weather forecast for tomorrow", "--params", params])
    assert res.exit_code == 1 and "no object matches" in res.output
    res = CliRunner().invoke(app, ["grasp", str(tabletop_bag), "the ball", "--params", params, "--at", "5"])
    assert res.exit_code != 0 and "no answer" in f"{res.output}{res.exception}"  # after the bag's end
    res = CliRunner().invoke(app, ["grasp", str(tabletop_bag), "the ball"])  # cameras, masks, labels read from the bag
    assert res.exit_code == 0 and "'green ball'" in res.output, res.output


def test_grasps_in_the_map_frame_of_a_moving_camera(tmp_path: Path) -> None:
    """The launch file's graph on an orbit bag (issue 17): the mapper's map -> camera on /tf gives
    the grasp planner its camera's pose; grasps come in the map frame and, moved into MuJoCo's
    world by the rigid alignment of the mapper's path to the true one, lift the named object."""
    from ros_gs.bags.evaluate import evaluate_odometry
    from ros_gs.nodes import load_node
    from ros_gs.runtime.launch import load_launch

    bag, out = tmp_path / "orbit.mcap", tmp_path / "out.mcap"
    mujoco_scene_to_bag("orbit", bag, duration_s=3.0, seed=6, width=320, height=240, num_cameras=1, camera_rate_hz=5.0,
                        noise=True, progress=False)
    graph = load_launch(Path(__file__).resolve().parents[2] / "launch" / "ros_gs.launch.yaml",
                        {"camera": "/cameras/head", "objects": "true"})
    queries = {"the green sphere": "green_ball", "the long yellow thing": "yellow_banana"}
    calls = [ServiceCall(2.95, "/grasp_planner/query_grasps", {"query": q, "max_grasps": 2}) for q in queries]
    rt = ReplayRuntime(bag, out, service_calls=calls)
    for spec in graph.nodes:
        rt.add_node(load_node(spec.executable), spec.name, spec.namespace, params=spec.params, remaps=spec.remaps)
    report = rt.run()
    assert not report.errors, report.errors
    assert [n.NAME for n in rt.nodes] == ["mapper", "grasp_planner"]
    traj = evaluate_odometry(out, bag)
    assert traj.ate_rmse_m < 0.02
    T_world_map = traj.T_gt_est
    spec = build_scene("orbit", seed=6, width=320, height=240, num_cameras=1)
    for r, body in zip(report.services, queries.values()):
        resp = r.response
        assert resp.ok and resp.grasps.header.frame_id == "map", resp.message
        pose = T_world_map @ pose_msg_to_matrix(resp.grasps.poses[0])
        g = Grasp(pose, float(resp.openings[0]), 1.0, np.zeros((2, 3)))
        assert execute(spec.xml, g, ParallelGripper(), body) > 0.1, (r.request, resp.description)
