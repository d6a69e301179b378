"""Objects, descriptions, grounding and grasps on the real GraspNet frame (a RealSense view of 9
objects; no masks, no labels), judged by the ground-truth object poses of meta.mat."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "graspnet_tabletop"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real GraspNet frame not found at {DATA}")

# GraspNet class id -> object, identified by eye in color.png (benchmarks/graspnet_objects.yaml)
CRACKER_BOX, SOUP_CAN, BANANA, DRILL, BLUE_CUP, BLUE_CAP, WHITE_BOTTLE, ELEPHANT, WHITE_TUBE = 1, 3, 6, 9, 23, 27, 39, 52, 62
# largest extent (m) of each, measured in the depth image (graspnet_objects.yaml): the issue's
# judge is "within its own size of its ground-truth origin"
SIZE = {CRACKER_BOX: 0.21, SOUP_CAN: 0.10, BANANA: 0.19, DRILL: 0.20, BLUE_CUP: 0.085, BLUE_CAP: 0.06, WHITE_BOTTLE: 0.14,
        ELEPHANT: 0.15, WHITE_TUBE: 0.19}


@pytest.fixture(scope="module")
def frame():
    import scipy.io as sio
    from PIL import Image

    meta = sio.loadmat(DATA / "meta.mat")
    rgb = np.array(Image.open(DATA / "color.png"))
    depth = np.array(Image.open(DATA / "depth.png")).astype(np.float64) / float(meta["factor_depth"].squeeze())
    roi = np.array(Image.open(DATA / "workspace_mask.png")).astype(bool)
    origins = {int(c): meta["poses"][:, 3, k] for k, c in enumerate(meta["cls_indexes"].ravel())}
    return rgb, depth, roi, meta["intrinsic_matrix"].astype(np.float64), origins


@pytest.fixture(scope="module")
def scene(frame):
    from ros_gs.objects import ObjectFinder, View, find_objects

    rgb, depth, roi, K, _ = frame
    return find_objects(ObjectFinder(), [View(depth, K, np.eye(4), rgb=rgb, roi=roi)])


def test_every_object_is_one_instance(frame, scene) -> None:
    """Each object's ground-truth origin projects into an instance of its own (touching objects
    are split: plane + DBSCAN merges 7 of these 9)."""
    _, depth, _, K, origins = frame

    ids = np.zeros(depth.shape, dtype=np.int64)
    for o in scene.objects:
        ids[o.masks[0]] = o.id
    hit = {}
    for cls, p in origins.items():
        u, v, w = K @ p
        hit[cls] = int(ids[int(round(v / w)), int(round(u / w))])
    assert all(hit.values()), hit
    assert len(set(hit.values())) == len(hit), hit
    assert len(scene.objects) == len(origins)  # and nothing else: no table edge, no bump of the mat


QUERIES = [  # (query, acceptable objects): colour, shape, size, position, relations; none names a label
    ("something yellow", {BANANA}),
    ("the yellow fruit-shaped thing", {BANANA}),
    ("the tall red box", {CRACKER_BOX}),
    ("the tallest object", {CRACKER_BOX}),
    ("something grey", {ELEPHANT}),
    ("the thing left of the blue cup", {BANANA, WHITE_TUBE, BLUE_CAP}),
    ("a long white object", {WHITE_TUBE}),
]


@pytest.mark.parametrize("query,ok", QUERIES)
def test_top_grasp_lies_on_the_named_object(frame, scene, query: str, ok: set[int]) -> None:
    from ros_gs.grasping import GraspPlanner

    origins = frame[4]
    planner = GraspPlanner()
    planner.set_objects(scene)
    r = planner.query(query)
    assert r.grasps, r.message
    centre = r.grasps[0].pose[:3, 3]
    dist = {c: float(np.linalg.norm(p - centre)) for c, p in origins.items()}
    nearest = min(dist, key=dist.get)
    # nearest to the named object's origin of all nine, and within that object's own size of it
    assert nearest in ok and dist[nearest] < SIZE[nearest], (query, r.description, nearest, dist[nearest])


def test_a_kind_alone_is_ambiguous(scene) -> None:
    from ros_gs.objects import ground

    labs = [o.lab for o in scene.objects]
    g = ground("the drill", scene.descriptions, labs)
    assert g.index == -1 and g.ambiguous and "ambiguous" in g.message and len(g.candidates) == len(scene.objects)
    g = ground("something purple", scene.descriptions, labs)  # no object here is purple
    assert g.index == -1 and "no object is purple" in g.message


def test_query_grasps_json_on_the_graspnet_bag(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ros_gs.bags.from_graspnet import graspnet_frame_to_bag
    from ros_gs.cli.main import app

    bag = tmp_path / "graspnet.mcap"
    graspnet_frame_to_bag(DATA, bag, frames=3, progress=False)
    res = CliRunner().invoke(app, ["query-grasps", str(bag), "something yellow", "--json", "--max-grasps", "3"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # exactly one JSON object on stdout
    assert out["query"] == "something yellow" and "yellow" in out["object"]["description"]
    g = out["grasps"][0]
    assert 1 <= len(out["grasps"]) <= 3 and g["frame_id"] == "camera_color_optical_frame"
    a, c = np.array(g["approach"]), np.array(g["closing"])
    assert abs(np.linalg.norm(a) - 1) < 1e-4 and abs(a @ c) < 1e-4 and 0 < g["width"] <= 0.08
    res = CliRunner().invoke(app, ["query-grasps", str(bag), "  ", "--json"])
    assert res.exit_code == 2 and json.loads(res.stdout)["grasps"] == [] and "empty" in json.loads(res.stdout)["error"]
    res = CliRunner().invoke(app, ["query-grasps", str(bag), "zzzz qqq", "--json"])  # matches nothing
    out = json.loads(res.stdout)
    assert res.exit_code == 2 and out["grasps"] == [] and "ambiguous" in out["error"] and len(out["candidates"]) >= 9
    res = CliRunner().invoke(app, ["query-grasps", str(tmp_path / "missing.mcap"), "the cup"])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_physics_tracker_on_the_graspnet_bag(tmp_path: Path) -> None:
    """A lone real camera without TF: the tracker makes a frame on the support it finds, finds
    the objects without masks, and their bodies rest on that support (gravity along its normal;
    carved apart, kept out of the ground).  Visual forces off: the gain that tracks MuJoCo's
    push (3e-3) is not yet normalised for other scenes (see the README)."""
    from ros_gs.bags.from_graspnet import graspnet_frame_to_bag
    from ros_gs.bags.reader import BagReader
    from ros_gs.nodes.physics_tracker import PhysicsTrackerNode
    from ros_gs.runtime.replay import ReplayRuntime
    from ros_gs.sensors.poses import pose_msg_to_matrix

    bag = tmp_path / "graspnet.mcap"
    graspnet_frame_to_bag(DATA, bag, frames=4, progress=False)
    out = tmp_path / "tracked.mcap"
    rt = ReplayRuntime(bag, out, overrides={"physics_tracker": {"cameras": ["/camera"], "world_frame": "", "forces.gain": 0.0,
                                                                "world.device": "cpu", "forces.backend": "cpu"}})
    node = rt.add_node(PhysicsTrackerNode)
    report = rt.run()
    assert not report.errors, report.errors
    assert node.restarts == 0 and len(node.ids) >= 6
    with BagReader(out) as reader:
        static = [m for _, m in reader.messages(["/tf_static"])]
        arrays = [m for _, m in reader.messages(["/physics_tracker/objects"])]
    assert static[0].transforms[0].child_frame_id == "ros_gs/support"
    assert static[0].transforms[0].header.frame_id == "camera_color_optical_frame"
    assert len(arrays) == 4 and arrays[0].header.frame_id == "ros_gs/support"
    P = np.array([[pose_msg_to_matrix(p)[:3, 3] for p in m.poses] for m in arrays])
    assert np.abs(P - P[0]).max() < 0.02  # 0.3 s of physics: everything rests on the support (settling < 2 cm; a support frame along the wrong axis drops them 44 cm)
    assert (P[0, :, 2] > 0).all() and (P[0, :, 2] < 0.2).all()  # above the support, on it
