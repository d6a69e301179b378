"""compressed: CompressedImage (jpeg, png, compressedDepth png) <-> numpy."""

import io
import struct
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from ros_gs.errors import SensorDataError
from ros_gs.runtime.typestore import MessageFactory
from ros_gs.sensors.compressed import compressed_to_numpy, numpy_to_compressed
from ros_gs.sensors.stamps import stamp_to_ns

make = MessageFactory()
TYPE = "sensor_msgs/msg/CompressedImage"


def cdr(msg):
    return make.deserialize(make.serialize(msg, TYPE), TYPE)


def png_bytes(pixels):
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def smooth_rgb(h=32, w=48):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 5, y * 7, (x + y) * 2], axis=2).astype(np.uint8)


def msg_with(fmt, data):
    return SimpleNamespace(format=fmt, data=np.frombuffer(bytes(data), np.uint8))


def test_png_rgb_round_trip_exact_through_cdr():
    rgb = np.random.default_rng(1).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    msg = numpy_to_compressed(make, rgb, "png", stamp_ns=42, frame_id="cam")
    assert msg.format == "rgb8; png compressed bgr8"
    back = cdr(msg)
    assert stamp_to_ns(back.header.stamp) == 42 and back.header.frame_id == "cam"
    np.testing.assert_array_equal(compressed_to_numpy(back), rgb)


def test_jpeg_rgb_round_trip_close():
    rgb = smooth_rgb()
    msg = cdr(numpy_to_compressed(make, rgb, "jpeg", quality=95))
    assert msg.format == "rgb8; jpeg compressed bgr8"
    assert bytes(msg.data[:2]) == b"\xff\xd8"  # a JPEG file
    out = compressed_to_numpy(msg)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb).mean() < 3.0
    # channel order matters: swapping R and B would be far off
    assert np.abs(out[..., ::-1].astype(int) - rgb).mean() > 20


def test_bgr_original_encoding_with_rgb_false():
    rgb = smooth_rgb()
    data = np.asarray(numpy_to_compressed(make, rgb, "png").data)
    msg = msg_with("bgr8; png compressed bgr8", data)
    np.testing.assert_array_equal(compressed_to_numpy(msg), rgb)
    np.testing.assert_array_equal(compressed_to_numpy(msg, rgb=False), rgb[..., ::-1])


@pytest.mark.parametrize("fmt", ["png", "PNG", "", "rgb8; png compressed rgb8"])
def test_legacy_and_sniffed_formats(fmt):
    rgb = smooth_rgb(4, 5)
    np.testing.assert_array_equal(compressed_to_numpy(msg_with(fmt, png_bytes(rgb))), rgb)


def test_mono8_and_mono16_png_exact():
    mono = np.arange(20, dtype=np.uint8).reshape(4, 5) * 12
    msg = cdr(numpy_to_compressed(make, mono, "png"))
    assert msg.format == "mono8; png compressed mono8"
    out = compressed_to_numpy(msg)
    assert out.dtype == np.uint8 and out.shape == (4, 5)
    np.testing.assert_array_equal(out, mono)
    deep = (np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000 + 7).astype(np.uint16)
    msg = cdr(numpy_to_compressed(make, deep, "png"))
    assert msg.format == "mono16; png compressed mono16"
    out = compressed_to_numpy(msg)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, deep)


def test_mono_jpeg():
    mono = np.tile(np.arange(0, 240, 10, dtype=np.uint8), (8, 1))
    out = compressed_to_numpy(numpy_to_compressed(make, mono, "jpeg", quality=100))
    assert out.shape == mono.shape and np.abs(out.astype(int) - mono).max() <= 3


def test_rgba_png():
    rgba = np.random.default_rng(2).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    msg = numpy_to_compressed(make, rgba, "png")
    assert msg.format == "rgba8; png compressed bgra8"
    np.testing.assert_array_equal(compressed_to_numpy(msg), rgba[..., :3])
    np.testing.assert_array_equal(compressed_to_numpy(msg, rgb=False), rgba)
    bgra = compressed_to_numpy(msg_with("bgra8; png compressed bgra8", np.asarray(msg.data)), rgb=False)
    np.testing.assert_array_equal(bgra, rgba[..., [2, 1, 0, 3]])


def test_compressed_depth_16uc1_round_trip():
    depth = np.array([[0, 1, 1000], [65535, 4242, 12]], dtype=np.uint16)
    msg = cdr(numpy_to_compressed(make, depth, "compressedDepth png", frame_id="depth"))
    assert msg.format == "16UC1; compressedDepth png"
    data = np.asarray(msg.data)
    assert struct.unpack("<iff", data[:12].tobytes()) == (0, 0.0, 0.0)
    assert data[12:20].tobytes() == b"\x89PNG\r\n\x1a\n"
    out = compressed_to_numpy(msg)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, depth)


def test_compressed_depth_old_format_string():
    depth = np.array([[5, 6]], dtype=np.uint16)
    data = struct.pack("<iff", 0, 0, 0) + png_bytes(depth)
    np.testing.assert_array_equal(compressed_to_numpy(msg_with("16UC1; compressedDepth", data)), depth)


def test_compressed_depth_32fc1_hand_computed():
    # depth = A / (v - B): A=100, B=0: v=50 -> 2 m, v=200 -> 0.5 m; v=0 invalid (NaN).
    inv = np.array([[0, 50, 200]], dtype=np.uint16)
    data = struct.pack("<iff", 0, 100.0, 0.0) + png_bytes(inv)
    out = compressed_to_numpy(msg_with("32FC1; compressedDepth png", data))
    assert out.dtype == np.float32
    assert np.isnan(out[0, 0])
    np.testing.assert_allclose(out[0, 1:], [2.0, 0.5], rtol=1e-6)
    # B shifts: A=100, B=-100: v=100 -> 100/200 = 0.5
    data = struct.pack("<iff", 0, 100.0, -100.0) + png_bytes(np.array([[100]], dtype=np.uint16))
    np.testing.assert_allclose(compressed_to_numpy(msg_with("32FC1; compressedDepth png", data)), [[0.5]])


def test_compressed_depth_32fc1_round_trip_within_quantisation():
    depth = np.linspace(0.3, 9.5, 60, dtype=np.float32).reshape(6, 10)
    depth[0, 0] = np.nan
    depth[0, 1] = 12.0  # beyond depth_max=10
    depth[0, 2] = 0.0
    msg = cdr(numpy_to_compressed(make, depth, "compressedDepth png"))
    assert msg.format == "32FC1; compressedDepth png"
    quant_a, quant_b = struct.unpack("<iff", np.asarray(msg.data)[:12].tobytes())[1:]
    assert quant_a == pytest.approx(100 * 101) and quant_b == pytest.approx(1 - 10100 / 10)
    out = compressed_to_numpy(msg)
    assert np.isnan(out[0, :3]).all()
    good = np.isfinite(depth) & (depth > 0) & (depth < 10)
    # truncation of A/d + B makes the decoded depth slightly larger, by at most ~d^2/A
    err = out[good] - depth[good]
    assert (err >= -1e-4).all() and (err <= depth[good] ** 2 / quant_a * 1.05 + 1e-4).all()


@pytest.mark.parametrize(
    "fmt, data, words",
    [
        ("jpeg", b"\xff\xd8\xff\xe0 this is not a jpeg", "could not be decoded"),
        ("png", b"garbage" * 10, "could not be decoded"),
        ("png", b"", "no image data"),
        ("rgb8; h264 compressed rgb8", b"x", "unsupported CompressedImage format"),
        ("16UC1; compressedDepth rvl", b"x" * 20, "rvl"),
        ("16UC1; compressedDepth png", b"x" * 12, "12 bytes"),
        ("compressedDepth png", b"x" * 20, "16UC1 or 32FC1"),
    ],
)
def test_decode_rejects(fmt, data, words):
    with pytest.raises(SensorDataError, match=words):
        compressed_to_numpy(msg_with(fmt, data))


def test_truncated_png_rejected():
    data = png_bytes(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(SensorDataError, match="could not be decoded"):
        compressed_to_numpy(msg_with("png", data[: len(data) // 2]))


def test_compressed_depth_needs_16bit_png_and_sane_header():
    data = struct.pack("<iff", 0, 0, 0) + png_bytes(np.zeros((2, 2), np.uint8))
    with pytest.raises(SensorDataError, match="16-bit"):
        compressed_to_numpy(msg_with("16UC1; compressedDepth png", data))
    data = struct.pack("<iff", 0, float("nan"), 0) + png_bytes(np.ones((2, 2), np.uint16))
    with pytest.raises(SensorDataError, match="quantisation"):
        compressed_to_numpy(msg_with("32FC1; compressedDepth png", data))
    data = struct.pack("<iff", 0, 1, 0) + b"not a png at all"
    with pytest.raises(SensorDataError, match="could not be decoded"):
        compressed_to_numpy(msg_with("32FC1; compressedDepth png", data))


def test_non_string_format():
    with pytest.raises(SensorDataError, match="format must be a string"):
        compressed_to_numpy(SimpleNamespace(format=None, data=b""))


@pytest.mark.parametrize(
    "pixels, fmt, kwargs, words",
    [
        (np.zeros((2, 2, 4), np.uint8), "jpeg", {}, "JPEG stores"),
        (np.zeros((2, 2), np.uint16), "jpeg", {}, "JPEG stores"),
        (np.zeros((2, 2), np.float32), "png", {}, "cannot compress a float32"),
        (np.zeros((2, 2, 2), np.uint8), "png", {}, "cannot compress"),
        (np.zeros((0, 2), np.uint8), "png", {}, "empty"),
        (np.zeros((2, 2), np.uint8), "jpeg", {"quality": 0}, "quality"),
        (np.zeros((2, 2), np.uint8), "", {}, "names no codec"),
        (np.zeros((2, 2), np.uint8), "bmp", {}, "unsupported"),
        (np.zeros((2, 2), np.uint8), "compressedDepth png", {}, "uint16 \\(16UC1\\) or float"),
        (np.zeros((2, 2, 1), np.uint16), "compressedDepth png", {}, "H x W depth"),
        (np.ones((2, 2), np.float32), "compressedDepth png", {"depth_max": 0.0}, "depth_max"),
    ],
)
def test_encode_rejects(pixels, fmt, kwargs, words):
    with pytest.raises(SensorDataError, match=words):
        numpy_to_compressed(make, pixels, fmt, **kwargs)
