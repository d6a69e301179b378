"""Interrupts and write errors, with real subprocesses: SIGINT, SIGTERM and SIGHUP during a bag
recording or a replay leave a bag that opens, marked partial (metadata and a PARTIAL file),
and exit 128 + signal; a path that cannot be written is one line and exit 1, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ros_gs.bags.info import bag_info
from ros_gs.bags.reader import BagReader
from ros_gs.bags.writer import PARTIAL_FILE, BagWriter

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "ros_gs.cli.main"]
ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "osmesa")}


def interrupt(args: list[str], out: Path, signum: int, after_s: float = 0.8) -> subprocess.CompletedProcess:
    """Run the command, send ``signum`` once its output bag has been written to for a while."""
    p = subprocess.Popen([*CLI, *args], cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while not (out.is_dir() and any(f.suffix == ".mcap" for f in out.iterdir())):
        assert p.poll() is None, p.communicate()
        assert time.monotonic() - t0 < 120, "the command never started writing"
        time.sleep(0.05)
    time.sleep(after_s)
    p.send_signal(signum)
    stdout, stderr = p.communicate(timeout=120)
    return subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)


def assert_partial_and_readable(out: Path, why: str) -> int:
    assert (out / "metadata.yaml").is_file() and (out / PARTIAL_FILE).is_file()
    assert why in (out / PARTIAL_FILE).read_text()
    info = bag_info(out)
    assert info.partial == why and "PARTIAL" in info.table()
    with BagReader(out) as reader:
        n = sum(1 for _ in reader.messages())  # every record decodes: no torn chunk
    assert n == info.messages > 0
    return n


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_recording_stopped_by_a_signal_is_readable_and_marked_partial(tmp_path: Path, signum: int) -> None:
    out = tmp_path / "push"
    res = interrupt(["bag", "from-mujoco", "push", str(out), "--duration", "30", "--size", "64", "48"], out, signum)
    name = signal.Signals(signum).name
    assert res.returncode == 128 + signum, res.stderr[-2000:]
    assert f"interrupted by {name}" in res.stderr and "Traceback" not in res.stderr
    assert_partial_and_readable(out, f"interrupted by {name}")


def test_a_replay_stopped_by_ctrl_c_is_readable_and_marked_partial(tmp_path: Path) -> None:
    bag = tmp_path / "push"
    subprocess.run([*CLI, "bag", "from-mujoco", "push", str(bag), "--duration", "2.2", "--size", "160", "120"],
                   cwd=REPO, env=ENV, check=True, capture_output=True)
    out = tmp_path / "tracked"
    res = interrupt(["replay", str(bag), "--node", "physics_tracker", "--params", "config/objects_mujoco.yaml",
                     "--set", "physics_tracker.world.device=cpu", "--out", str(out)], out, signal.SIGINT, after_s=6.0)
    assert res.returncode == 130, res.stderr[-2000:]
    assert "interrupted by SIGINT" in res.stderr and "Traceback" not in res.stderr
    n = assert_partial_and_readable(out, "interrupted by SIGINT")
    with BagReader(bag) as reader:
        assert n < sum(1 for _ in reader.messages())  # it did stop early


def test_a_complete_bag_is_not_marked_and_an_exception_marks_one(tmp_path: Path) -> None:
    with BagWriter(tmp_path / "ok") as w:
        w.write("/n", "std_msgs/msg/String", w.factory("std_msgs/msg/String", data="x"), 1)
    assert not (tmp_path / "ok" / PARTIAL_FILE).exists() and bag_info(tmp_path / "ok").partial is None
    with pytest.raises(OSError):
        with BagWriter(tmp_path / "full") as w:
            w.write("/n", "std_msgs/msg/String", w.factory("std_msgs/msg/String", data="x"), 1)
            raise OSError(28, "No space left on device")
    assert_partial_and_readable(tmp_path / "full", "stopped by OSError: [Errno 28] No space left on device")


def test_an_output_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    res = subprocess.run([*CLI, "bag", "from-mujoco", "push", str(blocker / "push"), "--duration", "0.2", "--size", "32", "24"],
                         cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert res.stderr.strip().splitlines()[-1].startswith("error:") and str(blocker) in res.stderr
    assert not list(tmp_path.glob("**/*.tmp"))
