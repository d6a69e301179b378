"""stamps: Time <-> int nanoseconds, headers."""

import subprocess
import sys
from types import SimpleNamespace

import pytest

from ros_gs.errors import SensorDataError
from ros_gs.runtime.typestore import MessageFactory
from ros_gs.sensors.stamps import header_stamp_ns, make_header, ns_to_stamp, stamp_to_ns

make = MessageFactory()


def test_stamp_to_ns_combines_sec_and_nanosec():
    t = make("builtin_interfaces/msg/Time", sec=1_700_000_000, nanosec=123_456_789)
    assert stamp_to_ns(t) == 1_700_000_000_123_456_789


def test_ns_to_stamp_splits_exactly():
    t = ns_to_stamp(make, 1_700_000_000_999_999_999)
    assert (t.sec, t.nanosec) == (1_700_000_000, 999_999_999)


@pytest.mark.parametrize("ns", [0, 1, 999_999_999, 1_000_000_000, 1_700_000_000_123_456_789, (2**31 - 1) * 10**9])
def test_header_round_trip_through_cdr(ns):
    header = make_header(make, ns, "camera_optical")
    back = make.deserialize(make.serialize(header, "std_msgs/msg/Header"), "std_msgs/msg/Header")
    assert back.frame_id == "camera_optical"
    assert stamp_to_ns(back.stamp) == ns
    assert header_stamp_ns(SimpleNamespace(header=back)) == ns


def test_duck_typed_time():
    assert stamp_to_ns(SimpleNamespace(sec=2, nanosec=5)) == 2_000_000_005


@pytest.mark.parametrize(
    "stamp, words",
    [
        (SimpleNamespace(sec=1, nanosec=1_000_000_000), "nanosec"),
        (SimpleNamespace(sec=1, nanosec=-1), "nanosec"),
        (SimpleNamespace(sec=1.5, nanosec=0), "integer"),
        (SimpleNamespace(secs=1), "sec/nanosec"),
    ],
)
def test_bad_time_messages(stamp, words):
    with pytest.raises(SensorDataError, match=words):
        stamp_to_ns(stamp)


@pytest.mark.parametrize("ns, words", [(-1, ">= 0"), (1.5e9, "integer"), (2**31 * 10**9, "int32"), (True, "integer")])
def test_bad_ns(ns, words):
    with pytest.raises(SensorDataError, match=words):
        ns_to_stamp(make, ns)


def test_bad_frame_id_and_missing_header():
    with pytest.raises(SensorDataError, match="frame_id"):
        make_header(make, 0, None)
    with pytest.raises(SensorDataError, match="header"):
        header_stamp_ns(SimpleNamespace())


def test_package_imports_no_ros_and_no_runtime():
    code = ("import sys, ros_gs.sensors; "
            "print(sorted(m for m in sys.modules if m.startswith(('rclpy', 'ros_gs.runtime'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
