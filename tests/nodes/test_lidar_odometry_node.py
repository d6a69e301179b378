"""The lidar_odometry node under the replay runtime on a MuJoCo walkthrough bag: one odometry
message per scan with the scan's stamp, poses that follow the ground truth (rig pose composed
with the static rig -> lidar transform), and the gyroscope rotation prior in use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ros_gs.bags.evaluate import first_pose_errors, tf_ground_truth
from ros_gs.bags.reader import BagReader
from ros_gs.runtime.replay import ReplayRuntime
from ros_gs.sensors.poses import pose_msg_to_matrix
from ros_gs.sensors.stamps import header_stamp_ns

INDOOR = Path(__file__).resolve().parents[2] / "config" / "lidar_odometry_indoor.yaml"


@pytest.fixture(scope="module")
def walkthrough_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mujoco")
    from ros_gs.bags.from_mujoco import mujoco_scene_to_bag

    out = tmp_path_factory.mktemp("bags") / "walk.mcap"
    mujoco_scene_to_bag("walkthrough", out, duration_s=4.0, num_cameras=1, progress=False)
    return out


@pytest.mark.parametrize("imu", [True, False])
def test_lidar_odometry_node_on_walkthrough(walkthrough_bag: Path, tmp_path: Path, imu: bool) -> None:
    from ros_gs.nodes.lidar_odometry import LidarOdometryNode

    out = tmp_path / "odom.mcap"
    rt = ReplayRuntime(walkthrough_bag, out, param_files=[INDOOR],
                       overrides={"lidar_odometry": {"imu_topic": "/imu/data" if imu else ""}})
    node = rt.add_node(LidarOdometryNode)
    report = rt.run()
    assert not report.errors and not report.skipped, (report.errors, report.skipped)
    with BagReader(walkthrough_bag) as reader:
        scans = [header_stamp_ns(m) for _, m in reader.messages(["/lidar/points"])]
    with BagReader(out) as reader:
        odom = [m for _, m in reader.messages(["/ros_gs/odom"])]
    assert [header_stamp_ns(m) for m in odom] == scans and len(scans) >= 30
    tf = tf_ground_truth(walkthrough_bag)
    rig_lidar = tf.lookup("rig", "lidar").matrix  # static mount
    gt = [tf.lookup("world", "gt/rig", s).matrix @ rig_lidar for s in scans]
    est = [pose_msg_to_matrix(m.pose.pose) for m in odom]
    err = first_pose_errors(est, gt)  # odom frame = the first scan's lidar frame
    ate = float(np.sqrt(np.mean(err ** 2)))
    travel = sum(np.linalg.norm(b[:3, 3] - a[:3, 3]) for a, b in zip(gt, gt[1:]))
    lio = node.lio
    print(f"imu={imu}: {len(scans)} scans, {travel:.2f} m, ATE {ate * 100:.2f} cm, "
          f"IMU-propagated guesses {lio.imu_predicted}, gyro {lio.gyro_predicted}")
    assert travel > 1.0
    assert ate < 0.02, ate  # issue requirement for the walkthrough: < 2 cm
    if imu:  # gyro rotation until the fusion is initialised, then the fused IMU for every scan
        init = node.params.imu.init_scans
        assert lio.gyro_predicted == init - 1 and lio.imu_predicted == len(scans) - init
        assert lio.fusion.updates == len(scans) - init + 1 and node.imu_without_tf == 0
    else:
        assert lio.imu_predicted == lio.gyro_predicted == 0


def test_bad_scans_and_imu_samples_are_counted_skips(tmp_path: Path) -> None:
    """A scan without x/y/z, a scan from the future, a scan older than the last, an oversized scan, a NaN gyro sample
    and ten implausible accelerometer samples are each a counted skip; the node keeps publishing
    for the good scans."""
    from ros_gs.bags.writer import BagWriter
    from ros_gs.nodes.lidar_odometry import LidarOdometryNode
    from ros_gs.sensors.imu import ImuSample, imu_to_msg
    from ros_gs.sensors.pointcloud2 import array_to_pointcloud2

    rng = np.random.default_rng(0)
    good = np.zeros(3000, np.dtype([("x", np.float32), ("y", np.float32), ("z", np.float32)]))
    pts = rng.uniform(-5, 5, (3000, 3))
    pts[:1000, 2] = -1.0  # a floor and two walls: enough structure to register
    pts[1000:2000, 0] = 4.0
    pts[2000:, 1] = 3.0
    good["x"], good["y"], good["z"] = pts.T
    no_xyz = np.zeros(10, np.dtype([("intensity", np.float32)]))
    bag = tmp_path / "bad.mcap"
    t0 = 1_000_000_000
    with BagWriter(bag) as w:
        make = w.factory

        def scan(cloud, t, log=None):
            w.write("/lidar/points", "sensor_msgs/msg/PointCloud2", array_to_pointcloud2(make, cloud, t, "lidar"), log or t)

        scan(good, t0)
        scan(no_xyz, t0 + 100_000_000)
        scan(good, t0 + 3600 * 10**9, log=t0 + 120_000_000)  # stamped an hour ahead: must not make the next "old"
        scan(good, t0 + 200_000_000)
        scan(good, t0 + 150_000_000, log=t0 + 250_000_000)  # arrives later, stamped earlier: time went backwards
        scan(np.tile(good, 2), t0 + 300_000_000)  # 6000 points > max_points below
        imu = imu_to_msg(make, ImuSample(t0 + 10_000_000, "imu", None, np.zeros(3), np.zeros(3)))
        imu.angular_velocity.x = float("nan")  # a corrupt sample from the driver
        w.write("/imu/data", "sensor_msgs/msg/Imu", imu, t0 + 10_000_000)
        for k in range(10):  # implausible: 1e6 m/s^2 (it once put the odometry 19,645 km off)
            imu = imu_to_msg(make, ImuSample(t0 + 11_000_000 + k * 100_000, "imu", None, np.zeros(3), [1e6, 0.0, 9.81]))
            w.write("/imu/data", "sensor_msgs/msg/Imu", imu, t0 + 11_000_000 + k * 100_000)
        # a good sample, but no TF links "imu" to "lidar": the scans go on without the IMU, counted
        imu = imu_to_msg(make, ImuSample(t0 + 20_000_000, "imu", None, np.zeros(3), [0.0, 0.0, 9.81]))
        w.write("/imu/data", "sensor_msgs/msg/Imu", imu, t0 + 20_000_000)
    rt = ReplayRuntime(bag, tmp_path / "out.mcap", overrides={"lidar_odometry": {"max_points": 5000, "lidar": {"min_range": 0.1}}})
    node = rt.add_node(LidarOdometryNode)
    report = rt.run()
    assert not report.errors, report.errors
    assert sum(report.skipped.values()) == 15, report.skipped
    assert node.scans == 2 and node.imu_without_tf == 1  # the first scan came before any IMU sample
    with BagReader(tmp_path / "out.mcap") as reader:
        odom = [m for _, m in reader.messages(["/ros_gs/odom"])]
    assert [header_stamp_ns(m) for m in odom] == [t0, t0 + 200_000_000]
    assert np.allclose(pose_msg_to_matrix(odom[1].pose.pose), np.eye(4), atol=1e-3)  # the same scan: no motion


def test_lidar_gaussian_map_on_walkthrough(walkthrough_bag: Path, tmp_path: Path) -> None:
    """The node's Gaussian map of the walkthrough room lies on MuJoCo's own geometry (signed
    distance to the scene's geoms, the independent ground truth), covers what the LiDAR saw,
    goes out as a PointCloud2 with the Gaussian fields and is saved as a PLY on request."""
    import mujoco
    from scipy.spatial import cKDTree

    from ros_gs.gaussians.ply import read_ply
    from ros_gs.nodes.lidar_odometry import LidarOdometryNode
    from ros_gs.runtime.replay import ServiceCall
    from ros_gs.sensors.pointcloud2 import pointcloud2_to_array
    from ros_gs.sim import geometry as G
    from ros_gs.sim.scenes import build_scene

    saved = tmp_path / "lidar_map"
    rt = ReplayRuntime(walkthrough_bag, tmp_path / "out.mcap", param_files=[INDOOR],
                       service_calls=[ServiceCall(3.95, "/lidar_odometry/save_map", {"path": str(saved)})])
    node = rt.add_node(LidarOdometryNode)
    report = rt.run()
    assert not report.errors and not report.skipped, (report.errors, report.skipped)
    response = report.services[0].response
    assert response.ok and read_ply(saved / "map.ply").num_gaussians == response.num_gaussians > 5000
    with BagReader(tmp_path / "out.mcap") as reader:
        clouds = [m for _, m in reader.messages(["/ros_gs/lidar/map_points"])]
    assert clouds and {"x", "rgb", "opacity", "scale_x", "rot_w"} <= set(pointcloud2_to_array(clouds[-1]).dtype.names)

    tf = tf_ground_truth(walkthrough_bag)
    rig_lidar = tf.lookup("rig", "lidar").matrix
    with BagReader(walkthrough_bag) as reader:
        scans = [(header_stamp_ns(m), pointcloud2_to_array(m)) for _, m in reader.messages(["/lidar/points"])]
    T_world_odom = tf.lookup("world", "gt/rig", scans[0][0]).matrix @ rig_lidar  # odom = first scan's frame
    mu = node.mapper.map.means.numpy().astype(np.float64) @ T_world_odom[:3, :3].T + T_world_odom[:3, 3]
    model = mujoco.MjModel.from_xml_string(build_scene("walkthrough", num_cameras=0).xml)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    shapes = {0: "plane", 2: "sphere", 3: "capsule", 4: "ellipsoid", 5: "cylinder", 6: "box"}
    dist = np.full(len(mu), np.inf)
    for g in range(model.ngeom):
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = data.geom_xmat[g].reshape(3, 3), data.geom_xpos[g]
        dist = np.minimum(dist, np.abs(G.sdf(shapes[int(model.geom_type[g])], model.geom_size[g], T, mu)))
    med, p90 = np.percentile(dist, [50, 90])
    print(f"{len(mu)} Gaussians, distance to the scene surfaces: median {med * 1000:.1f} mm, p90 {p90 * 1000:.1f} mm")
    assert med < 0.008 and p90 < 0.035  # measured 3.6 / 21.7 mm (5 cm voxels, odometry error included)
    # coverage: the ground-truth-posed returns of the last scan have a Gaussian within 1.5 voxels
    stamp, cloud = scans[-1]
    pts = np.stack([cloud["x"], cloud["y"], cloud["z"]], 1).astype(np.float64)
    pts = pts[np.isfinite(pts).all(1) & (np.linalg.norm(pts, axis=1) > 0.5)]
    T = tf.lookup("world", "gt/rig", stamp).matrix @ rig_lidar
    near, _ = cKDTree(mu).query(pts @ T[:3, :3].T + T[:3, 3])
    assert np.mean(near < 0.075) > 0.98, np.mean(near < 0.075)  # measured 0.9999


def test_map_intensity_stays_with_its_points(tmp_path: Path) -> None:
    """Scans with NaN points and points inside min_range (both dropped before registration) and an
    intensity that encodes each point's x: every Gaussian's grey still matches where it is.  A
    scan too small to register is published (predicted pose) but not mapped."""
    from ros_gs.bags.writer import BagWriter
    from ros_gs.nodes.lidar_odometry import LidarOdometryNode
    from ros_gs.sensors.pointcloud2 import array_to_pointcloud2

    rng = np.random.default_rng(1)
    pts = rng.uniform(-4, 4, (20000, 3))
    pts[:7000, 2] = -1.0  # floor and two walls
    pts[7000:14000, 0] = 3.5
    pts[14000:, 1] = 3.0
    pts[::50] = np.nan  # dropped: not finite
    pts[1::50] = rng.uniform(-0.2, 0.2, (len(pts[1::50]), 3))  # dropped: inside min_range
    cloud = np.zeros(len(pts), np.dtype([("x", np.float32), ("y", np.float32), ("z", np.float32), ("intensity", np.float32)]))
    cloud["x"], cloud["y"], cloud["z"] = pts.T
    cloud["intensity"] = np.nan_to_num(10.0 * (pts[:, 0] + 5.0))  # grey = (x + 5) / 10 at scale 100
    bag = tmp_path / "scans.mcap"
    with BagWriter(bag) as w:
        for k in range(3):
            t = 1_000_000_000 + k * 100_000_000
            w.write("/lidar/points", "sensor_msgs/msg/PointCloud2", array_to_pointcloud2(w.factory, cloud, t, "lidar"), t)
        stray = cloud[2:12].copy()  # 10 points: too few to register, so the pose is only predicted
        stray["z"] = 6.0
        w.write("/lidar/points", "sensor_msgs/msg/PointCloud2", array_to_pointcloud2(w.factory, stray, 1_300_000_000, "lidar"), 1_300_000_000)
    rt = ReplayRuntime(bag, tmp_path / "out.mcap", overrides={"lidar_odometry": {
        "imu_topic": "", "lidar": {"min_range": 0.5}, "map": {"intensity_scale": 100.0, "voxel_size": 0.1}}})
    node = rt.add_node(LidarOdometryNode)
    report = rt.run()
    assert not report.errors and not report.skipped, (report.errors, report.skipped)
    gmap = node.mapper.map
    assert len(gmap) > 1000 and node.unmapped_scans == 1 and node.scans == 4
    assert gmap.means.numpy()[:, 2].max() < 4.1  # the predicted scan (z = 6) stayed out of the map
    grey = gmap.colors_dc.numpy()[:, 0]
    want = (gmap.means.numpy()[:, 0] + 5.0) / 10.0
    assert np.abs(grey - want).max() < 0.01  # a voxel's mean intensity encodes its mean x


def test_camera_colours_the_lidar_map(walkthrough_bag: Path) -> None:
    """With the rig's front camera, every other image colours the LiDAR map; the images left out
    are then predicted by rendering the map from the camera pose the odometry gives (LiDAR
    trajectory interpolated at the image stamp, static LiDAR -> camera): PSNR against the real
    images, where the height-coloured map scores 9.7 dB."""
    import torch

    from ros_gs.mapping.evaluation import psnr
    from ros_gs.nodes.lidar_odometry import LidarOdometryNode
    from ros_gs.render import Camera, render
    from ros_gs.render.camera import render_K
    from ros_gs.sensors.camera import camera_from_info
    from ros_gs.sensors.image import image_to_numpy

    topic = "/cameras/rig_front/color"
    rt = ReplayRuntime(walkthrough_bag, None, param_files=[INDOOR], overrides={"lidar_odometry": {
        "image_topic": f"{topic}/image_raw", "camera_info_topic": f"{topic}/camera_info", "colour_period_s": 0.15}})
    node = rt.add_node(LidarOdometryNode)
    report = rt.run()
    assert not report.errors and not report.skipped, (report.errors, report.skipped)
    with BagReader(walkthrough_bag) as reader:
        images = [m for _, m in reader.messages([f"{topic}/image_raw"])]
        cam = camera_from_info(next(m for _, m in reader.messages([f"{topic}/camera_info"])))
    assert node.coloured_images == len(images[::2]) >= 15
    T_lidar_cam = node._tf.lookup("lidar", images[0].header.frame_id).matrix
    scores = []
    for image in images[1::2][-8:]:  # left out of the colouring
        T = node._trajectory.lookup("odom", "lidar", header_stamp_ns(image)).matrix @ T_lidar_cam
        view = Camera.from_pose(torch.as_tensor(render_K(cam.K), dtype=torch.float32),
                                torch.as_tensor(T, dtype=torch.float32), cam.width, cam.height)
        out = render(node.mapper.map, view, backend="cpu")
        scores.append(psnr(out.rgb, torch.from_numpy(image_to_numpy(image).astype(np.float32) / 255.0)))
    print(f"held-out views: PSNR {np.round(scores, 2)} dB")
    assert np.mean(scores) > 13.0 and min(scores) > 12.0  # measured 13.3-15.5 dB (mean 14.8)


def test_camera_without_camera_info_is_a_config_error() -> None:
    from ros_gs.errors import ConfigError
    from ros_gs.nodes.lidar_odometry import LidarOdometryNodeParams
    from ros_gs.runtime.params import load_params

    with pytest.raises(ConfigError, match="camera_info_topic"):
        load_params(LidarOdometryNodeParams, "lidar_odometry", [], {"image_topic": "/camera/image_raw"})


def test_lidar_inertial_odometry_predicts_the_rgbd_mapper(walkthrough_bag: Path, tmp_path: Path) -> None:
    """Both nodes in one replay: the mapper's frames wait for the LiDAR-inertial odometry to reach
    their stamp (it publishes a scan's pose once the IMU covers the scan) and take its motion,
    moved into the camera frame by /tf_static, as their prior."""
    from ros_gs.bags.evaluate import evaluate_odometry
    from ros_gs.nodes.mapper import MapperNode
    from ros_gs.nodes.lidar_odometry import LidarOdometryNode

    cam = "/cameras/rig_front"
    out = tmp_path / "out.mcap"
    rt = ReplayRuntime(walkthrough_bag, out, param_files=[INDOOR], overrides={
        "lidar_odometry": {"odom_topic": "/ros_gs/lidar/odom", "gaussian_map": False},
        "mapper": {"rgb_topic": f"{cam}/color/image_raw", "depth_topic": f"{cam}/depth/image_raw",
                   "info_topic": f"{cam}/color/camera_info", "odom_prior_topic": "/ros_gs/lidar/odom"}})
    mapper = rt.add_node(MapperNode)
    rt.add_node(LidarOdometryNode)
    report = rt.run()
    assert not report.errors and not report.skipped, (report.errors, report.skipped)
    r = evaluate_odometry(out, walkthrough_bag)  # ground truth from the bag's TF
    print(f"mapper: {r.matched} frames, ATE {r.ate_rmse_m * 100:.2f} cm, priors {mapper.priors}")
    assert r.matched == mapper.frames == 40 and mapper.priors["used"] >= mapper.frames - 2  # no frame lost waiting
    assert r.ate_rmse_m < 0.03


def test_mapper_maps_lidar_returns_where_its_camera_did_not_look(walkthrough_bag: Path, tmp_path: Path) -> None:
    """The mapper with ``points_topic``: each scan waits for the camera poses around it, its points
    are placed with the camera pose at their time and the static camera -> LiDAR TF, and those
    the camera did not map become range-seeded Gaussians of the same map."""
    from ros_gs.mapping.mapper import RANGE_SEEDED
    from ros_gs.nodes.mapper import MapperNode

    cam = "/cameras/rig_front"
    rt = ReplayRuntime(walkthrough_bag, tmp_path / "out.mcap", overrides={
        "mapper": {"rgb_topic": f"{cam}/color/image_raw", "depth_topic": f"{cam}/depth/image_raw",
                   "info_topic": f"{cam}/color/camera_info", "points_topic": "/lidar/points"}})
    node = rt.add_node(MapperNode)
    report = rt.run()
    assert not report.errors, report.errors
    # only scans before the first camera pose (no pose to place them with) are skipped
    skips = {k: v for k, v in report.skipped.items() if v}
    assert all("/lidar/points" in k for k in skips) and sum(skips.values()) <= 2, skips
    m = node.mapper
    full = m.full_map()
    ranged = full.ids == RANGE_SEEDED
    print(f"scans {node.points}, range-seeded Gaussians {int(ranged.sum())} of {len(full)}")
    assert node.points["scans"] >= 35 and int(ranged.sum()) > 1000

    # placed right: in MuJoCo's world (the map frame is the first camera's pose) they lie on the
    # room's surfaces, as far as the tracked poses are right
    from ros_gs.sim.recorder import CameraFrame, MujocoRecorder
    from ros_gs.sim.scenes import build_scene
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "sim"))  # the simulator tests' helpers
    import sim_testutils as simtest

    spec = build_scene("walkthrough", num_cameras=1)
    with MujocoRecorder(spec, camera_rate_hz=10.0) as rec:
        first = next(e for e in rec.run(0.2) if isinstance(e, CameraFrame))
    mu = full.means[ranged].double().numpy() @ first.T_world_cam[:3, :3].T + first.T_world_cam[:3, 3]
    d = simtest.distance_to_surfaces(mu, simtest.static_surfaces(spec))
    print(f"distance to MuJoCo's surfaces: median {np.median(d) * 100:.1f} cm, p90 {np.percentile(d, 90) * 100:.1f} cm")
    assert np.median(d) < 0.03 and np.percentile(d, 90) < 0.1


def test_scan_points_are_placed_with_the_pose_at_their_own_time() -> None:
    """A carrier turning at 1 rad/s and moving at 2 m/s: each point lands where the pose at its
    own time puts it (slerp between knots is exact for a constant rate), not where the stamp's
    pose or a nearest knot would."""
    from scipy.spatial.transform import Rotation

    from ros_gs.mapping.trajectory import place_points

    def pose_at(dt: float) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3] = Rotation.from_rotvec([0.3, 0.0, 1.0]).as_matrix() @ Rotation.from_rotvec([0, 0, 1.0 * dt]).as_matrix()
        T[:3, 3] = [1.0 + 2.0 * dt, -0.5, 0.2]
        return T

    T_cam_lidar = np.eye(4)
    T_cam_lidar[:3, :3] = Rotation.from_rotvec([0.1, -0.4, 0.2]).as_matrix()
    T_cam_lidar[:3, 3] = [0.05, -0.1, 0.02]
    rng = np.random.default_rng(0)
    pts = rng.uniform(-10, 10, (500, 3))
    t = np.sort(rng.uniform(-0.02, 0.1, 500))
    want = np.array([(pose_at(ti) @ T_cam_lidar @ np.append(p, 1.0))[:3] for p, ti in zip(pts, t)])
    # exact up to the lever arm's turn between knots (0.11 m x (17 ms x 1 rad/s)^2 / 8 ~ 4e-6 m)
    np.testing.assert_allclose(place_points(pts, t, pose_at, T_cam_lidar), want, atol=2e-5)
    at_stamp = pts @ (pose_at(0.0) @ T_cam_lidar)[:3, :3].T + (pose_at(0.0) @ T_cam_lidar)[:3, 3]
    assert np.abs(at_stamp - want).max() > 0.5  # the motion matters: ignoring t would fail above
    np.testing.assert_allclose(place_points(pts, np.zeros(500), pose_at, T_cam_lidar), at_stamp, atol=1e-9)
    assert place_points(np.zeros((0, 3)), np.zeros(0), pose_at, T_cam_lidar).shape == (0, 3)
