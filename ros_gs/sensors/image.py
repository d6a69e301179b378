"""``sensor_msgs/Image`` <-> numpy arrays.

Conventions (one place, so every consumer agrees):

* Colour images come out as ``H x W x 3`` uint8 in **RGB** order by default, whatever the
  encoding (``bgr8``, ``rgba8``, ``bgra8`` are reordered, alpha dropped): the rest of ros_gs
  (rendering, models) is RGB and should never have to look at ``encoding``.
  ``rgb=False`` returns the channels exactly as stored (``H x W x C`` in encoding order,
  alpha kept) for callers that want the raw layout.
* Single-channel images (mono, depth) come out as ``H x W`` in their own dtype.
* Output arrays are always fresh, native-endian, C-contiguous and writable: a message
  buffer may be read-only, padded (``step``) or big-endian.
* Depth in metres (:func:`depth_to_metres`) marks invalid pixels with **NaN** by default:
  0 would read as "an obstacle at the lens", NaN cannot be mistaken for a measurement and
  propagates through arithmetic.  ``invalid_value=0.0`` gives the other convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ros_gs.errors import SensorDataError
from ros_gs.sensors._util import as_int, byte_array
from ros_gs.sensors.stamps import Make, make_header


@dataclass(frozen=True)
class Encoding:
    """Memory layout of one ``sensor_msgs/Image`` encoding."""

    dtype: np.dtype  # one channel, native byte order
    channels: int
    order: str | None  # "rgb", "bgr", "rgba", "bgra"; None for mono or unordered (8UC3)

    @property
    def bytes_per_pixel(self) -> int:
        return self.dtype.itemsize * self.channels


def _enc(code: str, channels: int, order: str | None = None) -> Encoding:
    return Encoding(np.dtype(code), channels, order)


#: Supported encodings (sensor_msgs/image_encodings.hpp names).
ENCODINGS: dict[str, Encoding] = {
    "rgb8": _enc("u1", 3, "rgb"),
    "bgr8": _enc("u1", 3, "bgr"),
    "rgba8": _enc("u1", 4, "rgba"),
    "bgra8": _enc("u1", 4, "bgra"),
    "rgb16": _enc("u2", 3, "rgb"),
    "bgr16": _enc("u2", 3, "bgr"),
    "mono8": _enc("u1", 1),
    "mono16": _enc("u2", 1),
    "8UC1": _enc("u1", 1),
    "8UC3": _enc("u1", 3),
    "8UC4": _enc("u1", 4),
    "16UC1": _enc("u2", 1),
    "16SC1": _enc("i2", 1),
    "32SC1": _enc("i4", 1),
    "32FC1": _enc("f4", 1),
    "64FC1": _enc("f8", 1),
}

#: Encodings :func:`depth_to_metres` accepts: integer millimetres-like (scaled) or float metres.
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")


def encoding_info(encoding: str) -> Encoding:
    """Layout of ``encoding``; SensorDataError naming the supported ones if unknown."""
    try:
        return ENCODINGS[encoding]
    except (KeyError, TypeError):
        raise SensorDataError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(ENCODINGS)}"
        ) from None


def _to_rgb(pixels: np.ndarray, order: str | None) -> np.ndarray:
    """Channels in encoding ``order`` -> RGB (alpha dropped)."""
    if order in ("bgr", "bgra"):
        return pixels[..., 2::-1]
    if order == "rgba":
        return pixels[..., :3]
    return pixels


def image_to_numpy(msg: Any, rgb: bool = True) -> np.ndarray:
    """Pixels of a ``sensor_msgs/Image``: ``H x W x 3`` RGB for colour, ``H x W`` for mono/depth.

    The dtype is the encoding's (uint8 for ``rgb8``/``bgr8``/..., uint16 for ``rgb16``, ...).

    ``step`` (row padding) and ``is_bigendian`` are honoured.  With ``rgb=False`` colour
    images keep their stored channel order and alpha (``H x W x C``).  Encodings without a
    defined order (``8UC3``, ``8UC4``) are always returned as stored.
    """
    enc = encoding_info(getattr(msg, "encoding", None))
    height = as_int(msg.height, "Image height")
    width = as_int(msg.width, "Image width")
    step = as_int(msg.step, "Image step")
    if height == 0 or width == 0:
        raise SensorDataError(f"Image is empty: {width}x{height} (width x height)")
    row_bytes = width * enc.bytes_per_pixel
    if step < row_bytes:
        raise SensorDataError(
            f"Image step {step} is less than width*bytes_per_pixel = {width}*{enc.bytes_per_pixel} "
            f"= {row_bytes} for {msg.encoding}"
        )
    data = byte_array(msg.data, "Image data")
    if data.size < height * step:
        raise SensorDataError(
            f"Image data has {data.size} bytes, expected height*step = {height}*{step} = {height * step}"
        )
    rows = data[: height * step].reshape(height, step)[:, :row_bytes]
    stored = enc.dtype.newbyteorder(">" if msg.is_bigendian else "<") if enc.dtype.itemsize > 1 else enc.dtype
    pixels = np.ascontiguousarray(rows).view(stored).reshape(height, width, enc.channels)
    if rgb:
        pixels = _to_rgb(pixels, enc.order)
    pixels = pixels.astype(enc.dtype, copy=True)  # native order, owns its memory
    if enc.channels == 1:
        pixels = pixels[..., 0]
    return np.ascontiguousarray(pixels)


def _from_rgb(array: np.ndarray, enc: Encoding, encoding: str) -> np.ndarray:
    """An RGB (or RGBA) array -> channels in the encoding's order."""
    channels = array.shape[2]
    if enc.channels == 3 and channels != 3:
        raise SensorDataError(f"{encoding} needs an H x W x 3 RGB array, got shape {array.shape}")
    if enc.channels == 4:
        if channels == 3:
            alpha = np.full(array.shape[:2] + (1,), np.iinfo(enc.dtype).max, dtype=array.dtype)
            array = np.concatenate([array, alpha], axis=2)
        elif channels != 4:
            raise SensorDataError(f"{encoding} needs an H x W x 3 (RGB) or x 4 (RGBA) array, got shape {array.shape}")
    if enc.order in ("bgr", "bgra"):
        array = np.concatenate([array[..., 2::-1], array[..., 3:]], axis=2)
    return array


def _cast(array: np.ndarray, dtype: np.dtype, encoding: str) -> np.ndarray:
    """``array`` as ``dtype`` if no information is lost (floats may narrow float64->float32)."""
    if array.dtype == dtype:
        return array
    if np.can_cast(array.dtype, dtype, "safe") or (dtype.kind == "f" and array.dtype.kind == "f"):
        return array.astype(dtype)
    raise SensorDataError(f"encoding {encoding} stores {dtype} pixels, cannot store a {array.dtype} array")


def numpy_to_image(
    make: Make, array: np.ndarray, encoding: str, stamp_ns: int = 0, frame_id: str = "", rgb: bool = True
) -> Any:
    """A ``sensor_msgs/Image`` holding ``array`` in ``encoding``.

    The inverse of :func:`image_to_numpy`: with ``rgb=True`` a colour ``array`` is RGB
    (or RGBA for 4-channel encodings; a missing alpha is set opaque) and is reordered to
    the encoding.  Rows are packed (``step = width * bytes_per_pixel``), little-endian.
    """
    enc = encoding_info(encoding)
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise SensorDataError(f"image array must be H x W or H x W x C, got shape {array.shape}")
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise SensorDataError(f"image array is empty: shape {array.shape}")
    array = _cast(array, enc.dtype, encoding)
    if rgb and enc.order is not None:
        array = _from_rgb(array, enc, encoding)
    if array.shape[2] != enc.channels:
        raise SensorDataError(f"{encoding} has {enc.channels} channel(s), array has shape {array.shape}")
    data = np.ascontiguousarray(array, dtype=enc.dtype.newbyteorder("<")).view(np.uint8).reshape(-1)
    return make(
        "sensor_msgs/msg/Image",
        header=make_header(make, stamp_ns, frame_id),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=width * enc.bytes_per_pixel,
        data=data,
    )


def depth_to_metres(
    depth: Any,
    encoding: str | None = None,
    depth_scale: float = 0.001,
    invalid_value: float = float("nan"),
    max_raw_invalid: bool = False,
) -> np.ndarray:
    """Depth in metres (``H x W`` float32) from a depth Image message or array.

    * ``16UC1``/``mono16``: raw integer units times ``depth_scale`` (0.001 = millimetres,
      the REP 118 convention); raw 0 means "no measurement".  Some drivers also use 65535
      for "out of range": set ``max_raw_invalid=True`` to treat it as invalid too.
    * ``32FC1``: already metres; NaN, +-inf and values <= 0 are invalid.

    Invalid pixels become ``invalid_value`` (NaN by default, see the module docstring).
    For an array ``encoding`` may be omitted: uint16 means 16UC1, a float array 32FC1.
    """
    if hasattr(depth, "encoding") and hasattr(depth, "data"):
        if encoding is not None and encoding != depth.encoding:
            raise SensorDataError(f"depth_to_metres: encoding {encoding!r} given for a {depth.encoding!r} image")
        encoding = depth.encoding
        raw = image_to_numpy(depth)
    else:
        raw = np.asarray(depth)
        if encoding is None:
            encoding = "16UC1" if raw.dtype == np.uint16 else "32FC1" if raw.dtype.kind == "f" else None
            if encoding is None:
                raise SensorDataError(f"depth_to_metres: cannot infer the encoding of a {raw.dtype} array")
    if encoding not in DEPTH_ENCODINGS:
        raise SensorDataError(f"{encoding!r} is not a depth encoding; expected one of {DEPTH_ENCODINGS}")
    if raw.ndim != 2 or raw.size == 0:
        raise SensorDataError(f"depth must be a non-empty H x W array, got shape {raw.shape}")
    if not (np.isfinite(depth_scale) and depth_scale > 0):
        raise SensorDataError(f"depth_scale must be a positive number, got {depth_scale}")
    if encoding == "32FC1":
        if raw.dtype.kind != "f":
            raise SensorDataError(f"32FC1 depth must be a float array, got {raw.dtype}")
        metres = raw.astype(np.float32, copy=True)
        with np.errstate(invalid="ignore"):
            invalid = ~np.isfinite(metres) | (metres <= 0)
    else:
        if raw.dtype != np.uint16:
            raise SensorDataError(f"{encoding} depth must be a uint16 array, got {raw.dtype}")
        metres = (raw * np.float64(depth_scale)).astype(np.float32)
        invalid = raw == 0
        if max_raw_invalid:
            invalid |= raw == np.iinfo(np.uint16).max
    metres[invalid] = invalid_value
    return metres
