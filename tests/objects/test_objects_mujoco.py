"""Objects found without masks on MuJoCo's tabletop, judged by MuJoCo's own instance masks and by
MuJoCo lifting the objects with the grasps planned on them (no mask or label is given to the
code under test)."""

from __future__ import annotations

import numpy as np
import pytest
from mujoco_gripper import execute, record_tabletop

from ros_gs.grasping import GraspPlanner, ParallelGripper
from ros_gs.objects import ObjectFinder, View, find_objects
from ros_gs.objects.evaluation import instance_matches


@pytest.fixture(scope="module")
def tabletop():
    spec, frames, _, _ = record_tabletop(seed=3)  # seed 3: no default was tuned on it
    return spec, frames


def _views(frames, cams=None):
    return [View(f.depth, f.K, f.T_world_cam, rgb=f.rgb) for f in frames[: cams or len(frames)]]


@pytest.mark.parametrize("cams", [1, 3])
def test_instances_match_mujoco_masks(tabletop, cams: int) -> None:
    spec, frames = tabletop
    finder = ObjectFinder()
    scene = find_objects(finder, _views(frames, cams), up=np.array([0.0, 0.0, 1.0]))
    assert abs(scene.support.normal[2]) > 0.999 and abs(-scene.support.offset - 0.75) < 0.005  # the table top
    for vi, f in enumerate(frames[:cams]):
        pred = np.zeros(f.depth.shape, dtype=np.int64)
        for o in scene.objects:
            if vi in o.masks:
                pred[o.masks[vi]] = o.id
        m = instance_matches(pred, f.segmentation + 1, iou=0.5)
        assert m.precision >= 0.85 and m.recall >= 0.85, (f.camera, m)


def test_ids_stay_the_same(tabletop) -> None:
    _, frames = tabletop
    finder = ObjectFinder()
    first = {o.id: o.points.mean(axis=0) for o in finder.update(_views(frames))}
    again = {o.id: o.points.mean(axis=0) for o in finder.update(_views(frames[::-1]))}  # other order, same scene
    one = {o.id: o.points.mean(axis=0) for o in finder.update(_views(frames, 1))}  # one camera sees less
    assert set(again) == set(first)
    assert set(one) <= set(first)
    for i, c in one.items():
        assert np.linalg.norm(c - first[i]) < 0.04


def _mug_shares(frame, k: int, merge_thin_m: float) -> list[float]:
    """Shares of MuJoCo's mask of object ``k`` that each found object covers, largest first."""
    from ros_gs.objects.segmentation import SegmentationConfig

    finder = ObjectFinder()
    finder.config.segmentation = SegmentationConfig(merge_thin_m=merge_thin_m)
    scene = find_objects(finder, _views([frame]), up=np.array([0.0, 0.0, 1.0]))
    truth = frame.segmentation == k
    return sorted(((o.masks[0] & truth).sum() / truth.sum() for o in scene.objects), reverse=True) + [0.0, 0.0]


def test_a_mug_handle_stays_with_its_mug() -> None:
    """The mug's handle (thin and upright; the concave creases where its arms meet the wall cut
    it off, and its arms are too thin to keep) joins the mug in each camera's view alone, on two
    layouts: one object covers MuJoCo's mug mask, handle included, and no other takes a share."""
    split_without_rule = 0
    for seed in (3, 5):
        spec, frames, _, _ = record_tabletop(seed=seed)
        k = [o.name for o in spec.objects].index("blue_mug")
        for f in frames:
            shares = _mug_shares(f, k, 0.02)
            assert shares[0] > 0.7 and shares[1] < 0.02, (seed, f.camera, shares[:3])
            split_without_rule += _mug_shares(f, k, 0.0)[1] >= 0.02
    assert split_without_rule > 0  # without the rule some view splits: the test can fail


QUERIES = {  # object -> a query by colour / shape / size that never says its label
    "yellow_banana": "the yellow thing",
    "blue_mug": "the blue cup",  # 8 cm across: by its rim or handle
    "green_ball": "the round green object",
    "red_box": "the red block",
    "purple_carton": "the tallest object",
}


@pytest.mark.parametrize("body", sorted(QUERIES))
def test_grasps_without_masks_lift_in_mujoco(tabletop, body: str) -> None:
    spec, frames = tabletop
    scene = find_objects(ObjectFinder(), _views(frames), up=np.array([0.0, 0.0, 1.0]))
    planner = GraspPlanner()
    planner.set_objects(scene)
    r = planner.query(QUERIES[body])
    assert r.grasps, r.message
    top = r.grasps[0]
    # the grasp lies on the named object: MuJoCo lifts that body with it
    assert execute(spec.xml, top, ParallelGripper(), body, squeeze=0.03) > 0.1, (body, r.description)
