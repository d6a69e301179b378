"""Evaluate published odometry against ground truth stored in bags (`ros-gs eval`).

Poses are matched by header stamp (exactly, as the nodes stamp odometry with the sensor stamp);
ground truth comes from ``geometry_msgs/PoseStamped`` or ``nav_msgs/Odometry`` topics, or, for a
bag without that topic, from ground-truth TF (``/ground_truth/tf``, as ``ros-gs bag from-mujoco``
writes it: ``world -> gt/<body>``): the estimate's child frame is followed up its static
``/tf_static`` chain to a body ``B`` with a ``gt/B`` frame, and its true pose is
``world -> gt/B`` at the stamp times ``B -> child``.  The
estimate and the truth may live in different frames (a mapper's map frame is its first camera),
so the ATE uses the best rigid alignment (Umeyama).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ros_gs.bags.reader import BagReader
from ros_gs.errors import DatasetError, TransformError
from ros_gs.mapping.evaluation import ate_rmse
from ros_gs.sensors.poses import pose_msg_to_matrix
from ros_gs.sensors.stamps import header_stamp_ns
from ros_gs.sensors.tf_buffer import TfBuffer


@dataclass
class TrajectoryEval:
    matched: int
    estimated: int
    ate_rmse_m: float
    path_m: float
    est_aligned: np.ndarray  # (N, 4, 4)
    gt: np.ndarray  # (N, 4, 4)
    T_gt_est: np.ndarray  # (4, 4) the rigid alignment: the estimate's frame (e.g. the map) in the ground truth's


def _poses(bag: Path | str, topic: str) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    with BagReader(bag) as reader:
        for _, msg in reader.messages([topic]):
            pose = msg.pose.pose if hasattr(msg, "child_frame_id") else msg.pose  # Odometry or PoseStamped
            out[header_stamp_ns(msg)] = pose_msg_to_matrix(pose)
    return out


def tf_ground_truth(bag: Path | str, topics: tuple[str, ...] = ("/ground_truth/tf", "/tf_static")) -> TfBuffer:
    """Every transform of ``topics`` in one TF buffer whose cache spans the whole bag (so poses
    can be looked up at any stamp afterwards); ``/tf_static`` is added as static."""
    with BagReader(bag) as reader:
        spans = [(s.first_ns, s.last_ns) for s in reader.summary() if s.topic in topics and s.count]
        cache = max((b - a for a, b in spans), default=0) + 1_000_000_000
        tf = TfBuffer(cache_ns=cache)
        for raw, msg in reader.messages(list(topics)):
            tf.add_tf_message(msg, static=raw.topic == "/tf_static")
    return tf


def first_pose_errors(est: list[np.ndarray], gt: list[np.ndarray]) -> np.ndarray:
    """Position error of each estimated pose after moving the estimate's frame so that its
    first pose coincides with the first ground-truth pose: how odometry that starts in its own
    frame (the first scan's) is judged."""
    align = gt[0] @ np.linalg.inv(est[0])
    return np.array([np.linalg.norm((align @ e)[:3, 3] - g[:3, 3]) for e, g in zip(est, gt)])


def _child_frame(bag: Path | str, topic: str) -> str | None:
    with BagReader(bag) as reader:
        for _, msg in reader.messages([topic]):
            return str(getattr(msg, "child_frame_id", "")) or None
    return None


def _tf_poses(gt_bag: Path | str, child: str, stamps: list[int]) -> dict[int, np.ndarray]:
    """Ground truth of frame ``child`` from the bag's ground-truth TF (module docstring)."""
    tf = tf_ground_truth(gt_bag)
    frames = set(tf.frames())
    body = child
    while body is not None and f"gt/{body}" not in frames:
        body = tf.parent(body)
    if body is None:
        return {}
    try:
        mount = tf.lookup(body, child).matrix
    except TransformError:
        return {}
    out = {}
    for s in stamps:
        try:
            out[s] = tf.lookup("world", f"gt/{body}", s).matrix @ mount
        except TransformError:  # a stamp outside the ground truth: not matched
            continue
    return out


def evaluate_odometry(odom_bag: Path | str, gt_bag: Path | str, odom_topic: str = "/ros_gs/odom",
                      gt_topic: str = "/ground_truth/pose") -> TrajectoryEval:
    est = _poses(odom_bag, odom_topic)
    gt = _poses(gt_bag, gt_topic)
    if not gt:  # no ground-truth pose topic: the ground-truth TF of the estimate's frame, if any
        child = _child_frame(odom_bag, odom_topic)
        gt = _tf_poses(gt_bag, child, sorted(est)) if child else {}
        gt_topic = f"{gt_topic} or /ground_truth/tf ({child})"
    stamps = sorted(set(est) & set(gt))
    if len(stamps) < 3:
        raise DatasetError(f"only {len(stamps)} stamps of {odom_topic} ({len(est)} messages) match {gt_topic} "
                           f"({len(gt)} messages): need 3 or more")
    G = np.array([gt[s] for s in stamps])
    rmse, aligned = ate_rmse([est[s] for s in stamps], G)
    path = float(np.linalg.norm(np.diff(G[:, :3, 3], axis=0), axis=1).sum())
    return TrajectoryEval(len(stamps), len(est), rmse, path, aligned, G, aligned[0] @ np.linalg.inv(est[stamps[0]]))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, png: Path | str) -> Path:
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    _pyplot().close(fig)
    return png


def plot_trajectories(result: TrajectoryEval, png: Path | str, title: str = "") -> Path:
    """Top view (x-y) and side view (x-z) of the aligned estimate over the ground truth."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    e, g = result.est_aligned[:, :3, 3], result.gt[:, :3, 3]
    for ax, (i, j, name) in zip(axes, ((0, 1, "x-y"), (0, 2, "x-z"))):
        ax.plot(g[:, i], g[:, j], "k-", lw=1.5, label="ground truth")
        ax.plot(e[:, i], e[:, j], "r-", lw=1, label="estimate (aligned)")
        ax.set_title(name)
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best")
    fig.suptitle(title or f"ATE {result.ate_rmse_m * 100:.2f} cm over {result.path_m:.2f} m ({result.matched} poses)")
    return _save(fig, png)


@dataclass
class ObjectTrackEval:
    """Tracked objects against ground truth: motion since the first matched stamp."""

    ids: list[int]  # object ids (object/<id>)
    names: list[str]  # ground-truth object of each id (the nearest at the first stamp, one to one)
    stamps: np.ndarray  # (T,) ns
    position_error_m: np.ndarray  # (T, K) |object origin carried by the estimated motion - true origin|
    rotation_error_deg: np.ndarray  # (T, K) angle of (R_est(t) R_est(0)^T)^T R_gt(t) R_gt(0)^T, modulo the shape's symmetry (see _symmetric_rotation_error); NaN for a sphere
    moved_m: np.ndarray  # (K,) true displacement at the last stamp


def _gt_objects(gt_bag: Path | str) -> list[dict]:
    """The true objects of a ``ros-gs bag from-mujoco`` bag (its /ground_truth/objects: name,
    shape, size, ...)."""
    import json

    with BagReader(gt_bag) as reader:
        payloads = [m.data for _, m in reader.messages(["/ground_truth/objects"])]
    if not payloads:
        raise DatasetError(f"{gt_bag} has no /ground_truth/objects (not a `ros-gs bag from-mujoco` bag?)")
    return list(json.loads(payloads[0])["objects"])


def _gt_object_names(gt_bag: Path | str) -> list[str]:
    return [o["name"] for o in _gt_objects(gt_bag)]


_HALF_TURNS = np.array([np.eye(3), np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])])


def _angle_deg(R: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip((np.trace(R, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)))


def _symmetric_rotation_error(r_est: np.ndarray, r_gt: np.ndarray, R0: np.ndarray, shape: str) -> np.ndarray:
    """(T,) degrees between the estimated and true motions since the first stamp (r_*: (T, 3, 3)),
    up to what no image of the uniformly coloured shape can tell apart (R0: its true first
    orientation): a sphere's is NaN (every rotation looks alike), a cylinder's or capsule's only
    the tilt of its axis (local z) counts, a box's or ellipsoid's half-turns about its own axes
    look alike; other shapes (the mug with its handle) count whole."""
    if shape == "sphere":
        return np.full(len(r_est), np.nan)
    if shape in ("cylinder", "capsule"):
        axis = R0[:, 2]
        a, b = r_est @ axis, r_gt @ axis
        return np.degrees(np.arccos(np.clip(np.einsum("ti,ti->t", a, b), -1.0, 1.0)))
    group = _HALF_TURNS if shape in ("box", "ellipsoid") else _HALF_TURNS[:1]
    # the true motion could as well have been r_gt R0 G R0^T for any G of the shape's symmetries
    alike = np.einsum("ij,gjk,lk->gil", R0, group, R0)
    rel = np.einsum("tji,tjk,gkl->tgil", r_est, r_gt, alike)
    return _angle_deg(rel).min(axis=1)


def _match_tracked(tracked: dict[int, dict[int, np.ndarray]], names: list[str], gt, max_m: float = 0.1):
    """(ids, {id: name}): each tracked id paired with the true object nearest to its first pose."""
    from scipy.optimize import linear_sum_assignment

    ids = sorted(tracked)
    cost = np.full((len(ids), len(names)), 1e9)
    for a, i in enumerate(ids):
        s0 = min(tracked[i])
        p = tracked[i][s0][:3, 3]
        for b, name in enumerate(names):
            try:
                cost[a, b] = np.linalg.norm(gt.lookup("world", f"gt/{name}", s0).matrix[:3, 3] - p)
            except TransformError:
                pass
    rows, cols = linear_sum_assignment(cost)
    pairs = {ids[r]: names[c] for r, c in zip(rows, cols) if cost[r, c] < max_m}
    return sorted(pairs), pairs


def tracked_frame_in_world(tracked_bag: Path | str, gt_bag: Path | str, prefix: str = "object/") -> np.ndarray | None:
    """``T_world_frame`` of the frame the objects are tracked in, when it is not MuJoCo's world:
    the camera moved and the graph mapped it (the objects live in a support frame under the
    mapper's map, on the bag's /tf_static): the map is placed in the world by the rigid alignment
    of the mapper's camera path to the true one (as the ATE), then the support frame in the map.
    None when the objects are tracked in ``world``."""
    with BagReader(tracked_bag) as reader:
        parent = next((str(t.header.frame_id) for _, m in reader.messages(["/tf"]) for t in m.transforms
                       if str(t.child_frame_id).startswith(prefix)), None)
        map_frame = next((str(m.header.frame_id) for _, m in reader.messages(["/ros_gs/odom"])), None)
        static = TfBuffer()
        for _, m in reader.messages(["/tf_static"]):
            static.add_tf_message(m, static=True)
    if parent is None or parent == "world":
        return None
    if map_frame is None:
        raise DatasetError(f"{tracked_bag}: objects are tracked in {parent!r}, and no /ros_gs/odom places it in the world")
    try:
        return evaluate_odometry(tracked_bag, gt_bag).T_gt_est @ static.lookup(map_frame, parent).matrix
    except TransformError as err:
        raise DatasetError(f"{tracked_bag}: {parent!r} is not under {map_frame!r} on /tf_static ({err})") from None


def evaluate_objects(tracked_bag: Path | str, gt_bag: Path | str, prefix: str = "object/",
                     T_world_tracked: np.ndarray | None = None) -> ObjectTrackEval:
    """Objects published on /tf as ``<prefix><id>`` (``physics_tracker``) against the
    ground-truth TF ``world -> gt/<name>`` of ``ros-gs bag from-mujoco`` bags.  Each tracked id
    is the ground-truth object nearest to it at the first stamp they share (one to one, within
    10 cm: ids found in sensor data need not be MuJoCo's).  The tracker's body frames start where its
    first points were, so motions since the first matched stamp are compared, not poses: the true
    object origin at the first stamp, moved by the estimated motion, against the true origin.  ``T_world_tracked``
    places the tracked frame in the world when it is another (see :func:`tracked_frame_in_world`)."""
    objects = _gt_objects(gt_bag)
    names = [o["name"] for o in objects]
    shapes = {o["name"]: o.get("shape", "") for o in objects}
    tracked: dict[int, dict[int, np.ndarray]] = {}
    with BagReader(tracked_bag) as reader:
        for _, msg in reader.messages(["/tf"]):
            for t in msg.transforms:
                child = str(t.child_frame_id)
                if child.startswith(prefix) and child[len(prefix):].isdigit():
                    T = pose_msg_to_matrix(t.transform)
                    tracked.setdefault(int(child[len(prefix):]), {})[header_stamp_ns(t)] = T if T_world_tracked is None else T_world_tracked @ T
    gt = tf_ground_truth(gt_bag)
    ids, matched = _match_tracked(tracked, names, gt)
    if not ids:
        raise DatasetError(f"{tracked_bag}: no /tf frames {prefix}<id> near any of the {len(names)} ground-truth objects")
    stamps = sorted(set.intersection(*(set(tracked[i]) for i in ids)))
    truths, kept = [], []
    for s in stamps:
        try:
            truth = [gt.lookup("world", f"gt/{matched[i]}", s).matrix for i in ids]
        except TransformError:
            continue
        kept.append(s)
        truths.append(truth)
    if len(kept) < 2:
        raise DatasetError(f"only {len(kept)} tracked stamps have ground truth: need 2 or more")
    G = np.array(truths)  # (T, K, 4, 4)
    E = np.array([[tracked[i][s] for i in ids] for s in kept])
    # follow one material point: the true object origin at the first stamp, carried by the
    # estimate's motion, against where the object origin truly is (the tracker's body frame has
    # another origin, so comparing origins would count rotation as translation)
    p0 = np.einsum("kij,kj->ki", np.linalg.inv(E[0]), np.c_[G[0, :, :3, 3], np.ones(len(ids))])
    carried = np.einsum("tkij,kj->tki", E, p0)[..., :3]
    dpos = carried - G[:, :, :3, 3]
    r_est = np.einsum("tkij,kjl->tkil", E[:, :, :3, :3], np.transpose(E[0, :, :3, :3], (0, 2, 1)))
    r_gt = np.einsum("tkij,kjl->tkil", G[:, :, :3, :3], np.transpose(G[0, :, :3, :3], (0, 2, 1)))
    rot = np.stack([_symmetric_rotation_error(r_est[:, k], r_gt[:, k], G[0, k, :3, :3], shapes.get(matched[i], ""))
                    for k, i in enumerate(ids)], axis=1)
    return ObjectTrackEval(ids, [matched[i] for i in ids], np.array(kept), np.linalg.norm(dpos, axis=2),
                           rot, np.linalg.norm(G[-1, :, :3, 3] - G[0, :, :3, 3], axis=1))


@dataclass
class PredictionEval:
    """Predicted object states (``/ros_gs/objects/predicted``) against ground truth at the time
    they predict, beside two baselines from the same tracked states (``/ros_gs/objects``): the
    object stays where it is, and it keeps its velocity (the tracked motion over the last frame).
    One row per (prediction, object): the error of the material point that was the true object
    origin at the first stamp (as :func:`evaluate_objects`)."""

    horizon_s: float
    ids: list[int]
    names: list[str]
    source_ns: np.ndarray  # (N,) the stamp each prediction was made at
    target_ns: np.ndarray  # (N,) the stamp it predicts
    object: np.ndarray  # (N,) index into ids
    moved_m: np.ndarray  # (N,) how far the object truly moved from source to target
    predicted_m: np.ndarray  # (N,) position error of the prediction
    stays_m: np.ndarray  # (N,) ... of "it stays where it is"
    velocity_m: np.ndarray  # (N,) ... of "it keeps its velocity"
    true_xyz: np.ndarray  # (N, 3) where that point truly is at the target stamp (world)
    predicted_xyz: np.ndarray  # (N, 3) where the prediction puts it

    def summary(self, moving_m: float = 0.01, since_ns: int | None = None) -> dict:
        """Medians over the rows where the object truly moved more than ``moving_m`` between the
        prediction and its target (and, given ``since_ns``, predictions made from that stamp on)."""
        sel = self.moved_m > moving_m
        if since_ns is not None:
            sel &= self.source_ns >= since_ns
        if not sel.any():
            return {"n": 0, "predicted_m": None, "stays_m": None, "velocity_m": None, "gain_over_best_baseline": None}
        out = {"n": int(sel.sum()), "predicted_m": float(np.median(self.predicted_m[sel])),
               "stays_m": float(np.median(self.stays_m[sel])), "velocity_m": float(np.median(self.velocity_m[sel]))}
        out["gain_over_best_baseline"] = min(out["stays_m"], out["velocity_m"]) / max(out["predicted_m"], 1e-9)
        return out


def _object_states(bag: Path | str, topic: str) -> dict[int, dict[int, np.ndarray]]:
    """id -> stamp -> pose (4, 4) of an ObjectStateArray topic."""
    out: dict[int, dict[int, np.ndarray]] = {}
    with BagReader(bag) as reader:
        for _, msg in reader.messages([topic]):
            s = header_stamp_ns(msg)
            for o in msg.objects:
                out.setdefault(int(o.id), {})[s] = pose_msg_to_matrix(o.pose)
    return out


def evaluate_predictions(tracked_bag: Path | str, gt_bag: Path | str, states_topic: str = "/ros_gs/objects",
                         predicted_topic: str = "/ros_gs/objects/predicted") -> PredictionEval:
    """The ``physics_tracker``'s predictions against the ground-truth TF of a ``ros-gs bag
    from-mujoco`` bag (objects paired as in :func:`evaluate_objects`)."""
    names = _gt_object_names(gt_bag)
    now, ahead = _object_states(tracked_bag, states_topic), _object_states(tracked_bag, predicted_topic)
    if not now or not ahead:
        raise DatasetError(f"{tracked_bag} has no {states_topic} or no {predicted_topic} (prediction_horizon_s 0?)")
    gt = tf_ground_truth(gt_bag)
    ids, matched = _match_tracked(now, names, gt)
    if not ids:
        raise DatasetError(f"{tracked_bag}: no tracked object near any of the {len(names)} ground-truth objects")
    stamps = sorted(set.intersection(*(set(now[i]) for i in ids)))
    targets = sorted(set.intersection(*(set(ahead[i]) for i in ids)))
    horizon = int(np.median(np.subtract(targets[: len(stamps)], stamps[: len(targets)]))) if targets else 0
    if horizon <= 0:
        raise DatasetError("the predictions are not stamped ahead of the states they start from")

    def truth(name, s):
        return gt.lookup("world", f"gt/{name}", s).matrix

    first = {i: min(now[i]) for i in ids}
    anchor = {}  # id -> the material point (body frame) that was the true origin at the first stamp
    for i in ids:
        E0, G0 = now[i][first[i]], truth(matched[i], first[i])
        anchor[i] = (np.linalg.inv(E0) @ np.r_[G0[:3, 3], 1.0])[:3]
    point = lambda T, i: T[:3, :3] @ anchor[i] + T[:3, 3]  # noqa: E731
    rows = []
    for n, t in enumerate(stamps):
        target = t + horizon
        if target not in ahead[ids[0]]:
            continue
        prev = stamps[n - 1] if n else None
        for k, i in enumerate(ids):
            try:
                g_t, g_T = truth(matched[i], t)[:3, 3], truth(matched[i], target)[:3, 3]
            except TransformError:
                continue
            p_now = point(now[i][t], i)
            vel = (p_now - point(now[i][prev], i)) / ((t - prev) * 1e-9) if prev is not None else np.zeros(3)
            p_ahead = point(ahead[i][target], i)
            rows.append((t, target, k, np.linalg.norm(g_T - g_t), np.linalg.norm(p_ahead - g_T),
                         np.linalg.norm(p_now - g_T), np.linalg.norm(p_now + vel * horizon * 1e-9 - g_T), *g_T, *p_ahead))
    if not rows:
        raise DatasetError("no prediction has ground truth at the time it predicts")
    R = np.array(rows)
    return PredictionEval(horizon * 1e-9, ids, [matched[i] for i in ids], R[:, 0].astype(np.int64), R[:, 1].astype(np.int64),
                          R[:, 2].astype(np.int64), R[:, 3], R[:, 4], R[:, 5], R[:, 6], R[:, 7:10], R[:, 10:13])


def plot_object_errors(result: ObjectTrackEval, png: Path | str) -> Path:
    """Position and rotation error of each tracked object over time."""
    plt = _pyplot()
    t = (result.stamps - result.stamps[0]) * 1e-9
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for k, name in enumerate(result.names):
        axes[0].plot(t, result.position_error_m[:, k] * 100, label=f"{name} (moved {result.moved_m[k] * 100:.1f} cm)")
        axes[1].plot(t, result.rotation_error_deg[:, k], label=name)
    axes[0].set_ylabel("position error (cm)")
    axes[1].set_ylabel("rotation error (deg)")
    for ax in axes:
        ax.set_xlabel("time (s)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("tracked objects vs ground truth (motion since the first frame)")
    return _save(fig, png)
