"""``ros-gs``: the command line.  Each command calls nodes or the core; none holds logic of its own.

Bad input (missing files, malformed data, invalid parameters) ends with one ``error:`` line
and exit code 2, never a traceback.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

# torch's OpenMP threads spin while they wait; on a CPU other work shares, spinning threads take
# turns with each other and a replay ran 16x slower (measured under a concurrent test run; 1.6x
# with one other process).  Passive waiting costs little when the machine is idle.  Set before
# torch loads its OpenMP runtime; an explicit OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer  # noqa: E402
import yaml  # noqa: E402

from ros_gs.errors import DatasetError, InputError  # noqa: E402
from ros_gs.runtime import interrupts  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True, help="ros_gs: Gaussian-splatting world model tools")
bag_app = typer.Typer(no_args_is_help=True, help="Make and inspect rosbag2 files (no ROS needed).")
app.add_typer(bag_app, name="bag")


@app.callback()
def _setup(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="[%(levelname)s] [%(name)s] %(message)s",
        stream=sys.stderr,
    )


@bag_app.command("from-rgbd")
def bag_from_rgbd(
    folder: Annotated[Path, typer.Argument(help="folder of frame-XXXXXX.{color.jpg,depth.png,pose.txt}")],
    out: Annotated[Path, typer.Argument(help="output rosbag2 (a folder; MCAP storage)")],
    fps: Annotated[float, typer.Option(help="frame rate of the stamps")] = 30.0,
    max_frames: Annotated[Optional[int], typer.Option(help="stop after this many frames")] = None,
    first_frame: Annotated[int, typer.Option(help="index of the first frame written")] = 0,
    step: Annotated[int, typer.Option(help="write every step-th frame (stamps keep the source timing)")] = 1,
    color_camera: Annotated[Optional[str], typer.Option(
        help="colour camera when colour is not registered to depth: kinect-v1 (7-Scenes); default: registered")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace OUT if it exists")] = False,
) -> None:
    """RGB-D frames with ground-truth poses -> Image, CameraInfo, /ground_truth/tf and /ground_truth/pose."""
    from ros_gs.bags.from_rgbd import rgbd_folder_to_bag

    counts = rgbd_folder_to_bag(folder, out, fps=fps, max_frames=max_frames, first_frame=first_frame, step=step,
                                color=color_camera, overwrite=overwrite)
    typer.echo(f"wrote {out}: " + ", ".join(f"{t} {n}" for t, n in sorted(counts.items())))


@bag_app.command("from-graspnet")
def bag_from_graspnet(
    folder: Annotated[Path, typer.Argument(help="GraspNet-1Billion frame: color.png, depth.png, meta.mat "
                                                "[, workspace_mask.png, label.png]")],
    out: Annotated[Path, typer.Argument(help="output rosbag2 (a folder; MCAP storage)")],
    frames: Annotated[int, typer.Option(help="how many times the (static) frame is written")] = 5,
    rate: Annotated[float, typer.Option(help="frame rate of the stamps, Hz")] = 10.0,
    overwrite: Annotated[bool, typer.Option(help="replace OUT if it exists")] = False,
) -> None:
    """One GraspNet frame from a static camera -> Image, CameraInfo, /tf_static, /ground_truth/*."""
    from ros_gs.bags.from_graspnet import graspnet_frame_to_bag

    counts = graspnet_frame_to_bag(folder, out, frames=frames, rate_hz=rate, overwrite=overwrite)
    typer.echo(f"wrote {out}: " + ", ".join(f"{t} {n}" for t, n in sorted(counts.items())))


@bag_app.command("from-ouster")
def bag_from_ouster(
    pcap: Annotated[Path, typer.Argument(help="Ouster packet capture (.pcap)")],
    metadata: Annotated[Path, typer.Argument(help="the sensor's metadata JSON")],
    out: Annotated[Path, typer.Argument(help="output rosbag2 (a folder; MCAP storage)")],
    overwrite: Annotated[bool, typer.Option(help="replace OUT if it exists")] = False,
) -> None:
    """Ouster LiDAR + IMU packets -> /lidar/points (PointCloud2 with per-point time) and /imu/data."""
    from ros_gs.bags.from_ouster import ouster_pcap_to_bag

    counts = ouster_pcap_to_bag(pcap, metadata, out, overwrite=overwrite)
    typer.echo(f"wrote {out}: " + ", ".join(f"{t} {n}" for t, n in sorted(counts.items())))


@bag_app.command("from-mujoco")
def bag_from_mujoco(
    scene: Annotated[str, typer.Argument(help="tabletop | push | drop | walkthrough | orbit")],
    out: Annotated[Path, typer.Argument(help="output rosbag2 (a folder; MCAP storage)")],
    duration: Annotated[float, typer.Option(help="simulated seconds")] = 2.0,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same bag)")] = 0,
    size: Annotated[tuple[int, int], typer.Option(help="camera width and height")] = (320, 240),
    cameras: Annotated[Optional[int], typer.Option(help="RGB-D cameras (table scenes 0-3, walkthrough 0-2, orbit 0-1); default: all the scene has")] = None,
    camera_rate: Annotated[float, typer.Option(help="camera frame rate, Hz")] = 10.0,
    imu_rate: Annotated[float, typer.Option(help="IMU rate, Hz")] = 200.0,
    noise: Annotated[bool, typer.Option(help="add depth, LiDAR and IMU noise and IMU bias")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace OUT if it exists")] = False,
) -> None:
    """A MuJoCo ground-truth scene -> RGB-D + segmentation, LiDAR, IMU, /tf_static, /ground_truth/*."""
    from ros_gs.sim.scenes import MAX_CAMERAS

    if cameras is not None and scene in MAX_CAMERAS and not 0 <= cameras <= MAX_CAMERAS[scene]:
        raise InputError(f"--cameras {cameras}: the {scene} scene has 0 to {MAX_CAMERAS[scene]} cameras")
    from ros_gs.bags.from_mujoco import mujoco_scene_to_bag  # after the checks: it loads MuJoCo and OpenGL, which log

    counts = mujoco_scene_to_bag(
        scene, out, duration_s=duration, seed=seed, width=size[0], height=size[1],
        num_cameras=MAX_CAMERAS.get(scene, 3) if cameras is None else cameras,
        camera_rate_hz=camera_rate, imu_rate_hz=imu_rate, noise=noise, overwrite=overwrite,
    )
    typer.echo(f"wrote {out}: " + ", ".join(f"{t} {n}" for t, n in sorted(counts.items())))


@bag_app.command("info")
def bag_info_cmd(
    bag: Annotated[Path, typer.Argument(help="rosbag2 folder or .mcap/.db3 file")],
    json_out: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    check: Annotated[bool, typer.Option("--check", help="verify every MCAP chunk's CRC and decode every message (exit 1 on damage)")] = False,
) -> None:
    """Topics, types, counts, rates and image encodings of a bag."""
    from ros_gs.bags.info import bag_info, check_bag

    if not check:
        info = bag_info(bag)
        typer.echo(info.to_json() if json_out else info.table())
        return
    try:
        info = bag_info(bag)
        typer.echo(info.to_json() if json_out else info.table())
    except InputError as err:  # damaged: say where
        typer.echo(f"error: {err}", err=True)
    if not bag.exists():
        raise InputError(f"no bag at {bag}")
    problems, lines = check_bag(bag)
    for line in lines:
        typer.echo(line)
    if problems:
        raise typer.Exit(1)


def _parse_sets(sets: list[str]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        node, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise InputError(f"--set expects NODE.PARAM=VALUE, got {item!r}")
        try:
            out.setdefault(node, {})[name] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise InputError(f"--set {item!r}: value is not valid YAML ({err.__class__.__name__})") from None
    return out


def _auto_nodes(bag: Path, overrides: dict[str, dict[str, object]], set_topics: bool = True) -> list[str]:
    """Nodes for a bag's sensor topics (found by type): RGB-D (+ Imu) -> mapper; PointCloud2 (+ Imu,
    + a colour camera that colours its map) -> lidar_odometry (its odometry on /ros_gs/lidar/odom
    when the mapper runs too, where it is the mapper's motion prior, and the mapper maps the
    LiDAR's returns where its cameras did not look).  Their topic
    parameters are set to the found topics unless given with --set (or, ``set_topics`` False,
    left to the --params files)."""
    from ros_gs.bags.detect import detect_sensor_topics

    found = detect_sensor_topics(bag)
    if not set_topics:
        overrides = {}  # a scratch dict: the parameter files name the topics
    nodes: list[str] = []
    if found.rgbd:
        nodes.append("mapper")
        for key, topic in (("rgb_topic", found.rgb), ("depth_topic", found.depth), ("info_topic", found.info),
                           ("depth_info_topic", found.depth_info or ""), ("imu_topic", found.imu or "")):
            overrides.setdefault("mapper", {}).setdefault(key, topic)
    if found.points:
        nodes.append("lidar_odometry")
        o = overrides.setdefault("lidar_odometry", {})
        o.setdefault("points_topic", found.points)
        o.setdefault("imu_topic", found.imu or "")
        if found.rgb and found.info:  # the camera colours the LiDAR map
            o.setdefault("image_topic", found.rgb)
            o.setdefault("camera_info_topic", found.info)
        if found.rgbd:
            o.setdefault("odom_topic", "/ros_gs/lidar/odom")
            # the LiDAR-inertial odometry predicts the camera's motion (through /tf_static)
            overrides.setdefault("mapper", {}).setdefault("odom_prior_topic", o["odom_topic"])
            # ... and its returns complete the mapper's map where the cameras did not look
            overrides["mapper"].setdefault("points_topic", found.points)
    if not nodes:
        raise InputError(f"{bag}: no RGB-D (colour + depth Image + CameraInfo) or PointCloud2 topics found; "
                         "name the node with --node and its topics with --set")
    typer.echo("nodes: " + ", ".join(f"{n} ({', '.join(f'{k}={v}' for k, v in overrides.get(n, {}).items() if k.endswith('topic'))})"
                                     for n in nodes))
    return nodes


@app.command()
def replay(
    bag: Annotated[Path, typer.Argument(help="input rosbag2")],
    out: Annotated[Optional[Path], typer.Option(help="output MCAP bag with everything published")] = None,
    node: Annotated[list[str], typer.Option(help="node(s) to run (see `ros-gs nodes`); default: chosen from the bag's topics (RGB-D -> mapper, PointCloud2 -> lidar_odometry)")] = [],
    params: Annotated[list[Path], typer.Option(help="ROS 2 parameter YAML file(s)")] = [],
    set_: Annotated[list[str], typer.Option("--set", help="override: NODE.PARAM=VALUE")] = [],
    services: Annotated[Optional[Path], typer.Option(help="YAML list of service calls to make")] = None,
    service_log: Annotated[Optional[Path], typer.Option(help="write the service calls and responses here (YAML)")] = None,
    rate: Annotated[Optional[float], typer.Option(help="pace at this multiple of real time (default: as fast as possible)")] = None,
    duration: Annotated[Optional[float], typer.Option(help="replay only the first S seconds")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace OUT if it exists")] = False,
    launch: Annotated[Optional[Path], typer.Option(help="run the graph of this ROS 2 YAML launch file (e.g. launch/ros_gs.launch.yaml) instead of --node")] = None,
    arg: Annotated[list[str], typer.Option(help="launch argument NAME:=VALUE (with --launch)")] = [],
) -> None:
    """Run nodes on a recorded bag on simulated time; write what they publish to OUT."""
    from ros_gs.nodes import load_node
    from ros_gs.runtime.diagnostics import summary_line
    from ros_gs.runtime.launch import LaunchNode, load_launch, parse_arguments
    from ros_gs.runtime.replay import ReplayRuntime, load_service_calls, service_log as log_of

    if launch is not None and node:
        raise InputError("--launch and --node both name the nodes: give one")
    if arg and launch is None:
        raise InputError("--arg sets launch arguments: it needs --launch")
    graph = load_launch(launch, parse_arguments(arg)) if launch is not None else None
    writable_parent(out, service_log)  # before the replay, not after it

    runtime = ReplayRuntime(
        bag,
        out,
        param_files=params,
        overrides=_parse_sets(set_),
        service_calls=load_service_calls(services) if services else (),
        rate=rate,
        overwrite=overwrite,
        progress=True,
    )
    if graph is not None:
        if not graph.nodes:
            raise InputError(f"{launch}: no node is launched with these arguments")
        node = [n.name for n in graph.nodes]
        typer.echo("nodes: " + ", ".join(f"{n.namespace.rstrip('/')}/{n.name} ({n.executable})" for n in graph.nodes))
    elif not node:
        node = _auto_nodes(bag, runtime.overrides, set_topics=not params)
    if unknown := sorted(set(runtime.overrides) - set(node)):
        raise InputError(f"--set names node(s) {unknown} that this replay does not run (nodes: {node})")
    for spec in graph.nodes if graph is not None else [LaunchNode(name, name) for name in node]:
        try:
            node_cls = load_node(spec.executable)
        except KeyError as err:
            raise InputError(f"{spec.source}: {err.args[0]}" if spec.source else err.args[0]) from None
        runtime.add_node(node_cls, spec.name, spec.namespace, params=spec.params, remaps=spec.remaps)
    report = runtime.run(duration_s=duration)
    typer.echo(
        f"replayed {report.sim_s:.2f} s of {bag} in {report.wall_s:.2f} s: "
        f"{sum(report.delivered.values())} messages delivered, {sum(report.published.values())} published, "
        f"{report.timer_calls} timer calls, {len(report.services)} service calls"
    )
    if service_log is not None:
        payloads = service_log.with_name(service_log.stem + "_payloads")  # images and clouds as .npy, not YAML
        service_log.write_text(yaml.safe_dump(log_of(report, payloads), sort_keys=False))
        typer.echo(f"  service calls and responses: {service_log}" + (f" (large arrays in {payloads}/)" if payloads.is_dir() else ""))
    for topic, n in sorted(report.published.items()):
        typer.echo(f"  published {topic}: {n}")
    for status in report.diagnostics:
        typer.echo(f"  diagnostics {summary_line(status)}")
    for topic, node_names in sorted(runtime.silent_inputs().items()):
        typer.echo(f"  no message on {topic} (input of {', '.join(node_names)}): not in the bag, nor published by a node")
    for key, n in sorted(report.skipped.items()):
        typer.echo(f"  skipped {n}: {' '.join(key)}")
    for key, n in sorted(report.errors.items()):
        typer.echo(f"  ERRORS {n}: {' '.join(key)}")
    unanswered = [r for r in report.services if r.response is None]
    for r in unanswered:  # a service no node offers, a call after the end: the run did not do what was asked
        typer.echo(f"  service call {r.service} not answered: {r.error}")
    if report.errors or unanswered:
        raise typer.Exit(1)


def writable_parent(*paths: Optional[Path]) -> None:
    """Outputs whose folder cannot hold them fail now, in one line (exit 1), not after the work."""
    for path in paths:
        if path is None:
            continue
        above = Path(path).absolute().parent
        while not above.exists():  # folders still to be made are fine; a file where one goes is not
            above = above.parent
        if not above.is_dir():
            raise NotADirectoryError(f"cannot write {path}: {above} is not a folder")


@app.command()
def render(
    map_file: Annotated[Path, typer.Argument(help="Gaussian map: INRIA 3DGS PLY or SuperSplat *.compressed.ply")],
    out: Annotated[Path, typer.Argument(help="output PNG (8-bit RGB)")],
    size: Annotated[tuple[int, int], typer.Option(help="image width and height, pixels")] = (640, 480),
    intrinsics: Annotated[Optional[tuple[float, float, float, float]], typer.Option(help="FX FY CX CY as in CameraInfo (pixel centres at integer coordinates; default: 60 deg horizontal FOV, centred)")] = None,
    pose: Annotated[tuple[float, float, float, float, float, float, float], typer.Option(help="camera-to-world of the OpenCV optical frame: X Y Z QX QY QZ QW")] = (0, 0, 0, 0, 0, 0, 1),
    depth: Annotated[Optional[Path], typer.Option(help="also write metric depth (H x W float32, 0 = nothing) as .npy")] = None,
    backend: Annotated[str, typer.Option(help="auto | cpu | gsplat")] = "auto",
) -> None:
    """Render a Gaussian map file from one camera pose to a PNG."""
    import time

    import numpy as np
    import torch
    from PIL import Image

    from ros_gs.gaussians.ply import read_ply
    from ros_gs.render.api import render as render_map
    from ros_gs.render.camera import Camera, render_K
    from ros_gs.sensors.poses import xyz_quat_to_matrix

    width, height = size
    if not (0 < width <= 8192 and 0 < height <= 8192):
        raise InputError(f"--size must be positive and at most 8192x8192, got {width}x{height}")
    if out.suffix.lower() not in Image.registered_extensions():
        raise InputError(f"{out}: unknown image type {out.suffix!r} (use .png, .jpg, ...)")
    writable_parent(out, depth)  # before the work, not after it
    if intrinsics is None:
        f = 0.5 * width / np.tan(np.radians(30.0))
        intrinsics = (f, f, (width - 1) / 2.0, (height - 1) / 2.0)
    fx, fy, cx, cy = intrinsics
    if not (fx > 0 and fy > 0 and all(np.isfinite(intrinsics))):
        raise InputError(f"--intrinsics need positive, finite focal lengths, got {intrinsics}")
    # CameraInfo puts pixel centres at integer coordinates; the renderer (like gsplat) at +0.5.
    K = torch.as_tensor(render_K([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]), dtype=torch.float32)
    c2w = torch.as_tensor(xyz_quat_to_matrix(pose[:3], pose[3:]), dtype=torch.float32)
    gaussians = read_ply(map_file)
    camera = Camera.from_pose(K, c2w, width, height)
    t = time.perf_counter()
    with torch.no_grad():
        result = render_map(gaussians, camera, backend=backend)
    if result.rgb.is_cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    rgb = (result.rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
    Image.fromarray(rgb).save(out)
    if depth is not None:
        np.save(depth, result.depth.float().cpu().numpy())
    typer.echo(f"rendered {len(gaussians)} Gaussians at {width}x{height} with backend {result.backend} in {seconds:.3f} s -> {out}")


@app.command("report")
def report_cmd(
    input_bag: Annotated[Path, typer.Argument(help="the bag the graph replayed (sensors and, for judging, /ground_truth)")],
    output_bag: Annotated[Path, typer.Argument(help="what it published (the OUT of ros-gs replay)")],
    html: Annotated[Path, typer.Option(help="the report to write (one static HTML file)")] = Path("report.html"),
    image: Annotated[list[Path], typer.Option(help="a PNG to add (e.g. grasps drawn by ros-gs grasp)")] = [],
    frames: Annotated[int, typer.Option(help="camera frames to compare with the map")] = 3,
) -> None:
    """One HTML report of a replayed graph: key figures and time per stage, trajectory against
    ground truth, the map rendered beside camera images, tracked objects."""
    from ros_gs.report import graph_report

    for path in (input_bag, output_bag, *image):
        if not path.exists():
            raise InputError(f"{path} does not exist")
    for path in image:
        with open(path, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                raise InputError(f"--image {path}: not a PNG file")
    if not 1 <= frames <= 20:
        raise InputError(f"--frames must be 1 to 20, got {frames}")
    writable_parent(html)
    path, figures = graph_report(input_bag, output_bag, html, images=list(image), frames=frames)
    for key, value in figures.items():
        typer.echo(f"  {key}: {value}")
    typer.echo(f"report: {path}")


@app.command("eval")
def eval_cmd(
    odom_bag: Annotated[Path, typer.Argument(help="bag with the estimate (e.g. the OUT of ros-gs replay)")],
    gt_bag: Annotated[Path, typer.Argument(help="bag with the ground truth (e.g. the replayed input)")],
    odom_topic: Annotated[str, typer.Option(help="nav_msgs/Odometry or PoseStamped estimate")] = "/ros_gs/odom",
    gt_topic: Annotated[str, typer.Option(help="PoseStamped or Odometry ground truth")] = "/ground_truth/pose",
    plot: Annotated[Optional[Path], typer.Option(help="write a PNG of both trajectories here")] = None,
) -> None:
    """ATE RMSE of published odometry against ground truth (matched by stamp, rigidly aligned)."""
    from ros_gs.bags.evaluate import evaluate_odometry, plot_trajectories

    r = evaluate_odometry(odom_bag, gt_bag, odom_topic, gt_topic)
    typer.echo(f"{odom_topic}: {r.matched} of {r.estimated} poses matched; ATE RMSE {r.ate_rmse_m * 100:.2f} cm "
               f"over a {r.path_m:.2f} m path")
    if plot is not None:
        typer.echo(f"  plot: {plot_trajectories(r, plot)}")


@app.command("eval-objects")
def eval_objects_cmd(
    tracked_bag: Annotated[Path, typer.Argument(help="bag with the tracked objects on /tf (e.g. physics_tracker's replay OUT)")],
    gt_bag: Annotated[Path, typer.Argument(help="the `ros-gs bag from-mujoco` bag it replayed (ground-truth TF and objects)")],
    plot: Annotated[Optional[Path], typer.Option(help="write a PNG of the errors over time here")] = None,
) -> None:
    """Tracked objects' motion against ground truth (position and rotation error since the first
    frame), and their predictions (/ros_gs/objects/predicted) against it and two baselines."""
    import numpy as np

    from ros_gs.bags.evaluate import evaluate_objects, evaluate_predictions, plot_object_errors

    r = evaluate_objects(tracked_bag, gt_bag)
    for k, (i, name) in enumerate(zip(r.ids, r.names)):
        rot = r.rotation_error_deg[:, k]
        rotation = (f"rotation error mean {rot.mean():.1f} deg, max {rot.max():.1f} deg" if np.isfinite(rot).all()
                    else "rotation not observable (a sphere)")
        typer.echo(f"object/{i} = {name}: moved {r.moved_m[k] * 100:.1f} cm; position error mean "
                   f"{r.position_error_m[:, k].mean() * 100:.2f} cm, max {r.position_error_m[:, k].max() * 100:.2f} cm; "
                   f"{rotation} ({len(r.stamps)} stamps)")
    if plot is not None:
        typer.echo(f"  plot: {plot_object_errors(r, plot)}")
    try:
        pred = evaluate_predictions(tracked_bag, gt_bag)
    except DatasetError as exc:  # no prediction topic: tracking only
        typer.echo(f"predictions: none evaluated ({exc})")
        return
    s = pred.summary()
    if not s["n"]:
        typer.echo(f"predictions {pred.horizon_s:.2f} s ahead: none while objects move")
        return
    typer.echo(f"predictions {pred.horizon_s:.2f} s ahead, {s['n']} while objects move (> 1 cm): median error "
               f"{s['predicted_m'] * 100:.2f} cm; baselines 'stays' {s['stays_m'] * 100:.2f} cm, 'keeps velocity' "
               f"{s['velocity_m'] * 100:.2f} cm ({s['gain_over_best_baseline']:.1f}x better than the better one)")


@app.command()
def grasp(
    bag: Annotated[Path, typer.Argument(help="bag with depth, instance segmentation, CameraInfo and colour of static cameras, /tf_static and instance labels (e.g. `ros-gs bag from-mujoco tabletop`)")],
    query: Annotated[str, typer.Argument(help="which object, in words: 'the banana', 'something to drink from'")],
    params: Annotated[list[Path], typer.Option(help="grasp_planner parameter YAML (its cameras, support height)")] = [],
    at: Annotated[float, typer.Option(help="ask this many seconds into the bag")] = 0.1,
    max_grasps: Annotated[int, typer.Option(help="at most this many grasps")] = 5,
    png: Annotated[Optional[Path], typer.Option(help="draw the grasps over a camera's colour image here")] = None,
    camera: Annotated[Optional[str], typer.Option(help="camera namespace to draw on (default: the first of the node's cameras)")] = None,
) -> None:
    """Ask the grasp_planner node for grasps on the object a text names, on a recorded bag."""
    import numpy as np

    from ros_gs.bags.reader import BagReader
    from ros_gs.grasping import Grasp
    from ros_gs.grasping.draw import draw_grasps
    from ros_gs.sensors.camera import camera_from_info
    from ros_gs.sensors.image import image_to_numpy
    from ros_gs.sensors.poses import pose_msg_to_matrix
    from ros_gs.sensors.stamps import header_stamp_ns
    from ros_gs.sensors.tf_buffer import TfBuffer

    node, r = _ask_grasp_planner(bag, query, params, at, max_grasps, gripper=None)
    if not r.ok:
        typer.echo(f"no grasps for {query!r}: {r.message}")
        raise typer.Exit(1)
    typer.echo(f"{query!r} -> {r.label!r} (similarity {r.similarity:.2f}); {len(r.grasps.poses)} grasps in {r.grasps.header.frame_id}:")
    poses = [pose_msg_to_matrix(p) for p in r.grasps.poses]
    for k, (T, score, opening) in enumerate(zip(poses, r.scores, r.openings)):
        typer.echo(f"  {k}: score {score:.2f}, opening {opening * 100:.1f} cm, at {np.round(T[:3, 3], 3).tolist()}, "
                   f"approach {np.round(T[:3, 2], 2).tolist()}")
    if png is None:
        return
    cam = (camera or node.params.cameras[0]).rstrip("/")
    stamp = header_stamp_ns(r.grasps)
    tf, image, info = TfBuffer(), None, None
    with BagReader(bag) as reader:
        for raw, msg in reader.messages(["/tf_static", f"{cam}/color/image_raw", f"{cam}/color/camera_info"]):
            if raw.topic == "/tf_static":
                tf.add_tf_message(msg, static=True)
            elif raw.topic.endswith("image_raw") and (image is None or abs(header_stamp_ns(msg) - stamp) < abs(header_stamp_ns(image) - stamp)):
                image = msg
            elif raw.topic.endswith("camera_info"):
                info = msg
    if image is None or info is None:
        raise InputError(f"{bag} has no {cam}/color/image_raw or {cam}/color/camera_info to draw on")
    T_world_cam = tf.lookup(node.params.world_frame, image.header.frame_id).matrix
    grasps = [Grasp(T, float(o), float(s), np.zeros((2, 3))) for T, s, o in zip(poses, r.scores, r.openings)]
    drawn = draw_grasps(image_to_numpy(image), camera_from_info(info).K, T_world_cam, grasps, node.params.planner.gripper,
                        max_grasps=len(grasps))
    from PIL import Image

    png.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(drawn).save(png)
    typer.echo(f"  drawn over {cam}: {png}")


def _ask_grasp_planner(bag: Path, query: str, params: list[Path], at: float, max_grasps: int, gripper: Optional[str]):
    """Run the grasp_planner node on ``bag`` and ask it ``query`` at ``at`` s: (node, response).
    Cameras, colour, masks and the fixed frame are read from the bag unless ``params`` name them."""
    import math

    from ros_gs.bags.detect import detect_object_cameras
    from ros_gs.nodes.grasp_planner import GraspPlannerNode
    from ros_gs.runtime.replay import ReplayRuntime, ServiceCall

    if not (math.isfinite(at) and at >= 0) or max_grasps < 1:
        raise InputError(f"--at must be a finite time >= 0 s and --max-grasps >= 1 (got {at}, {max_grasps})")
    found = detect_object_cameras(bag)
    overrides: dict[str, object] = {}
    if found.cameras:
        overrides = {"cameras": found.cameras, "use_colour": found.colour, "use_segmentation": found.segmentation,
                     "world_frame": found.world_frame}
    if gripper is not None:
        overrides["planner.gripper.preset"] = gripper
    call = ServiceCall(at, "/grasp_planner/query_grasps", {"query": query, "max_grasps": max_grasps})
    runtime = ReplayRuntime(bag, None, param_files=params, service_calls=[call])
    from ros_gs.runtime.params import load_params

    # the parameter files win over what was detected
    given = load_params(GraspPlannerNode.Params, "grasp_planner", params, None)
    if given.cameras:
        overrides = {k: v for k, v in overrides.items() if k.startswith("planner.")}
    runtime.overrides = {"grasp_planner": overrides}
    node = runtime.add_node(GraspPlannerNode)
    if not node.params.cameras:
        raise InputError(f"{bag} has no camera with C/depth/image_raw and C/color/camera_info, and --params names none")
    report = runtime.run(duration_s=at + 0.01)
    answer = report.services[0] if report.services else None
    if answer is None or answer.response is None:
        why = f": {answer.error}" if answer is not None and answer.error else ""
        raise InputError(f"no answer to the query at {at} s (does the bag last that long?){why}")
    return node, answer.response


@app.command("query-grasps")
def query_grasps(
    bag: Annotated[Path, typer.Argument(help="bag with static RGB-D cameras (depth, colour, CameraInfo; /tf_static for several), e.g. from `ros-gs bag from-graspnet` or `from-mujoco tabletop`")],
    query: Annotated[str, typer.Argument(help="which object, in words: 'something yellow', 'the tall red box', 'the thing left of the blue cup'")],
    json_out: Annotated[bool, typer.Option("--json", help="print exactly one JSON object on stdout")] = False,
    max_grasps: Annotated[int, typer.Option(help="at most this many grasps, best first")] = 5,
    params: Annotated[list[Path], typer.Option(help="grasp_planner parameter YAML (overrides what is read from the bag)")] = [],
    at: Annotated[float, typer.Option(help="ask this many seconds into the bag")] = 0.1,
    gripper: Annotated[Optional[str], typer.Option(help="gripper preset: franka (8 cm, default) or robotiq_2f85")] = None,
) -> None:
    """Objects from the bag's sensor data (masks only if the bag has them), the one the query
    names, and grasps on it, best first.  Exit 2 (with --json: {"grasps": [], "error": ...})
    when the query is empty or matches nothing, or the bag is unusable."""
    import json

    from ros_gs.sensors.poses import pose_msg_to_matrix
    from ros_gs.sensors.poses import matrix_to_xyz_quat

    def fail(msg: str, candidates: list[dict] | None = None) -> None:
        if json_out:
            typer.echo(json.dumps({"query": query, "grasps": [], "error": msg, **({"candidates": candidates} if candidates else {})}))
        else:
            typer.echo(f"error: {msg}", err=True)
            for c in (candidates or [])[:5]:
                typer.echo(f"  candidate {c['id']} ({c['score']:.2f}): {c['description']}", err=True)
        raise typer.Exit(2)

    try:
        _, r = _ask_grasp_planner(bag, query, params, at, max_grasps, gripper)
    except (InputError, FileNotFoundError, FileExistsError) as err:
        fail(str(err))
    candidates = [{"id": int(i), "score": round(float(sc), 4), "description": d}
                  for i, sc, d in zip(r.candidate_ids, r.candidate_scores, r.candidate_descriptions)]
    if r.object_id < 0:
        fail(r.message or f"no object matches {query!r}", candidates)
    frame = r.grasps.header.frame_id
    grasps = []
    for pose, score, opening in zip(r.grasps.poses, r.scores, r.openings):
        T = pose_msg_to_matrix(pose)
        grasps.append({"position": [round(float(v), 5) for v in T[:3, 3]],
                       "orientation": [round(float(v), 6) for v in matrix_to_xyz_quat(T)[1]],
                       "approach": [round(float(v), 6) for v in T[:3, 2]], "closing": [round(float(v), 6) for v in T[:3, 0]],
                       "width": round(float(opening), 5), "score": round(float(score), 4), "frame_id": frame})
    out = {"query": query, "object": {"id": int(r.object_id), "description": r.description, "label": r.label},
           "grasps": grasps, "ambiguous": bool(r.ambiguous), "candidates": candidates}
    if r.message:
        out["message"] = r.message
    if json_out:
        typer.echo(json.dumps(out))
    else:
        _print_grasps(query, r, grasps, frame, out["candidates"])
    if not grasps:
        raise typer.Exit(1)  # the object was found, but no grasp on it


def _print_grasps(query: str, r, grasps: list[dict], frame: str, candidates: list[dict]) -> None:
    typer.echo(f"{query!r} -> object {r.object_id}: {r.description}" + (f" ({r.label})" if r.label else ""))
    if r.ambiguous or r.message:
        typer.echo(f"  note: {r.message}")
    typer.echo(f"  {len(grasps)} grasps in {frame or 'the camera frame'}, best first:")
    for k, g in enumerate(grasps):
        typer.echo(f"  {k}: score {g['score']:.2f}, width {g['width'] * 100:.1f} cm, at {g['position']}, approach {g['approach']}")
    if len(candidates) > 1:
        typer.echo("  candidates: " + "; ".join(f"{c['id']} {c['score']:.2f} ({c['description']})" for c in candidates[:4]))


@app.command()
def nodes(
    params: Annotated[Optional[str], typer.Option(help="print this node's default parameters as ROS 2 YAML instead")] = None,
) -> None:
    """List the nodes that can run under replay or ROS 2."""
    from ros_gs.nodes import NODES, load_node

    if params is not None:
        from ros_gs.runtime.params import params_yaml

        try:
            cls = load_node(params)
        except KeyError as err:
            raise InputError(err.args[0]) from None
        header = (f"Parameters of the {params} node ({cls.__module__}.{cls.Params.__name__}), in the standard ROS 2 layout.\n"
                  f"Read by `ros2 run ros_gs {params} --ros-args --params-file` and `ros-gs replay --params` alike.\n"
                  f"Regenerate with `ros-gs nodes --params {params}`.")
        typer.echo(params_yaml(params, cls.Params, header), nl=False)
        return
    for name in sorted(NODES):
        doc = (load_node(name).__module__ and sys.modules[load_node(name).__module__].__doc__ or "").strip()
        typer.echo(f"{name:16s} {doc.splitlines()[0] if doc else ''}")


def main() -> None:
    """Console entry: typer app with bad input turned into one clean error line.  Exit codes:
    0 done, 1 errors during the run (or nothing found, or a file could not be written), 2 bad
    input, 128 + signal when interrupted (130 SIGINT, 143 SIGTERM, 129 SIGHUP; a bag being
    written is closed, readable and marked partial)."""
    interrupts.install()
    try:
        # without standalone mode click returns a command's typer.Exit code instead of exiting
        code = app(standalone_mode=False)
        if interrupts.last_signal is not None:  # typer turned our Interrupted into exit code 130
            raise KeyboardInterrupt
    except (InputError, FileExistsError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        signum = interrupts.last_signal or signal.SIGINT
        typer.echo(f"interrupted by {signal.Signals(signum).name}", err=True)
        sys.exit(128 + signum)
    except OSError as err:  # a read-only folder, a full disk, a permission: one line naming the path
        typer.echo(f"error: {err}", err=True)
        sys.exit(1)
    except typer.Exit as err:
        sys.exit(err.exit_code)
    except Exception as err:
        # Usage errors (unknown option, missing argument) come from typer's bundled click:
        # they know how to print themselves.  Anything else is a bug and keeps its traceback.
        if hasattr(err, "show") and hasattr(err, "exit_code"):
            err.show()
            sys.exit(err.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
