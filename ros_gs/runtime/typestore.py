"""ROS message types without ROS: a rosbags typestore plus ros_gs's own interfaces.

The standard types come from rosbags' ROS 2 Humble store.  ros_gs's own ``msg/*.msg`` and
``srv/*.srv`` files are parsed from their text and registered, so bags holding them can be
written and read on a machine without ROS.  A ``.srv`` file becomes two message types,
``ros_gs/srv/Name_Request`` and ``ros_gs/srv/Name_Response``, exactly as rosidl names them.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable

import numpy as np
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

PACKAGE = "ros_gs"

_NUMPY_DTYPES = {
    "bool": np.bool_,
    "byte": np.uint8,
    "char": np.uint8,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "uint32": np.uint32,
    "int64": np.int64,
    "uint64": np.uint64,
    "float32": np.float32,
    "float64": np.float64,
}


def interface_dirs() -> list[Path]:
    """Folders that may hold ros_gs's ``msg/`` and ``srv/``.

    In a source checkout (or ``pip install -e``) they sit at the repository root; an
    installed package has them in ``<prefix>/share/ros_gs``: pip's prefix is ``sys.prefix``,
    colcon's is five levels above this file (``<prefix>/lib/pythonX.Y/site-packages/ros_gs/
    runtime``) and is also listed in ``AMENT_PREFIX_PATH``.
    """
    here = Path(__file__).resolve()
    prefixes = [Path(sys.prefix)]
    if len(here.parents) > 5:
        prefixes.append(here.parents[5])
    prefixes += [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    candidates = [here.parents[2]] + [p / "share" / PACKAGE for p in prefixes]
    return [c for c in candidates if (c / "msg").is_dir()]


def parse_interfaces(root: Path) -> dict[str, Any]:
    """Parse ``root/msg/*.msg`` and ``root/srv/*.srv`` into a rosbags typesdict."""
    types: dict[str, Any] = {}
    for path in sorted((root / "msg").glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{PACKAGE}/msg/{path.stem}"))
    for path in sorted((root / "srv").glob("*.srv")) if (root / "srv").is_dir() else []:
        request, _, response = path.read_text().partition("\n---")
        for part, suffix in ((request, "Request"), (response, "Response")):
            # rosbags' msg parser files every type under <pkg>/msg/; put service parts back
            # under <pkg>/srv/ and point bare names (``ImageStats``) at this package's msgs.
            parsed = get_types_from_msg(part, f"{PACKAGE}/srv/{path.stem}_{suffix}")
            for name, (consts, fields) in parsed.items():
                types[name.replace("/srv/msg/", "/srv/")] = (consts, _fix_refs(fields))
    return types


def _fix_refs(fields: list) -> list:
    def fix(desc: Any) -> Any:
        if isinstance(desc, str):
            return desc.replace(f"{PACKAGE}/srv/msg/", f"{PACKAGE}/msg/")
        if isinstance(desc, tuple):
            return tuple(fix(d) for d in desc)
        return desc

    return [(name, fix(desc)) for name, desc in fields]


@functools.lru_cache(maxsize=1)
def ros_typestore() -> Typestore:
    """The shared typestore: ROS 2 Humble standard types plus ros_gs interfaces."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    dirs = interface_dirs()
    if dirs:
        store.register(parse_interfaces(dirs[0]))
    return store


def _default_value(store: Typestore, desc: tuple) -> Any:
    kind, detail = desc
    kind = int(kind)
    if kind == 1:  # BASE
        name = detail[0]
        if name == "string":
            return ""
        if name == "bool":
            return False
        return 0.0 if name.startswith("float") else 0
    if kind == 2:  # NAME
        return make_message(store, detail)
    inner, length = detail
    if int(inner[0]) == 1 and inner[1][0] in _NUMPY_DTYPES:
        size = length if kind == 3 else 0
        return np.zeros(size, dtype=_NUMPY_DTYPES[inner[1][0]])
    if kind == 3:
        return [_default_value(store, inner) for _ in range(length)]
    return []


def message_fields(store: Typestore, typename: str) -> list[str]:
    """Field names of a message type, in definition order."""
    return [name for name, _ in store.fielddefs[typename][1]]


def make_message(store: Typestore, typename: str, **fields: Any) -> Any:
    """Build a message of ``typename`` from keyword fields; unspecified fields get ROS defaults.

    rosbags' message classes require every field; ROS's own classes do not.  This gives
    both runtimes the same ``make(typename, **fields)`` call.  Unknown field names raise
    ``TypeError`` so typos do not pass silently.
    """
    try:
        _, defs = store.fielddefs[typename]
    except KeyError:
        raise KeyError(f"unknown message type {typename!r}") from None
    known = {name for name, _ in defs}
    if unknown := set(fields) - known:
        raise TypeError(f"{typename} has no field(s) {sorted(unknown)}; fields are {sorted(known)}")
    values = {}
    for name, desc in defs:
        if name in fields:
            value = fields[name]
            kind, detail = desc
            if int(kind) in (3, 4) and int(detail[0][0]) == 1 and detail[0][1][0] in _NUMPY_DTYPES:
                value = np.ascontiguousarray(value, dtype=_NUMPY_DTYPES[detail[0][1][0]]).reshape(-1)
            elif int(kind) == 2 and isinstance(value, dict):  # nested message given as plain data (YAML)
                value = make_message(store, detail, **value)
            elif int(kind) in (3, 4) and int(detail[0][0]) == 2 and isinstance(value, list):
                value = [make_message(store, detail[0][1], **v) if isinstance(v, dict) else v for v in value]
            values[name] = value
        else:
            values[name] = _default_value(store, desc)
    return store.types[typename](**values)


class MessageFactory:
    """``make(typename, **fields)`` bound to a typestore; what nodes and converters call."""

    def __init__(self, store: Typestore | None = None) -> None:
        self.store = store if store is not None else ros_typestore()

    def __call__(self, typename: str, **fields: Any) -> Any:
        return make_message(self.store, typename, **fields)

    def has_type(self, typename: str) -> bool:
        return typename in self.store.fielddefs

    def serialize(self, msg: Any, typename: str) -> bytes:
        return bytes(self.store.serialize_cdr(msg, typename))

    def deserialize(self, raw: bytes | memoryview, typename: str) -> Any:
        return self.store.deserialize_cdr(raw, typename)


def message_to_dict(msg: Any, spill: Callable[[np.ndarray], Any] | None = None, max_inline: int = 1024) -> Any:
    """A message (rosbags or rclpy) as plain Python data: dicts, lists, numbers, strings.
    ``spill``: arrays of more than ``max_inline`` elements (an image's pixels) are handed to it
    and replaced by what it returns (e.g. the name of a file it wrote them to), so that a log of
    a 640x480 render is not 22 MB of YAML."""
    if msg is None or isinstance(msg, (bool, int, float, str)):
        return msg
    if isinstance(msg, np.ndarray):
        return spill(msg) if spill is not None and msg.size > max_inline else msg.tolist()
    if isinstance(msg, np.generic):
        return msg.item()
    if isinstance(msg, (list, tuple)):
        return [message_to_dict(v, spill, max_inline) for v in msg]
    fields = getattr(msg, "__dataclass_fields__", None) or getattr(msg, "_fields_and_field_types", None)
    if fields is None:
        return repr(msg)
    return {name: message_to_dict(getattr(msg, name), spill, max_inline) for name in fields if not name.startswith("__")}


def registered_interfaces() -> Iterable[str]:
    """Type names of ros_gs's own interfaces known to the shared typestore."""
    return sorted(t for t in ros_typestore().fielddefs if t.startswith(f"{PACKAGE}/"))
