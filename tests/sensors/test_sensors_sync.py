"""sync: approximate time synchronisation of N streams."""

import pytest

from ros_gs.errors import ConfigError, SensorDataError
from ros_gs.sensors.sync import ApproximateTimeSync

RGB, DEPTH, INFO = 0, 1, 2


def test_three_streams_match_within_slop():
    sync = ApproximateTimeSync(3, slop_ns=5)
    assert sync.add(RGB, 100, "rgb100") == []
    assert sync.add(DEPTH, 103, "depth103") == []
    assert sync.add(INFO, 101, "info101") == [("rgb100", "depth103", "info101")]
    assert sync.pending() == [0, 0, 0] and sync.emitted == 1 and sync.dropped_total == 0


def test_all_pairs_must_be_within_slop():
    sync = ApproximateTimeSync(3, slop_ns=5)
    sync.add(RGB, 100, "a")
    sync.add(DEPTH, 108, "b")
    assert sync.add(INFO, 104, "c") == []  # each within 4 of 104, but 108 - 100 = 8 > 5
    assert sync.pending() == [1, 1, 1]


def test_slop_is_inclusive():
    sync = ApproximateTimeSync(2, slop_ns=5)
    sync.add(RGB, 100, "a")
    assert sync.add(DEPTH, 105, "b") == [("a", "b")]


def test_picks_tightest_set_and_drops_superseded():
    sync = ApproximateTimeSync(2, slop_ns=10)
    sync.add(RGB, 100, "rgb100")
    sync.add(RGB, 104, "rgb104")  # no partner yet: nothing emitted
    assert sync.add(DEPTH, 105, "depth105") == [("rgb104", "depth105")]
    assert sync.dropped == [1, 0] and sync.drop_reasons["superseded"] == 1
    assert sync.pending() == [0, 0]


def test_out_of_order_arrival_within_queue():
    sync = ApproximateTimeSync(2, slop_ns=2)
    sync.add(RGB, 200, "rgb200")
    sync.add(RGB, 100, "rgb100")  # arrives late but is still matchable
    assert sync.add(DEPTH, 101, "depth101") == [("rgb100", "depth101")]
    assert sync.pending() == [1, 0]
    assert sync.add(DEPTH, 199, "depth199") == [("rgb200", "depth199")]


def test_message_older_than_last_emitted_is_dropped():
    sync = ApproximateTimeSync(2, slop_ns=5)
    sync.add(RGB, 100, "a")
    sync.add(DEPTH, 100, "b")
    assert sync.add(RGB, 90, "late") == []
    assert sync.add(RGB, 100, "again") == []
    assert sync.drop_reasons["stale"] == 2 and sync.dropped == [2, 0]
    assert sync.pending() == [0, 0]
    sync.reset()
    sync.add(RGB, 90, "after reset")
    assert sync.pending() == [1, 0]


def test_queue_overflow_drops_oldest():
    sync = ApproximateTimeSync(2, slop_ns=1, queue_size=3)
    for t in (10, 20, 30, 40, 50):
        sync.add(RGB, t, f"rgb{t}")
    assert sync.pending() == [3, 0] and sync.dropped == [2, 0] and sync.drop_reasons["overflow"] == 2
    assert sync.add(DEPTH, 10, "depth10") == []  # rgb10 is gone
    assert sync.add(DEPTH, 30, "depth30") == [("rgb30", "depth30")]
    assert sync.add(RGB, 5, "too old") == []  # overflowing queue sheds the new, oldest message


def test_every_drop_is_reported_to_the_node():
    """on_drop hears each dropped message with its stream and reason (nodes count them as skips
    under the stream's topic: nothing is lost silently)."""
    heard = []
    sync = ApproximateTimeSync(2, slop_ns=1, queue_size=3, on_drop=lambda i, why: heard.append((i, why)))
    for t in (10, 20, 30, 40, 50):
        sync.add(RGB, t, f"rgb{t}")
    sync.add(DEPTH, 30, "depth30")
    sync.add(DEPTH, 20, "late")
    assert sorted(heard) == sorted([(RGB, "overflow")] * 2 + [(DEPTH, "stale")] + [(RGB, "superseded")] * (sync.dropped[RGB] - 2))
    assert len(heard) == sync.dropped_total


def test_duplicate_stamp_replaces():
    sync = ApproximateTimeSync(2, slop_ns=0)
    sync.add(RGB, 10, "first")
    sync.add(RGB, 10, "second")
    assert sync.drop_reasons["duplicate"] == 1
    assert sync.add(DEPTH, 10, "d") == [("second", "d")]


def test_realistic_jittered_streams_all_match():
    # 30 Hz rgb, depth 2 ms later, camera_info with rgb's stamp; arrival order shuffled
    period, events = 33_333_333, []
    for k in range(30):
        t = 1_000_000_000 + k * period
        events += [(t + 5_000_000, RGB, t), (t + 1_000_000, DEPTH, t + 2_000_000), (t + 9_000_000, INFO, t)]
    sync = ApproximateTimeSync(3, slop_ns=5_000_000, queue_size=5)
    out = []
    for _, stream, stamp in sorted(events):
        out += sync.add(stream, stamp, (stream, stamp))
    assert len(out) == 30 and sync.dropped_total == 0
    for rgb, depth, info in out:
        assert rgb[0] == RGB and depth[0] == DEPTH and info[0] == INFO
        assert depth[1] - rgb[1] == 2_000_000 and info[1] == rgb[1]


def test_unmatched_frame_does_not_block_later_ones():
    sync = ApproximateTimeSync(2, slop_ns=1_000, queue_size=4)
    out = []
    for k in range(10):
        out += sync.add(RGB, k * 100_000, k)
        if k != 3:  # depth frame 3 lost
            out += sync.add(DEPTH, k * 100_000 + 500, k)
    assert [pair[0] for pair in out] == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert sync.dropped[RGB] == 1  # rgb 3 superseded when 4 matched


@pytest.mark.parametrize("args", [(0, 5), (2, -1), (2, 5, 0), (2, 1.5), (True, 5)])
def test_bad_configuration(args):
    with pytest.raises(ConfigError, match="must be an integer"):
        ApproximateTimeSync(*args)


def test_bad_add_arguments():
    sync = ApproximateTimeSync(2, slop_ns=5)
    with pytest.raises(SensorDataError, match="stream_index 2 out of range for 2 streams"):
        sync.add(2, 0, "x")
    with pytest.raises(SensorDataError, match="stream_index"):
        sync.add(-1, 0, "x")
    with pytest.raises(SensorDataError, match="stamp_ns must be an integer"):
        sync.add(0, 1.5, "x")
