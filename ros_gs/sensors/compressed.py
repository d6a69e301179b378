"""``sensor_msgs/CompressedImage`` <-> numpy arrays (JPEG, PNG, compressedDepth PNG).

Decoding follows what ``image_transport`` publishers write:

* ``compressed`` transport: ``format`` is ``"<encoding>; <jpeg|png> compressed <encoding>"``
  (older publishers: just ``"jpeg"``/``"png"``) and ``data`` is the file.  The codec
  stream holds true colours, so colour output is RGB (as :func:`image_to_numpy`);
  ``rgb=False`` gives the channel order of the original encoding named in ``format``.
  8-bit grey -> ``H x W`` uint8, 16-bit grey PNG -> ``H x W`` uint16.
* ``compressedDepth`` transport: ``format`` is ``"<16UC1|32FC1>; compressedDepth png"``
  and ``data`` is a 12-byte ConfigHeader (int32 format, float32 depthQuantA, float32
  depthQuantB, little-endian) followed by a 16-bit PNG.  16UC1 PNGs hold the raw depth
  (returned as uint16; use :func:`~ros_gs.sensors.image.depth_to_metres`).  32FC1 PNGs hold
  quantised inverse depth ``v``: ``depth = depthQuantA / (v - depthQuantB)``, ``v == 0``
  invalid; returned as float32 metres with NaN for invalid, exactly as the C++ decoder.

Pillow does the codec work; any decoder failure becomes a SensorDataError.
"""

from __future__ import annotations

import io
import struct
import warnings
from typing import Any

import numpy as np
from PIL import Image

from ros_gs.errors import SensorDataError
from ros_gs.sensors._util import byte_array
from ros_gs.sensors.image import ENCODINGS, _from_rgb
from ros_gs.sensors.stamps import Make, make_header

#: compressed_depth_image_transport's ConfigHeader: compressionFormat enum + depthParam[2].
CONFIG_HEADER = struct.Struct("<iff")
INV_DEPTH = 0  # compressionFormat::INV_DEPTH, written by the C++ encoder for both encodings

_DEPTH_ENCODINGS = ("16UC1", "32FC1")


def _parse_format(fmt: str) -> tuple[str | None, bool, str | None]:
    """``format`` -> (original encoding or None, is compressedDepth, codec or None to sniff)."""
    if not isinstance(fmt, str):
        raise SensorDataError(f"CompressedImage format must be a string, got {fmt!r}")
    encoding, sep, rest = fmt.partition(";")
    if not sep:
        encoding, rest = "", fmt
    encoding = encoding.strip() or None
    words = rest.lower().replace(",", " ").split()
    if "compresseddepth" in words:
        after = words[words.index("compresseddepth") + 1 :]
        codec = after[0] if after else "png"  # old publishers wrote just "compressedDepth"
        if codec != "png":
            raise SensorDataError(f"compressedDepth codec {codec!r} is not supported (only png): format {fmt!r}")
        return encoding, True, "png"
    if "jpeg" in words or "jpg" in words:
        return encoding, False, "jpeg"
    if "png" in words:
        return encoding, False, "png"
    if words:
        raise SensorDataError(f"unsupported CompressedImage format {fmt!r}; expected jpeg, png or compressedDepth png")
    return encoding, False, None


def _open(payload: np.ndarray, what: str) -> Image.Image:
    """Decode an image file held in ``payload``; SensorDataError on any decoder failure."""
    if payload.size == 0:
        raise SensorDataError(f"{what} has no image data")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning etc: we only decode
            img = Image.open(io.BytesIO(payload.tobytes()))
            img.load()
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError, struct.error...
        raise SensorDataError(f"{what} could not be decoded ({type(err).__name__}: {err})") from None
    return img


def _pixels(img: Image.Image) -> np.ndarray:
    """Pillow image -> ``H x W`` (grey, uint8/uint16) or ``H x W x 3|4`` uint8 (RGB[A])."""
    mode = img.mode
    if mode.startswith("I;16"):
        return np.asarray(img).astype(np.uint16)
    if mode == "I":
        values = np.asarray(img)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise SensorDataError("32-bit integer images are not supported")
        return values.astype(np.uint16)
    if mode in ("1", "LA"):
        img = img.convert("L")
    elif mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode not in ("L", "RGB", "RGBA"):
        img = img.convert("RGB")
    return np.array(img)


def _decode_depth(data: np.ndarray, encoding: str | None, fmt: str) -> np.ndarray:
    if encoding not in _DEPTH_ENCODINGS:
        raise SensorDataError(f"compressedDepth needs encoding 16UC1 or 32FC1 in format, got {fmt!r}")
    if data.size <= CONFIG_HEADER.size:
        raise SensorDataError(
            f"compressedDepth data has {data.size} bytes, need a {CONFIG_HEADER.size}-byte header plus a PNG"
        )
    _, quant_a, quant_b = CONFIG_HEADER.unpack(data[: CONFIG_HEADER.size].tobytes())
    img = _open(data[CONFIG_HEADER.size :], "compressedDepth PNG")
    if not (img.mode.startswith("I;16") or img.mode == "I"):
        raise SensorDataError(f"compressedDepth PNG must be 16-bit greyscale, got Pillow mode {img.mode!r}")
    raw = _pixels(img)
    if encoding == "16UC1":
        return raw
    if not (np.isfinite(quant_a) and np.isfinite(quant_b)) or quant_a == 0:
        raise SensorDataError(f"compressedDepth 32FC1 header has bad quantisation A={quant_a}, B={quant_b}")
    values = raw.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.float32(quant_a) / (values - np.float32(quant_b))
    depth[raw == 0] = np.nan
    return depth.astype(np.float32)


def compressed_to_numpy(msg: Any, rgb: bool = True) -> np.ndarray:
    """Pixels of a ``sensor_msgs/CompressedImage`` (see the module docstring for layouts)."""
    fmt = getattr(msg, "format", None)
    encoding, is_depth, _ = _parse_format(fmt)
    data = byte_array(msg.data, "CompressedImage data")
    if is_depth:
        return _decode_depth(data, encoding, fmt)
    pixels = _pixels(_open(data, f"CompressedImage ({fmt!r})"))
    if pixels.ndim == 3:
        enc = ENCODINGS.get(encoding or "")
        if not rgb and enc is not None and enc.order is not None and enc.dtype == np.uint8:
            pixels = _from_rgb(pixels if enc.channels == 4 else pixels[..., :3], enc, encoding)
        else:
            pixels = pixels[..., :3]
    return np.ascontiguousarray(pixels)


def _encode(img: Image.Image, codec: str, quality: int) -> bytes:
    out = io.BytesIO()
    if codec == "jpeg":
        img.save(out, format="JPEG", quality=quality)
    else:
        img.save(out, format="PNG")
    return out.getvalue()


def _encode_depth(array: np.ndarray, depth_max: float, depth_quantization: float) -> tuple[bytes, str]:
    if array.ndim != 2:
        raise SensorDataError(f"compressedDepth needs an H x W depth array, got shape {array.shape}")
    if array.dtype == np.uint16:
        header = CONFIG_HEADER.pack(INV_DEPTH, 0.0, 0.0)
        return header + _encode(Image.fromarray(array), "png", 0), "16UC1; compressedDepth png"
    if array.dtype.kind != "f":
        raise SensorDataError(f"compressedDepth stores uint16 (16UC1) or float (32FC1) depth, got {array.dtype}")
    if not (depth_max > 0 and depth_quantization > 0):
        raise SensorDataError(f"depth_max and depth_quantization must be > 0, got {depth_max}, {depth_quantization}")
    # Same quantisation as compressed_depth_image_transport's encoder (truncation included).
    quant_a = np.float32(depth_quantization * (depth_quantization + 1.0))
    quant_b = np.float32(1.0 - quant_a / depth_max)
    depth = array.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv = quant_a / depth + quant_b
        valid = np.isfinite(depth) & (depth > 0) & (depth < depth_max) & (inv >= 1) & (inv < 65536)
    values = np.where(valid, inv, 0).astype(np.uint16)
    header = CONFIG_HEADER.pack(INV_DEPTH, float(quant_a), float(quant_b))
    return header + _encode(Image.fromarray(values), "png", 0), "32FC1; compressedDepth png"


def numpy_to_compressed(
    make: Make,
    array: np.ndarray,
    fmt: str,
    stamp_ns: int = 0,
    frame_id: str = "",
    quality: int = 90,
    depth_max: float = 10.0,
    depth_quantization: float = 100.0,
) -> Any:
    """A ``sensor_msgs/CompressedImage`` of ``array`` in ``fmt``: ``jpeg``, ``png`` or ``compressedDepth``.

    Accepted arrays: ``H x W`` uint8 (mono8), ``H x W x 3`` uint8 RGB, ``H x W x 4`` uint8
    RGBA (png only), ``H x W`` uint16 (png, mono16).  ``compressedDepth`` takes ``H x W``
    uint16 (16UC1, stored exactly) or float metres (32FC1, inverse-depth quantised like the
    C++ encoder with ``depth_max``/``depth_quantization``; depths outside the representable
    range become invalid).  ``format`` is written the way image_transport writes it.
    """
    array = np.asarray(array)
    if array.size == 0:
        raise SensorDataError(f"cannot compress an empty array (shape {array.shape})")
    _, is_depth, codec = _parse_format(fmt)
    if is_depth:
        payload, format_str = _encode_depth(array, depth_max, depth_quantization)
    else:
        if codec is None:
            raise SensorDataError(f"numpy_to_compressed: format {fmt!r} names no codec (jpeg or png)")
        if not 1 <= quality <= 100:
            raise SensorDataError(f"JPEG quality must be in 1..100, got {quality}")
        channels = 1 if array.ndim == 2 else array.shape[2] if array.ndim == 3 else 0
        kinds = {
            (np.dtype(np.uint8), 1): ("mono8", "mono8"),
            (np.dtype(np.uint8), 3): ("rgb8", "bgr8"),
            (np.dtype(np.uint8), 4): ("rgba8", "bgra8"),
            (np.dtype(np.uint16), 1): ("mono16", "mono16"),
        }
        names = kinds.get((array.dtype, channels))
        if names is None:
            raise SensorDataError(
                f"cannot compress a {array.dtype} array of shape {array.shape}; "
                "expected H x W uint8/uint16 or H x W x 3|4 uint8"
            )
        if codec == "jpeg" and names[0] not in ("mono8", "rgb8"):
            raise SensorDataError(f"JPEG stores 8-bit grey or RGB only, not {names[0]} (shape {array.shape})")
        payload = _encode(Image.fromarray(np.ascontiguousarray(array)), codec, quality)
        format_str = f"{names[0]}; {codec} compressed {names[1]}"
    return make(
        "sensor_msgs/msg/CompressedImage",
        header=make_header(make, stamp_ns, frame_id),
        format=format_str,
        data=np.frombuffer(payload, dtype=np.uint8),
    )
