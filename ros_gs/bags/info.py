"""``ros-gs bag info``: what ``ros2 bag info`` shows, without ROS, plus image encodings."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ros_gs.bags.reader import BagReader
from ros_gs.errors import InputError

_IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/PointCloud2")


@dataclass
class TopicInfo:
    topic: str
    msgtype: str
    count: int
    rate_hz: float | None
    #: For images: encoding and size of the first message ("rgb8 640x480"); clouds: fields.
    detail: str = ""


@dataclass
class BagInfo:
    path: str
    duration_s: float
    start_ns: int
    end_ns: int
    messages: int
    topics: list[TopicInfo] = field(default_factory=list)
    #: why the bag stopped early when its writer marked it partial (interrupted, disk full), else None
    partial: str | None = None
    #: the last status of each node on /diagnostics (one line each, see ros_gs.runtime.diagnostics)
    diagnostics: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def table(self) -> str:
        lines = [
            f"bag:       {self.path}",
            f"duration:  {self.duration_s:.3f} s",
            f"start:     {self.start_ns * 1e-9:.9f}",
            f"end:       {self.end_ns * 1e-9:.9f}",
            f"messages:  {self.messages}",
        ]
        if self.partial:
            lines.append(f"PARTIAL:   {self.partial} (the bag is readable but ends early)")
        lines.append("topics:")
        width = max((len(t.topic) for t in self.topics), default=5)
        twidth = max((len(t.msgtype) for t in self.topics), default=4)
        for t in self.topics:
            rate = f"{t.rate_hz:8.2f} Hz" if t.rate_hz is not None else "       - Hz"
            lines.append(f"  {t.topic:<{width}}  {t.msgtype:<{twidth}}  {t.count:7d}  {rate}  {t.detail}".rstrip())
        if self.diagnostics:
            lines.append("diagnostics (the last status of each node):")
            lines += [f"  {line}" for line in self.diagnostics]
        return "\n".join(lines)


def _detail(reader: BagReader, topic: str, msgtype: str) -> str:
    if msgtype not in _IMAGE_TYPES:
        return ""
    for raw in reader.raw_messages([topic]):
        try:
            msg = reader.decode(raw)
        except InputError as err:
            return f"(first message unreadable: {err})"
        if msgtype.endswith("/Image"):
            return f"{msg.encoding} {msg.width}x{msg.height}"
        if msgtype.endswith("/CompressedImage"):
            return msg.format
        return "fields " + ",".join(f.name for f in msg.fields) + f" {msg.width}x{msg.height}"
    return ""


def bag_info(path: Path | str) -> BagInfo:
    from ros_gs.runtime.diagnostics import summary_line

    with BagReader(path) as reader:
        summaries = reader.summary()
        topics = [
            TopicInfo(s.topic, s.msgtype, s.count, s.rate_hz, _detail(reader, s.topic, s.msgtype)) for s in summaries
        ]
        start, end = (reader.start_ns, reader.end_ns) if any(s.count for s in summaries) else (0, 0)
        partial = reader.partial
        diagnostics = [summary_line(status) for status in last_diagnostics(reader)]
    return BagInfo(str(path), (end - start) * 1e-9, start, end, sum(t.count for t in topics), topics, partial, diagnostics)


def last_diagnostics(reader: BagReader) -> list[dict]:
    """The last status of each node on /diagnostics (``ros_gs.runtime.diagnostics.from_message``
    dicts, by node name); undecodable arrays are passed over (``bag info --check`` names them)."""
    from ros_gs.runtime.diagnostics import TOPIC, from_message

    if not any(s.topic == TOPIC and s.msgtype == "diagnostic_msgs/msg/DiagnosticArray" for s in reader.summary()):
        return []
    last: dict[str, dict] = {}
    for raw in reader.raw_messages([TOPIC]):
        try:
            for status in from_message(reader.decode(raw)):
                last[status["name"]] = status
        except InputError:
            continue
    return [last[name] for name in sorted(last)]


def check_bag(path: Path | str) -> tuple[int, list[str]]:
    """(number of problems, report lines): every MCAP chunk's CRC (:mod:`ros_gs.bags.integrity`)
    and every message decoded.  A chunk without a CRC (bags from other writers) is reported,
    not counted as a problem."""
    from ros_gs.bags.integrity import check_chunks

    path = Path(path)
    files = sorted(path.glob("*.mcap")) if path.is_dir() else [path] if path.suffix == ".mcap" else []
    problems, lines = 0, []
    for f in files:
        try:
            c = check_chunks(f)
        except InputError as err:
            problems += 1
            lines.append(f"check: {err}")
            continue
        problems += len(c.bad)
        lines += [f"check: {f.name}: {b}" for b in c.bad]
        lines.append(f"check: {f.name}: {c.chunks} chunks, {c.chunks - c.without_crc - len(c.bad)} CRCs match, "
                     f"{len(c.bad)} do not, {c.without_crc} without a CRC")
    if not files:
        lines.append("check: no MCAP file (sqlite3 storage has no chunk CRCs): messages only")
    undecodable = 0
    try:
        with BagReader(path) as reader:
            for raw in reader.raw_messages():
                try:
                    reader.decode(raw)
                except InputError:
                    undecodable += 1
    except Exception as err:  # rosbags' own CRC check or a torn record: damage, named
        lines.append(f"check: reading the messages failed: {type(err).__name__}: {err}")
        return problems + 1, lines
    lines.append(f"check: {undecodable} messages could not be decoded" if undecodable else "check: every message decodes")
    return problems + undecodable, lines
