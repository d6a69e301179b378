"""Typed errors for bad input.

Anything that comes from outside (a message, a file, a parameter) and is wrong raises a
subclass of :class:`InputError`.  Runtimes catch these around every callback, log one line
and count the skip, so one corrupt message never stops a node.  Any other exception is a
bug in ros_gs and is logged with its traceback (and also counted).
"""


class InputError(ValueError):
    """Base class: data from outside ros_gs is malformed or unusable."""


class SensorDataError(InputError):
    """A sensor message cannot be converted (wrong encoding, size mismatch, NaN, ...)."""


class TransformError(InputError):
    """A TF lookup failed: unknown frame, no path between frames, or time out of range."""


class ConfigError(InputError):
    """A parameter file or value is invalid."""


class DatasetError(InputError):
    """A dataset folder or capture file is missing pieces or is malformed."""


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived (:mod:`ros_gs.runtime.interrupts`): the command stops,
    closes what it writes (marked partial) and exits ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = int(signum)
        self.name = signal.Signals(signum).name
        super().__init__(self.name)
