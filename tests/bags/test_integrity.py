"""Chunk CRCs (ros_gs.bags.integrity): bags we write carry them, so a flipped byte is caught by
rosbags' own reader (an independent check) and by ``ros-gs bag info --check``; bags without
CRCs (other writers) are reported, not failed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ros_gs.bags.info import check_bag
from ros_gs.bags.integrity import check_chunks
from ros_gs.bags.reader import BagReader
from ros_gs.bags.writer import BagWriter
from ros_gs.errors import DatasetError

REPO = Path(__file__).resolve().parents[2]


def write_bag(path: Path, n: int = 200) -> Path:
    with BagWriter(path) as w:
        for k in range(n):
            w.write("/chatter", "std_msgs/msg/String", w.factory("std_msgs/msg/String", data=f"message {k} " * 20), 1000 + k)
    return next(path.glob("*.mcap"))


def flip(mcap: Path, at: int) -> None:
    data = bytearray(mcap.read_bytes())
    data[at] ^= 0x01
    mcap.write_bytes(data)


def test_our_bags_carry_chunk_crcs_and_a_flipped_byte_is_caught(tmp_path: Path) -> None:
    mcap = write_bag(tmp_path / "b")
    c = check_chunks(mcap)
    assert c.chunks >= 1 and c.without_crc == 0 and c.ok
    problems, lines = check_bag(tmp_path / "b")
    assert problems == 0 and lines[-1] == "check: every message decodes"
    flip(mcap, mcap.read_bytes().index(b"message 57"))  # inside a message's payload
    assert not check_chunks(mcap).ok
    with pytest.raises(DatasetError, match="checksum"), BagReader(tmp_path / "b") as reader:  # rosbags' own CRC check
        for _ in reader.messages():
            pass
    res = subprocess.run([sys.executable, "-m", "ros_gs.cli.main", "bag", "info", str(tmp_path / "b"), "--check"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "do not" in res.stdout and "Traceback" not in res.stderr, res.stdout + res.stderr


def test_without_our_crcs_the_same_flip_reads_as_valid_data(tmp_path: Path) -> None:
    """Why the CRCs: rosbags' writer leaves them 0, and then damage goes unseen."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    String = store.types["std_msgs/msg/String"]
    with Writer(tmp_path / "plain", version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection("/chatter", "std_msgs/msg/String", typestore=store)
        for k in range(50):
            w.write(conn, 1000 + k, store.serialize_cdr(String(data=f"message {k} "), "std_msgs/msg/String"))
    mcap = next((tmp_path / "plain").glob("*.mcap"))
    assert check_chunks(mcap).without_crc == check_chunks(mcap).chunks >= 1
    flip(mcap, mcap.read_bytes().index(b"message 7 "))
    with BagReader(tmp_path / "plain") as reader:
        texts = [m.data for _, m in reader.messages()]
    assert "message 7 " not in texts and len(texts) == 50  # the damage reads as a valid, different message
    problems, lines = check_bag(tmp_path / "plain")
    assert problems == 0 and any("without a CRC" in line for line in lines)


def test_a_truncated_file_is_named(tmp_path: Path) -> None:
    mcap = write_bag(tmp_path / "t")
    mcap.write_bytes(mcap.read_bytes()[:-200])
    problems, lines = check_bag(tmp_path / "t")
    assert problems >= 1 and any("truncated" in line or "footer" in line or "failed" in line for line in lines)
