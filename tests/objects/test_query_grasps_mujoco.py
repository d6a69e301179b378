"""`ros-gs query-grasps` on a one-camera MuJoCo tabletop bag whose segmentation and labels were
removed (sensor data only, as a real camera gives): the JSON's top grasp, executed by MuJoCo's
floating gripper in the world frame, lifts the object the query describes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mujoco_gripper import execute

from ros_gs.bags.from_mujoco import mujoco_scene_to_bag
from ros_gs.bags.reader import BagReader
from ros_gs.bags.writer import BagWriter
from ros_gs.grasping import Grasp, ParallelGripper
from ros_gs.sensors.poses import xyz_quat_to_matrix
from ros_gs.sim.scenes import build_scene

SEED = 4  # a layout no default was looked at on


@pytest.fixture(scope="module")
def stripped_bag(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tabletop1")
    full = d / "full.mcap"
    mujoco_scene_to_bag("tabletop", full, duration_s=0.3, width=320, height=240, num_cameras=1, seed=SEED, progress=False)
    out = d / "sensors_only.mcap"
    with BagReader(full) as reader, BagWriter(out) as writer:
        for raw, _ in reader.messages():
            if "segmentation" in raw.topic or raw.topic.startswith("/ground_truth/"):
                continue
            writer.write_raw(raw.topic, raw.msgtype, raw.raw, raw.log_ns)
    return out


QUERIES = [("the yellow one", "yellow_banana"), ("the tall purple box", "purple_carton"), ("a small red block", "red_box"),
           ("the green ball", "green_ball"), ("the blue cup", "blue_mug"), ("the flat white thing", None)]


def test_json_grasps_lift_in_mujoco(stripped_bag: Path) -> None:
    """One camera sees one side of each object: the hidden side is a guess (walls down to the
    table), so a single grasp may miss; judged as a rate, as bench_objects does over 10 seeds.
    The mug (8 cm across, as wide as the gripper opens) is taken by its rim or handle.  The book
    (11 cm, lying flat) fits no 8 cm gripper: no grasp, exit 1.  The fingers close with a force,
    as bench_objects' do."""
    from typer.testing import CliRunner

    from ros_gs.cli.main import app

    spec = build_scene("tabletop", seed=SEED, width=320, height=240, num_cameras=1)
    lifts = {}
    for query, body in QUERIES:
        res = CliRunner().invoke(app, ["query-grasps", str(stripped_bag), query, "--json", "--max-grasps", "3"])
        out = json.loads(res.stdout)
        assert out["object"]["label"] == ""  # no labels in the bag
        if body is None:
            assert res.exit_code == 1 and out["grasps"] == [], (query, out)
            continue
        assert res.exit_code == 0, res.output
        g = out["grasps"][0]
        assert g["frame_id"] == "world"
        T = xyz_quat_to_matrix(g["position"], g["orientation"])
        assert np.allclose(T[:3, 2], g["approach"], atol=1e-4) and np.allclose(T[:3, 0], g["closing"], atol=1e-4)
        lifts[body] = execute(spec.xml, Grasp(T, g["width"], g["score"], np.zeros((2, 3))), ParallelGripper(), body, squeeze=0.03)
    print({b: round(v, 3) for b, v in lifts.items()})
    assert sum(v > 0.1 for v in lifts.values()) >= 4, lifts  # a grasp off its object lifts nothing
