"""pointcloud2: PointCloud2 <-> structured arrays, xyz, packed rgb."""

import struct
import time
from types import SimpleNamespace

import numpy as np
import pytest

from ros_gs.errors import SensorDataError
from ros_gs.runtime.typestore import MessageFactory
from ros_gs.sensors.pointcloud2 import (
    FLOAT32,
    FLOAT64,
    UINT8,
    UINT16,
    array_to_pointcloud2,
    pack_rgb,
    pointcloud2_to_array,
    unpack_rgb,
    xyz_from_cloud,
)
from ros_gs.sensors.stamps import stamp_to_ns

make = MessageFactory()
TYPE = "sensor_msgs/msg/PointCloud2"


def cdr(msg):
    return make.deserialize(make.serialize(msg, TYPE), TYPE)


def field(name, offset, datatype, count=1):
    return SimpleNamespace(name=name, offset=offset, datatype=datatype, count=count)


# x, y, z float32 @0/4/8, 4 pad bytes, range float64 @16, intensity uint16 @24, ring uint8 @26; point_step 32
FIELDS = [field("x", 0, FLOAT32), field("y", 4, FLOAT32), field("z", 8, FLOAT32), field("range", 16, FLOAT64),
          field("intensity", 24, UINT16), field("ring", 26, UINT8)]
POINTS = [(1.0, 2.0, 3.0, 3.7416573867739413, 100, 0), (-1.5, 0.25, 8.0, 8.154753215150045, 65535, 15),
          (float("nan"), 0.0, 0.0, 1e300, 7, 255)]


def packed_points(order="<"):
    out = b""
    for x, y, z, r, i, ring in POINTS:
        out += struct.pack(order + "fff4xdHB5x", x, y, z, r, i, ring)
    assert len(out) == 32 * len(POINTS)
    return out


def cloud_msg(data, fields=FIELDS, height=1, width=len(POINTS), point_step=32, row_step=None, big=False):
    return SimpleNamespace(height=height, width=width, fields=fields, is_bigendian=big, point_step=point_step,
                           row_step=row_step if row_step is not None else point_step * width, data=data)


@pytest.mark.parametrize("order", ["<", ">"])
def test_padding_and_float64_hand_computed(order):
    arr = pointcloud2_to_array(cloud_msg(packed_points(order), big=order == ">"))
    assert arr.shape == (3,)
    assert arr.dtype.names == ("x", "y", "z", "range", "intensity", "ring")
    assert arr.dtype["range"] == np.float64 and arr.dtype["intensity"] == np.uint16 and arr.dtype.isnative
    assert arr.dtype.itemsize == 4 * 3 + 8 + 2 + 1  # compact, no padding
    assert arr["x"][:2].tolist() == [1.0, -1.5] and np.isnan(arr["x"][2])
    assert arr["range"].tolist() == [3.7416573867739413, 8.154753215150045, 1e300]
    assert arr["intensity"].tolist() == [100, 65535, 7]
    assert arr["ring"].tolist() == [0, 15, 255]


def test_organised_cloud_with_row_padding():
    rows = [packed_points()[:64] + b"\xAB" * 8, packed_points()[32:96] + b"\xCD" * 8]
    msg = cloud_msg(b"".join(rows), height=2, width=2, row_step=72)
    flat = pointcloud2_to_array(msg)
    assert flat.shape == (4,)
    assert flat["intensity"].tolist() == [100, 65535, 65535, 7]
    grid = pointcloud2_to_array(msg, organized=True)
    assert grid.shape == (2, 2) and grid["ring"].tolist() == [[0, 15], [15, 255]]


def test_count_greater_than_one():
    data = struct.pack("<3f3fB3x", 1, 2, 3, 0.0, 0.6, 0.8, 9) * 2
    fields = [field("x", 0, FLOAT32), field("y", 4, FLOAT32), field("z", 8, FLOAT32), field("normal", 12, FLOAT32, 3),
              field("label", 24, UINT8)]
    arr = pointcloud2_to_array(cloud_msg(data, fields=fields, width=2, point_step=28))
    assert arr.dtype["normal"].shape == (3,)
    np.testing.assert_allclose(arr["normal"], [[0, 0.6, 0.8]] * 2, rtol=1e-6)
    back = pointcloud2_to_array(cdr(array_to_pointcloud2(make, arr)))
    assert [(f.name, f.count) for f in array_to_pointcloud2(make, arr).fields][3] == ("normal", 3)
    np.testing.assert_array_equal(back, arr)


def all_types_cloud(n=5):
    dt = np.dtype([("x", "f4"), ("y", "f4"), ("z", "f4"), ("i8", "i1"), ("u8", "u1"), ("i16", "i2"), ("u16", "u2"),
                   ("i32", "i4"), ("u32", "u4"), ("f64", "f8"), ("t", "f8"), ("ring", "u2")])
    arr = np.zeros(n, dt)
    rng = np.random.default_rng(4)
    for name in dt.names:
        info = np.iinfo(dt[name]) if dt[name].kind in "iu" else None
        arr[name] = rng.integers(info.min, info.max, n, endpoint=True) if info else rng.normal(size=n)
    arr["i8"][0], arr["u32"][0], arr["i32"][0] = -128, 2**32 - 1, -(2**31)
    return arr


def test_all_datatypes_round_trip_through_cdr():
    arr = all_types_cloud()
    msg = array_to_pointcloud2(make, arr, stamp_ns=77, frame_id="lidar")
    assert [f.datatype for f in msg.fields] == [7, 7, 7, 1, 2, 3, 4, 5, 6, 8, 8, 4]
    assert [f.offset for f in msg.fields] == [0, 4, 8, 12, 13, 14, 16, 18, 22, 26, 34, 42]
    assert msg.point_step == 44 and msg.row_step == 44 * 5 and (msg.height, msg.width) == (1, 5)
    back = cdr(msg)
    assert stamp_to_ns(back.header.stamp) == 77 and back.header.frame_id == "lidar"
    out = pointcloud2_to_array(back)
    assert out.dtype == arr.dtype
    np.testing.assert_array_equal(out, arr)


def test_organised_round_trip_and_big_endian_input_array():
    arr = all_types_cloud(6).reshape(2, 3)
    msg = array_to_pointcloud2(make, arr)
    assert (msg.height, msg.width, msg.row_step) == (2, 3, 3 * msg.point_step)
    np.testing.assert_array_equal(pointcloud2_to_array(cdr(msg), organized=True), arr)
    big = np.array([(1.5, 2.5, -3.0)], dtype=[("x", ">f4"), ("y", ">f4"), ("z", ">f4")])
    back = pointcloud2_to_array(array_to_pointcloud2(make, big))
    assert back.tolist() == [(1.5, 2.5, -3.0)]


def test_empty_cloud_is_empty_array_not_error():
    msg = cloud_msg(b"", width=0)
    arr = pointcloud2_to_array(msg)
    assert arr.shape == (0,) and arr.dtype.names == ("x", "y", "z", "range", "intensity", "ring")
    assert xyz_from_cloud(arr).shape == (0, 3)
    back = pointcloud2_to_array(cdr(array_to_pointcloud2(make, arr)))
    assert back.shape == (0,) and back.dtype == arr.dtype


def test_xyz_from_cloud_skips_non_finite():
    arr = np.zeros(4, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("rgb", "f4")])
    arr["x"] = [1, np.nan, 3, 4]
    arr["z"] = [1, 2, np.inf, 5]
    arr["rgb"] = np.nan  # NaN in other fields does not matter
    xyz = xyz_from_cloud(arr)
    assert xyz.dtype == np.float32 and xyz.tolist() == [[1, 0, 1], [4, 0, 5]]
    assert xyz_from_cloud(arr, skip_nans=False).shape == (4, 3)
    dbl = np.zeros(2, dtype=[("x", "f8"), ("y", "f4"), ("z", "f4")])
    assert xyz_from_cloud(dbl).dtype == np.float64


def test_xyz_needs_xyz_fields():
    with pytest.raises(SensorDataError, match="no field\\(s\\) \\['z'\\]"):
        xyz_from_cloud(np.zeros(2, dtype=[("x", "f4"), ("y", "f4")]))
    with pytest.raises(SensorDataError, match="no field"):
        xyz_from_cloud(np.zeros((2, 3)))


def test_is_dense_computed():
    arr = np.zeros(2, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    assert array_to_pointcloud2(make, arr).is_dense is True
    arr["y"][1] = np.nan
    assert array_to_pointcloud2(make, arr).is_dense is False


def test_pack_unpack_rgb():
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [18, 52, 86]], dtype=np.uint8)
    packed = pack_rgb(colors)
    assert packed.dtype == np.float32
    assert packed.view(np.uint32).tolist() == [0xFF0000, 0x00FF00, 0x0000FF, 0x123456]
    assert struct.unpack("<f", struct.pack("<I", 0x123456))[0] == packed[3]
    np.testing.assert_array_equal(unpack_rgb(packed), colors)
    np.testing.assert_array_equal(unpack_rgb(packed.view(np.uint32) | np.uint32(0xFF000000)), colors)  # rgba
    np.testing.assert_array_equal(unpack_rgb(packed.astype(np.float64)), colors)
    rand = np.random.default_rng(5).integers(0, 256, (100, 3), dtype=np.uint8)
    np.testing.assert_array_equal(unpack_rgb(pack_rgb(rand)), rand)
    assert pack_rgb([10, 20, 30]).shape == ()
    assert unpack_rgb(pack_rgb([10, 20, 30])).tolist() == [10, 20, 30]


def test_rgb_field_survives_a_message_round_trip():
    rand = np.random.default_rng(6).integers(0, 256, (50, 3), dtype=np.uint8)
    arr = np.zeros(50, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("rgb", "f4")])
    arr["rgb"] = pack_rgb(rand)
    out = pointcloud2_to_array(cdr(array_to_pointcloud2(make, arr)))
    np.testing.assert_array_equal(unpack_rgb(out["rgb"]), rand)


def test_pack_unpack_rejects():
    with pytest.raises(SensorDataError, match="\\(..., 3\\)"):
        pack_rgb(np.zeros((2, 4), np.uint8))
    with pytest.raises(SensorDataError, match="0..255"):
        pack_rgb(np.array([[256, 0, 0]]))
    with pytest.raises(SensorDataError, match="0..255"):
        pack_rgb(np.array([[0.5, 0, 0]]))
    with pytest.raises(SensorDataError, match="float32 or uint32"):
        unpack_rgb(np.zeros(3, np.uint8))


def test_100k_points_convert_in_milliseconds():
    n = 100_000
    arr = np.zeros(n, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("intensity", "f4"), ("t", "u4"), ("ring", "u2")])
    arr["x"] = np.arange(n)
    msg = array_to_pointcloud2(make, arr)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        out = pointcloud2_to_array(msg)
        xyz = xyz_from_cloud(out)
        best = min(best, time.perf_counter() - start)
    assert xyz.shape == (n, 3) and xyz[-1, 0] == n - 1
    assert best < 0.05, f"100k-point cloud took {best * 1000:.1f} ms"


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(data=b"\x00" * 95), "95 bytes, expected height\\*row_step = 1\\*96 = 96"),
        (dict(fields=FIELDS + [field("far", 30, FLOAT32)]),
         "'far' \\(offset 30, 1 x 4 bytes\\) ends at byte 34, beyond point_step 32"),
        (dict(fields=[field("x", 0, 9)]), "unknown datatype 9"),
        (dict(fields=[field("x", 0, FLOAT32), field("x", 4, FLOAT32)]), "'x' appears twice"),
        (dict(fields=[field("x", 0, FLOAT32, 0)]), "count 0"),
        (dict(fields=[field("", 0, FLOAT32)]), "empty"),
        (dict(fields=[]), "no fields"),
        (dict(row_step=64), "row_step 64 is less than width\\*point_step = 3\\*32 = 96"),
        (dict(point_step=0, row_step=0), "beyond point_step 0"),
        (dict(fields=[field("x", -4, FLOAT32)]), "offset"),
        (dict(data=[1.5, 2.5]), "byte"),
    ],
)
def test_pointcloud2_to_array_rejects(kwargs, words):
    fields = dict(data=packed_points())
    fields.update(kwargs)
    with pytest.raises(SensorDataError, match=words):
        pointcloud2_to_array(cloud_msg(**fields))


@pytest.mark.parametrize(
    "arr, words",
    [
        (np.zeros(3, dtype=[("x", "f4"), ("stamp", "i8")]), "'stamp'.*cannot be stored"),
        (np.zeros(3, dtype=[("x", "f4"), ("m", "f4", (2, 2))]), "'m'.*cannot be stored"),
        (np.zeros(3, dtype=[("x", "f4"), ("flag", "?")]), "'flag'.*cannot be stored"),
        (np.zeros((3, 3)), "structured"),
        (np.zeros((1, 2, 3), dtype=[("x", "f4")]), "1-D or 2-D"),
    ],
)
def test_array_to_pointcloud2_rejects(arr, words):
    with pytest.raises(SensorDataError, match=words):
        array_to_pointcloud2(make, arr)
