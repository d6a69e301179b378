"""Small shared checks for the converters (private).

Message byte arrays arrive as numpy arrays (rosbags), ``array.array`` (rclpy) or ``bytes``;
reading them through the buffer protocol handles all three without a copy.  Numbers read
from messages are checked here so that a bad message raises
:class:`~ros_gs.errors.SensorDataError` with a readable text instead of a numpy error.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ros_gs.errors import SensorDataError


def byte_array(data: Any, what: str) -> np.ndarray:
    """``data`` (bytes, array.array, numpy array, list of ints) as a 1-D uint8 array, no copy if possible."""
    if isinstance(data, np.ndarray):
        if data.dtype == np.uint8 or data.dtype == np.int8:
            return data.reshape(-1).view(np.uint8)
        if data.dtype.itemsize == 1 and data.dtype.kind in "biu":
            return data.reshape(-1).view(np.uint8)
        raise SensorDataError(f"{what} must be bytes (uint8), got a {data.dtype} array")
    try:
        view = memoryview(data)
    except TypeError:
        view = None
    if view is not None:
        if not view.contiguous:
            view = memoryview(view.tobytes())
        return np.frombuffer(view.cast("B"), dtype=np.uint8)
    try:
        arr = np.asarray(data)
        if arr.size and (arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() > 255):
            raise ValueError
        return arr.astype(np.uint8).reshape(-1)
    except (TypeError, ValueError):
        raise SensorDataError(f"{what} is not a byte sequence (got {type(data).__name__})") from None


def as_int(value: Any, what: str, minimum: int | None = 0) -> int:
    """An integer field value, checked for type and (by default) non-negativity."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SensorDataError(f"{what} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise SensorDataError(f"{what} must be >= {minimum}, got {value}")
    return value


def float_array(values: Any, shape: tuple[int, ...], what: str, finite: bool = True) -> np.ndarray:
    """``values`` as a float64 array of ``shape`` (a copy), checked finite unless told otherwise."""
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise SensorDataError(f"{what} must be numbers, got {values!r}") from None
    if arr.size != int(np.prod(shape)):
        raise SensorDataError(f"{what} must have {int(np.prod(shape))} values (shape {shape}), got shape {arr.shape}")
    arr = arr.reshape(shape)
    if finite and not np.all(np.isfinite(arr)):
        raise SensorDataError(f"{what} has non-finite values: {arr.tolist()}")
    return arr
