"""Approximate time synchronisation of N message streams (like message_filters').

Typical use: pair colour, depth and camera_info that are stamped a few ms apart.
Each stream has a queue of at most ``queue_size`` messages sorted by stamp.  When a
message arrives, the buffer looks for one message from every other stream such that all
stamps lie within ``slop_ns`` of each other (choosing the set with the smallest spread);
if found, the set is emitted and removed.  Like rospy's ApproximateTimeSynchronizer it is
greedy: a set is emitted as soon as it exists, not held back for a possibly better match.

Drops (counted in :attr:`dropped` per stream and :attr:`drop_reasons` by reason):

* ``overflow``: a queue over ``queue_size`` loses its oldest message;
* ``stale``: a message not newer than the last message emitted from its stream (late or
  out of order after a set was already emitted) is dropped on arrival, so the output of
  every stream is strictly increasing in time;
* ``superseded``: when a set is emitted, queued messages older than the emitted message
  of their stream can never be emitted any more and are dropped;
* ``duplicate``: a second message with the same stamp on a stream replaces the first.

Out-of-order arrival within a queue is fine: queues are kept sorted.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections import Counter
from typing import Any, Callable

from ros_gs.errors import ConfigError, SensorDataError
from ros_gs.sensors._util import as_int


class ApproximateTimeSync:
    """Match messages of ``num_streams`` streams whose stamps differ by at most ``slop_ns``."""

    def __init__(self, num_streams: int, slop_ns: int, queue_size: int = 10,
                 on_drop: Callable[[int, str], None] | None = None) -> None:
        checks = (("num_streams", num_streams, 1), ("slop_ns", slop_ns, 0), ("queue_size", queue_size, 1))
        for name, value, minimum in checks:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"ApproximateTimeSync {name} must be an integer >= {minimum}, got {value!r}")
        self.num_streams = num_streams
        self.slop_ns = slop_ns
        self.queue_size = queue_size
        self._stamps: list[list[int]] = [[] for _ in range(num_streams)]
        self._msgs: list[list[Any]] = [[] for _ in range(num_streams)]
        self._last_emitted: list[int | None] = [None] * num_streams
        #: Messages dropped per stream, and counts per reason (see module docstring).
        self.dropped: list[int] = [0] * num_streams
        self.drop_reasons: Counter[str] = Counter()
        #: Called with (stream, reason) for every message dropped (a node counts it as a skip).
        self.on_drop = on_drop
        #: Number of matched sets emitted so far.
        self.emitted = 0
        self._lock = threading.Lock()  # streams may be fed from several executor threads

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped)

    @property
    def newest_emitted_ns(self) -> int | None:
        """The newest stamp of any message emitted so far (None before the first set)."""
        stamps = [s for s in self._last_emitted if s is not None]
        return max(stamps) if stamps else None

    def pending(self) -> list[int]:
        """Queued (not yet matched) messages per stream."""
        return [len(s) for s in self._stamps]

    def reset(self) -> None:
        """Forget queued messages and the last emitted stamps (e.g. after a time jump); keep counters."""
        with self._lock:
            for i in range(self.num_streams):
                self._stamps[i].clear()
                self._msgs[i].clear()
            self._last_emitted = [None] * self.num_streams

    def _drop(self, stream: int, reason: str, count: int = 1) -> None:
        self.dropped[stream] += count
        self.drop_reasons[reason] += count
        if self.on_drop is not None:
            for _ in range(count):
                self.on_drop(stream, reason)

    def add(self, stream_index: int, stamp_ns: int, msg: Any) -> list[tuple[Any, ...]]:
        """Queue ``msg``; return the matched sets (tuples in stream order) this completes: [] or [set]."""
        i = as_int(stream_index, "stream_index")
        if i >= self.num_streams:
            raise SensorDataError(f"stream_index {i} out of range for {self.num_streams} streams")
        stamp = as_int(stamp_ns, "stamp_ns", minimum=None)
        with self._lock:
            return self._add(i, stamp, msg)

    def _add(self, i: int, stamp: int, msg: Any) -> list[tuple[Any, ...]]:
        last = self._last_emitted[i]
        if last is not None and stamp <= last:
            self._drop(i, "stale")
            return []
        stamps, msgs = self._stamps[i], self._msgs[i]
        k = bisect.bisect_left(stamps, stamp)
        if k < len(stamps) and stamps[k] == stamp:
            msgs[k] = msg
            self._drop(i, "duplicate")
        else:
            stamps.insert(k, stamp)
            msgs.insert(k, msg)
            if len(stamps) > self.queue_size:
                del stamps[0], msgs[0]
                self._drop(i, "overflow")
                if k == 0:  # the new message was the oldest: it is the one dropped
                    return []
        chosen = self._match(i, stamp)
        if chosen is None:
            return []
        out = []
        for j, s in enumerate(chosen):
            idx = bisect.bisect_left(self._stamps[j], s)
            out.append(self._msgs[j][idx])
            if idx:
                self._drop(j, "superseded", idx)
            del self._stamps[j][: idx + 1], self._msgs[j][: idx + 1]
            self._last_emitted[j] = s
        self.emitted += 1
        return [tuple(out)]

    def _match(self, i: int, stamp: int) -> list[int] | None:
        """Stamps (one per stream, ``stamp`` for stream ``i``) of the tightest set, or None."""
        options: list[list[int]] = []
        for j in range(self.num_streams):
            if j == i:
                options.append([stamp])
                continue
            lo = bisect.bisect_left(self._stamps[j], stamp - self.slop_ns)
            hi = bisect.bisect_right(self._stamps[j], stamp + self.slop_ns)
            if lo == hi:
                return None
            options.append(self._stamps[j][lo:hi])
        best, best_spread = None, None
        for combo in itertools.product(*options):
            spread = max(combo) - min(combo)
            if spread <= self.slop_ns and (best_spread is None or spread < best_spread):
                best, best_spread = list(combo), spread
        return best
