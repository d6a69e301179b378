"""A node's health on ``/diagnostics`` (``diagnostic_msgs/DiagnosticArray``), once a period.

Every runtime counts what the node API sees anyway -- each guarded callback's input and time,
the counted skips and errors with their reasons -- so a node gets its rates, processing time and
losses published without writing any of it; a node adds its own figures (map size, objects
tracked, queries served) with an optional ``diagnostics() -> dict`` method.  The status follows
the ROS convention (``diagnostic_msgs/DiagnosticStatus``): OK, WARN when inputs were skipped in
the last period, ERROR when a callback failed on a bug in it.

Why not ``diagnostic_updater``: it is a ROS package (rclpy only) and the replay runtime must
publish the same array on simulated time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}
TOPIC = "/diagnostics"
INTERNAL = ("timer", "flush", "diagnostics")  # guarded callbacks that are no input


@dataclass
class _Window:
    calls: int = 0
    seconds: float = 0.0
    worst: float = 0.0


@dataclass
class DiagnosticsRecorder:
    """Counts per callback (topic, service or timer) for one node; ``snapshot`` closes a period."""

    window: dict[str, _Window] = field(default_factory=lambda: defaultdict(_Window))
    run: dict[str, _Window] = field(default_factory=lambda: defaultdict(_Window))  # never reset: the totals
    first_ns: int | None = None
    busy_window: float = 0.0
    busy_run: float = 0.0
    depth: int = 0  # callbacks running now (nested guards)
    last_skips: int = 0
    last_errors: int = 0
    last_ns: int | None = None

    def record(self, where: str, seconds: float, outer: bool = True) -> None:
        """One call of the callback ``where``; ``outer`` False: it ran inside another callback
        (a camera set completed by a message), so its time is not busy time twice."""
        if outer:
            self.busy_window += seconds
            self.busy_run += seconds
        for w in (self.window[where], self.run[where]):
            w.calls += 1
            w.seconds += seconds
            w.worst = max(w.worst, seconds)

    def snapshot(self, name: str, now_ns: int, skips: Mapping[tuple[str, str], int], errors: Mapping[tuple[str, str], int],
                 extra: Mapping[str, Any] | None = None, whole_run: bool = False) -> dict[str, Any]:
        """The status of the period since the last snapshot (``whole_run``: since the first
        one) as ``{name, level, message, values}`` with ``values`` a list of (key, text) pairs,
        as ``DiagnosticStatus`` holds them."""
        since = self.first_ns if whole_run else self.last_ns
        period_s = (now_ns - since) / 1e9 if since is not None and now_ns > since else None
        windows = self.run if whole_run else self.window
        values: list[tuple[str, str]] = []
        for where in sorted(self.run):
            w = windows.get(where, _Window())
            if where.startswith(INTERNAL):
                continue  # timers, flushes and this report: not inputs
            rate = f"{w.calls / period_s:.2f}" if period_s else "-"
            mean = f"{1000 * w.seconds / w.calls:.1f}" if w.calls else "-"
            values += [(f"{where} rate (Hz)", rate), (f"{where} messages", str(self.run[where].calls)),
                       (f"{where} ms per message (mean / max)", f"{mean} / {1000 * w.worst:.1f}" if w.calls else "-")]
        n_skips, n_errors = sum(skips.values()), sum(errors.values())
        values.append(("skipped", str(n_skips)))
        values += [(f"skipped {where}: {reason}", str(n)) for (where, reason), n in sorted(skips.items())]
        values.append(("errors", str(n_errors)))
        values += [(f"error {where}: {reason}", str(n)) for (where, reason), n in sorted(errors.items())]
        for key, value in (extra or {}).items():
            values.append((str(key), _text(value)))
        new_skips, new_errors = n_skips - self.last_skips, n_errors - self.last_errors
        if whole_run:
            new_skips, new_errors = n_skips, n_errors
        if new_errors:
            level, message = ERROR, f"{new_errors} callback(s) failed on a bug" + ("" if whole_run else " in the last period")
        elif new_skips:
            level, message = WARN, f"{new_skips} input(s) skipped" + ("" if whole_run else " in the last period")
        else:
            busy = self.busy_run if whole_run else self.busy_window
            level, message = OK, "ok"
            if period_s:  # over 100 % only in a replay (simulated time): slower than real time
                message = f"ok, callbacks busy {100 * busy / period_s:.0f}% of the time" + (" (slower than real time)" if busy > period_s else "")
        status = {"name": name, "level": level, "message": message, "values": values}
        if not whole_run:
            self.last_skips, self.last_errors, self.last_ns = n_skips, n_errors, now_ns
            self.window = defaultdict(_Window)
            self.busy_window = 0.0
        return status

    def start(self, now_ns: int) -> None:
        self.first_ns = self.last_ns = now_ns


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def to_message(make: Callable[..., Any], stamp_ns: int, statuses: list[dict[str, Any]]) -> Any:
    """A ``diagnostic_msgs/msg/DiagnosticArray`` of ``snapshot`` dicts."""
    sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
    header = make("std_msgs/msg/Header", stamp=make("builtin_interfaces/msg/Time", sec=sec, nanosec=nsec), frame_id="")
    status = [
        make("diagnostic_msgs/msg/DiagnosticStatus", level=int(s["level"]), name=s["name"],
             message=s["message"], hardware_id="",
             values=[make("diagnostic_msgs/msg/KeyValue", key=k, value=v) for k, v in s["values"]])
        for s in statuses
    ]
    return make("diagnostic_msgs/msg/DiagnosticArray", header=header, status=status)


def from_message(msg: Any) -> list[dict[str, Any]]:
    """``snapshot``-like dicts back from a DiagnosticArray (for summaries of a bag)."""
    out = []
    for s in msg.status:
        level = s.level if isinstance(s.level, int) else int.from_bytes(bytes(s.level), "little")
        out.append({"name": s.name, "level": int(level), "message": s.message, "values": [(kv.key, kv.value) for kv in s.values]})
    return out


def summary_line(status: Mapping[str, Any]) -> str:
    """One line: name, level, message and the inputs' rates and times."""
    values = dict(status["values"])
    times = dict((k.removesuffix(" ms per message (mean / max)"), v) for k, v in status["values"] if k.endswith("(mean / max)"))
    rates = [f"{k.removesuffix(' rate (Hz)')} {v} Hz" + (f" ({times[t]} ms)" if times.get(t := k.removesuffix(" rate (Hz)"), "-") != "-" else "")
             for k, v in status["values"] if k.endswith("rate (Hz)") and not k.startswith("/tf")]
    own = [f"{k} {v}" for k, v in status["values"] if not (k.endswith(("(Hz)", "messages", "(mean / max)")) or k.startswith(("skipped", "error")))]
    parts = [f"{status['name']} [{LEVEL_NAMES.get(status['level'], status['level'])}] {status['message']}"]
    parts += rates + own + [f"skipped {values.get('skipped', '0')}", f"errors {values.get('errors', '0')}"]
    return "; ".join(parts)
