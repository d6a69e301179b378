"""Time stamps: ``builtin_interfaces/Time`` <-> integer nanoseconds.

ros_gs keeps every stamp as one Python ``int`` of nanoseconds: it is exact (a float64 of
seconds loses nanoseconds after ~104 days of epoch time), orders and subtracts trivially and
is what rosbag2 stores.  Messages carry ``sec`` + ``nanosec``; these helpers convert.
"""

from __future__ import annotations

from typing import Any, Callable

from ros_gs.errors import SensorDataError
from ros_gs.sensors._util import as_int

#: ``make(typename, **fields) -> message``, as given by the runtime or ``MessageFactory``.
Make = Callable[..., Any]

NS_PER_S = 1_000_000_000
_INT32_MAX = 2**31 - 1


def stamp_to_ns(time_msg: Any) -> int:
    """Nanoseconds since the epoch of a ``builtin_interfaces/Time`` (``sec``, ``nanosec``)."""
    try:
        sec, nanosec = time_msg.sec, time_msg.nanosec
    except AttributeError:
        raise SensorDataError(f"not a builtin_interfaces/Time (no sec/nanosec): {time_msg!r}") from None
    sec = as_int(sec, "Time.sec", minimum=None)
    nanosec = as_int(nanosec, "Time.nanosec")
    if nanosec >= NS_PER_S:
        raise SensorDataError(f"Time.nanosec must be < 1e9, got {nanosec}")
    return sec * NS_PER_S + nanosec


def ns_to_stamp(make: Make, ns: int) -> Any:
    """A ``builtin_interfaces/Time`` for ``ns`` nanoseconds.

    Negative times are rejected: rclpy cannot represent them, and a negative stamp is
    always a bug upstream (an unset clock minus an offset, say).
    """
    ns = as_int(ns, "stamp (ns)")
    sec, nanosec = divmod(ns, NS_PER_S)
    if sec > _INT32_MAX:
        raise SensorDataError(f"stamp {ns} ns does not fit Time.sec (int32)")
    return make("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)


def make_header(make: Make, stamp_ns: int, frame_id: str) -> Any:
    """A ``std_msgs/Header`` with the given stamp (ns) and frame."""
    if not isinstance(frame_id, str):
        raise SensorDataError(f"frame_id must be a string, got {frame_id!r}")
    return make("std_msgs/msg/Header", stamp=ns_to_stamp(make, stamp_ns), frame_id=frame_id)


def header_stamp_ns(msg: Any) -> int:
    """``msg.header.stamp`` in nanoseconds (any message with a header)."""
    try:
        stamp = msg.header.stamp
    except AttributeError:
        raise SensorDataError(f"{type(msg).__name__} has no header.stamp") from None
    return stamp_to_ns(stamp)


MAX_AHEAD_S = 1.0  # how far a stamp may be ahead of the node's clock before it is a glitch


def check_not_ahead(stamp_ns: int, now_ns: int, what: str, max_ahead_s: float = MAX_AHEAD_S) -> None:
    """SensorDataError when ``stamp_ns`` is more than ``max_ahead_s`` ahead of the clock
    ``now_ns`` (a clock glitch in a driver: as the newest stamp, one message stamped in 2038 made
    every later one "older than the last", and 5-9 frames or scans were dropped).  No check
    while the clock reads 0 (simulated time before its first /clock)."""
    if now_ns > 0 and (stamp_ns - now_ns) * 1e-9 > max_ahead_s:
        raise SensorDataError(f"{what}: stamped {(stamp_ns - now_ns) * 1e-9:.3g} s ahead of the clock (max {max_ahead_s:g} s)")
