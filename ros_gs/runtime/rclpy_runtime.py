"""The node API on a live ROS 2 graph: a thin adapter from :class:`NodeContext` to rclpy.

``ros2 run ros_gs <node>`` runs ``scripts/<node>``, which calls :func:`main`: it creates one
``rclpy.node.Node``, wraps it in an :class:`RclpyContext` and constructs the ros_gs node class
registered under that name (:data:`ros_gs.nodes.NODES`) on it, exactly as the replay runtime
does on a bag.  Nothing else differs for a node:

* message types are the ``pkg/msg/Name`` strings of the node API, resolved to the generated
  rclpy classes with importlib (``sensor_msgs/msg/Image`` -> ``sensor_msgs.msg.Image``);
* :meth:`RclpyContext.make` builds messages from keyword fields and converts numpy arrays for
  numeric ``T[]`` fields to ``array.array`` in one copy (rclpy's own setters check every
  element of anything else, which takes seconds for an image);
* callbacks run behind :meth:`NodeContext.guard`, so a bad message is a counted skip;
* parameters are declared from the node's pydantic model (names, defaults, descriptions and
  ranges) and validated by it, so the launch YAML is the one the replay runtime reads.

rclpy is imported lazily: this module imports without ROS, and using it without ROS raises
``RuntimeError`` naming the fix.
"""

from __future__ import annotations

import array
import importlib
import logging
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from pathlib import PurePath
from typing import Any

import numpy as np

from ros_gs.errors import ConfigError
from ros_gs.runtime.node_api import Callback, NodeContext, P, ServiceCallback, check_timer_period
from ros_gs.runtime.params import describe, is_ros_reserved, validate_params
from ros_gs.runtime.qos import DEFAULT_QOS, QoS

RCLPY_MISSING = "rclpy not found: source a ROS 2 install (see README)"

#: rosidl base types of numeric arrays: array.array type code (``T[]``) and numpy dtype
#: (``T[N]``), as rosidl_generator_py maps them.
_NUMERIC: dict[str, tuple[str, type]] = {
    "float": ("f", np.float32),
    "double": ("d", np.float64),
    "int8": ("b", np.int8),
    "uint8": ("B", np.uint8),
    "int16": ("h", np.int16),
    "uint16": ("H", np.uint16),
    "int32": ("i", np.int32),
    "uint32": ("I", np.uint32),
    "int64": ("q", np.int64),
    "uint64": ("Q", np.uint64),
}
_INTEGER = {name for name, (_, dtype) in _NUMERIC.items() if np.issubdtype(dtype, np.integer)}
_SEQUENCE = re.compile(r"^sequence<\s*([^,>]+?)\s*(?:,\s*\d+\s*)?>$")
_FIXED = re.compile(r"^(.+?)\[(\d+)\]$")

#: Limits for one-sided ranges in parameter descriptors (rcl_interfaces has no "unbounded").
_INT64 = (-(2**63), 2**63 - 1)
_FLOAT = (-sys.float_info.max, sys.float_info.max)

def _require_rclpy():
    """The rclpy module, or the RuntimeError that tells the user to source ROS 2."""
    try:
        import rclpy
        import rclpy.node  # noqa: F401
        import rclpy.qos  # noqa: F401
    except ImportError as err:
        raise RuntimeError(RCLPY_MISSING) from err
    return rclpy


# -- message types ----------------------------------------------------------------------------
def split_type(typename: str) -> tuple[str, str, str]:
    """``pkg/msg/Name`` (or ``pkg/Name``, as rosidl writes nested types) -> (pkg, kind, Name)."""
    parts = typename.strip().split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or parts[1] not in ("msg", "srv", "action") or not all(parts):
        raise ConfigError(f"bad interface type {typename!r}: expected pkg/msg/Name or pkg/srv/Name")
    return parts[0], parts[1], parts[2]


def interface_class(typename: str) -> Any:
    """The generated Python class of ``typename``.

    ``pkg/srv/Name`` is the service class (with ``.Request`` / ``.Response``);
    ``pkg/srv/Name_Request`` and ``pkg/srv/Name_Response`` (the node API's names for the
    two halves, as rosidl and the replay typestore spell them) are its parts.
    """
    pkg, kind, name = split_type(typename)
    try:
        module = importlib.import_module(f"{pkg}.{kind}")
    except ImportError as err:
        raise ConfigError(
            f"unknown interface type {typename!r}: cannot import {pkg}.{kind} ({err}); is {pkg} "
            "built, sourced and declared in package.xml?"
        ) from None
    cls = getattr(module, name, None)
    if cls is None and kind == "srv" and name.endswith(("_Request", "_Response")):
        base, _, part = name.rpartition("_")
        cls = getattr(getattr(module, base, None), part, None)
    if cls is None:
        raise ConfigError(f"unknown interface type {typename!r}: {pkg}.{kind} has no {name}")
    return cls


_FIELD_TYPES: dict[type, dict[str, str]] = {}


def field_types(cls: type) -> dict[str, str]:
    """``{field: rosidl type}`` of a generated message class.

    Types as rosidl spells them: ``sequence<uint8>``, ``double[9]``, ``std_msgs/Header``.
    """
    try:
        return _FIELD_TYPES[cls]
    except KeyError:
        types = dict(cls.get_fields_and_field_types())
        _FIELD_TYPES[cls] = types
        return types


def _numeric_array(value: Any, dtype: type) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=dtype).reshape(-1)


def convert_field(value: Any, ros_type: str, make: Callable[..., Any]) -> Any:
    """``value`` in the form rclpy's setter for a field of ``ros_type`` accepts without a slow path.

    numpy/list/bytes -> ``array.array`` for numeric ``T[]``; numpy for numeric ``T[N]``;
    numpy scalars -> Python scalars; a mapping for a nested message -> that message.
    Anything else is passed through for rclpy to check.
    """
    ros_type = ros_type.strip()
    if match := _SEQUENCE.match(ros_type):
        inner = match.group(1)
        if inner in _NUMERIC:
            code, dtype = _NUMERIC[inner]
            if isinstance(value, array.array) and value.typecode == code:
                return value
            out = array.array(code)
            if code == "B" and isinstance(value, (bytes, bytearray, memoryview)):
                out.frombytes(value)
            else:
                out.frombytes(_numeric_array(value, dtype).view(np.uint8))
            return out
        return _convert_items(value, inner, make)
    if match := _FIXED.match(ros_type):
        inner = match.group(1).strip()
        if inner in _NUMERIC:
            return _numeric_array(value, _NUMERIC[inner][1])
        return _convert_items(value, inner, make)
    return _convert_scalar(value, ros_type, make)


def _convert_items(value: Any, inner: str, make: Callable[..., Any]) -> Any:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and ("/" in inner or inner == "boolean"):
        return [_convert_scalar(v, inner, make) for v in value]
    return value


def _convert_scalar(value: Any, ros_type: str, make: Callable[..., Any]) -> Any:
    if "/" in ros_type:
        return make(ros_type, **value) if isinstance(value, Mapping) else value
    if ros_type in ("float", "double"):
        if isinstance(value, (int, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            return float(value)
    elif ros_type in _INTEGER:
        if isinstance(value, np.integer):
            return int(value)
    elif ros_type == "boolean" and isinstance(value, np.bool_):
        return bool(value)
    elif ros_type in ("octet", "byte") and isinstance(value, (int, np.integer)):
        return bytes([int(value)])  # rclpy's byte fields take one-byte bytes (rosbags: an int)
    return value


def make_message(typename: str, **fields: Any) -> Any:
    """An rclpy message of ``typename`` from keyword fields; unset fields keep rosidl defaults."""
    cls = interface_class(typename)
    types = field_types(cls)
    if unknown := set(fields) - set(types):
        raise TypeError(f"{typename} has no field(s) {sorted(unknown)}; fields are {sorted(types)}")
    msg = cls()
    for name, value in fields.items():
        setattr(msg, name, convert_field(value, types[name], make_message))
    return msg


# -- QoS --------------------------------------------------------------------------------------
def to_qos_profile(qos: QoS) -> Any:
    """:class:`ros_gs.runtime.qos.QoS` -> ``rclpy.qos.QoSProfile`` (keep-last ``depth``)."""
    _require_rclpy()
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=qos.depth,
        reliability=ReliabilityPolicy.RELIABLE if qos.reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if qos.transient_local else DurabilityPolicy.VOLATILE,
    )


# -- parameters -------------------------------------------------------------------------------
def _ros_value(value: Any) -> Any:
    """A model default as a value rclpy can declare (None: declare without a value)."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and value:
        items = [_ros_value(v) for v in value]
        kinds = {type(v) for v in items}
        if len(kinds) == 1 and kinds <= {bool, int, float, str}:
            return items
        if kinds <= {int, float}:
            return [float(v) for v in items]
    return None


def _from_ros_value(value: Any) -> Any:
    if isinstance(value, (array.array, tuple)):
        return list(value)
    return value


def parameter_descriptor(row: Mapping[str, Any]) -> Any:
    """``rcl_interfaces/ParameterDescriptor`` for one row of :func:`ros_gs.runtime.params.describe`.

    Dynamically typed (``heartbeat_period_s: 2`` in YAML is valid; the model coerces and
    validates it) and read-only (values are read once, at start-up).  Bounds become a
    ``FloatingPointRange`` or ``IntegerRange``; exclusive bounds are advertised as their
    inclusive neighbour and enforced exactly by the model.
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    name, description = row["name"], row.get("description", "")
    descriptor = ParameterDescriptor(name=name, description=description, read_only=True, dynamic_typing=True)
    default = row.get("default")
    lower = [row[k] for k in ("ge", "gt") if row.get(k) is not None]
    upper = [row[k] for k in ("le", "lt") if row.get(k) is not None]
    if not lower and not upper:
        return descriptor
    bounds = lower + upper
    integer = row.get("type") == "int" or (
        row.get("type") != "float"
        and isinstance(default, int)
        and not isinstance(default, bool)
        and all(isinstance(b, int) for b in bounds)
    )
    if integer:
        lo = _INT64[0] if not lower else int(row["ge"]) if "ge" in row else int(row["gt"]) + 1
        hi = _INT64[1] if not upper else int(row["le"]) if "le" in row else int(row["lt"]) - 1
        descriptor.integer_range = [IntegerRange(from_value=lo, to_value=hi, step=0)]
    else:
        lo = _FLOAT[0] if not lower else float(lower[0])
        hi = _FLOAT[1] if not upper else float(upper[0])
        descriptor.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]
    descriptor.additional_constraints = " and ".join(
        f"{op} {row[key]}" for key, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")) if key in row
    )
    return descriptor


# -- the context ------------------------------------------------------------------------------
class RclpyPublisher:
    """A publisher as the node API sees it: ``.topic``, ``.msgtype``, ``.publish(msg)``."""

    def __init__(self, handle: Any, msgtype: str, topic: str) -> None:
        self.handle, self.msgtype, self.topic = handle, msgtype, topic

    def publish(self, msg: Any) -> None:
        self.handle.publish(msg)


class _RosLogHandler(logging.Handler):
    """Python logging -> the node's rcutils logger (console and /rosout).

    One call site per severity: rcutils loggers refuse to change severity at a call site.
    """

    def __init__(self, ros_logger: Any) -> None:
        super().__init__()
        self.ros_logger = ros_logger
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if record.levelno >= logging.CRITICAL:
                self.ros_logger.fatal(text)
            elif record.levelno >= logging.ERROR:
                self.ros_logger.error(text)
            elif record.levelno >= logging.WARNING:
                self.ros_logger.warning(text)
            elif record.levelno >= logging.INFO:
                self.ros_logger.info(text)
            else:
                self.ros_logger.debug(text)
        except Exception:  # noqa: BLE001 - logging must never raise into a callback
            self.handleError(record)


class RclpyContext(NodeContext):
    """:class:`NodeContext` over one ``rclpy.node.Node``.

    Names are resolved by the node API (``~/x`` -> ``/<ns>/<node>/x``) with the node's real
    name and namespace, and handed to rclpy fully qualified; launch remappings still apply
    (rcl matches them on the expanded name).
    """

    def __init__(self, node: Any, forward_logs: bool = True) -> None:
        _require_rclpy()
        super().__init__(node.get_name(), node.get_namespace())
        self.node = node
        #: rclpy handles (publishers, subscriptions, timers, services) kept alive with the context.
        self.handles: list[Any] = []
        if forward_logs:
            ros_logger = node.get_logger()
            self.logger.handlers = [h for h in self.logger.handlers if not isinstance(h, _RosLogHandler)]
            self.logger.addHandler(_RosLogHandler(ros_logger))
            self.logger.propagate = False
            level = getattr(ros_logger, "get_effective_level", lambda: logging.INFO)()
            self.logger.setLevel(int(getattr(level, "value", level) or logging.INFO))

    # -- names, messages, time, parameters -----------------------------------------------
    def make(self, typename: str, **fields: Any) -> Any:
        return make_message(typename, **fields)

    def now_ns(self) -> int:
        return int(self.node.get_clock().now().nanoseconds)

    def get_params(self, model: type[P]) -> P:
        """Declare every field of ``model`` on the node, read the values back, validate them.

        Values come from the node's parameter overrides (the YAML files launch passes with
        ``parameters=[...]``, ``--ros-args -p``) over the model's defaults.  Overrides naming
        no field of the model are passed to the model too, so a typo in the YAML is the same
        :class:`~ros_gs.errors.ConfigError` here as in replay.
        """
        flat: dict[str, Any] = {}
        for row in describe(model):
            name = row["name"]
            if self.node.has_parameter(name):
                value = self.node.get_parameter(name).value
            else:
                try:
                    value = self.node.declare_parameter(
                        name, _ros_value(row.get("default")), parameter_descriptor(row)
                    ).value
                except Exception as err:  # noqa: BLE001 - rclpy's parameter exceptions vary by distro
                    raise ConfigError(
                        f"invalid parameters for node {self.name!r}: {name}: {type(err).__name__}: {err}"
                    ) from None
            if value is not None:
                flat[name] = _from_ros_value(value)
        overrides = getattr(self.node, "_parameter_overrides", None) or {}
        for name, param in overrides.items():
            if name not in flat and not is_ros_reserved(name) and not self.node.has_parameter(name):
                value = getattr(param, "value", param)
                if value is not None:
                    flat[name] = _from_ros_value(value)
        return validate_params(model, self.name, flat)

    # -- communication ---------------------------------------------------------------------
    def create_subscription(self, msgtype: str, topic: str, callback: Callback, qos: QoS = DEFAULT_QOS) -> None:
        topic = self.resolve(topic)
        handle = self.node.create_subscription(
            interface_class(msgtype), topic, self.guard(topic, callback), to_qos_profile(qos)
        )
        self.handles.append(handle)

    def create_publisher(self, msgtype: str, topic: str, qos: QoS = DEFAULT_QOS) -> RclpyPublisher:
        topic = self.resolve(topic)
        handle = self.node.create_publisher(interface_class(msgtype), topic, to_qos_profile(qos))
        self.handles.append(handle)
        return RclpyPublisher(handle, msgtype, getattr(handle, "topic_name", None) or topic)

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> None:
        period_s = check_timer_period(self.name, period_s)
        self.handles.append(self.node.create_timer(period_s, self.guard(f"timer {period_s}s", callback)))

    def create_service(self, srvtype: str, name: str, callback: ServiceCallback) -> None:
        name = self.resolve(name)
        srv_cls = interface_class(srvtype)
        guarded = self.guard(name, callback)

        def serve(request: Any, response: Any) -> Any:
            result = guarded(request, response)
            if isinstance(result, srv_cls.Response):
                return result
            if result is not None:
                self.errors[(name, "BadResponse")] += 1
                self.logger.error("%s: callback returned %s, not %s", name, type(result).__name__, srvtype)
            # rclpy's executor dies on a response of the wrong type: answer with a default one.
            fallback = srv_cls.Response()
            if isinstance(getattr(fallback, "message", None), str):
                fallback.message = "request failed: see the node's log"
            return fallback

        self.handles.append(self.node.create_service(srv_cls, name, serve))


# -- entry point ------------------------------------------------------------------------------
def main(node_name: str, args: Sequence[str] | None = None) -> int:
    """Run the ros_gs node ``node_name`` under rclpy until Ctrl-C; the process exit code.

    ``args`` are the command line for ``rclpy.init`` (default ``sys.argv``: ``--ros-args``
    remappings, ``__node:=`` renames and ``--params-file`` work as for any ROS 2 node).
    """
    rclpy = _require_rclpy()
    from rclpy.executors import SingleThreadedExecutor

    from ros_gs.nodes import load_node

    node_cls = load_node(node_name)  # an unknown name is a KeyError before ROS starts
    stop = (KeyboardInterrupt, getattr(sys.modules["rclpy.executors"], "ExternalShutdownException", KeyboardInterrupt))
    rclpy.init(args=list(args) if args is not None else None)
    ros_node = executor = forward = node = None
    code = 0
    try:
        ros_node = rclpy.node.Node(getattr(node_cls, "NAME", node_name))
        ctx = RclpyContext(ros_node)
        forward = _RosLogHandler(ros_node.get_logger())  # module loggers (ros_gs.sensors, ...)
        logging.getLogger("ros_gs").addHandler(forward)
        node = node_cls(ctx)
        ctx.start_diagnostics(node)
        executor = SingleThreadedExecutor()
        executor.add_node(ros_node)
        executor.spin()
    except stop:
        # Ctrl-C, or the context shut down by a signal handler (launch stopping us): clean;
        # what the node holds back is published while the context may still allow it
        if node is not None and callable(getattr(node, "flush", None)) and rclpy.ok():
            ctx.guard("flush", node.flush)()
    except ConfigError as err:
        if ros_node is not None:
            ros_node.get_logger().error(str(err))
        else:
            print(err, file=sys.stderr)
        code = 2
    finally:
        if forward is not None:
            logging.getLogger("ros_gs").removeHandler(forward)
        if executor is not None:
            executor.shutdown()
        if ros_node is not None:
            ros_node.destroy_node()
        rclpy.try_shutdown()
    return code
