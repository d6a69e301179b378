"""The rclpy adapter, on a FAKE rclpy (no ROS 2 here).

A strict stand-in for rclpy and the generated message packages is put into ``sys.modules``:
its message setters accept only what real rclpy accepts *without its slow path*
(``array.array`` for numeric ``T[]``, numpy of the right dtype for ``T[N]``, Python floats
for ``float64``, ...), its parameters follow rclpy's declare/override/range rules, and its
executor lets a test deliver messages, fire timers and call services.  What this cannot show
(real DDS, real generated classes, launch) is covered only by running on a ROS 2 install.
"""

from __future__ import annotations

import array
import logging
import re
import subprocess
import sys
import types
from enum import Enum
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel, Field

from ros_gs.errors import ConfigError, SensorDataError
from ros_gs.runtime import rclpy_runtime as rr
from ros_gs.runtime.params import NodeParams, load_params, read_param_file
from ros_gs.runtime.qos import DEFAULT_QOS, LATCHED_QOS, SENSOR_QOS, QoS

REPO = Path(__file__).resolve().parents[2]

# -- a strict fake of generated rosidl message classes ----------------------------------------
_SEQ = re.compile(r"^sequence<([^,>]+)(?:,\s*\d+)?>$")
_FIX = re.compile(r"^(.+)\[(\d+)\]$")
_NUM = {
    "float": ("f", np.float32), "double": ("d", np.float64), "int8": ("b", np.int8),
    "uint8": ("B", np.uint8), "int16": ("h", np.int16), "uint16": ("H", np.uint16),
    "int32": ("i", np.int32), "uint32": ("I", np.uint32), "int64": ("q", np.int64),
    "uint64": ("Q", np.uint64),
}  # fmt: skip


def _resolve(ros_type: str) -> type:
    pkg, name = ros_type.split("/")
    return getattr(sys.modules[f"{pkg}.msg"], name)


def _default(ros_type: str):
    if m := _SEQ.match(ros_type):
        return array.array(_NUM[m.group(1)][0]) if m.group(1) in _NUM else []
    if m := _FIX.match(ros_type):
        inner, n = m.group(1), int(m.group(2))
        return np.zeros(n, _NUM[inner][1]) if inner in _NUM else [_default(inner) for _ in range(n)]
    if ros_type in ("float", "double"):
        return 0.0
    if ros_type in _NUM:
        return 0
    if ros_type == "string":
        return ""
    if ros_type == "boolean":
        return False
    if ros_type == "octet":
        return b"\x00"
    return _resolve(ros_type)()


def _check(field: str, ros_type: str, value) -> None:
    """What rclpy's generated setters assert, minus the slow element-by-element paths."""
    if m := _SEQ.match(ros_type):
        inner = m.group(1)
        if inner in _NUM:
            assert isinstance(value, array.array) and value.typecode == _NUM[inner][0], (
                f"{field}: {type(value).__name__} would take rclpy's slow path; want array.array('{_NUM[inner][0]}')"
            )
        else:
            assert isinstance(value, list) and all(isinstance(v, _resolve(inner)) for v in value), field
        return
    if m := _FIX.match(ros_type):
        inner, n = m.group(1), int(m.group(2))
        assert isinstance(value, np.ndarray) and value.dtype == _NUM[inner][1] and value.size == n, field
        return
    if ros_type in ("float", "double"):
        assert isinstance(value, float), f"{field} must be float, got {type(value).__name__}"
    elif ros_type in _NUM:
        assert isinstance(value, int) and not isinstance(value, bool), f"{field} must be int, got {type(value).__name__}"
        if ros_type.startswith("u"):
            assert value >= 0, field
    elif ros_type == "string":
        assert isinstance(value, str), field
    elif ros_type == "boolean":
        assert isinstance(value, bool), field
    elif ros_type == "octet":
        assert isinstance(value, bytes) and len(value) == 1, f"{field} must be one byte (bytes), got {value!r}"
    else:
        assert isinstance(value, _resolve(ros_type)), f"{field} must be {ros_type}, got {type(value).__name__}"


class FakeMessage:
    FIELDS: dict[str, str] = {}

    def __init__(self, **kwargs) -> None:
        for name, ros_type in self.FIELDS.items():
            object.__setattr__(self, name, _default(ros_type))
        for name, value in kwargs.items():
            setattr(self, name, value)

    @classmethod
    def get_fields_and_field_types(cls) -> dict[str, str]:
        return dict(cls.FIELDS)

    def __setattr__(self, name: str, value) -> None:
        if name not in self.FIELDS:
            raise AttributeError(f"{type(self).__name__} has no field {name}")
        _check(name, self.FIELDS[name], value)
        object.__setattr__(self, name, value)


def msg_class(name: str, fields: dict[str, str]) -> type:
    return type(name, (FakeMessage,), {"FIELDS": fields})


def module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


# -- a fake rclpy --------------------------------------------------------------------------------
class ReliabilityPolicy(Enum):
    RELIABLE = 1
    BEST_EFFORT = 2


class DurabilityPolicy(Enum):
    TRANSIENT_LOCAL = 1
    VOLATILE = 2


class HistoryPolicy(Enum):
    KEEP_LAST = 1
    KEEP_ALL = 2


class QoSProfile:
    def __init__(self, **kwargs) -> None:
        assert set(kwargs) <= {"history", "depth", "reliability", "durability"}, kwargs
        self.__dict__.update(kwargs)


class FakeDescriptor:
    def __init__(self, **kwargs) -> None:
        self.name, self.type, self.description, self.additional_constraints = "", 0, "", ""
        self.read_only = self.dynamic_typing = False
        self.floating_point_range, self.integer_range = [], []
        for key, value in kwargs.items():
            assert hasattr(self, key), key
            setattr(self, key, value)


class FakeRange:
    def __init__(self, from_value=0, to_value=0, step=0) -> None:
        self.from_value, self.to_value, self.step = from_value, to_value, step


class FloatingPointRange(FakeRange):
    pass


class IntegerRange(FakeRange):
    pass


class InvalidParameterValueException(Exception):
    pass


class FakeParameter:
    def __init__(self, name: str, value) -> None:
        self.name, self.value = name, value


class FakeLogger:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def get_effective_level(self) -> int:
        return 20

    def _log(self, level: str, text: str) -> None:
        self.lines.append((level, text))

    def debug(self, text):
        self._log("debug", text)

    def info(self, text):
        self._log("info", text)

    def warning(self, text):
        self._log("warning", text)

    def error(self, text):
        self._log("error", text)

    def fatal(self, text):
        self._log("fatal", text)


class FakeHandle:
    def __init__(self, kind: str, msg_type, name, callback=None, qos=None) -> None:
        self.kind, self.msg_type, self.name, self.callback, self.qos = kind, msg_type, name, callback, qos
        self.published: list = []

    @property
    def topic_name(self) -> str:
        return self.name

    def publish(self, msg) -> None:
        assert isinstance(msg, self.msg_type), f"publishing {type(msg).__name__} on a {self.msg_type.__name__} topic"
        self.published.append(msg)


class FakeRos:
    """The state a test looks at: nodes created, rclpy.init/shutdown calls, the spin hook."""

    def __init__(self) -> None:
        self.nodes: list[FakeNode] = []
        self.init_args = "not called"
        self.shutdowns = 0
        self.overrides: dict = {}
        self.on_spin = None  # called with the node in executor.spin(); default: Ctrl-C at once


class FakeNode:
    ros: FakeRos

    def __init__(self, node_name: str, *, namespace: str = "/", parameter_overrides: dict | None = None) -> None:
        self._name, self._namespace = node_name, namespace
        overrides = self.ros.overrides if parameter_overrides is None else parameter_overrides
        self._parameter_overrides = {k: FakeParameter(k, v) for k, v in overrides.items()}
        self._parameters = {"use_sim_time": FakeParameter("use_sim_time", False)}  # rclpy declares it itself
        self.descriptors: dict[str, FakeDescriptor] = {}
        self.handles: list[FakeHandle] = []
        self.timers: list[tuple[float, object]] = []
        self.logger = FakeLogger()
        self.clock_ns = 0
        self.destroyed = False
        self.ros.nodes.append(self)

    def get_name(self) -> str:
        return self._name

    def get_namespace(self) -> str:
        return self._namespace

    def get_logger(self) -> FakeLogger:
        return self.logger

    def get_clock(self):
        now = types.SimpleNamespace(nanoseconds=self.clock_ns)
        return types.SimpleNamespace(now=lambda: now)

    def declare_parameter(self, name, value=None, descriptor=None):
        assert name not in self._parameters, f"{name} declared twice"
        assert isinstance(descriptor, FakeDescriptor)
        if name in self._parameter_overrides:
            value = self._parameter_overrides[name].value
        if descriptor.floating_point_range and isinstance(value, float):
            r = descriptor.floating_point_range[0]
            if not r.from_value <= value <= r.to_value:
                raise InvalidParameterValueException(f"{name} out of range")
        if descriptor.integer_range and isinstance(value, int):
            r = descriptor.integer_range[0]
            if not r.from_value <= value <= r.to_value:
                raise InvalidParameterValueException(f"{name} out of range")
        self._parameters[name] = FakeParameter(name, value)
        self.descriptors[name] = descriptor
        return self._parameters[name]

    def has_parameter(self, name) -> bool:
        return name in self._parameters

    def get_parameter(self, name):
        return self._parameters[name]

    def _handle(self, *args, **kwargs) -> FakeHandle:
        handle = FakeHandle(*args, **kwargs)
        self.handles.append(handle)
        return handle

    def create_publisher(self, msg_type, topic, qos_profile):
        assert isinstance(qos_profile, QoSProfile)
        return self._handle("pub", msg_type, topic, qos=qos_profile)

    def create_subscription(self, msg_type, topic, callback, qos_profile):
        assert isinstance(qos_profile, QoSProfile)
        return self._handle("sub", msg_type, topic, callback, qos_profile)

    def create_timer(self, timer_period_sec, callback):
        self.timers.append((timer_period_sec, callback))
        return self.timers[-1]

    def create_service(self, srv_type, srv_name, callback):
        return self._handle("srv", srv_type, srv_name, callback)

    def destroy_node(self) -> None:
        self.destroyed = True

    # test helpers
    def find(self, kind: str, name: str) -> FakeHandle:
        found = [h for h in self.handles if h.kind == kind and h.name == name]
        assert len(found) == 1, f"{kind} {name}: {[(h.kind, h.name) for h in self.handles]}"
        return found[0]

    def call(self, service: str, request=None):
        handle = self.find("srv", service)
        response = handle.callback(request or handle.msg_type.Request(), handle.msg_type.Response())
        assert isinstance(response, handle.msg_type.Response), "rclpy's executor raises on this"
        return response


class ExternalShutdownException(Exception):
    pass


class SingleThreadedExecutor:
    ros: FakeRos

    def __init__(self) -> None:
        self.nodes: list = []
        self.was_shut_down = False

    def add_node(self, node) -> bool:
        self.nodes.append(node)
        return True

    def spin(self) -> None:
        for node in self.nodes:
            if self.ros.on_spin is not None:
                self.ros.on_spin(node)
        raise KeyboardInterrupt

    def shutdown(self, timeout_sec=None) -> bool:
        self.was_shut_down = True
        return True


# -- the fake message packages ----------------------------------------------------------------
Time = msg_class("Time", {"sec": "int32", "nanosec": "uint32"})
Header = msg_class("Header", {"stamp": "builtin_interfaces/Time", "frame_id": "string"})
UInt64 = msg_class("UInt64", {"data": "uint64"})
Image = msg_class(
    "Image",
    {
        "header": "std_msgs/Header", "height": "uint32", "width": "uint32", "encoding": "string",
        "is_bigendian": "uint8", "step": "uint32", "data": "sequence<uint8>",
    },
)  # fmt: skip
CameraInfo = msg_class("CameraInfo", {"header": "std_msgs/Header", "k": "double[9]", "d": "sequence<double>"})
ImageStats = msg_class(
    "ImageStats",
    {
        "header": "std_msgs/Header", "width": "uint32", "height": "uint32", "encoding": "string",
        "channel_mean": "sequence<double>", "min_value": "double", "max_value": "double",
        "valid_fraction": "double", "frame_count": "uint64",
    },
)  # fmt: skip
TFMessage = msg_class("TFMessage", {"transforms": "sequence<std_msgs/Header>"})
KeyValue = msg_class("KeyValue", {"key": "string", "value": "string"})
DiagnosticStatus = msg_class("DiagnosticStatus", {"level": "octet", "name": "string", "message": "string",
                                                  "hardware_id": "string", "values": "sequence<diagnostic_msgs/KeyValue>"})
DiagnosticArray = msg_class("DiagnosticArray", {"header": "std_msgs/Header", "status": "sequence<diagnostic_msgs/DiagnosticStatus>"})


class GetImageStats:  # a generated service: only the service class is exported by srv/__init__
    Request = msg_class("GetImageStats_Request", {})
    Response = msg_class("GetImageStats_Response", {"ok": "boolean", "message": "string", "stats": "ros_gs/ImageStats"})


@pytest.fixture
def ros(monkeypatch) -> FakeRos:
    """Fake rclpy, rcl_interfaces and message packages in sys.modules (undone after the test)."""
    state = FakeRos()
    node_cls = type("Node", (FakeNode,), {"ros": state})
    executor_cls = type("SingleThreadedExecutor", (SingleThreadedExecutor,), {"ros": state})

    def init(args=None, **_):
        state.init_args = args

    def try_shutdown(**_):
        state.shutdowns += 1

    rclpy_node = module("rclpy.node", Node=node_cls)
    rclpy_qos = module(
        "rclpy.qos", QoSProfile=QoSProfile, ReliabilityPolicy=ReliabilityPolicy,
        DurabilityPolicy=DurabilityPolicy, HistoryPolicy=HistoryPolicy,
    )  # fmt: skip
    rclpy_executors = module(
        "rclpy.executors", SingleThreadedExecutor=executor_cls, ExternalShutdownException=ExternalShutdownException
    )
    rclpy = module(
        "rclpy", init=init, try_shutdown=try_shutdown, ok=lambda: True,
        node=rclpy_node, qos=rclpy_qos, executors=rclpy_executors,
    )  # fmt: skip
    mods = {
        "rclpy": rclpy,
        "rclpy.node": rclpy_node,
        "rclpy.qos": rclpy_qos,
        "rclpy.executors": rclpy_executors,
        "rcl_interfaces": module("rcl_interfaces"),
        "rcl_interfaces.msg": module(
            "rcl_interfaces.msg", ParameterDescriptor=FakeDescriptor,
            FloatingPointRange=FloatingPointRange, IntegerRange=IntegerRange,
        ),  # fmt: skip
        "builtin_interfaces": module("builtin_interfaces"),
        "builtin_interfaces.msg": module("builtin_interfaces.msg", Time=Time),
        "std_msgs": module("std_msgs"),
        "std_msgs.msg": module("std_msgs.msg", Header=Header, UInt64=UInt64),
        "sensor_msgs": module("sensor_msgs"),
        "sensor_msgs.msg": module("sensor_msgs.msg", Image=Image, CameraInfo=CameraInfo),
        "tf2_msgs": module("tf2_msgs"),
        "tf2_msgs.msg": module("tf2_msgs.msg", TFMessage=TFMessage),
        "diagnostic_msgs": module("diagnostic_msgs"),
        "diagnostic_msgs.msg": module("diagnostic_msgs.msg", KeyValue=KeyValue, DiagnosticStatus=DiagnosticStatus,
                                      DiagnosticArray=DiagnosticArray),
        "ros_gs.msg": module("ros_gs.msg", ImageStats=ImageStats),
        "ros_gs.srv": module("ros_gs.srv", GetImageStats=GetImageStats),
    }
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return state


@pytest.fixture
def node(ros) -> FakeNode:
    return sys.modules["rclpy.node"].Node("stats", namespace="/robot")


@pytest.fixture
def ctx(node) -> rr.RclpyContext:
    return rr.RclpyContext(node)


# -- without rclpy ------------------------------------------------------------------------------
def test_module_imports_without_rclpy():
    code = (
        "import sys\n"
        "for name in ('rclpy', 'rclpy.node', 'rclpy.qos', 'rcl_interfaces'): sys.modules[name] = None\n"
        "import ros_gs.runtime.rclpy_runtime as m\n"
        "assert m.RCLPY_MISSING.startswith('rclpy not found')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_clear_error_when_used_without_rclpy(monkeypatch):
    monkeypatch.setitem(sys.modules, "rclpy", None)
    message = re.escape("rclpy not found: source a ROS 2 install (see README)")
    with pytest.raises(RuntimeError, match=message):
        rr.main("image_stats", args=[])
    with pytest.raises(RuntimeError, match=message):
        rr.to_qos_profile(DEFAULT_QOS)
    with pytest.raises(RuntimeError, match=message):
        rr.RclpyContext(object())


# -- types and messages ---------------------------------------------------------------------------
def test_type_resolution(ros):
    assert rr.interface_class("sensor_msgs/msg/Image") is Image
    assert rr.interface_class("std_msgs/Header") is Header  # rosidl's spelling of nested types
    assert rr.interface_class("ros_gs/msg/ImageStats") is ImageStats
    assert rr.interface_class("ros_gs/srv/GetImageStats") is GetImageStats
    assert rr.interface_class("ros_gs/srv/GetImageStats_Request") is GetImageStats.Request
    assert rr.interface_class("ros_gs/srv/GetImageStats_Response") is GetImageStats.Response
    with pytest.raises(ConfigError, match="package.xml"):
        rr.interface_class("no_such_msgs/msg/Thing")
    with pytest.raises(ConfigError, match="has no Nope"):
        rr.interface_class("sensor_msgs/msg/Nope")
    for bad in ("Image", "sensor_msgs/foo/Image", "a/b/c/d", "sensor_msgs/msg/"):
        with pytest.raises(ConfigError, match="bad interface type"):
            rr.interface_class(bad)


def test_make_converts_numpy_fast_and_coerces_scalars(ctx):
    pixels = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    header = ctx.make("std_msgs/msg/Header", frame_id="cam", stamp={"sec": np.int32(3), "nanosec": 7})
    img = ctx.make(
        "sensor_msgs/msg/Image", header=header, height=np.uint32(4), width=5, encoding="rgb8", step=15, data=pixels
    )
    assert isinstance(img, Image) and isinstance(img.data, array.array) and img.data.typecode == "B"
    assert bytes(img.data) == pixels.tobytes()
    assert img.height == 4 and type(img.height) is int
    assert img.header is header and img.header.stamp.sec == 3 and img.header.frame_id == "cam"
    assert ctx.make("sensor_msgs/msg/Image", data=b"\x01\x02").data == array.array("B", [1, 2])
    assert ctx.make("sensor_msgs/msg/Image", data=[1, 2, 3]).data == array.array("B", [1, 2, 3])
    already = array.array("B", [9])
    assert ctx.make("sensor_msgs/msg/Image", data=already).data is already
    info = ctx.make("sensor_msgs/msg/CameraInfo", k=np.eye(3), d=[0, 1, 2])  # ints into float64[]
    assert info.k.dtype == np.float64 and info.k.shape == (9,) and info.k[4] == 1.0
    assert info.d == array.array("d", [0.0, 1.0, 2.0])
    stats = ctx.make("ros_gs/msg/ImageStats", min_value=1, max_value=np.float32(2.5), frame_count=np.uint64(4))
    assert stats.min_value == 1.0 and type(stats.min_value) is float and stats.max_value == 2.5
    assert stats.frame_count == 4 and type(stats.frame_count) is int
    with pytest.raises(TypeError, match="no field"):
        ctx.make("sensor_msgs/msg/Image", pixels=pixels)


def test_make_large_image_is_fast(ctx):
    import time

    pixels = np.zeros((1080, 1920, 3), np.uint8)
    t0 = time.perf_counter()
    img = ctx.make("sensor_msgs/msg/Image", data=pixels)
    assert len(img.data) == pixels.size
    assert time.perf_counter() - t0 < 0.5  # an element-wise path takes seconds


# -- QoS -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "qos, depth, reliability, durability",
    [
        (DEFAULT_QOS, 10, ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE),
        (SENSOR_QOS, 5, ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE),
        (LATCHED_QOS, 1, ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL),
        (
            QoS(depth=3, reliable=False, transient_local=True),
            3,
            ReliabilityPolicy.BEST_EFFORT,
            DurabilityPolicy.TRANSIENT_LOCAL,
        ),
    ],
)
def test_qos_mapping(ros, qos, depth, reliability, durability):
    profile = rr.to_qos_profile(qos)
    assert profile.depth == depth
    assert profile.reliability is reliability
    assert profile.durability is durability
    assert profile.history is HistoryPolicy.KEEP_LAST


# -- parameters ------------------------------------------------------------------------------------
class Sync(BaseModel):
    slop_s: float = Field(0.05, ge=0.0, le=1.0, description="max stamp difference")
    queue: int = Field(4, ge=1, le=64, description="frames kept per topic")


class DemoParams(NodeParams):
    rate_hz: float = Field(10.0, gt=0.0, description="output rate")
    workers: int = Field(2, gt=0, lt=17)
    name: str = "demo"
    frame: str | None = None
    topics: list[str] = Field(default_factory=list)
    weights: list[float] = Field(default_factory=lambda: [1.0, 2.0])
    sync: Sync = Field(default_factory=Sync)


def make_ctx(ros, overrides: dict, name: str = "demo") -> rr.RclpyContext:
    ros.overrides = overrides
    return rr.RclpyContext(sys.modules["rclpy.node"].Node(name))


def test_parameters_declared_with_defaults_descriptions_and_ranges(ros):
    ctx = make_ctx(ros, {})
    params = ctx.get_params(DemoParams)
    assert params == DemoParams()
    node = ctx.node
    names = {"rate_hz", "workers", "name", "frame", "topics", "weights", "sync.slop_s", "sync.queue", "diagnostics_period_s"}
    assert set(node.descriptors) == names
    declared = {name: p.value for name, p in node._parameters.items() if name != "use_sim_time"}
    assert declared == {
        "rate_hz": 10.0, "workers": 2, "name": "demo", "frame": None, "topics": None,
        "weights": [1.0, 2.0], "sync.slop_s": 0.05, "sync.queue": 4, "diagnostics_period_s": 1.0,
    }  # fmt: skip
    d = node.descriptors
    assert all(desc.read_only and desc.dynamic_typing for desc in d.values())
    assert d["sync.slop_s"].description == "max stamp difference" and d["sync.slop_s"].name == "sync.slop_s"
    (slop,) = d["sync.slop_s"].floating_point_range
    assert (slop.from_value, slop.to_value) == (0.0, 1.0) and not d["sync.slop_s"].integer_range
    (queue,) = d["sync.queue"].integer_range
    assert (queue.from_value, queue.to_value) == (1, 64) and not d["sync.queue"].floating_point_range
    (workers,) = d["workers"].integer_range
    assert (workers.from_value, workers.to_value) == (1, 16)  # exclusive bounds, exactly
    (rate,) = d["rate_hz"].floating_point_range
    assert rate.from_value == 0.0 and rate.to_value >= 1e300  # one-sided
    assert "> 0.0" in d["rate_hz"].additional_constraints
    assert not d["name"].floating_point_range and not d["name"].integer_range


def test_parameters_from_overrides_are_validated_and_coerced(ros):
    params = make_ctx(
        ros,
        {
            "rate_hz": 2,
            "topics": ["/a", "/b"],
            "weights": array.array("d", [3.0]),  # rclpy hands arrays back as array.array
            "sync.queue": 8,
            "use_sim_time": True,  # rclpy's own parameters are not the model's
            "qos_overrides./x.publisher.depth": 3,
        },
    ).get_params(DemoParams)
    assert params.rate_hz == 2.0 and params.topics == ["/a", "/b"] and params.weights == [3.0]
    assert params.sync.queue == 8 and params.sync.slop_s == 0.05


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"rate_hz": 0.0}, "rate_hz"),  # inside the advertised range, rejected by gt=0 in the model
        ({"sync.queue": 100}, "sync.queue"),  # rclpy's own range check, reported as ConfigError
        ({"workers": "many"}, "workers"),
        ({"rate_hzz": 3.0}, "rate_hzz"),  # a typo in the YAML is an error here as in replay
    ],
)
def test_bad_parameters_are_config_errors(ros, overrides, match):
    with pytest.raises(ConfigError, match=match):
        make_ctx(ros, overrides).get_params(DemoParams)


def test_config_yaml_gives_same_params_as_replay(ros):
    from ros_gs.nodes.image_stats import ImageStatsParams

    path = REPO / "config" / "image_stats.yaml"
    overrides = read_param_file(path)["image_stats"]
    overrides["heartbeat_period_s"] = 2.5
    params = make_ctx(ros, overrides, "image_stats").get_params(ImageStatsParams)
    assert params == load_params(ImageStatsParams, "image_stats", [path], {"heartbeat_period_s": 2.5})


# -- communication ---------------------------------------------------------------------------------
def test_names_resolve_like_the_node_api(ctx, node):
    assert (ctx.name, ctx.namespace) == ("stats", "/robot")
    private = ctx.create_publisher("std_msgs/msg/UInt64", "~/x")
    relative = ctx.create_publisher("std_msgs/msg/UInt64", "x")
    absolute = ctx.create_publisher("std_msgs/msg/UInt64", "/x", LATCHED_QOS)
    assert (private.topic, relative.topic, absolute.topic) == ("/robot/stats/x", "/robot/x", "/x")
    assert private.msgtype == "std_msgs/msg/UInt64"
    handle = node.find("pub", "/robot/stats/x")
    assert handle.msg_type is UInt64 and handle.qos.reliability is ReliabilityPolicy.RELIABLE
    assert node.find("pub", "/x").qos.durability is DurabilityPolicy.TRANSIENT_LOCAL
    private.publish(UInt64(data=3))
    assert handle.published[0].data == 3
    ctx.create_service("ros_gs/srv/GetImageStats", "~/get", lambda req, resp: resp)
    assert node.find("srv", "/robot/stats/get").msg_type is GetImageStats


def test_subscription_callbacks_are_guarded(ctx, node):
    seen = []

    def callback(msg):
        if msg.encoding == "bad":
            raise SensorDataError("bad image")
        if msg.encoding == "bug":
            raise ZeroDivisionError("oops")
        seen.append(msg)

    ctx.create_subscription("sensor_msgs/msg/Image", "~/image", callback, SENSOR_QOS)
    handle = node.find("sub", "/robot/stats/image")
    assert handle.msg_type is Image and handle.qos.reliability is ReliabilityPolicy.BEST_EFFORT
    for encoding in ("ok", "bad", "bug", "bad", "ok"):
        assert handle.callback(Image(encoding=encoding)) is None  # never raises into the executor
    assert len(seen) == 2
    assert ctx.skips[("/robot/stats/image", "SensorDataError")] == 2
    assert ctx.errors[("/robot/stats/image", "ZeroDivisionError")] == 1
    levels = [level for level, _ in node.logger.lines]
    assert levels.count("warning") == 2 and levels.count("error") == 1  # forwarded to the ROS logger


def test_timers_are_guarded_and_checked(ctx, node):
    ticks = []
    ctx.create_timer(0.5, lambda: ticks.append(1))
    ctx.create_timer(1, lambda: 1 / 0)
    (period, tick), (period2, bad) = node.timers
    assert period == 0.5 and isinstance(period2, float)
    tick()
    bad()
    assert ticks == [1] and sum(ctx.errors.values()) == 1
    with pytest.raises(ConfigError, match="period"):
        ctx.create_timer(0.0, lambda: None)


def test_services_always_answer(ctx, node):
    def handler(request, response):
        if handler.mode == "raise":
            raise SensorDataError("no image")
        if handler.mode == "wrong":
            return request
        response.ok, response.message = True, "fine"
        return response

    ctx.create_service("ros_gs/srv/GetImageStats", "~/get_stats", handler)
    handler.mode = "ok"
    assert node.call("/robot/stats/get_stats").ok is True
    handler.mode = "raise"
    failed = node.call("/robot/stats/get_stats")
    assert failed.ok is False and "log" in failed.message
    assert ctx.skips[("/robot/stats/get_stats", "SensorDataError")] == 1
    handler.mode = "wrong"
    assert node.call("/robot/stats/get_stats").ok is False
    assert ctx.errors[("/robot/stats/get_stats", "BadResponse")] == 1


def test_now_ns_reads_the_node_clock(ctx, node):
    node.clock_ns = 1_700_000_000_123_456_789
    assert ctx.now_ns() == 1_700_000_000_123_456_789


def test_tf_buffer_subscribes_through_the_adapter(ctx, node):
    pytest.importorskip("ros_gs.sensors.tf_buffer")
    ctx.tf_buffer()
    assert node.find("sub", "/tf").msg_type is TFMessage
    assert node.find("sub", "/tf_static").qos.durability is DurabilityPolicy.TRANSIENT_LOCAL


def test_python_logging_reaches_the_ros_logger(ctx, node):
    ctx.logger.info("hello %s", "ros")
    ctx.logger.error("bad")
    assert ("info", "hello ros") in node.logger.lines and ("error", "bad") in node.logger.lines


# -- a real node, unchanged, on the fake ROS ---------------------------------------------------------
def rgb_image(pixels: np.ndarray, **fields) -> Image:
    h, w, _ = pixels.shape
    header = Header(stamp=Time(sec=5, nanosec=6), frame_id="camera")
    fields = {"header": header, "height": h, "width": w, "encoding": "rgb8", "step": w * 3, "data": pixels, **fields}
    return rr.make_message("sensor_msgs/msg/Image", **fields)


def test_image_stats_node_runs_unchanged_under_main(ros):
    pytest.importorskip("ros_gs.sensors.image")
    pixels = np.zeros((2, 3, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 10, 20, np.arange(6).reshape(2, 3)
    results = {}

    def on_spin(node: FakeNode) -> None:
        assert node.get_name() == "image_stats"
        sub = node.find("sub", "/camera/color/image_raw")
        assert sub.msg_type is Image and sub.qos.reliability is ReliabilityPolicy.BEST_EFFORT
        results["before"] = node.call("/image_stats/get_stats")
        sub.callback(rgb_image(pixels))
        sub.callback(rgb_image(pixels, encoding="no_such_encoding"))  # SensorDataError: a skip
        (period, tick), (diag_period, diag_tick) = node.timers  # the node's heartbeat, then /diagnostics
        results["period"], results["diag_period"] = period, diag_period
        tick()
        diag_tick()
        results["diagnostics"] = node.find("pub", "/diagnostics").published
        results["after"] = node.call("/image_stats/get_stats")
        results["stats"] = node.find("pub", "/image_stats/stats").published
        results["frames"] = node.find("pub", "/image_stats/frames").published
        results["warnings"] = [text for level, text in node.logger.lines if level == "warning"]

    ros.on_spin = on_spin
    ros.overrides = {"heartbeat_period_s": 0.25}
    assert rr.main("image_stats", args=["--ros-args"]) == 0
    assert ros.init_args == ["--ros-args"] and ros.shutdowns == 1
    (node,) = ros.nodes
    assert node.destroyed
    assert results["period"] == 0.25
    assert results["before"].ok is False
    (stats,) = results["stats"]
    assert isinstance(stats, ImageStats) and (stats.width, stats.height, stats.encoding) == (3, 2, "rgb8")
    assert stats.header.frame_id == "camera" and stats.header.stamp.sec == 5
    np.testing.assert_allclose(np.asarray(stats.channel_mean), [10.0, 20.0, 2.5])
    assert stats.frame_count == 1 and stats.valid_fraction == 1.0
    assert (stats.min_value, stats.max_value) == (0.0, 20.0)
    (frames,) = results["frames"]
    assert isinstance(frames, UInt64) and frames.data == 1
    assert results["after"].ok is True and results["after"].stats is stats
    assert any("SensorDataError" in text for text in results["warnings"])
    # /diagnostics: the skipped image is a WARN naming its reason, the good one counted, own figures added
    assert results["diag_period"] == 1.0
    assert len(results["diagnostics"]) == 1, [t for lv, t in node.logger.lines if lv == "error"]
    (diag,) = results["diagnostics"]
    (status,) = diag.status
    values = {kv.key: kv.value for kv in status.values}
    assert status.name == "/image_stats" and status.level == b"\x01" and "1 input(s) skipped" in status.message
    assert values["/camera/color/image_raw messages"] == "2" and values["skipped"] == "1"
    assert values["skipped /camera/color/image_raw: SensorDataError"] == "1"


def test_main_reports_bad_parameters_and_shuts_down(ros):
    pytest.importorskip("ros_gs.sensors.image")
    ros.overrides = {"heartbeat_period_s": -1.0}
    assert rr.main("image_stats", args=[]) == 2
    (node,) = ros.nodes
    assert node.destroyed and ros.shutdowns == 1
    assert any(level == "error" and "heartbeat_period_s" in text for level, text in node.logger.lines)


def test_main_rejects_unknown_node_before_starting_ros(ros):
    with pytest.raises(KeyError, match="unknown node"):
        rr.main("no_such_node", args=[])
    assert ros.init_args == "not called"


@pytest.fixture(autouse=True)
def _restore_logging():
    """The adapter re-routes ros_gs.* loggers to the (fake) ROS logger; put them back."""
    names = ("ros_gs", "ros_gs.stats", "ros_gs.demo", "ros_gs.image_stats")
    loggers = {name: logging.getLogger(name) for name in names}
    saved = {name: (lg.handlers[:], lg.propagate, lg.level) for name, lg in loggers.items()}
    yield
    for name, (handlers, propagate, level) in saved.items():
        lg = loggers[name]
        lg.handlers[:] = handlers
        lg.propagate, lg.level = propagate, level
