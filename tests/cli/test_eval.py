"""`ros-gs eval`: ATE of published odometry against bag ground truth, independent of frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from ros_gs.bags.writer import BagWriter
from ros_gs.cli.main import app
from ros_gs.sensors.poses import matrix_to_pose, matrix_to_pose_stamped
from ros_gs.sensors.stamps import make_header


def _write(tmp: Path, noise: float) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    frame = np.eye(4)  # the estimate lives in another frame: rotated and shifted
    frame[:3, :3] = Rotation.from_euler("xyz", [10, -40, 70], degrees=True).as_matrix()
    frame[:3, 3] = [1.0, -2.0, 0.5]
    gt_bag, est_bag = tmp / "gt.mcap", tmp / "est.mcap"
    with BagWriter(gt_bag) as g, BagWriter(est_bag) as e:
        for i in range(50):
            t = 1_000_000_000 + i * 33_000_000
            T = np.eye(4)
            T[:3, :3] = Rotation.from_rotvec([0, 0.02 * i, 0]).as_matrix()
            T[:3, 3] = [0.02 * i, 0.01 * np.sin(i / 5), 0.0]
            g.write("/ground_truth/pose", "geometry_msgs/msg/PoseStamped",
                    matrix_to_pose_stamped(g.factory, T, make_header(g.factory, t, "world")), t)
            Te = frame @ T
            Te[:3, 3] += rng.normal(0, noise, 3)
            pose = e.factory("geometry_msgs/msg/PoseWithCovariance", pose=matrix_to_pose(e.factory, Te))
            e.write("/ros_gs/odom", "nav_msgs/msg/Odometry",
                    e.factory("nav_msgs/msg/Odometry", header=make_header(e.factory, t, "map"), child_frame_id="cam", pose=pose), t)
    return est_bag, gt_bag


def test_eval_reports_the_noise_not_the_frame(tmp_path: Path) -> None:
    est, gt = _write(tmp_path, 0.01)
    png = tmp_path / "traj.png"
    r = CliRunner().invoke(app, ["eval", str(est), str(gt), "--plot", str(png)])
    assert r.exit_code == 0, r.output
    ate = float(r.output.split("ATE RMSE ")[1].split(" cm")[0])
    assert 1.2 < ate < 2.0  # sqrt(3) x 1 cm noise, minus what the alignment absorbs; the frame offset is metres
    assert "50 of 50 poses matched" in r.output
    assert Image.open(png).size[0] > 500


def test_eval_without_matching_stamps_is_a_clear_error(tmp_path: Path) -> None:
    est, gt = _write(tmp_path, 0.0)
    r = CliRunner().invoke(app, ["eval", str(est), str(gt), "--gt-topic", "/nothing"])
    assert r.exit_code != 0 and "need 3 or more" in str(r.exception)


def test_eval_from_ground_truth_tf(tmp_path: Path) -> None:
    """A bag with ground truth as TF (world -> gt/rig) and a static mount (rig -> lidar): the
    estimate of ``lidar`` is judged against gt/rig composed with the mount, in any frame."""
    from ros_gs.sensors.poses import matrix_to_transform_stamped

    rng = np.random.default_rng(1)
    mount = np.eye(4)
    mount[:3, :3] = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    mount[:3, 3] = [0.1, 0.0, 0.3]
    gt_bag, est_bag = tmp_path / "gt.mcap", tmp_path / "est.mcap"
    with BagWriter(gt_bag) as g, BagWriter(est_bag) as e:
        m = g.factory
        g.write("/tf_static", "tf2_msgs/msg/TFMessage", m("tf2_msgs/msg/TFMessage", transforms=[
            matrix_to_transform_stamped(m, mount, make_header(m, 0, "rig"), "lidar")]), 1)
        first = None
        for i in range(40):
            t = 1_000_000_000 + i * 100_000_000
            T = np.eye(4)
            T[:3, :3] = Rotation.from_rotvec([0, 0, 0.05 * i]).as_matrix()
            T[:3, 3] = [0.1 * i, 0.02 * i * i / 40, 1.0]
            g.write("/ground_truth/tf", "tf2_msgs/msg/TFMessage", m("tf2_msgs/msg/TFMessage", transforms=[
                matrix_to_transform_stamped(m, T, make_header(m, t, "world"), "gt/rig")]), t)
            lidar = T @ mount
            first = lidar if first is None else first
            Te = np.linalg.inv(first) @ lidar  # odometry in the first scan's frame
            Te[:3, 3] += rng.normal(0, 0.005, 3)
            pose = e.factory("geometry_msgs/msg/PoseWithCovariance", pose=matrix_to_pose(e.factory, Te))
            e.write("/ros_gs/odom", "nav_msgs/msg/Odometry", e.factory(
                "nav_msgs/msg/Odometry", header=make_header(e.factory, t, "odom"), child_frame_id="lidar", pose=pose), t)
    r = CliRunner().invoke(app, ["eval", str(est_bag), str(gt_bag)])
    assert r.exit_code == 0, r.output
    ate = float(r.output.split("ATE RMSE ")[1].split(" cm")[0])
    assert "40 of 40 poses matched" in r.output and 0.5 < ate < 1.0, r.output  # sqrt(3) x 0.5 cm noise


def test_rotation_error_ignores_what_no_image_shows() -> None:
    """Symmetric shapes, judged modulo their symmetry (the uniformly coloured object looks the
    same): a cylinder turned about its axis is right, tilted 10 deg is 10 deg off; a box turned
    half about one of its axes is right, a 30 deg yaw is 30 deg off; a sphere has no rotation
    to judge; the mug (its handle) counts whole."""
    import numpy as np
    from scipy.spatial.transform import Rotation

    from ros_gs.bags.evaluate import _symmetric_rotation_error

    R0 = Rotation.from_euler("xyz", [20, -35, 50], degrees=True).as_matrix()  # its first true orientation
    eye = np.eye(3)[None]
    about = lambda axis, deg: Rotation.from_rotvec(np.radians(deg) * axis).as_matrix()[None]  # noqa: E731 (world frame)
    z = R0[:, 2]  # the cylinder's axis in the world
    assert _symmetric_rotation_error(about(z, 70), eye, R0, "cylinder")[0] < 1e-4  # arccos near 1: ~1e-6 deg of rounding
    assert abs(_symmetric_rotation_error(about(R0[:, 0], 10), eye, R0, "cylinder")[0] - 10) < 1e-6
    assert _symmetric_rotation_error(about(R0[:, 1], 180), eye, R0, "box")[0] < 1e-4  # arccos near 1: ~1e-6 deg of rounding
    assert abs(_symmetric_rotation_error(about(z, 30), eye, R0, "box")[0] - 30) < 1e-6
    assert abs(_symmetric_rotation_error(about(R0[:, 1], 180), eye, R0, "mug")[0] - 180) < 1e-6
    assert np.isnan(_symmetric_rotation_error(about(z, 30), eye, R0, "sphere")[0])
