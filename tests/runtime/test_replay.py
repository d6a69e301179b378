"""The replay runtime: ordering on simulated time, timers, services, intra-process delivery,
bad-input policy, output bags readable without ros_gs, determinism."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from ros_gs.bags.reader import BagReader
from ros_gs.bags.writer import BagWriter
from ros_gs.errors import ConfigError, SensorDataError
from ros_gs.runtime.node_api import NodeContext
from ros_gs.runtime.params import NodeParams
from ros_gs.runtime.qos import LATCHED_QOS
from ros_gs.runtime.replay import ReplayRuntime, ServiceCall, load_service_calls, service_log
from ros_gs.runtime.typestore import MessageFactory

T0 = 1_000_000_000_000  # 1000 s
MS = 1_000_000
make = MessageFactory()


def string(text: str):
    return make("std_msgs/msg/String", data=text)


def write_input(path: Path, corrupt_at: int | None = None) -> Path:
    """/a every 100 ms from T0 (10 msgs), /b every 150 ms offset 50 ms (7 msgs), both std_msgs/String."""
    with BagWriter(path) as bag:
        events = [(T0 + i * 100 * MS, "/a", f"a{i}") for i in range(10)]
        events += [(T0 + 50 * MS + i * 150 * MS, "/b", f"b{i}") for i in range(7)]
        for t, topic, text in sorted(events):
            if corrupt_at is not None and text == f"a{corrupt_at}":
                bag.write_raw(topic, "std_msgs/msg/String", b"\x00\x01\x00\x00\xff\xff\xff\x7f", t)
            else:
                bag.write(topic, "std_msgs/msg/String", string(text), t)
    return path


class RecorderParams(NodeParams):
    period_s: float = 0.25
    prefix: str = "echo"


class Recorder:
    NAME = "recorder"

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.params = ctx.get_params(RecorderParams)
        self.seen: list[tuple[str, str, int]] = []
        self.ticks: list[int] = []
        self.pub = ctx.create_publisher("std_msgs/msg/String", "~/echo")
        self.latched = ctx.create_publisher("std_msgs/msg/String", "/latched", LATCHED_QOS)
        ctx.create_subscription("std_msgs/msg/String", "/a", lambda m: self.on("/a", m))
        ctx.create_subscription("std_msgs/msg/String", "/b", lambda m: self.on("/b", m))
        ctx.create_timer(self.params.period_s, self.on_timer)
        ctx.create_service("ros_gs/srv/GetImageStats", "~/get", self.on_get)

    def on(self, topic: str, msg) -> None:
        if msg.data == "a3":
            raise SensorDataError("a3 is bad input")
        if msg.data == "a5":
            raise RuntimeError("a bug on a5")
        self.seen.append((topic, msg.data, self.ctx.now_ns()))
        self.pub.publish(string(f"{self.params.prefix}:{msg.data}"))

    def on_timer(self) -> None:
        self.ticks.append(self.ctx.now_ns())
        if len(self.ticks) == 1:
            self.latched.publish(string("once"))

    def on_get(self, request, response):
        response.ok = True
        response.message = f"{len(self.seen)} seen at {self.ctx.now_ns()}"
        return response


class Listener:
    NAME = "listener"

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.got: list[tuple[str, int]] = []
        ctx.create_subscription("std_msgs/msg/String", "/recorder/echo", self.on)

    def on(self, msg) -> None:
        self.got.append((msg.data, self.ctx.now_ns()))


@pytest.fixture
def bag_in(tmp_path: Path) -> Path:
    return write_input(tmp_path / "in.mcap")


def test_delivery_order_clock_and_error_policy(bag_in: Path, tmp_path: Path) -> None:
    rt = ReplayRuntime(bag_in, tmp_path / "out.mcap")
    rec = rt.add_node(Recorder)
    report = rt.run()
    times = [t for _, _, t in rec.seen]
    assert times == sorted(times)
    expected = sorted(
        [(T0 + i * 100 * MS, "/a", f"a{i}") for i in range(10) if i not in (3, 5)]
        + [(T0 + 50 * MS + i * 150 * MS, "/b", f"b{i}") for i in range(7)]
    )
    assert [(t, topic, data) for topic, data, t in rec.seen] == expected
    # a3 was bad input (a counted skip), a5 a bug (a counted error): the node went on.
    assert report.skipped[("recorder", "/a", "SensorDataError")] == 1
    assert report.errors[("recorder", "/a", "RuntimeError")] == 1
    assert report.delivered["/a"] == 10 and report.delivered["/b"] == 7
    assert report.start_ns == T0 and report.end_ns == T0 + 950 * MS


def test_timers_fire_on_simulated_time(bag_in: Path) -> None:
    rt = ReplayRuntime(bag_in, None, overrides={"recorder": {"period_s": 0.2}})
    rec = rt.add_node(Recorder)
    rt.run()
    # Bag spans T0 .. T0+950ms: ticks at 200, 400, 600, 800 ms.
    assert rec.ticks == [T0 + k * 200 * MS for k in range(1, 5)]


def test_output_bag_holds_what_was_published(bag_in: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mcap"
    rt = ReplayRuntime(bag_in, out)
    rt.add_node(Recorder)
    rt.run()
    with BagReader(out) as reader:
        echoed = [(raw.log_ns, msg.data) for raw, msg in reader.messages(["/recorder/echo"])]
        latched = [msg.data for _, msg in reader.messages(["/latched"])]
    assert echoed[0] == (T0, "echo:a0")
    assert echoed[1] == (T0 + 50 * MS, "echo:b0")
    assert len(echoed) == 15
    assert latched == ["once"]
    meta = yaml.safe_load((out / "metadata.yaml").read_text())
    topics = {t["topic_metadata"]["name"]: t["topic_metadata"] for t in meta["rosbag2_bagfile_information"]["topics_with_message_count"]}
    assert "transient_local" in str(topics["/latched"]["offered_qos_profiles"]).lower()
    assert "volatile" in str(topics["/recorder/echo"]["offered_qos_profiles"]).lower()


def test_corrupt_message_is_a_counted_skip(tmp_path: Path) -> None:
    bag = write_input(tmp_path / "in.mcap", corrupt_at=1)
    rt = ReplayRuntime(bag, None)
    rec = rt.add_node(Recorder)
    report = rt.run()
    assert report.skipped[("recorder", "/a", "SensorDataError")] == 2  # corrupt a1 + bad a3
    assert ("/a", "a2") in [(t, d) for t, d, _ in rec.seen]


def test_intra_process_delivery_and_remapping_by_params(bag_in: Path, tmp_path: Path) -> None:
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({"recorder": {"ros__parameters": {"prefix": "P"}}}))
    rt = ReplayRuntime(bag_in, None, param_files=[params])
    rt.add_node(Recorder)
    lis = rt.add_node(Listener)
    rt.run()
    assert lis.got[0] == ("P:a0", T0)
    assert len(lis.got) == 15


def test_service_calls_at_simulated_times(bag_in: Path, tmp_path: Path) -> None:
    calls = tmp_path / "calls.yaml"
    calls.write_text(yaml.safe_dump([{"time": 0.3, "service": "/recorder/get"}, {"time": 0.1, "service": "/nobody"}]))
    out = tmp_path / "out.mcap"
    rt = ReplayRuntime(bag_in, out, service_calls=load_service_calls(calls))
    rt.add_node(Recorder)
    report = rt.run()
    by_name = {r.service: r for r in report.services}
    assert by_name["/nobody"].error and by_name["/nobody"].response is None
    good = by_name["/recorder/get"]
    assert good.stamp_ns == T0 + 300 * MS
    # by 300 ms: a0,a1,a2 (a3 skipped), b0 (50), b1 (200) -> 5 seen.
    assert good.response.ok and good.response.message == f"5 seen at {T0 + 300 * MS}"
    assert service_log(report)[1]["response"]["message"] == good.response.message


def test_bad_service_file_and_params_are_config_errors(bag_in: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {time: 1}\n")
    with pytest.raises(ConfigError, match="service"):
        load_service_calls(bad)
    rt = ReplayRuntime(bag_in, None, overrides={"recorder": {"period_s": "soon"}})
    with pytest.raises(ConfigError, match="period_s"):
        rt.add_node(Recorder)
    with pytest.raises(ConfigError, match="rate"):
        ReplayRuntime(bag_in, None, rate=0)


def test_replay_is_deterministic(bag_in: Path, tmp_path: Path) -> None:
    outs = []
    for k in range(2):
        rt = ReplayRuntime(bag_in, tmp_path / f"out{k}.mcap")
        rt.add_node(Recorder)
        rt.add_node(Listener)
        rt.run()
        with BagReader(tmp_path / f"out{k}.mcap") as reader:
            # /diagnostics holds measured times (ms per message): only when it is published is fixed
            outs.append([(r.topic, r.log_ns, b"" if r.topic == "/diagnostics" else r.raw) for r in reader.raw_messages()])
    assert outs[0] == outs[1] and len(outs[0]) == 17  # 15 echoes + 1 latched + the closing /diagnostics


def test_custom_messages_read_back_from_bag_definitions_alone(tmp_path: Path) -> None:
    """A bag with ros_gs messages decodes with a plain rosbags reader: the definitions are embedded."""
    out = tmp_path / "custom.mcap"
    stats = make("ros_gs/msg/ImageStats", width=4, height=2, encoding="rgb8", channel_mean=[1.0, 2.0, 3.0], frame_count=7)
    with BagWriter(out) as bag:
        bag.write("/stats", "ros_gs/msg/ImageStats", stats, T0)
    with AnyReader([out], default_typestore=get_typestore(Stores.EMPTY)) as reader:
        conn, t, raw = next(reader.messages())
        msg = reader.deserialize(raw, conn.msgtype)
    assert conn.msgtype == "ros_gs/msg/ImageStats" and t == T0
    assert msg.width == 4 and msg.frame_count == 7 and np.allclose(msg.channel_mean, [1, 2, 3])


def test_rate_paces_against_wall_clock(bag_in: Path) -> None:
    rt = ReplayRuntime(bag_in, None, rate=4.0)  # 0.95 s of bag at 4x: at least ~0.24 s
    rt.add_node(Listener)
    t = time.perf_counter()
    rt.run()
    assert time.perf_counter() - t >= 0.95 / 4.0 * 0.95


def test_existing_output_is_not_overwritten_silently(bag_in: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mcap"
    out.mkdir()
    rt = ReplayRuntime(bag_in, out)
    rt.add_node(Listener)
    with pytest.raises(FileExistsError):
        rt.run()
    rt = ReplayRuntime(bag_in, out, overwrite=True)
    rt.add_node(Listener)
    rt.run()
    assert (out / "metadata.yaml").exists()


def test_service_call_direct_api(bag_in: Path) -> None:
    rt = ReplayRuntime(bag_in, None, service_calls=[ServiceCall(0.0, "/recorder/get", {})])
    rt.add_node(Recorder)
    report = rt.run()
    # At t=0 the service call comes after the first bag message at the same time.
    assert report.services[0].response.message == f"1 seen at {T0}"


def test_sqlite3_input_bags_replay_too(tmp_path: Path) -> None:
    bag = tmp_path / "in_sqlite"
    with BagWriter(bag, storage="sqlite3") as writer:
        for i in range(5):
            writer.write("/a", "std_msgs/msg/String", string(f"a{i}"), T0 + i * 100 * MS)
    assert list(bag.glob("*.db3"))
    rt = ReplayRuntime(bag, None)
    rec = rt.add_node(Recorder)
    rt.run()
    assert [d for _, d, _ in rec.seen] == ["a0", "a1", "a2", "a4"]  # a3 is the node's bad input


class LateStarter:
    """Creates its TF subscription and a timer only in its first callback (as nodes may)."""

    NAME = "late"

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.tf = None
        self.ticks: list[int] = []
        self.lookups: list[float] = []
        ctx.create_subscription("std_msgs/msg/String", "/a", self.on_a)

    def on_a(self, msg) -> None:
        if self.tf is None:
            self.tf = self.ctx.tf_buffer()
            self.ctx.create_timer(0.3, lambda: self.ticks.append(self.ctx.now_ns()))
            return
        self.lookups.append(self.tf.lookup("world", "base", self.ctx.now_ns()).translation[0])


def test_subscriptions_and_timers_created_mid_run(tmp_path: Path) -> None:
    bag = tmp_path / "tf.mcap"
    with BagWriter(bag) as w:
        for i in range(10):
            t = T0 + i * 100 * MS
            tf = make("geometry_msgs/msg/TransformStamped", child_frame_id="base")
            tf.header.frame_id = "world"
            tf.header.stamp.sec, tf.header.stamp.nanosec = divmod(t, 10**9)
            tf.transform.translation.x = float(i)
            tf.transform.rotation.w = 1.0
            w.write("/tf", "tf2_msgs/msg/TFMessage", make("tf2_msgs/msg/TFMessage", transforms=[tf]), t)
            w.write("/a", "std_msgs/msg/String", string(f"a{i}"), t)
    rt = ReplayRuntime(bag, None)
    node = rt.add_node(LateStarter)
    report = rt.run()
    assert node.lookups == [float(i) for i in range(1, 10)]  # TF delivered after the late subscription
    assert node.ticks == [T0 + 300 * MS, T0 + 600 * MS, T0 + 900 * MS]  # one period after creation
    assert not report.skipped and not report.errors


class EarlyPublisher:
    NAME = "early"

    def __init__(self, ctx: NodeContext) -> None:
        ctx.create_publisher("std_msgs/msg/String", "/config", LATCHED_QOS).publish(string("static config"))


class ConfigListener:
    NAME = "config_listener"

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx, self.got = ctx, []
        ctx.create_subscription("std_msgs/msg/String", "/config", lambda m: self.got.append((m.data, ctx.now_ns())), LATCHED_QOS)


def test_publications_before_run_are_sent_at_start(bag_in: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mcap"
    rt = ReplayRuntime(bag_in, out)
    rt.add_node(EarlyPublisher)
    lis = rt.add_node(ConfigListener)  # constructed after the publication: still receives it
    rt.run()
    assert lis.got == [("static config", T0)]
    with BagReader(out) as reader:
        assert [(r.log_ns, m.data) for r, m in reader.messages(["/config"])] == [(T0, "static config")]


def test_unserved_inputs_are_reported_not_dropped(bag_in: Path, tmp_path: Path) -> None:
    rt = ReplayRuntime(bag_in, None, service_calls=[ServiceCall(0.1, "/recorder/get"), ServiceCall(5.0, "/recorder/get")])
    rec = rt.add_node(Recorder)
    ctx = rt.contexts[0]
    ctx.create_subscription("std_msgs/msg/Int32", "/b", lambda m: None)  # wrong type for /b
    report = rt.run()
    assert [r.error for r in report.services] == [None, "after the end of the replay"]
    assert report.skipped[("recorder", "/b", "InputError")] == 7
    assert len(rec.seen) == 15


def test_output_must_not_overwrite_input(bag_in: Path) -> None:
    rt = ReplayRuntime(bag_in, bag_in, overwrite=True)
    rt.add_node(Listener)
    with pytest.raises(ConfigError, match="overwrite the input"):
        rt.run()
    assert (bag_in / "metadata.yaml").exists()
    with pytest.raises(ConfigError, match="duration"):
        ReplayRuntime(bag_in, None).run(duration_s=-1)


def test_damaged_bag_is_a_dataset_error_or_counted_skips(bag_in: Path, tmp_path: Path) -> None:
    """Bytes flipped inside the MCAP: never an exception other than DatasetError."""
    from ros_gs.errors import DatasetError

    data_file = next(bag_in.glob("*.mcap"))
    original = data_file.read_bytes()
    outcomes = set()
    for k in range(1, 20):
        damaged = bytearray(original)
        pos = len(original) * k // 25
        damaged[pos : pos + 8] = np.random.default_rng(k).integers(0, 256, 8, dtype=np.uint8).tobytes()
        data_file.write_bytes(bytes(damaged))
        rt = ReplayRuntime(bag_in, None)
        rec = rt.add_node(Recorder)
        try:
            report = rt.run()
        except DatasetError:
            outcomes.add("DatasetError")
        else:
            # a3 is always a skip; more skips or fewer deliveries mean the damage was caught per message
            damaged_msgs = report.skipped.total() > 1 or len(rec.seen) < 15
            outcomes.add("skips" if damaged_msgs else "undamaged payload")
    data_file.write_bytes(original)
    assert outcomes & {"DatasetError", "skips"}, outcomes  # damage is detected, not swallowed


@pytest.mark.parametrize("outlier_ns", [0, T0 + 100 * 365 * 86400 * 10**9])  # logged at time 0, or a century later
def test_a_message_decades_away_is_a_clock_jump_not_a_walk(tmp_path: Path, outlier_ns: int) -> None:
    """A message far from the rest (a /tf_static logged at 0, a clock set to 2100) used to have
    replay fire a 0.25 s timer through every period in between: billions of calls, never
    ending.  Timers go on for max_gap_s after the last message, then the clock jumps (counted in
    the report); the messages are all delivered."""
    path = write_input(tmp_path / "in.mcap")
    odd = tmp_path / "odd.mcap"
    with BagReader(path) as reader, BagWriter(odd) as writer:
        for raw, _ in reader.messages():
            writer.write_raw(raw.topic, raw.msgtype, raw.raw, raw.log_ns)
        writer.write("/a", "std_msgs/msg/String", string("stray"), outlier_ns)
    rt = ReplayRuntime(odd, None, max_gap_s=2.0)
    rec = rt.add_node(Recorder)
    t = time.perf_counter()
    report = rt.run()
    assert time.perf_counter() - t < 30.0  # finite (it would take years)
    assert len(report.clock_jumps) == 1 and report.timer_calls < 40
    assert [d for _, d, _ in rec.seen].count("stray") == 1 and report.delivered["/a"] == 11
    cut, target = report.clock_jumps[0]
    assert target - cut > 10**9 and cut - (T0 if outlier_ns else 0) <= 3 * 10**9
    # timers: every 250 ms while there are messages, then one tick at the far message, none in the gap
    gap_ticks = [k for k in rec.ticks if cut < k < target]
    assert not gap_ticks


@pytest.mark.parametrize("kwargs, match", [(dict(rate=1e-6), "rate"), (dict(rate=float("inf")), "rate"),
                                           (dict(max_gap_s=0.0), "max_gap_s"), (dict(max_gap_s=float("nan")), "max_gap_s")])
def test_rates_and_gaps_have_sane_bounds(bag_in: Path, kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        ReplayRuntime(bag_in, None, **kwargs)


def test_a_timer_faster_than_1khz_and_infinite_times_are_refused(bag_in: Path, tmp_path: Path) -> None:
    rt = ReplayRuntime(bag_in, None, overrides={"recorder": {"period_s": 1e-9}})
    with pytest.raises(ConfigError, match="timer period"):
        rt.add_node(Recorder)
    with pytest.raises(ConfigError, match="duration"):
        ReplayRuntime(bag_in, None).run(float("inf"))
    calls = tmp_path / "calls.yaml"
    calls.write_text("- {time: .inf, service: /recorder/get}\n")
    with pytest.raises(ConfigError, match="finite time"):
        load_service_calls(calls)
    calls.write_bytes(b"- {time: 1, service: /recorder/get, request: {x: \xff\xfe}}\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_service_calls(calls)


def test_service_log_keeps_large_arrays_out_of_the_yaml(tmp_path: Path) -> None:
    """A render_view answer (a 640x480 image) used to be 22 MB of YAML in --service-log: arrays
    over 1024 elements go to .npy files beside it, and read back identical."""
    import numpy as np

    from ros_gs.runtime.replay import ReplayReport, ServiceResult
    from ros_gs.sensors.image import numpy_to_image

    rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    image = numpy_to_image(make, rgb, "rgb8", T0, "map")
    report = ReplayReport(services=[ServiceResult("/mapper/render_view", T0, string("req"), image)])
    log = service_log(report, tmp_path / "payloads")
    text = yaml.safe_dump(log)
    assert len(text) < 5000
    data = log[0]["response"]["data"]
    assert data["shape"] == [480 * 640 * 3] and np.array_equal(np.load(data["npy"]).reshape(480, 640, 3), rgb)
    assert log[0]["response"]["width"] == 640 and log[0]["request"]["data"] == "req"
    assert service_log(report)[0]["response"]["data"][:3] == rgb.reshape(-1)[:3].tolist()  # no folder: inline, as before
