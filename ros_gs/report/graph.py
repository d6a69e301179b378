"""The report of one replayed graph: key figures and stage times from /diagnostics, the camera
trajectory against ground truth, the map rendered at the camera's estimated pose beside the real
image, the tracked objects against ground truth, and any PNGs the caller adds (grasps)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ros_gs.bags.info import last_diagnostics
from ros_gs.bags.reader import BagReader
from ros_gs.errors import DatasetError, InputError
from ros_gs.report.html import Figure, Section, Table, write_html

log = logging.getLogger("ros_gs.report")

MAP_TOPIC, ODOM_TOPIC, OBJECTS_TOPIC = "/ros_gs/map_points", "/ros_gs/odom", "/ros_gs/objects"


def _topics(bag: Path) -> dict[str, int]:
    with BagReader(bag) as r:
        return {s.topic: s.count for s in r.summary()}


def _diagnostics(bag: Path) -> list[dict]:
    """The last status of each node on /diagnostics."""
    with BagReader(bag) as r:
        return last_diagnostics(r)


def key_figures(output_bag: Path) -> Section:
    from ros_gs.runtime.diagnostics import LEVEL_NAMES

    section = Section("Key figures and time per stage")
    statuses = _diagnostics(output_bag)
    if not statuses:
        section.items.append(f"{output_bag} has no /diagnostics (nodes publish it once a second by default).")
        return section
    stages = []
    for s in statuses:
        values = dict(s["values"])
        for key, rate in s["values"]:
            if key.endswith(" rate (Hz)"):
                topic = key.removesuffix(" rate (Hz)")
                stages.append((s["name"], topic, rate, values.get(f"{topic} messages", ""),
                               values.get(f"{topic} ms per message (mean / max)", "")))
        own = [(k, v) for k, v in s["values"] if not k.endswith(("(Hz)", "messages", "(mean / max)"))]
        section.items.append(Table(f"{s['name']}: {LEVEL_NAMES.get(s['level'], s['level'])}, {s['message']}",
                                   ("figure", "value"), own))
    section.items.append(Table("Inputs of each node (messages: the whole run; rate and time: the last period on "
                               "/diagnostics; the time is that of the callback the input triggered)",
                               ("node", "input", "rate (Hz)", "messages", "ms per message (mean / max)"), stages))
    return section


def trajectory(input_bag: Path, output_bag: Path, figures: dict) -> Section:
    from ros_gs.bags.evaluate import evaluate_odometry, plot_trajectories

    section = Section("Camera trajectory against ground truth")
    try:
        r = evaluate_odometry(output_bag, input_bag)
    except (DatasetError, InputError) as err:
        section.items.append(f"not evaluated: {err}")
        return section
    figures["ATE RMSE (cm)"] = f"{r.ate_rmse_m * 100:.2f}"
    figures["path (m)"] = f"{r.path_m:.2f}"
    tmp = output_bag.with_name(f".{output_bag.name}.trajectory.png")
    try:
        plot_trajectories(r, tmp)
        section.items.append(Figure(f"ATE {r.ate_rmse_m * 100:.2f} cm over {r.path_m:.2f} m ({r.matched} poses)", tmp.read_bytes(),
                                    "estimate rigidly aligned to the ground truth (Umeyama), top and side views"))
    finally:
        tmp.unlink(missing_ok=True)
    return section


def _gaussians_from_cloud(msg) -> SimpleNamespace:
    """The map's Gaussians from the mapper's PointCloud2 (ros_gs.nodes.map_cloud's fields)."""
    import torch

    from ros_gs.gaussians.model import C0
    from ros_gs.sensors.pointcloud2 import pointcloud2_to_array, unpack_rgb

    c = pointcloud2_to_array(msg)

    def t(*names):
        return torch.as_tensor(np.stack([c[n] for n in names], axis=1).astype(np.float32))

    rgb = unpack_rgb(c["rgb"]).astype(np.float32) / 255.0
    return SimpleNamespace(means=t("x", "y", "z"), quats=t("rot_w", "rot_x", "rot_y", "rot_z"), scales=t("scale_x", "scale_y", "scale_z"),
                           opacities=torch.as_tensor(c["opacity"].astype(np.float32)),
                           sh=torch.as_tensor((rgb - 0.5) / C0)[:, None, :], n=len(c))


def map_views(input_bag: Path, output_bag: Path, figures: dict, frames: int = 3) -> Section:
    """The last map rendered at the estimated pose of a few frames, beside the camera image."""
    import torch

    from ros_gs.bags.detect import detect_sensor_topics
    from ros_gs.mapping.evaluation import psnr
    from ros_gs.render.api import render
    from ros_gs.render.camera import Camera, render_K
    from ros_gs.sensors.camera import camera_from_info
    from ros_gs.sensors.image import image_to_numpy
    from ros_gs.sensors.poses import pose_msg_to_matrix
    from ros_gs.sensors.stamps import header_stamp_ns

    section = Section("The map against the camera")
    with BagReader(output_bag) as r:
        clouds = [m for _, m in r.messages([MAP_TOPIC])]
        odom = {header_stamp_ns(m): pose_msg_to_matrix(m.pose.pose) for _, m in r.messages([ODOM_TOPIC])}
    found = detect_sensor_topics(input_bag)
    if not clouds or not odom or not (found.rgb and found.info):
        section.items.append(f"not drawn: needs {MAP_TOPIC} and {ODOM_TOPIC} in the output and a colour camera in the input")
        return section
    gaussians = _gaussians_from_cloud(clouds[-1])
    stamps = sorted(odom)
    wanted = {stamps[int(round(q * (len(stamps) - 1)))] for q in np.linspace(0.0, 1.0, frames)}
    images, info = {}, None
    with BagReader(input_bag) as r:
        for _, m in r.messages([found.rgb, found.info]):
            if info is None and hasattr(m, "k"):
                info = m
            elif hasattr(m, "encoding") and header_stamp_ns(m) in wanted:
                images[header_stamp_ns(m)] = image_to_numpy(m)
    scores = []
    for stamp in sorted(images):
        pin = camera_from_info(info)
        cam = Camera.from_pose(torch.as_tensor(render_K(pin.K), dtype=torch.float32),
                               torch.as_tensor(odom[stamp], dtype=torch.float32), pin.width, pin.height)
        with torch.no_grad():
            out = render(gaussians, cam)
        real = images[stamp][..., :3].astype(np.float32) / (255.0 if images[stamp].dtype == np.uint8 else 1.0)
        rendered = out.rgb.clamp(0, 1).numpy()
        seen = out.alpha.numpy() > 0.5
        score = psnr(rendered, real, seen) if seen.any() else float("nan")
        scores.append(score)
        both = np.concatenate([real, rendered], axis=1)
        section.items.append(Figure.from_array(
            f"t = {(stamp - stamps[0]) / 1e9:.1f} s: camera | map rendered at the estimated pose",
            (both * 255 + 0.5).astype(np.uint8), f"PSNR {score:.1f} dB where the map covers the view ({seen.mean() * 100:.0f} % of it)"))
    figures["map Gaussians"] = str(gaussians.n)
    if scores:
        figures["map render PSNR (dB, median)"] = f"{float(np.nanmedian(scores)):.1f}"
    section.items.insert(0, f"The last map on {MAP_TOPIC} ({gaussians.n} Gaussians), rendered with ros_gs's renderer at "
                            f"the pose {ODOM_TOPIC} gave for each frame; colour against colour.")
    return section


def objects(input_bag: Path, output_bag: Path, figures: dict) -> Section | None:
    from ros_gs.bags.evaluate import evaluate_objects, evaluate_predictions, plot_object_errors, tracked_frame_in_world

    if OBJECTS_TOPIC not in _topics(output_bag):
        return None
    section = Section("Tracked and predicted objects against ground truth")
    try:
        T = tracked_frame_in_world(output_bag, input_bag)
        if T is not None:
            section.items.append("The objects are tracked in a support frame under the mapper's map; the map is placed in "
                                 "MuJoCo's world by the rigid alignment of the camera path (as for the ATE).")
        r = evaluate_objects(output_bag, input_bag, T_world_tracked=T)
    except (DatasetError, InputError) as err:
        section.items.append(f"not evaluated: {err}")
        return section
    tmp = output_bag.with_name(f".{output_bag.name}.objects.png")
    try:
        plot_object_errors(r, tmp)
        section.items.append(Figure("position and rotation error of each tracked object", tmp.read_bytes()))
    finally:
        tmp.unlink(missing_ok=True)
    rows = [(f"object/{i}", name, f"{r.moved_m[k] * 100:.1f}", f"{np.median(r.position_error_m[:, k]) * 100:.2f}")
            for k, (i, name) in enumerate(zip(r.ids, r.names))]
    section.items.append(Table("objects", ("id", "true object", "moved (cm)", "median position error (cm)"), rows))
    try:
        p = evaluate_predictions(output_bag, input_bag).summary()
    except (DatasetError, InputError) as err:
        section.items.append(f"predictions not evaluated: {err}")
    else:
        if p["n"]:
            figures[f"prediction {p['n']} moving cases: error / best baseline (cm, median)"] = (
                f"{p['predicted_m'] * 100:.2f} / {min(p['stays_m'], p['velocity_m']) * 100:.2f}")
    return section


def graph_report(input_bag: Path | str, output_bag: Path | str, html: Path | str, *, images: list[Path] = (),
                 title: str = "", frames: int = 3) -> tuple[Path, dict[str, str]]:
    """Write the report of ``output_bag`` (what the graph published when replaying ``input_bag``);
    returns its path and the headline figures (ATE, map PSNR, ...) as text."""
    input_bag, output_bag = Path(input_bag), Path(output_bag)
    figures: dict[str, str] = {}
    sections = [key_figures(output_bag)]
    steps = [("trajectory", lambda: trajectory(input_bag, output_bag, figures)),
             ("map", lambda: map_views(input_bag, output_bag, figures, frames)),
             ("objects", lambda: objects(input_bag, output_bag, figures))]
    for name, step in steps:
        log.info("report: %s", name)
        section = step()
        if section is not None:
            sections.append(section)
    if figures:
        sections[0].items.insert(0, Table("Headline", ("figure", "value"), list(figures.items())))
    if images:
        sections.append(Section("Images", [Figure(Path(p).name, Path(p).read_bytes()) for p in images]))
    path = write_html(html, title or f"ros_gs: {output_bag.name}", sections, subtitle=f"input {input_bag}, output {output_bag}")
    return path, figures
