"""The one node API every ros_gs node is written against.

A node is a plain class ``Node(ctx: NodeContext)``: in ``__init__`` it reads its typed
parameters and creates subscriptions, publishers, timers and services on ``ctx``.  The
runtime behind ``ctx`` decides where messages come from: rclpy under a real ROS 2
(:mod:`ros_gs.runtime.rclpy_runtime`) or a rosbag2 replayed on simulated time
(:mod:`ros_gs.runtime.replay`).  Message objects carry the standard ROS field names in both,
so conversion code in :mod:`ros_gs.sensors` is shared.

Callbacks are guarded: an :class:`~ros_gs.errors.InputError` (bad message, missing TF, ...)
is logged in one line and counted as a skip; any other exception is logged with its
traceback and counted as an error.  Either way the node keeps running.

A node may define ``flush()``: the runtime calls it (guarded) once its input has ended, before
the outputs close, so a node that holds input back (a scan waiting for the IMU samples that
cover it) publishes what it holds instead of dropping it.  Replay: at the end of the bag, after
the last service calls; what a flush publishes is delivered to the other nodes, which are
flushed once more.  rclpy: at shutdown, only while the ROS context still allows publishing.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from ros_gs.errors import ConfigError, InputError
from ros_gs.runtime.diagnostics import TOPIC as DIAGNOSTICS_TOPIC
from ros_gs.runtime.diagnostics import DiagnosticsRecorder
from ros_gs.runtime.diagnostics import to_message as diagnostics_message
from ros_gs.runtime.qos import DEFAULT_QOS, TF_QOS, TF_STATIC_QOS, QoS

#: the fastest timer a node may ask for (1 kHz) in any runtime: a period of 1e-9 s would have a
#: replay fire a billion times per simulated second
MIN_TIMER_PERIOD_S = 1e-3


def check_timer_period(node: str, period_s: float) -> float:
    """``period_s`` if a runtime may create a timer with it, else a ConfigError naming the node."""
    if not (MIN_TIMER_PERIOD_S <= period_s < math.inf):
        raise ConfigError(f"node {node}: timer period must be at least {MIN_TIMER_PERIOD_S} s and finite, got {period_s}")
    return float(period_s)

P = TypeVar("P", bound=BaseModel)
Callback = Callable[[Any], None]
ServiceCallback = Callable[[Any, Any], Any]

#: Log the first few skips of each kind in full, then one in this many.
_LOG_EVERY = 100
_LOG_FIRST = 5


class Publisher(Protocol):
    topic: str
    msgtype: str

    def publish(self, msg: Any) -> None: ...


def resolve_name(name: str, node_name: str, namespace: str = "/") -> str:
    """ROS name resolution: ``~/x`` -> ``/<ns>/<node>/x``, ``x`` -> ``/<ns>/x``, ``/x`` stays."""
    if not name:
        raise ValueError("empty topic or service name")
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    if name.startswith("~"):
        return f"{ns}/{node_name}/{name[1:].lstrip('/')}".rstrip("/")
    if name.startswith("/"):
        return name
    return f"{ns}/{name}"


def srv_parts(srvtype: str) -> tuple[str, str]:
    """``pkg/srv/Name`` -> (``pkg/srv/Name_Request``, ``pkg/srv/Name_Response``)."""
    return f"{srvtype}_Request", f"{srvtype}_Response"


class NodeContext(ABC):
    """What a node may ask of its runtime.  Subclasses implement the abstract methods."""

    def __init__(self, name: str, namespace: str = "/") -> None:
        self.name = name
        self.namespace = namespace
        self.logger = logging.getLogger(f"ros_gs.{name}")
        #: (topic or service, error class name) -> count of callbacks that failed on input.
        self.skips: Counter[tuple[str, str]] = Counter()
        #: (topic or service, error class name) -> count of callbacks that raised a bug.
        self.errors: Counter[tuple[str, str]] = Counter()
        self._tf = None
        #: launch remappings, fully qualified from -> to (replay applies them; under rclpy, rcl does)
        self.remaps: dict[str, str] = {}
        #: every guarded callback's count and time, for /diagnostics (see start_diagnostics)
        self.diagnostics = DiagnosticsRecorder()
        self._node: Any = None
        #: publishes a status now (set by start_diagnostics; None while /diagnostics is off)
        self.publish_diagnostics: Callable[[], None] | None = None

    # -- names, messages, time, parameters -------------------------------------------------
    def resolve(self, name: str) -> str:
        full = resolve_name(name, self.name, self.namespace)
        return self.remaps.get(full, full)

    def set_remaps(self, rules: Iterable[tuple[str, str]]) -> None:
        """Launch ``remap`` rules (from, to): both resolved like the node's own names, as ROS does."""
        self.remaps = {resolve_name(a, self.name, self.namespace): resolve_name(b, self.name, self.namespace) for a, b in rules}

    @abstractmethod
    def make(self, typename: str, **fields: Any) -> Any:
        """Build a message of ``typename`` (``pkg/msg/Name``); unset fields get defaults."""

    @abstractmethod
    def now_ns(self) -> int:
        """Current time in nanoseconds: simulated in replay, the node clock under rclpy."""

    @abstractmethod
    def get_params(self, model: type[P]) -> P:
        """This node's parameters, validated against ``model``."""

    # -- communication ----------------------------------------------------------------------
    @abstractmethod
    def create_subscription(
        self, msgtype: str, topic: str, callback: Callback, qos: QoS = DEFAULT_QOS
    ) -> None: ...

    @abstractmethod
    def create_publisher(self, msgtype: str, topic: str, qos: QoS = DEFAULT_QOS) -> Publisher: ...

    @abstractmethod
    def create_timer(self, period_s: float, callback: Callable[[], None]) -> None: ...

    @abstractmethod
    def create_service(self, srvtype: str, name: str, callback: ServiceCallback) -> None:
        """``callback(request, response) -> response`` as in rclpy."""

    # -- TF ---------------------------------------------------------------------------------
    def tf_buffer(self):
        """A TF buffer fed from /tf and /tf_static (subscribed on first use)."""
        if self._tf is None:
            from ros_gs.sensors.tf_buffer import TfBuffer

            self._tf = TfBuffer()
            self.create_subscription(
                "tf2_msgs/msg/TFMessage", "/tf", lambda m: self._tf.add_tf_message(m, static=False), TF_QOS
            )
            self.create_subscription(
                "tf2_msgs/msg/TFMessage",
                "/tf_static",
                lambda m: self._tf.add_tf_message(m, static=True),
                TF_STATIC_QOS,
            )
        return self._tf

    # -- error policy -------------------------------------------------------------------------
    def guard(self, where: str, func: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a callback so bad input is a counted skip and a bug never stops the node."""

        def guarded(*args: Any) -> Any:
            t = time.perf_counter()
            self.diagnostics.depth += 1
            try:
                return func(*args)
            except InputError as err:
                self.count_skip(where, err)
            except Exception as err:  # noqa: BLE001 - a node must outlive one bad callback
                key = (where, type(err).__name__)
                self.errors[key] += 1
                if self.errors[key] <= _LOG_FIRST or self.errors[key] % _LOG_EVERY == 0:
                    self.logger.error(
                        "%s: unexpected %s (#%d): %s\n%s",
                        where,
                        type(err).__name__,
                        self.errors[key],
                        err,
                        traceback.format_exc(),
                    )
            finally:
                self.diagnostics.depth -= 1
                self.diagnostics.record(where, time.perf_counter() - t, outer=self.diagnostics.depth == 0)
            return None

        return guarded

    # -- diagnostics --------------------------------------------------------------------------
    def full_name(self) -> str:
        """``/<ns>/<node>``: the node's own name resolved like its private names."""
        return resolve_name("~", self.name, self.namespace)

    def start_diagnostics(self, node: Any) -> None:
        """Publish the node's status on /diagnostics every ``params.diagnostics_period_s`` (a
        :class:`~ros_gs.runtime.params.NodeParams` field; 0: never).  Runtimes call this once the
        node is built; the node's optional ``diagnostics()`` adds its own figures."""
        self._node = node
        period = float(getattr(getattr(node, "params", None), "diagnostics_period_s", 0.0) or 0.0)
        self.diagnostics.start(self.now_ns())
        if period <= 0:
            return
        pub = self.create_publisher("diagnostic_msgs/msg/DiagnosticArray", DIAGNOSTICS_TOPIC)

        def tick() -> None:
            now = self.now_ns()
            status = self.diagnostics.snapshot(self.full_name(), now, self.skips, self.errors, self.node_figures())
            pub.publish(diagnostics_message(self.make, now, [status]))

        self.create_timer(period, tick)
        self.publish_diagnostics = tick  # a runtime may also call it when the input ends

    def node_figures(self) -> dict[str, Any]:
        """The node's own ``diagnostics()`` figures; a failure there is an error, not a crash."""
        figures = getattr(self._node, "diagnostics", None)
        if not callable(figures):
            return {}
        return self.guard("diagnostics", figures)() or {}

    def diagnostics_summary(self) -> dict[str, Any]:
        """The status over the whole run so far (for a replay's closing summary)."""
        return self.diagnostics.snapshot(self.full_name(), self.now_ns(), self.skips, self.errors, self.node_figures(), whole_run=True)

    def count_skip(self, where: str, err: Exception | str) -> None:
        """Count (and log, rate-limited) one input that had to be skipped."""
        kind = type(err).__name__ if isinstance(err, Exception) else "skip"
        key = (where, kind)
        self.skips[key] += 1
        if self.skips[key] <= _LOG_FIRST or self.skips[key] % _LOG_EVERY == 0:
            self.logger.warning("%s: skipped (%s #%d): %s", where, kind, self.skips[key], err)
