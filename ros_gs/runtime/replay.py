"""Run nodes on a recorded rosbag2, on simulated time, as fast as they go.

Messages are delivered to subscribed callbacks in log-time order; the clock is the log time
of the message being delivered, timers fire at their simulated times (``start + k*period``),
service calls from a request list are made at their times, and everything a node publishes
is written to an MCAP output bag at the simulated time it was published (service responses
are kept in the report; :func:`service_log` turns them into plain data).  Messages published
by one node and subscribed by another in the same replay are delivered to it at that time.

Ordering at equal times is fixed (bag messages, then intra-process messages, then timers,
then service calls; ties broken by creation order), so a replay is deterministic.  With
``rate`` set, simulated time is paced against the wall clock (``rate=1`` is real time).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from ros_gs.bags.reader import BagReader
from ros_gs.bags.writer import BagWriter, stop_reason
from ros_gs.runtime.interrupts import critical
from ros_gs.errors import ConfigError, InputError
from ros_gs.runtime.node_api import Callback, NodeContext, P, ServiceCallback, check_timer_period, srv_parts
from ros_gs.runtime.params import load_params
from ros_gs.runtime.qos import DEFAULT_QOS, QoS
from ros_gs.runtime.typestore import MessageFactory, message_to_dict

log = logging.getLogger("ros_gs.replay")

#: Bounds that keep a replay finite: pacing slower than 1 % of real time or faster than 1000x
#: is refused, and (by default) timers are not walked through more than 10 s without any
#: message (a message logged in 2100 would have a 1 s timer fire billions of times); timers
#: faster than node_api.MIN_TIMER_PERIOD_S are refused in every runtime.
MIN_RATE, MAX_RATE = 0.01, 1000.0
MAX_GAP_S = 10.0

# Event priorities at equal simulated time.
_BAG, _LOCAL, _TIMER, _SERVICE = 0, 1, 2, 3


@dataclass
class ServiceCall:
    """A request to make during replay, at ``time_s`` seconds after the bag's first message."""

    time_s: float
    service: str
    request: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServiceResult:
    service: str
    stamp_ns: int
    request: Any
    response: Any | None
    error: str | None = None


@dataclass
class ReplayReport:
    """What happened in a replay: counts per topic, skips and errors per node, timings."""

    start_ns: int = 0
    end_ns: int = 0
    delivered: Counter = field(default_factory=Counter)
    published: Counter = field(default_factory=Counter)
    timer_calls: int = 0
    clock_jumps: list[tuple[int, int]] = field(default_factory=list)  # (from, to) ns: stretches without messages that timers skipped
    skipped: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    services: list[ServiceResult] = field(default_factory=list)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)  # each node's status over the whole run
    wall_s: float = 0.0

    @property
    def sim_s(self) -> float:
        return (self.end_ns - self.start_ns) * 1e-9


def _npy_spiller(folder: Path) -> Callable[[np.ndarray], dict[str, Any]]:
    """Saves each array it is given as the next ``array_NNNN.npy`` in ``folder`` (made on first use)."""
    count = itertools.count()

    def spill(arr: np.ndarray) -> dict[str, Any]:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"array_{next(count):04d}.npy"
        np.save(path, arr)
        return {"npy": str(path), "shape": list(arr.shape), "dtype": str(arr.dtype)}

    return spill


def service_log(report: ReplayReport, payload_dir: Path | str | None = None) -> list[dict[str, Any]]:
    """The report's service calls as plain data (for YAML/JSON), in call order.  With
    ``payload_dir``, arrays of more than 1024 elements (images, clouds) are saved there as
    ``.npy`` files (created on first use) and the log holds ``{npy: <path>, shape, dtype}``."""
    spill = None if payload_dir is None else _npy_spiller(Path(payload_dir))
    return [
        {
            "service": r.service,
            "stamp_ns": r.stamp_ns,
            "request": message_to_dict(r.request, spill),
            "response": message_to_dict(r.response, spill),
            "error": r.error,
        }
        for r in report.services
    ]


def load_service_calls(path: Path | str) -> list[ServiceCall]:
    """Read a YAML list of ``{time: s, service: name, request: {...}}``."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read service calls from {path}: {err}") from err
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list of service calls")
    calls = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or "service" not in item:
            raise ConfigError(f"{path}: entry {i} needs at least 'service' (and 'time', 'request')")
        request = item.get("request") or {}
        try:
            time_s = float(item.get("time", 0.0))
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: entry {i}: 'time' must be seconds, got {item.get('time')!r}") from None
        if not isinstance(request, dict) or not 0 <= time_s < math.inf:
            raise ConfigError(f"{path}: entry {i}: need a finite time >= 0 and 'request' as a mapping of fields")
        calls.append(ServiceCall(time_s, str(item["service"]), dict(request)))
    return calls


class _ReplayPublisher:
    def __init__(self, runtime: ReplayRuntime, ctx: ReplayContext, msgtype: str, topic: str, qos: QoS) -> None:
        self.runtime, self.ctx, self.msgtype, self.topic, self.qos = runtime, ctx, msgtype, topic, qos

    def publish(self, msg: Any) -> None:
        self.runtime._publish(self, msg)


class ReplayContext(NodeContext):
    """The node API on top of a :class:`ReplayRuntime`."""

    def __init__(self, runtime: ReplayRuntime, name: str, namespace: str = "/",
                 params: Iterable[Path | Mapping[str, Any]] = ()) -> None:
        super().__init__(name, namespace)
        self.runtime = runtime
        self.params = list(params)  # this node's own parameter files and values (a launch file's)

    def make(self, typename: str, **fields: Any) -> Any:
        return self.runtime.factory(typename, **fields)

    def now_ns(self) -> int:
        return self.runtime.now_ns

    def get_params(self, model: type[P]) -> P:
        return load_params(model, self.name, [*self.runtime.param_files, *self.params], self.runtime.overrides.get(self.name))

    def create_subscription(self, msgtype: str, topic: str, callback: Callback, qos: QoS = DEFAULT_QOS) -> None:
        topic = self.resolve(topic)
        self.runtime._subs[topic].append((self, msgtype, self.guard(topic, callback)))

    def create_publisher(self, msgtype: str, topic: str, qos: QoS = DEFAULT_QOS) -> _ReplayPublisher:
        if not self.runtime.factory.has_type(msgtype):
            raise ConfigError(f"node {self.name}: unknown message type {msgtype}")
        return _ReplayPublisher(self.runtime, self, msgtype, self.resolve(topic), qos)

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> None:
        period_s = check_timer_period(self.name, period_s)
        self.runtime._add_timer(int(round(period_s * 1e9)), self.guard(f"timer {period_s}s", callback))

    def create_service(self, srvtype: str, name: str, callback: ServiceCallback) -> None:
        name = self.resolve(name)
        if name in self.runtime._services:
            raise ConfigError(f"service {name} is offered twice")
        self.runtime._services[name] = (self, srvtype, self.guard(name, callback))


class ReplayRuntime:
    """Replay ``input_bag`` into nodes and record what they publish to ``output_bag``.

    Example::

        rt = ReplayRuntime("in.mcap", "out.mcap", param_files=["config/ros_gs.yaml"])
        rt.add_node(ImageStatsNode)
        report = rt.run()
    """

    def __init__(
        self,
        input_bag: Path | str,
        output_bag: Path | str | None = None,
        *,
        param_files: Iterable[Path | str] = (),
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        service_calls: Iterable[ServiceCall] = (),
        rate: float | None = None,
        overwrite: bool = False,
        progress: bool = False,
        factory: MessageFactory | None = None,
        max_gap_s: float = MAX_GAP_S,
    ) -> None:
        self.input_bag = Path(input_bag)
        self.output_bag = Path(output_bag) if output_bag is not None else None
        self.param_files = [Path(p) for p in param_files]
        self.overrides = {k: dict(v) for k, v in (overrides or {}).items()}
        self.service_calls = list(service_calls)
        if rate is not None and not (MIN_RATE <= rate <= MAX_RATE):
            raise ConfigError(f"rate must be between {MIN_RATE} and {MAX_RATE} (x real time), got {rate}")
        if not (math.isfinite(max_gap_s) and max_gap_s > 0):
            raise ConfigError(f"max_gap_s must be a positive number of seconds, got {max_gap_s}")
        self.rate = rate
        self.max_gap_ns = int(max_gap_s * 1e9)
        self.overwrite = overwrite
        self.progress = progress
        self.factory = factory or MessageFactory()
        self.now_ns = 0
        self.nodes: list[Any] = []
        self.contexts: list[ReplayContext] = []
        self._subs: dict[str, list[tuple[ReplayContext, str, Callback]]] = defaultdict(list)
        self._services: dict[str, tuple[ReplayContext, str, ServiceCallback]] = {}
        self._timers: list[tuple[int, Callback]] = []
        self._events: list[tuple[int, int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._writer: BagWriter | None = None
        self._end_ns: int | None = None  # set while run() is in progress
        self._rate_offset_ns = 0  # simulated time skipped by clock jumps (not slept through at --rate)
        #: Publications made before run() (e.g. latched data in a constructor), sent at the start.
        self._early: list[tuple[_ReplayPublisher, Any]] = []
        self.report = ReplayReport()

    # -- building the graph ----------------------------------------------------------------
    def add_node(self, node_cls: Callable[[NodeContext], Any], name: str | None = None, namespace: str = "/", *,
                 params: Iterable[Path | Mapping[str, Any]] = (), remaps: Iterable[tuple[str, str]] = ()) -> Any:
        """Construct a node on a fresh context.  ``name`` defaults to ``node_cls.NAME``; ``params``
        (files and values, after the runtime's ``param_files``) and ``remaps`` are a launch file's."""
        name = name or getattr(node_cls, "NAME", None) or node_cls.__name__
        ctx = ReplayContext(self, name, namespace, params)
        ctx.set_remaps(remaps)
        node = node_cls(ctx)
        ctx.start_diagnostics(node)
        self.nodes.append(node)
        self.contexts.append(ctx)
        return node

    def silent_inputs(self) -> dict[str, list[str]]:
        """Subscribed topics (but /tf, /tf_static) on which no message came, from the bag or a
        node, with the nodes that wait on them: a camera topic misnamed in the parameters."""
        out: dict[str, list[str]] = {}
        for topic, subs in self._subs.items():
            if topic not in ("/tf", "/tf_static") and not self.report.delivered[topic] and not self.report.published[topic]:
                out[topic] = sorted({ctx.name for ctx, _, _ in subs})
        return out

    def _add_timer(self, period_ns: int, callback: Callback) -> None:
        if self._end_ns is None:  # before run(): scheduled from the bag's start
            self._timers.append((period_ns, callback))
        else:  # created in a callback: first fires one period from now, as under rclpy
            self._schedule_timer(self.now_ns + period_ns, period_ns, callback, self._end_ns)

    def _push(self, t_ns: int, priority: int, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (t_ns, priority, next(self._seq), action))

    # -- publishing --------------------------------------------------------------------------
    def _publish(self, pub: _ReplayPublisher, msg: Any) -> None:
        if self._end_ns is None:
            self._early.append((pub, msg))
            return
        self.report.published[pub.topic] += 1
        if self._writer is not None:
            self._writer.write(pub.topic, pub.msgtype, msg, self.now_ns, pub.qos)
        for ctx, msgtype, callback in self._subs.get(pub.topic, ()):
            if ctx is pub.ctx:
                continue  # like ROS's ignore_local_publications for the node's own topics
            if msgtype != pub.msgtype:
                ctx.count_skip(pub.topic, InputError(f"type {pub.msgtype} published, {msgtype} subscribed"))
                continue
            self._push(self.now_ns, _LOCAL, lambda cb=callback, m=msg, t=pub.topic: self._deliver(t, cb, m))

    def _deliver(self, topic: str, callback: Callback, msg: Any) -> None:
        self.report.delivered[topic] += 1
        # a signal during a callback waits until it returns: raised inside, a node's guard or
        # a library (torch, warp) could take it for the callback's own error and carry on
        with critical():
            callback(msg)

    # -- services ----------------------------------------------------------------------------
    def _call_service(self, call: ServiceCall) -> None:
        entry = self._services.get(call.service)
        if entry is None:
            self.report.services.append(
                ServiceResult(call.service, self.now_ns, call.request, None, "no node offers this service")
            )
            log.warning("service call at %.3fs: no node offers %s", call.time_s, call.service)
            return
        ctx, srvtype, callback = entry
        req_type, resp_type = srv_parts(srvtype)
        try:
            request = self.factory(req_type, **call.request)
        except (TypeError, KeyError, ValueError) as err:
            ctx.count_skip(call.service, InputError(f"bad request for {srvtype}: {err}"))
            self.report.services.append(ServiceResult(call.service, self.now_ns, call.request, None, str(err)))
            return
        response = callback(request, self.factory(resp_type))
        error = None
        if response is None:  # guard() logged and counted a raised error; a bare None is a node bug
            error = "service callback failed or returned no response"
            if not any(k[0] == call.service for k in list(ctx.errors) + list(ctx.skips)):
                ctx.count_skip(call.service, InputError("service callback returned None"))
        # Responses go to the report, not the bag: rosbag2 readers cannot decode a bare
        # ``pkg/srv/Name_Response`` as a topic type (they file every type under ``msg/``).
        self.report.services.append(ServiceResult(call.service, self.now_ns, request, response, error))

    # -- the loop ----------------------------------------------------------------------------
    def run(self, duration_s: float | None = None) -> ReplayReport:
        """Replay the whole bag (or its first ``duration_s`` seconds) and return the report."""
        if duration_s is not None and not 0 <= duration_s < math.inf:
            raise ConfigError(f"duration must be a finite number of seconds >= 0, got {duration_s}")
        if self._end_ns is not None or self.report.wall_s:
            raise RuntimeError("a ReplayRuntime runs once; make a new one")
        self._check_output_path()
        wall0 = time.perf_counter()
        with BagReader(self.input_bag, self.factory) as reader:
            start = reader.start_ns
            # rosbag2's end time is exclusive (last message + 1 ns as rosbags writes it).
            last = max(start, reader.end_ns - 1)
            end = last if duration_s is None else min(last, start + int(duration_s * 1e9))
            self._warn_type_mismatches(reader.topics())
            self.report.start_ns, self.now_ns, self._end_ns = start, start, end
            for ctx in self.contexts:
                ctx.diagnostics.start(start)  # built before the clock was set
            for period_ns, callback in self._timers:
                self._schedule_timer(start + period_ns, period_ns, callback, end)
            pending_calls = set(range(len(self.service_calls)))

            def make_call(k: int) -> None:
                pending_calls.discard(k)
                self._call_service(self.service_calls[k])

            for k, call in enumerate(self.service_calls):
                self._push(start + int(call.time_s * 1e9), _SERVICE, lambda k=k: make_call(k))
            if self.output_bag is not None:
                self._writer = BagWriter(self.output_bag, self.factory, overwrite=self.overwrite).open()
            try:
                for pub, msg in self._early:
                    self._publish(pub, msg)
                self._early.clear()
                self._loop(reader, start, end, wall0, duration_s)
                for _ in range(2):  # what a flush publishes reaches the other nodes, which flush again
                    for node, ctx in zip(self.nodes, self.contexts):
                        if callable(getattr(node, "flush", None)):
                            ctx.guard("flush", node.flush)()
                    self._run_events_until(self.now_ns, wall0, start)
                for ctx in self.contexts:  # the last stretch since the last periodic status, into the bag
                    if ctx.publish_diagnostics is not None and ctx.diagnostics.last_ns != self.now_ns:
                        ctx.guard("diagnostics", ctx.publish_diagnostics)()
                self._run_events_until(self.now_ns, wall0, start)
            except BaseException as exc:  # interrupted, disk full, a bug: the output stays readable, marked partial
                if self._writer is not None:
                    self._writer.close(partial=stop_reason(exc))
                raise
            else:
                if self._writer is not None:
                    self._writer.close()
        for k in sorted(pending_calls):
            call = self.service_calls[k]
            self.report.services.append(ServiceResult(call.service, -1, call.request, None, "after the end of the replay"))
            log.warning("service call %s at %.3f s is after the end of the replay: not made", call.service, call.time_s)
        self.report.end_ns = self.now_ns
        for ctx in self.contexts:
            self.report.skipped.update({(ctx.name, *k): v for k, v in ctx.skips.items()})
            self.report.errors.update({(ctx.name, *k): v for k, v in ctx.errors.items()})
            self.report.diagnostics.append(ctx.diagnostics_summary())
        self.report.wall_s = time.perf_counter() - wall0
        return self.report

    def _check_output_path(self) -> None:
        if self.output_bag is None:
            return
        out, src = self.output_bag.resolve(), self.input_bag.resolve()
        if out == src or out in src.parents or src in out.parents:
            raise ConfigError(f"output bag {self.output_bag} would overwrite the input bag {self.input_bag}")

    def _warn_type_mismatches(self, bag_topics: Mapping[str, str]) -> None:
        for topic, subs in self._subs.items():
            for ctx, msgtype, _ in subs:
                if topic in bag_topics and msgtype != bag_topics[topic]:
                    ctx.logger.error("%s holds %s but the node subscribes with %s: each message is a counted skip", topic, bag_topics[topic], msgtype)

    def _schedule_timer(self, t_ns: int, period_ns: int, callback: Callback, end: int) -> None:
        if t_ns > end:
            return

        def fire() -> None:
            self.report.timer_calls += 1
            callback()
            # from when it fired: after a clock jump that is later than it was scheduled for
            self._schedule_timer(max(t_ns, self.now_ns) + period_ns, period_ns, callback, end)

        self._push(t_ns, _TIMER, fire)

    def _advance(self, t_ns: int, wall0: float, start: int) -> None:
        if t_ns > self.now_ns:
            self.now_ns = t_ns
        if self.rate is not None:
            lag = (self.now_ns - start - self._rate_offset_ns) * 1e-9 / self.rate - (time.perf_counter() - wall0)
            if lag > 0:
                time.sleep(lag)

    def _jump(self, target_ns: int, wall0: float, start: int) -> None:
        """The bag has nothing for more than ``max_gap_s`` before ``target_ns`` (a message logged
        at time 0 or in 2100, a recording paused for hours): events go on for ``max_gap_s`` after
        the last message, then the clock jumps.  Timers due in the gap fire once at the target,
        as a paused process sees them on waking, rather than once per period through the gap;
        the jump is logged and counted in the report."""
        last = self.now_ns
        cut = last + self.max_gap_ns
        self._run_events_until(cut, wall0, start)
        moved = [(target_ns if prio == _TIMER and t < target_ns else t, prio, seq, action)
                 for t, prio, seq, action in self._events]
        heapq.heapify(moved)
        self._events = moved
        self.report.clock_jumps.append((cut, target_ns))
        log.warning("no message for %.1f s (%.3f s to %.3f s): the clock jumps; timers skip the gap", (target_ns - last) * 1e-9,
                    last * 1e-9, target_ns * 1e-9)
        self._rate_offset_ns += target_ns - cut  # paced replay does not sleep through the gap either

    def _run_events_until(self, t_ns: int, wall0: float, start: int) -> None:
        while self._events and self._events[0][0] <= t_ns:
            t, _, _, action = heapq.heappop(self._events)
            self._advance(t, wall0, start)
            with critical():  # timers and services too (see _deliver)
                action()

    def _loop(self, reader: BagReader, start: int, end: int, wall0: float, duration_s: float | None) -> None:
        # Every topic is read (subscriptions may appear mid-run, e.g. TF on first use); only
        # messages somebody subscribes to at that moment are decoded.
        bar = tqdm(total=max(end - start, 0) // 1_000_000, unit="ms", disable=not self.progress, desc="replay")
        try:
            for raw in reader.raw_messages(stop_ns=None if duration_s is None else end + 1):
                if raw.log_ns - self.now_ns > self.max_gap_ns:  # a message years away: no walk through it
                    self._jump(raw.log_ns, wall0, start)
                # Events strictly before this message's time come first; equal times go after it.
                self._run_events_until(raw.log_ns - 1, wall0, start)
                self._advance(raw.log_ns, wall0, start)
                bar.update((self.now_ns - start) // 1_000_000 - bar.n)
                subs = self._subs.get(raw.topic)
                if not subs:
                    continue
                matching = [(c, cb) for c, t, cb in subs if t == raw.msgtype]
                for ctx, msgtype, _ in subs:
                    if msgtype != raw.msgtype:
                        ctx.count_skip(raw.topic, InputError(f"bag holds {raw.msgtype}, subscribed as {msgtype}"))
                if not matching:
                    continue
                try:
                    msg = reader.decode(raw)
                except InputError as err:
                    for ctx, _ in matching:
                        ctx.count_skip(raw.topic, err)
                    continue
                for _, callback in matching:
                    self._deliver(raw.topic, callback, msg)
            self._run_events_until(end, wall0, start)
            self._advance(end, wall0, start)  # the clock reaches the end even if no topic was wanted
        finally:
            bar.close()
