"""Read a rosbag2 (MCAP or sqlite3, a directory or a bare storage file) in log-time order.

Types are taken from ros_gs's typestore; a type it lacks is registered from the message
definition stored in the bag, so bags recorded with other packages' messages still read.
Corrupt payloads raise :class:`~ros_gs.errors.SensorDataError` per message, so a reader can
skip one message and go on.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.interfaces import MessageDefinitionFormat
from rosbags.rosbag2 import Reader
from rosbags.typesys import TypesysError, get_types_from_idl, get_types_from_msg

from ros_gs.errors import DatasetError, SensorDataError
from ros_gs.runtime.typestore import MessageFactory

log = logging.getLogger("ros_gs.bags")


@dataclass(frozen=True)
class RawMessage:
    topic: str
    msgtype: str
    log_ns: int
    raw: bytes


@dataclass(frozen=True)
class TopicSummary:
    topic: str
    msgtype: str
    count: int
    first_ns: int | None = None
    last_ns: int | None = None

    @property
    def rate_hz(self) -> float | None:
        """Mean rate over the topic's own span (None for fewer than two messages)."""
        if self.count < 2 or self.first_ns is None or self.last_ns is None or self.last_ns <= self.first_ns:
            return None
        return (self.count - 1) / ((self.last_ns - self.first_ns) * 1e-9)


class BagReader:
    """Open a bag for time-ordered reading; use as a context manager."""

    def __init__(self, path: Path | str, factory: MessageFactory | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DatasetError(f"bag {self.path} does not exist")
        self.factory = factory or MessageFactory()
        try:
            self._reader = Reader(self.path)
        except Exception as err:  # rosbags raises several unrelated types for bad files
            raise DatasetError(f"cannot open bag {self.path}: {err}") from err
        self._is_open = False

    def __enter__(self) -> BagReader:
        try:
            self._reader.open()
        except Exception as err:
            raise DatasetError(f"cannot read bag {self.path}: {err}") from err
        self._is_open = True
        self._register_missing_types()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._is_open:
            self._reader.close()
            self._is_open = False

    def _register_missing_types(self) -> None:
        """Register the bag's embedded definitions; note types whose definition differs from ours.

        A bag recorded with another version of a message must not be decoded with our layout:
        its messages become counted skips with a clear reason instead of garbage.
        """
        store = self.factory.store
        self.conflicting: dict[str, str] = {}
        for conn in self._reader.connections:
            try:
                if conn.msgdef.format == MessageDefinitionFormat.MSG:
                    parsed = get_types_from_msg(conn.msgdef.data, conn.msgtype)
                elif conn.msgdef.format == MessageDefinitionFormat.IDL:
                    parsed = get_types_from_idl(conn.msgdef.data)
                else:
                    continue
            except Exception:  # noqa: BLE001 - an unparsable definition leaves the type as we know it
                continue
            try:
                store.register(parsed)
            except TypesysError as err:
                self.conflicting[conn.msgtype] = str(err)
                log.warning("%s: %s holds %s with a definition that differs from ros_gs's: its messages will be skipped (%s)", self.path, conn.topic, conn.msgtype, err)

    @property
    def partial(self) -> str | None:
        """Why the bag stopped early, when its writer marked it partial (``ros_gs.partial`` in
        the metadata's custom_data: an interrupt, a full disk; see :mod:`ros_gs.bags.writer`)."""
        meta = getattr(getattr(self._reader, "storage", None), "metadata", None)
        custom = getattr(meta, "custom", None) or {}
        return custom.get("ros_gs.partial")

    @property
    def start_ns(self) -> int:
        return self._reader.start_time

    @property
    def end_ns(self) -> int:
        return self._reader.end_time

    def topics(self) -> dict[str, str]:
        """Topic -> message type."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    def known_type(self, msgtype: str) -> bool:
        return self.factory.has_type(msgtype)

    def raw_messages(
        self, topics: Collection[str] | None = None, start_ns: int | None = None, stop_ns: int | None = None
    ) -> Iterator[RawMessage]:
        conns = [c for c in self._reader.connections if topics is None or c.topic in topics]
        if topics is not None and not conns:
            return
        for conn, log_ns, raw in self._iter(conns, start_ns, stop_ns):
            yield RawMessage(conn.topic, conn.msgtype, log_ns, bytes(raw))

    def _iter(self, conns: Collection[Any] = (), start_ns: int | None = None, stop_ns: int | None = None) -> Iterator[tuple[Any, int, Any]]:
        """rosbags' message stream with damage inside the file turned into one DatasetError."""
        messages = self._reader.messages(connections=conns, start=start_ns, stop=stop_ns)
        while True:
            try:
                item = next(messages)
            except StopIteration:
                return
            except Exception as err:  # rosbags raises ReaderError, struct and overflow errors on damaged files
                raise DatasetError(f"bag {self.path} is damaged past this point: {type(err).__name__}: {err}") from err
            yield item

    def decode(self, message: RawMessage) -> Any:
        """Deserialise one message; a corrupt payload raises SensorDataError."""
        if message.msgtype in self.conflicting:
            raise SensorDataError(f"{message.topic}: {message.msgtype} in this bag differs from ros_gs's definition")
        if not self.factory.has_type(message.msgtype):
            raise SensorDataError(f"{message.topic}: message type {message.msgtype} is unknown and the bag has no definition")
        try:
            return self.factory.deserialize(message.raw, message.msgtype)
        except Exception as err:  # rosbags raises struct/index/value errors on bad CDR
            raise SensorDataError(
                f"{message.topic}: corrupt {message.msgtype} at t={message.log_ns} ns ({type(err).__name__}: {err})"
            ) from err

    def messages(self, topics: Collection[str] | None = None) -> Iterator[tuple[RawMessage, Any]]:
        """Decoded messages in log-time order (raises on the first corrupt one)."""
        for raw in self.raw_messages(topics):
            yield raw, self.decode(raw)

    def summary(self) -> list[TopicSummary]:
        """Per-topic counts and time spans (one pass over the index)."""
        firsts: dict[str, int] = {}
        lasts: dict[str, int] = {}
        counts: dict[str, int] = {}
        for conn, log_ns, _ in self._iter():
            firsts.setdefault(conn.topic, log_ns)
            lasts[conn.topic] = log_ns
            counts[conn.topic] = counts.get(conn.topic, 0) + 1
        return [
            TopicSummary(c.topic, c.msgtype, counts.get(c.topic, 0), firsts.get(c.topic), lasts.get(c.topic))
            for c in sorted(self._reader.connections, key=lambda c: c.topic)
        ]
