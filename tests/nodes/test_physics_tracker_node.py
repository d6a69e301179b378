"""physics_tracker in replay on a MuJoCo push bag: objects from the first depth + segmentation
set, then visual forces keep them on MuJoCo's push (ground truth only judges)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ros_gs.bags.evaluate import evaluate_objects, evaluate_predictions, tf_ground_truth
from ros_gs.bags.from_mujoco import mujoco_scene_to_bag
from ros_gs.bags.reader import BagReader
from ros_gs.nodes.physics_tracker import PhysicsTrackerNode
from ros_gs.runtime.replay import ReplayRuntime
from ros_gs.sim.contacts import last_contact_s
from ros_gs.sim.scenes import TABLE_TOP_Z

CAMERAS = ["/cameras/front", "/cameras/left", "/cameras/right"]


@pytest.fixture(scope="module")
def push_bag(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("push") / "push.mcap"
    mujoco_scene_to_bag("push", out, duration_s=2.2, width=160, height=120, camera_rate_hz=30.0, progress=False)
    return out


def test_physics_tracker_follows_the_push(push_bag: Path, tmp_path: Path) -> None:
    out = tmp_path / "tracked.mcap"
    rt = ReplayRuntime(push_bag, out, overrides={"physics_tracker": {"cameras": CAMERAS, "world.ground_height": TABLE_TOP_Z, "use_segmentation": True,
                                                                     "world.device": "cpu", "forces.backend": "cpu"}})
    node = rt.add_node(PhysicsTrackerNode)
    report = rt.run()
    assert not report.errors, report.errors
    assert node.ids == [1, 2]  # the box and the cylinder (instance ids = object index + 1)
    with BagReader(out) as reader:
        arrays = [m for _, m in reader.messages(["/physics_tracker/objects"])]
    assert len(arrays) == 66 and all(len(m.poses) == 2 for m in arrays)  # one per camera set (30 Hz, 2.2 s), none lost
    r = evaluate_objects(out, push_bag)
    assert r.names == ["red_box", "blue_cylinder"] and len(r.stamps) == 66
    for k, name in enumerate(r.names):
        e, rot = r.position_error_m[:, k], r.rotation_error_deg[:, k]
        print(f"{name}: moved {r.moved_m[k] * 100:.1f} cm; error mean {e.mean() * 100:.2f} cm, max {e.max() * 100:.2f} cm, "
              f"rotation mean {rot.mean():.1f} deg")
        assert e.mean() < 0.015 and e.max() < 0.03
    # the paddle shoves the box 30 cm into the cylinder, which it barely moves (a cylinder's
    # turn about its axis does not show in its silhouette: only the box's rotation is judged)
    assert r.moved_m[0] > 0.25 and r.moved_m[1] < 0.02 and r.rotation_error_deg[:, 0].mean() < 5.0
    # the same through the command line, with its plot
    from typer.testing import CliRunner

    from ros_gs.cli.main import app

    png = tmp_path / "objects.png"
    res = CliRunner().invoke(app, ["eval-objects", str(out), str(push_bag), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    assert "object/1 = red_box" in res.output and "object/2 = blue_cylinder" in res.output
    assert "predictions 0.50 s ahead" in res.output and "'stays'" in res.output
    assert png.stat().st_size > 10_000


def test_gaps_and_time_going_back_rebuild_the_objects(push_bag: Path, tmp_path: Path) -> None:
    """A 1.15 s hole in the images and a jump back in time each rebuild the objects from the next
    set (counted skips), and tracking goes on; nothing raises."""
    from ros_gs.bags.writer import BagWriter
    from ros_gs.sensors.stamps import header_stamp_ns, ns_to_stamp

    bag = tmp_path / "holes.mcap"
    with BagReader(push_bag) as reader, BagWriter(bag) as writer:
        start = reader.start_ns
        for raw, msg in reader.messages():
            t = (raw.log_ns - start) * 1e-9
            camera = raw.topic.startswith("/cameras/")
            if camera and 0.6 < t < 1.75:
                continue  # the hole
            if camera and t > 1.95 and hasattr(msg, "header"):  # the clock jumps back 1.5 s (a restart)
                msg.header.stamp = ns_to_stamp(writer.factory, header_stamp_ns(msg) - 1_500_000_000)
                writer.write(raw.topic, raw.msgtype, msg, raw.log_ns)
                continue
            writer.write_raw(raw.topic, raw.msgtype, raw.raw, raw.log_ns)
    rt = ReplayRuntime(bag, tmp_path / "out.mcap", overrides={"physics_tracker": {"cameras": CAMERAS, "world.ground_height": TABLE_TOP_Z, "use_segmentation": True,
                                                                                 "world.device": "cpu", "forces.backend": "cpu"}})
    node = rt.add_node(PhysicsTrackerNode)
    report = rt.run()
    assert not report.errors, report.errors
    assert node.restarts == 2 and node.ids == [1, 2] and node.cameras.time_jumps == 1
    rebuilt = sum(n for (name, where, kind), n in report.skipped.items() if name == where == "physics_tracker")
    assert rebuilt == 2
    # nothing lost without a count: every image the time sync or the jump dropped is a skip under its topic
    dropped = sum(n for (name, where, kind), n in report.skipped.items() if where.startswith("/cameras/"))
    assert dropped == node.cameras.sync.dropped_total + node.cameras.old_timeline_drops
    with BagReader(tmp_path / "out.mcap") as reader:
        arrays = [m for _, m in reader.messages(["/physics_tracker/objects"])]
    stamps = [header_stamp_ns(m) for m in arrays]
    assert len(arrays) == node.frames >= 25  # every set published: before the hole, after it, after the jump
    assert sum(b < a for a, b in zip(stamps, stamps[1:])) == 1  # the jump back shows once in the output


def test_images_stamped_back_in_time_are_counted_not_lost(push_bag: Path, tmp_path: Path) -> None:
    """Camera stamps that go back 0.5 s for a stretch (less than a clock jump): the time sync
    drops them as stale, and every one is a counted skip under its topic in the report."""
    from ros_gs.bags.writer import BagWriter
    from ros_gs.sensors.stamps import header_stamp_ns, ns_to_stamp

    bag = tmp_path / "back.mcap"
    with BagReader(push_bag) as reader, BagWriter(bag) as writer:
        start = reader.start_ns
        for raw, msg in reader.messages():
            t = (raw.log_ns - start) * 1e-9
            if raw.topic.startswith("/cameras/") and 1.0 < t < 1.3 and hasattr(msg, "header"):
                msg.header.stamp = ns_to_stamp(writer.factory, header_stamp_ns(msg) - 500_000_000)
                writer.write(raw.topic, raw.msgtype, msg, raw.log_ns)
                continue
            writer.write_raw(raw.topic, raw.msgtype, raw.raw, raw.log_ns)
    rt = ReplayRuntime(bag, None, overrides={"physics_tracker": {"cameras": CAMERAS, "world.ground_height": TABLE_TOP_Z, "use_segmentation": True,
                                                               "world.device": "cpu", "forces.backend": "cpu"}})
    node = rt.add_node(PhysicsTrackerNode)
    report = rt.run()
    assert not report.errors, report.errors
    dropped = {where: n for (name, where, kind), n in report.skipped.items() if where.startswith("/cameras/")}
    assert sum(dropped.values()) == node.cameras.sync.dropped_total > 0
    assert all(t in dropped for t in ("/cameras/front/depth/image_raw", "/cameras/left/segmentation"))
    assert node.frames + sum(dropped.values()) // 9 >= 60  # the sets not tracked are the ones counted


def test_physics_tracker_without_masks_follows_the_push(push_bag: Path, tmp_path: Path) -> None:
    """No segmentation used: the objects are found in depth and colour, and each later pixel goes
    to the nearest predicted body.  The paddle is an object too (it is tracked, not judged); the
    box is followed through the push (30 cm), and the cylinder it hits, to a couple of cm."""
    out = tmp_path / "tracked.mcap"
    rt = ReplayRuntime(push_bag, out, overrides={"physics_tracker": {"cameras": CAMERAS, "world.ground_height": TABLE_TOP_Z,
                                                                     "world.device": "cpu", "forces.backend": "cpu"}})
    node = rt.add_node(PhysicsTrackerNode)
    report = rt.run()
    assert not report.errors, report.errors
    assert not node.params.use_segmentation and node.restarts == 0
    r = evaluate_objects(out, push_bag)
    assert {"red_box", "blue_cylinder"} <= set(r.names)
    for k, name in enumerate(r.names):
        e = r.position_error_m[:, k]
        print(f"{name}: moved {r.moved_m[k] * 100:.1f} cm; error mean {e.mean() * 100:.2f} cm, max {e.max() * 100:.2f} cm")
        if name in ("red_box", "blue_cylinder"):
            assert e.mean() < 0.025 and e.max() < 0.08
    assert r.moved_m[r.names.index("red_box")] > 0.25


def test_object_states_predictions_and_what_if(push_bag: Path, tmp_path: Path) -> None:
    """/ros_gs/objects carries each object's id, description, pose, twist and size; every update
    predicts the states 0.5 s ahead (stamped with the time predicted for); ``~/predict`` answers
    "what if": the box, given 0.6 m/s away from the cylinder once the push is over, slides as far
    as Coulomb friction says (v^2 / 2 mu g, analytic) while the cylinder stays.  The box's
    friction is measured from its free slide (MuJoCo's 0.15), and the predictions made after the
    paddle lets go beat "stays where it is" and "keeps its velocity" 3-fold."""
    import numpy as np

    from ros_gs.runtime.replay import ServiceCall
    from ros_gs.sensors.stamps import header_stamp_ns

    out = tmp_path / "tracked.mcap"
    shove = {"x": -0.6, "y": 0.0, "z": 0.0}
    calls = [ServiceCall(2.1, "/physics_tracker/predict", {"horizon_s": 1.0, "step_s": 0.25}),
             ServiceCall(2.1, "/physics_tracker/predict", {"horizon_s": 1.0, "step_s": 0.25, "object_id": 1, "delta_linear": shove}),
             ServiceCall(2.1, "/physics_tracker/predict", {"horizon_s": 1.0, "object_id": 7, "delta_linear": shove}),
             ServiceCall(2.1, "/physics_tracker/predict", {"horizon_s": -1.0})]
    rt = ReplayRuntime(push_bag, out, service_calls=calls,
                       overrides={"physics_tracker": {"cameras": CAMERAS, "world.ground_height": TABLE_TOP_Z, "use_segmentation": True,
                                                      "world.device": "cpu", "forces.backend": "cpu"}})
    node = rt.add_node(PhysicsTrackerNode)
    report = rt.run()
    assert not report.errors, report.errors
    with BagReader(out) as reader:
        states = [m for _, m in reader.messages(["/ros_gs/objects"])]
        predicted = [m for _, m in reader.messages(["/ros_gs/objects/predicted"])]
        frames = {t.child_frame_id for _, m in reader.messages(["/tf"]) for t in m.transforms}
    assert len(states) == len(predicted) == 66 and {"object/1", "object/2"} <= frames
    for now, ahead in zip(states, predicted):
        assert header_stamp_ns(ahead) - header_stamp_ns(now) == 500_000_000
        assert [o.id for o in now.objects] == [o.id for o in ahead.objects] == [1, 2]
    box, cyl = states[0].objects
    # MuJoCo's box is 10 x 8 x 6 cm and the cylinder 8 cm across, 10 cm tall: the particles' boxes
    # (2 cm pitch, filled from what three cameras see) come within a particle of that
    assert np.allclose([box.extents.x, box.extents.y, box.extents.z], [0.10, 0.08, 0.06], atol=0.025)
    assert np.allclose([cyl.extents.x, cyl.extents.y, cyl.extents.z], [0.08, 0.08, 0.10], atol=0.025)
    assert "box" in box.description and "cm" in cyl.description and box.particles > 20 and box.gaussians > 20
    mid = states[15].objects[0]  # 0.5 s: the box slides along +x at ~0.8 m/s, and the images correct it
    assert 0.5 < mid.twist.linear.x < 1.1 and mid.correction > 0.0
    measured = states[-1].objects[0].friction
    assert abs(measured - 0.15) < 0.05 and states[-1].objects[1].friction == node.tracker.config.world.friction  # the cylinder never slid
    release = last_contact_s("push", "pusher_paddle", 2.2)
    with BagReader(push_bag) as reader:
        start = reader.start_ns
    after = evaluate_predictions(out, push_bag).summary(since_ns=start + int(release * 1e9))
    print("predictions after the paddle lets go:", after)
    assert after["n"] >= 5 and after["gain_over_best_baseline"] > 3.0
    quiet, shoved, unknown, bad = (r.response for r in report.services)
    assert quiet.ok and shoved.ok and not unknown.ok and not bad.ok
    assert "no tracked object 7" in unknown.message and "horizon" in bad.message
    assert len(quiet.states) == len(shoved.states) == 4
    t0 = header_stamp_ns(quiet.states[0]) - 250_000_000
    assert [header_stamp_ns(s) - t0 for s in shoved.states] == [250_000_000, 500_000_000, 750_000_000, 1_000_000_000]
    x = lambda arr, k: arr.objects[k].pose.position.x  # noqa: E731
    slide = x(quiet.states[-1], 0) - x(shoved.states[-1], 0)
    assert abs(slide - 0.6**2 / (2 * measured * 9.81)) < 0.02, slide
    assert abs(x(quiet.states[-1], 1) - x(shoved.states[-1], 1)) < 0.005  # the cylinder is not touched


def test_objects_that_appear_are_added_and_objects_gone_are_dropped(tmp_path: Path) -> None:
    """The upstream detector first misses the cylinder (as if it were put down at 1 s) and loses
    the box from 1.5 s (as if taken away): the cylinder is added after appear_frames sets, where
    MuJoCo has it, the box dropped drop_after_s after it was last seen, and what stays goes on
    where it was (no jump when the world is rebuilt)."""
    import numpy as np

    from ros_gs.bags.writer import BagWriter
    from ros_gs.sensors.stamps import header_stamp_ns

    full = tmp_path / "push.mcap"
    mujoco_scene_to_bag("push", full, duration_s=3.0, width=160, height=120, camera_rate_hz=30.0, seed=3, progress=False)
    box, late = 1, 2  # instance ids (object index + 1)
    bag = tmp_path / "edited.mcap"
    with BagReader(full) as reader, BagWriter(bag) as writer:
        t0 = reader.start_ns
        for raw, msg in reader.messages():
            if raw.topic.endswith("/segmentation"):
                t = (header_stamp_ns(msg) - t0) * 1e-9
                seg = np.frombuffer(bytes(msg.data), np.uint16).reshape(msg.height, msg.width).copy()
                if t < 0.99:
                    seg[seg == late] = 0
                if t > 1.49:
                    seg[seg == box] = 0
                msg.data = seg.view(np.uint8).reshape(-1)
                writer.write(raw.topic, raw.msgtype, msg, raw.log_ns)
            else:
                writer.write_raw(raw.topic, raw.msgtype, raw.raw, raw.log_ns)
    out = tmp_path / "tracked.mcap"
    rt = ReplayRuntime(bag, out, overrides={"physics_tracker": {"cameras": CAMERAS, "world.ground_height": TABLE_TOP_Z, "use_segmentation": True,
                                                                "prediction_horizon_s": 0.0, "world.device": "cpu", "forces.backend": "cpu"}})
    node = rt.add_node(PhysicsTrackerNode)
    report = rt.run()
    assert not report.errors, report.errors
    assert node.appeared == 1 and node.disappeared == 1 and node.restarts == 0
    with BagReader(out) as reader:
        states = [(header_stamp_ns(m) - t0, {o.id: o for o in m.objects}) for _, m in reader.messages(["/ros_gs/objects"])]
    tracked = lambda i: [t * 1e-9 for t, objs in states if i in objs]  # noqa: E731
    assert abs(tracked(late)[0] - 2 / 30 - 1.0) < 0.02  # seen from 1.0 s, added on the third set in a row
    assert 2.45 < tracked(box)[-1] < 2.55  # last seen at 1.47 s, dropped once unseen for 1 s
    assert set(states[0][1]) == {box} and set(states[-1][1]) == {late}
    gt = tf_ground_truth(full)
    t_last, objs = [(t, objs) for t, objs in states if box in objs][-1]  # the box, through the push as ever
    p, true = objs[box].pose.position, gt.lookup("world", "gt/red_box", t0 + t_last).matrix[:3, 3]
    assert true[0] - gt.lookup("world", "gt/red_box", t0).matrix[0, 3] > 0.25 and abs(p.x - true[0]) < 0.02
    t_added, objs = next((t, objs) for t, objs in states if late in objs)
    p = objs[late].pose.position
    true = gt.lookup("world", "gt/blue_cylinder", t0 + t_added).matrix[:3, 3]
    # the new object's frame sits at its first points' centroid: within a few cm of MuJoCo's origin
    assert np.linalg.norm([p.x - true[0], p.y - true[1]]) < 0.03
    for (_, before), (t, after) in zip(states, states[1:]):  # no jump when the world is rebuilt
        if set(before) != set(after):
            for i in set(before) & set(after):
                a, b = before[i].pose.position, after[i].pose.position
                assert np.linalg.norm([a.x - b.x, a.y - b.y, a.z - b.z]) < 0.005, (t, i)


def test_on_a_moving_camera_the_support_frame_hangs_level_under_the_map(tmp_path: Path) -> None:
    """The orbit's head camera, its pose from the mapper's map -> camera on /tf (camera_poses:
    tf), the map not levelled (world_up: camera): the node's support frame, placed in MuJoCo's
    world by the alignment of the mapper's path, is the table top (z up, at its height), and each
    camera set waits for its pose instead of being lost (issue 17; the tracking itself is not
    judged here: it is poor on one moving camera, see the launch file)."""
    import numpy as np

    from ros_gs.bags.evaluate import tracked_frame_in_world
    from ros_gs.nodes.mapper import MapperNode

    bag, out = tmp_path / "orbit.mcap", tmp_path / "out.mcap"
    # 3 s: the alignment of a shorter (straighter) path leaves its roll about the path free
    mujoco_scene_to_bag("orbit", bag, duration_s=3.0, seed=8, width=160, height=120, num_cameras=1, camera_rate_hz=5.0,
                        progress=False)
    cam = "/cameras/head"
    rt = ReplayRuntime(bag, out, overrides={
        "mapper": {"rgb_topic": f"{cam}/color/image_raw", "depth_topic": f"{cam}/depth/image_raw", "info_topic": f"{cam}/color/camera_info"},
        "physics_tracker": {"cameras": [cam], "world_frame": "map", "camera_poses": "tf", "world_up": "camera"}})
    rt.add_node(MapperNode)
    tracker = rt.add_node(PhysicsTrackerNode)
    report = rt.run()
    assert not report.errors, report.errors
    lost = [k for k in report.skipped if "TransformError" in k or any("pose" in str(part) for part in k)]
    assert tracker.frames >= 10 and not lost, (tracker.frames, report.skipped)  # no set lost for want of its pose
    T = tracked_frame_in_world(out, bag)
    assert T is not None
    assert np.degrees(np.arccos(np.clip(T[2, 2], -1, 1))) < 2.0  # its z is up
    assert abs(T[2, 3] - TABLE_TOP_Z) < 0.01  # at the table top's height
