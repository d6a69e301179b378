"""image: sensor_msgs/Image <-> numpy, depth in metres."""

import array
from types import SimpleNamespace

import numpy as np
import pytest

from ros_gs.errors import SensorDataError
from ros_gs.runtime.typestore import MessageFactory
from ros_gs.sensors.image import ENCODINGS, depth_to_metres, image_to_numpy, numpy_to_image
from ros_gs.sensors.stamps import stamp_to_ns

make = MessageFactory()
TYPE = "sensor_msgs/msg/Image"


def cdr(msg):
    return make.deserialize(make.serialize(msg, TYPE), TYPE)


def raw_image(height, width, encoding, step, data, is_bigendian=0):
    return make(TYPE, height=height, width=width, encoding=encoding, step=step, is_bigendian=is_bigendian,
                data=np.frombuffer(bytes(data), dtype=np.uint8))


def padded_bgr8():
    """2x3 bgr8, step 12 (3 bytes of 0xEE padding per row); pixel (r, c) = B 10r+c, G 100+.., R 200+.."""
    data = []
    for r in range(2):
        for c in range(3):
            data += [10 * r + c, 100 + 10 * r + c, 200 + 10 * r + c]
        data += [0xEE] * 3
    return raw_image(2, 3, "bgr8", 12, data)


def test_padded_bgr8_hand_computed():
    out = image_to_numpy(padded_bgr8())
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [200, 100, 0]  # RGB
    assert out[1, 2].tolist() == [212, 112, 12]
    assert not (out == 0xEE).any()  # padding never leaks in


def test_padded_bgr8_keep_order():
    out = image_to_numpy(padded_bgr8(), rgb=False)
    assert out[1, 2].tolist() == [12, 112, 212]  # B, G, R as stored


def test_big_endian_mono16_hand_computed():
    data = [0x00, 0x01, 0x01, 0x00, 0x01, 0x02, 0xFF, 0xFE]
    big = image_to_numpy(raw_image(2, 2, "mono16", 4, data, is_bigendian=1))
    assert big.dtype == np.uint16 and big.dtype.isnative
    assert big.tolist() == [[1, 256], [258, 65534]]
    little = image_to_numpy(raw_image(2, 2, "mono16", 4, data, is_bigendian=0))
    assert little.tolist() == [[256, 1], [513, 65279]]


def test_big_endian_32fc1_with_padding():
    values = np.array([[1.5, -2.0], [np.inf, 0.25]], dtype=">f4")
    rows = [values[r].tobytes() + b"\x00" * 4 for r in range(2)]
    out = image_to_numpy(raw_image(2, 2, "32FC1", 12, b"".join(rows), is_bigendian=1))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, values.astype(np.float32))


def test_rgba_and_bgra_drop_alpha_or_keep_it():
    px = [1, 2, 3, 4]
    rgba = raw_image(1, 1, "rgba8", 4, px)
    bgra = raw_image(1, 1, "bgra8", 4, px)
    assert image_to_numpy(rgba).tolist() == [[[1, 2, 3]]]
    assert image_to_numpy(bgra).tolist() == [[[3, 2, 1]]]
    assert image_to_numpy(bgra, rgb=False).tolist() == [[[1, 2, 3, 4]]]


def test_output_is_writable_native_copy():
    msg = padded_bgr8()
    out = image_to_numpy(msg)
    assert out.flags.writeable and out.flags.c_contiguous
    out[:] = 0
    assert image_to_numpy(msg)[0, 0].tolist() == [200, 100, 0]


@pytest.mark.parametrize("container", [bytes, lambda b: array.array("B", b), bytearray, list])
def test_duck_typed_data_containers(container):
    raw = bytes([1, 2, 3, 4, 5, 6])
    msg = SimpleNamespace(height=2, width=3, encoding="mono8", step=3, is_bigendian=0, data=container(raw))
    assert image_to_numpy(msg).tolist() == [[1, 2, 3], [4, 5, 6]]


RNG = np.random.default_rng(0)
ROUND_TRIP = [
    ("rgb8", RNG.integers(0, 256, (3, 5, 3), dtype=np.uint8), True),
    ("bgr8", RNG.integers(0, 256, (3, 5, 3), dtype=np.uint8), True),
    ("rgba8", RNG.integers(0, 256, (3, 5, 4), dtype=np.uint8), False),
    ("bgra8", RNG.integers(0, 256, (3, 5, 4), dtype=np.uint8), False),
    ("bgr8", RNG.integers(0, 256, (3, 5, 3), dtype=np.uint8), False),
    ("rgb16", RNG.integers(0, 65536, (2, 4, 3), dtype=np.uint16), True),
    ("mono8", RNG.integers(0, 256, (4, 6), dtype=np.uint8), True),
    ("8UC1", RNG.integers(0, 256, (4, 6), dtype=np.uint8), True),
    ("8UC3", RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8), True),
    ("mono16", RNG.integers(0, 65536, (4, 6), dtype=np.uint16), True),
    ("16UC1", RNG.integers(0, 65536, (4, 6), dtype=np.uint16), True),
    ("16SC1", RNG.integers(-32768, 32768, (4, 6), dtype=np.int16), True),
    ("32FC1", RNG.normal(size=(4, 6)).astype(np.float32), True),
    ("64FC1", RNG.normal(size=(4, 6)), True),
]


@pytest.mark.parametrize("encoding, pixels, rgb", ROUND_TRIP, ids=[f"{e}-rgb{r}" for e, _, r in ROUND_TRIP])
def test_round_trip_through_cdr(encoding, pixels, rgb):
    msg = numpy_to_image(make, pixels, encoding, stamp_ns=5_000_000_123, frame_id="cam", rgb=rgb)
    enc = ENCODINGS[encoding]
    assert msg.step == pixels.shape[1] * enc.bytes_per_pixel
    assert msg.is_bigendian == 0 and msg.encoding == encoding
    back = cdr(msg)
    assert stamp_to_ns(back.header.stamp) == 5_000_000_123 and back.header.frame_id == "cam"
    out = image_to_numpy(back, rgb=rgb)
    assert out.dtype == pixels.dtype
    np.testing.assert_array_equal(out, pixels)


def test_numpy_to_image_bgr8_stores_bgr_bytes():
    msg = numpy_to_image(make, np.array([[[10, 20, 30]]], dtype=np.uint8), "bgr8")
    assert np.asarray(msg.data).tolist() == [30, 20, 10]


def test_numpy_to_image_rgb_into_rgba_sets_opaque_alpha():
    msg = numpy_to_image(make, np.array([[[10, 20, 30]]], dtype=np.uint8), "bgra8")
    assert np.asarray(msg.data).tolist() == [30, 20, 10, 255]


def test_numpy_to_image_safe_upcast_and_float_narrowing():
    msg = numpy_to_image(make, np.array([[1, 2]], dtype=np.uint8), "16UC1")
    assert image_to_numpy(msg).tolist() == [[1, 2]] and image_to_numpy(msg).dtype == np.uint16
    msg = numpy_to_image(make, np.array([[0.5, 1.25]]), "32FC1")
    assert image_to_numpy(msg).tolist() == [[0.5, 1.25]]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(encoding="yuv422"), "unsupported image encoding 'yuv422'"),
        (dict(data=bytes(23)), "23 bytes, expected height\\*step = 2\\*12 = 24"),
        (dict(step=8), "step 8 is less than width\\*bytes_per_pixel = 3\\*3 = 9"),
        (dict(height=0), "empty"),
        (dict(width=0), "empty"),
        (dict(height=-1), "height"),
    ],
)
def test_image_to_numpy_rejects(kwargs, words):
    fields = dict(height=2, width=3, encoding="bgr8", step=12, is_bigendian=0, data=bytes(24))
    fields.update(kwargs)
    with pytest.raises(SensorDataError, match=words):
        image_to_numpy(SimpleNamespace(**fields))


def test_image_data_not_bytes():
    msg = SimpleNamespace(height=1, width=1, encoding="mono8", step=1, is_bigendian=0, data=object())
    with pytest.raises(SensorDataError, match="byte"):
        image_to_numpy(msg)


@pytest.mark.parametrize(
    "pixels, encoding, words",
    [
        (np.zeros((2, 2), np.uint8), "nv12", "unsupported"),
        (np.zeros((2, 2, 3), np.float32), "rgb8", "cannot store a float32"),
        (np.zeros((2, 2), np.uint16), "mono8", "cannot store a uint16"),
        (np.zeros((2, 2, 4), np.uint8), "rgb8", "H x W x 3"),
        (np.zeros((2, 2, 3), np.uint8), "mono8", "1 channel"),
        (np.zeros((2, 2, 2), np.uint8), "bgra8", "x 4"),
        (np.zeros((0, 2), np.uint8), "mono8", "empty"),
        (np.zeros((1, 2, 2, 3), np.uint8), "rgb8", "H x W"),
    ],
)
def test_numpy_to_image_rejects(pixels, encoding, words):
    with pytest.raises(SensorDataError, match=words):
        numpy_to_image(make, pixels, encoding)


def test_depth_16uc1_to_metres_nan_invalid():
    raw = np.array([[0, 1000], [65535, 1500]], dtype=np.uint16)
    m = depth_to_metres(numpy_to_image(make, raw, "16UC1"))
    assert m.dtype == np.float32
    assert np.isnan(m[0, 0])
    np.testing.assert_allclose(m[[0, 1, 1], [1, 0, 1]], [1.0, 65.535, 1.5], rtol=1e-6)
    m2 = depth_to_metres(raw, max_raw_invalid=True, invalid_value=0.0, depth_scale=0.0001)
    np.testing.assert_allclose(m2, [[0.0, 0.1], [0.0, 0.15]], rtol=1e-6)


def test_depth_32fc1_invalid_values():
    raw = np.array([[np.nan, np.inf, -1.0, 0.0, 2.5]], dtype=np.float32)
    m = depth_to_metres(numpy_to_image(make, raw, "32FC1"))
    assert np.isnan(m[0, :4]).all() and m[0, 4] == 2.5
    assert depth_to_metres(raw, "32FC1", invalid_value=0.0).tolist() == [[0, 0, 0, 0, 2.5]]
    assert not np.isnan(raw[0, 2])  # input untouched


@pytest.mark.parametrize(
    "depth, encoding, kwargs, words",
    [
        (np.zeros((2, 2), np.int32), None, {}, "cannot infer"),
        (np.zeros((2, 2), np.uint8), "mono8", {}, "not a depth encoding"),
        (np.zeros((2, 2), np.float32), "16UC1", {}, "uint16"),
        (np.zeros((2, 2), np.uint16), "32FC1", {}, "float"),
        (np.zeros((2, 2, 1), np.uint16), None, {}, "H x W"),
        (np.zeros((2, 2), np.uint16), None, {"depth_scale": 0.0}, "depth_scale"),
        (np.zeros((2, 2), np.uint16), None, {"depth_scale": float("nan")}, "depth_scale"),
    ],
)
def test_depth_to_metres_rejects(depth, encoding, kwargs, words):
    with pytest.raises(SensorDataError, match=words):
        depth_to_metres(depth, encoding, **kwargs)


def test_depth_to_metres_encoding_mismatch_with_message():
    msg = numpy_to_image(make, np.ones((2, 2), np.uint16), "16UC1")
    with pytest.raises(SensorDataError, match="'32FC1' given for a '16UC1'"):
        depth_to_metres(msg, "32FC1")
