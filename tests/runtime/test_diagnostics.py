"""/diagnostics from the node API: rates, losses and levels a broken counter would get wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from ros_gs.bags.info import bag_info
from ros_gs.bags.reader import BagReader
from ros_gs.bags.writer import BagWriter
from ros_gs.errors import SensorDataError
from ros_gs.runtime.diagnostics import ERROR, OK, WARN, from_message
from ros_gs.runtime.node_api import NodeContext
from ros_gs.runtime.params import NodeParams
from ros_gs.runtime.replay import ReplayRuntime

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


class Counting:
    """Takes /a; a message "bad" is bad input, "bug" trips a bug; reports how many it kept."""

    NAME = "counting"

    def __init__(self, ctx: NodeContext) -> None:
        self.params = ctx.get_params(NodeParams)
        self.kept = 0
        ctx.create_subscription("std_msgs/msg/String", "/a", self.on)

    def on(self, msg) -> None:
        if msg.data == "bad":
            raise SensorDataError("a bad message")
        if msg.data == "bug":
            raise RuntimeError("a bug")
        self.kept += 1

    def diagnostics(self) -> dict[str, object]:
        return {"messages kept": self.kept}


@pytest.fixture
def bag(tmp_path: Path) -> Path:
    """/a at 10 Hz from 0 to 3.0 s: two bad messages in (1, 2] s, one bug in (2, 3] s."""
    path = tmp_path / "in.mcap"
    with BagWriter(path) as w:
        for i in range(31):
            text = "bad" if i in (13, 17) else "bug" if i == 25 else f"m{i}"
            w.write("/a", "std_msgs/msg/String", w.factory("std_msgs/msg/String", data=text), T0 + i * S // 10)
    return path


def test_each_period_reports_its_rate_losses_and_level(bag: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mcap"
    rt = ReplayRuntime(bag, out)
    node = rt.add_node(Counting)
    report = rt.run()
    with BagReader(out) as r:
        arrays = [(raw.log_ns, from_message(m)) for raw, m in r.messages(["/diagnostics"])]
    assert [t - T0 for t, _ in arrays] == [S, 2 * S, 3 * S]  # the bag ends on a tick: no closing status
    statuses = [s for _, (s,) in arrays]
    assert [s["level"] for s in statuses] == [OK, WARN, ERROR]
    values = [dict(s["values"]) for s in statuses]
    # the first period holds the messages at 0.0 .. 1.0 s (11), the others 10 each
    assert [v["/a rate (Hz)"] for v in values] == ["11.00", "10.00", "10.00"]
    assert [v["/a messages"] for v in values] == ["11", "21", "31"]
    assert [v["skipped"] for v in values] == ["0", "2", "2"] and values[1]["skipped /a: SensorDataError"] == "2"
    assert values[2]["error /a: RuntimeError"] == "1" and "2 input(s) skipped" in statuses[1]["message"]
    assert [v["messages kept"] for v in values] == ["11", "19", "28"] and node.kept == 28
    # the run's summary: every message, every loss
    (whole,) = report.diagnostics
    assert whole["name"] == "/counting" and whole["level"] == ERROR
    assert dict(whole["values"])["/a messages"] == "31" and dict(whole["values"])["/a rate (Hz)"] == "10.33"
    (line,) = bag_info(out).diagnostics
    assert line.startswith("/counting [ERROR]") and "skipped 2" in line and "errors 1" in line and "messages kept 28" in line


def test_a_period_of_zero_publishes_nothing(bag: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mcap"
    rt = ReplayRuntime(bag, out, overrides={"counting": {"diagnostics_period_s": 0}})
    rt.add_node(Counting)
    report = rt.run()
    assert "/diagnostics" not in report.published and report.timer_calls == 0
    assert report.diagnostics[0]["level"] == ERROR  # the summary is still made


def test_a_failing_diagnostics_method_is_an_error_not_a_crash(bag: Path) -> None:
    class Broken(Counting):
        def diagnostics(self):
            raise ZeroDivisionError("oops")

    rt = ReplayRuntime(bag, None)
    rt.add_node(Broken, "broken")
    report = rt.run()
    assert report.errors[("broken", "diagnostics", "ZeroDivisionError")] >= 3


def test_the_last_stretch_is_published_when_the_input_ends(tmp_path: Path) -> None:
    bag, out = tmp_path / "in.mcap", tmp_path / "out.mcap"
    with BagWriter(bag) as w:
        for i in range(36):  # 0 .. 3.5 s
            w.write("/a", "std_msgs/msg/String", w.factory("std_msgs/msg/String", data=f"m{i}"), T0 + i * S // 10)
    rt = ReplayRuntime(bag, out)
    rt.add_node(Counting)
    rt.run()
    with BagReader(out) as r:
        arrays = [(raw.log_ns - T0, from_message(m)[0]) for raw, m in r.messages(["/diagnostics"])]
    assert [t for t, _ in arrays] == [S, 2 * S, 3 * S, 35 * S // 10]
    last = dict(arrays[-1][1]["values"])
    assert last["/a messages"] == "36" and last["/a rate (Hz)"] == "10.00" and last["messages kept"] == "36"
