"""SIGINT, SIGTERM and SIGHUP as an exception raised at a safe point.

Why: by default SIGTERM and SIGHUP kill the process where it stands, so a bag being written is
left without its MCAP footer and ``metadata.yaml`` (unreadable), and SIGINT raises anywhere,
also halfway through appending a record.  With :func:`install`, each raises
:class:`~ros_gs.errors.Interrupted` instead; inside :func:`critical` (a bag writer appending a
record) it waits until the section ends.  The writer then closes the bag, readable and marked
partial, and the command line exits ``128 + signum`` (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from ros_gs.errors import Interrupted

SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None)

_depth = 0
_pending: int | None = None
last_signal: int | None = None  # the last signal received (the command line's exit code)


def _handler(signum: int, frame) -> None:
    global _pending, last_signal
    last_signal = signum
    if _depth:
        _pending = signum
        return
    raise Interrupted(signum)


def install() -> None:
    """Route the three signals to :class:`Interrupted` (main thread only: Python's rule)."""
    if threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, _handler)


@contextmanager
def critical() -> Iterator[None]:
    """A section no signal interrupts: one arriving inside raises when it ends."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending is not None:
            signum, _pending = _pending, None
            raise Interrupted(signum)
