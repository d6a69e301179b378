"""Write messages to a rosbag2 (MCAP storage by default) that ``ros2 bag``, Foxglove and RViz open.

A thin layer over ``rosbags.rosbag2.Writer`` that adds connections on first use, serialises
with ros_gs's typestore (so our own interfaces work without ROS), and records QoS so latched
topics replay as transient-local.  A bag whose writing stops on an exception (an interrupt, a
full disk, a bug) is still closed, so it opens, and is marked partial: ``ros_gs.partial`` in the
metadata's ``custom_data`` and a ``PARTIAL`` file in the bag folder say why and how much.  Every
MCAP chunk carries its CRC (:mod:`ros_gs.bags.integrity`), so corruption reads as corruption.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from rosbags.interfaces import (
    Connection,
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer

from ros_gs.bags.integrity import fill_chunk_crcs
from ros_gs.errors import Interrupted
from ros_gs.runtime.interrupts import critical
from ros_gs.runtime.qos import DEFAULT_QOS, QoS
from ros_gs.runtime.typestore import MessageFactory

log = logging.getLogger("ros_gs.bags")

PARTIAL_FILE = "PARTIAL"  # in the bag folder of a bag that stopped early: why, and how much it holds

_STORAGE = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


def to_bag_qos(qos: QoS) -> Qos:
    """Our QoS as the rosbag2 metadata record (what ``ros2 bag play`` offers)."""
    zero = QosTime(0, 0)
    return Qos(
        QosHistory.KEEP_LAST,
        qos.depth,
        QosReliability.RELIABLE if qos.reliable else QosReliability.BEST_EFFORT,
        QosDurability.TRANSIENT_LOCAL if qos.transient_local else QosDurability.VOLATILE,
        zero,
        zero,
        QosLiveliness.AUTOMATIC,
        zero,
        False,
    )


class BagWriter:
    """Append messages to a new rosbag2 directory; use as a context manager."""

    def __init__(
        self,
        path: Path | str,
        factory: MessageFactory | None = None,
        storage: str = "mcap",
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        if storage not in _STORAGE:
            raise ValueError(f"storage must be one of {sorted(_STORAGE)}, got {storage!r}")
        if self.path.exists():
            if not overwrite:
                raise FileExistsError(f"{self.path} exists; pass overwrite=True (--overwrite) to replace it")
            shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
        self.factory = factory or MessageFactory()
        self._writer = Writer(self.path, version=9, storage_plugin=_STORAGE[storage])
        self._connections: dict[str, Connection] = {}
        self.counts: dict[str, int] = {}
        self._open = False

    def open(self) -> BagWriter:
        self._writer.open()
        self._open = True
        return self

    def close(self, partial: str | None = None) -> None:
        """Finish the bag (MCAP footer and metadata: readable).  ``partial``: why it stopped
        early; recorded in the metadata and a ``PARTIAL`` file, and logged with the count."""
        if not self._open:
            return
        self._open = False
        if partial:
            self._writer.set_custom_data("ros_gs.partial", partial)
        self._writer.close()
        for mcap in sorted(self.path.glob("*.mcap")):  # rosbags leaves the chunk CRCs at 0
            fill_chunk_crcs(mcap)
        if partial:
            total = sum(self.counts.values())
            (self.path / PARTIAL_FILE).write_text(f"partial bag: {partial}; {total} messages written\n")
            log.warning("%s is partial (%s): %d messages written, readable", self.path, partial, total)

    def __enter__(self) -> BagWriter:
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(partial=None if exc is None else stop_reason(exc))

    def _connection(self, topic: str, msgtype: str, qos: QoS) -> Connection:
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._writer.add_connection(
                topic,
                msgtype,
                typestore=self.factory.store,
                offered_qos_profiles=[to_bag_qos(qos)],
            )
            self._connections[topic] = conn
            self.counts[topic] = 0
        elif conn.msgtype != msgtype:
            raise TypeError(f"topic {topic} already holds {conn.msgtype}, cannot write {msgtype}")
        return conn

    def write(self, topic: str, msgtype: str, msg: Any, log_ns: int, qos: QoS = DEFAULT_QOS) -> None:
        """Serialise ``msg`` and append it at log time ``log_ns``."""
        self.write_raw(topic, msgtype, self.factory.serialize(msg, msgtype), log_ns, qos)

    def write_raw(self, topic: str, msgtype: str, raw: bytes, log_ns: int, qos: QoS = DEFAULT_QOS) -> None:
        if not self._open:
            raise RuntimeError("BagWriter is not open")
        if log_ns < 0:
            raise ValueError(f"negative log time {log_ns} for {topic}")
        with critical():  # a signal waits until the record is whole
            self._writer.write(self._connection(topic, msgtype, qos), int(log_ns), raw)
            self.counts[topic] += 1


def stop_reason(exc: BaseException) -> str:
    """Why a bag stopped early, in a few words (for its PARTIAL marker)."""
    if isinstance(exc, Interrupted):
        return f"interrupted by {exc.name}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"stopped by {type(exc).__name__}: {exc}"
