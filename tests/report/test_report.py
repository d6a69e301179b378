"""The graph's HTML report on a short orbit bag, replayed through the shipped launch file.

Judged by what a broken report would get wrong: the map rendered at the mapper's pose must look
like MuJoCo's camera image (a wrong pose or camera convention renders something else), the
trajectory figure must come with a small ATE against MuJoCo's path, every embedded image must
decode, and the file appears whole or not at all."""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mujoco")
os.environ.setdefault("MUJOCO_GL", "osmesa")

from PIL import Image  # noqa: E402

from ros_gs.bags.writer import BagWriter  # noqa: E402
from ros_gs.report import graph_report  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ros_gs.cli.main", *args], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("orbit")
    bag, out = d / "orbit.mcap", d / "orbit_out.mcap"
    made = cli("bag", "from-mujoco", "orbit", str(bag), "--duration", "2", "--size", "160", "120", "--camera-rate", "5", "--seed", "4")
    assert made.returncode == 0, made.stderr
    run = cli("replay", str(bag), "--launch", str(REPO / "launch" / "ros_gs.launch.yaml"), "--arg", "camera:=/cameras/head", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "diagnostics /mapper [OK]" in run.stdout
    return bag, out


def test_report_shows_the_graph_against_ground_truth(graph, tmp_path: Path) -> None:
    bag, out = graph
    html, figures = graph_report(bag, out, tmp_path / "report.html", frames=2)
    text = html.read_text()
    assert float(figures["ATE RMSE (cm)"]) < 3.0 and int(figures["map Gaussians"]) > 1000
    assert not list(tmp_path.glob(".*part"))
    images = [Image.open(io.BytesIO(base64.b64decode(b))) for b in re.findall(r"base64,([A-Za-z0-9+/=]+)", text)]
    assert len(images) == 3  # trajectory + two frames
    assert [im.size for im in images[1:]] == [(320, 120)] * 2  # camera | render, side by side
    ate = float(re.search(r"ATE ([0-9.]+) cm", text).group(1))
    assert ate < 3.0
    psnrs = [float(p) for p in re.findall(r"PSNR ([0-9.]+) dB where", text)]
    assert len(psnrs) == 2 and min(psnrs) > 18.0
    # the two halves of a frame: the render looks like the camera (an independent check of the PSNR)
    pair = np.asarray(images[1].convert("RGB"), dtype=np.float32) / 255
    real, rendered = pair[:, :160], pair[:, 160:]
    assert np.abs(real - rendered).mean() < 0.08 and np.abs(real - np.roll(rendered, 20, axis=1)).mean() > np.abs(real - rendered).mean()
    assert "/mapper: OK" in text and "/cameras/head/color/camera_info" in text


def test_report_says_what_it_cannot_show(tmp_path: Path) -> None:
    empty_in, empty_out = tmp_path / "in.mcap", tmp_path / "out.mcap"
    for path in (empty_in, empty_out):
        with BagWriter(path) as w:
            w.write("/chatter", "std_msgs/msg/String", w.factory("std_msgs/msg/String", data="hi"), 10**18)
    html, figures = graph_report(empty_in, empty_out, tmp_path / "r.html")
    text = html.read_text()
    assert figures == {}
    assert "has no /diagnostics" in text and "not evaluated" in text and "not drawn" in text
    bad = cli("report", str(empty_in), str(tmp_path / "missing.mcap"), "--html", str(tmp_path / "x.html"))
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "notes.md").write_text("# not an image\n")
    bad = cli("report", str(empty_in), str(empty_out), "--html", str(tmp_path / "x.html"), "--image", str(tmp_path / "notes.md"))
    assert bad.returncode == 2 and "not a PNG" in bad.stderr and not (tmp_path / "x.html").exists()
    made = cli("report", str(empty_in), str(empty_out), "--html", str(tmp_path / "new" / "folder" / "r.html"))
    assert made.returncode == 0 and (tmp_path / "new" / "folder" / "r.html").is_file()  # the folder is made
