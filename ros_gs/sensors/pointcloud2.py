"""``sensor_msgs/PointCloud2`` <-> numpy structured arrays, for any field layout.

A cloud's bytes are viewed in place through a numpy dtype built from its ``fields``
(offsets, ``point_step`` as itemsize, ``row_step`` as the row stride, byte order from
``is_bigendian``) and then copied once into a compact native-endian structured array, so a
100k-point cloud converts in about a millisecond.  Field names are kept as published
(``x``, ``y``, ``z``, ``intensity``, ``rgb``, ``t``/``time``, ``ring``...); a field with
``count > 1`` becomes a sub-array field.

An empty cloud (``width * height == 0``) is legitimate (a lidar looking at the sky, a
filter that removed everything) and gives an empty array with the cloud's fields, not
an error.  Colour follows the PCL/ROS convention: ``rgb`` is a float32 whose bits are the
uint32 ``0x00RRGGBB`` (see :func:`pack_rgb`, :func:`unpack_rgb`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ros_gs.errors import SensorDataError
from ros_gs.sensors._util import as_int, byte_array
from ros_gs.sensors.stamps import Make, make_header

#: sensor_msgs/PointField datatype codes.
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)
DATATYPES: dict[int, np.dtype] = {
    INT8: np.dtype("i1"),
    UINT8: np.dtype("u1"),
    INT16: np.dtype("i2"),
    UINT16: np.dtype("u2"),
    INT32: np.dtype("i4"),
    UINT32: np.dtype("u4"),
    FLOAT32: np.dtype("f4"),
    FLOAT64: np.dtype("f8"),
}
_CODES = {(dt.kind, dt.itemsize): code for code, dt in DATATYPES.items()}


def _field_dtype(base: np.dtype, count: int) -> np.dtype:
    return base if count == 1 else np.dtype((base, (count,)))


def cloud_dtypes(fields: Any, point_step: int, is_bigendian: bool) -> tuple[np.dtype, np.dtype]:
    """(dtype viewing one stored point, compact native dtype) for a PointField list."""
    names: list[str] = []
    stored: list[np.dtype] = []
    compact: list[tuple[str, np.dtype]] = []
    offsets: list[int] = []
    for f in fields:
        name = f.name
        if not isinstance(name, str) or not name:
            raise SensorDataError(f"PointCloud2 field has an empty or non-string name: {name!r}")
        if name in names:
            raise SensorDataError(f"PointCloud2 field {name!r} appears twice")
        offset = as_int(f.offset, f"PointCloud2 field {name!r} offset")
        datatype = as_int(f.datatype, f"PointCloud2 field {name!r} datatype")
        count = as_int(f.count, f"PointCloud2 field {name!r} count")
        if datatype not in DATATYPES:
            raise SensorDataError(f"PointCloud2 field {name!r} has unknown datatype {datatype} (expected 1..8)")
        if count == 0:
            raise SensorDataError(f"PointCloud2 field {name!r} has count 0")
        base = DATATYPES[datatype]
        end = offset + base.itemsize * count
        if end > point_step:
            raise SensorDataError(
                f"PointCloud2 field {name!r} (offset {offset}, {count} x {base.itemsize} bytes) ends at byte "
                f"{end}, beyond point_step {point_step}"
            )
        names.append(name)
        offsets.append(offset)
        stored.append(_field_dtype(base.newbyteorder(">" if is_bigendian else "<"), count))
        compact.append((name, _field_dtype(base, count)))
    try:
        view = np.dtype({"names": names, "formats": stored, "offsets": offsets, "itemsize": point_step})
    except ValueError as err:  # e.g. overlapping fields numpy refuses
        raise SensorDataError(f"PointCloud2 fields cannot be laid out: {err}") from None
    return view, np.dtype(compact)


def pointcloud2_to_array(msg: Any, organized: bool = False) -> np.ndarray:
    """Points of a ``sensor_msgs/PointCloud2`` as a structured array (one field per PointField).

    Shape ``(height * width,)`` (rows concatenated), or ``(height, width)`` with
    ``organized=True``.  Native byte order, no padding, owns its memory.  Points are not
    filtered (NaN points are kept; see :func:`xyz_from_cloud`).
    """
    height = as_int(msg.height, "PointCloud2 height")
    width = as_int(msg.width, "PointCloud2 width")
    point_step = as_int(msg.point_step, "PointCloud2 point_step")
    row_step = as_int(msg.row_step, "PointCloud2 row_step")
    view, compact = cloud_dtypes(msg.fields, point_step, bool(msg.is_bigendian))
    shape = (height, width) if organized else (height * width,)
    if height * width == 0:
        return np.zeros(shape, dtype=compact)
    if not compact.names:
        raise SensorDataError(f"PointCloud2 has {height * width} points but no fields")
    if row_step < width * point_step:
        raise SensorDataError(
            f"PointCloud2 row_step {row_step} is less than width*point_step = {width}*{point_step} = "
            f"{width * point_step}"
        )
    data = byte_array(msg.data, "PointCloud2 data")
    need = height * row_step
    if data.size < need:
        raise SensorDataError(
            f"PointCloud2 data has {data.size} bytes, expected height*row_step = {height}*{row_step} = {need} "
            f"(width*height*point_step = {width * height * point_step} without row padding)"
        )
    points = np.ndarray((height, width), dtype=view, buffer=data, strides=(row_step, point_step))
    return points.astype(compact).reshape(shape)


def xyz_from_cloud(cloud: np.ndarray, skip_nans: bool = True) -> np.ndarray:
    """``N x 3`` positions from a structured cloud array (fields ``x``, ``y``, ``z``).

    float32 if all three fields are float32, else float64.  With ``skip_nans`` points with
    any non-finite coordinate (NaN: "no return"; inf) are dropped, so N may be smaller
    than the cloud; otherwise every point is kept in order.
    """
    cloud = np.asarray(cloud)
    names = cloud.dtype.names or ()
    missing = [n for n in "xyz" if n not in names]
    if missing:
        raise SensorDataError(f"cloud has no field(s) {missing}; fields are {list(names)}")
    types = [cloud.dtype.fields[n][0] for n in "xyz"]
    if any(t.subdtype is not None or t.kind not in "iuf" for t in types):
        raise SensorDataError(f"cloud x/y/z must be scalar numbers, got {types}")
    dtype = np.float32 if all(t == np.float32 for t in types) else np.float64
    flat = cloud.reshape(-1)
    xyz = np.empty((flat.shape[0], 3), dtype=dtype)
    for i, n in enumerate("xyz"):
        xyz[:, i] = flat[n]
    if skip_nans:
        xyz = xyz[np.isfinite(xyz).all(axis=1)]
    return xyz


def array_to_pointcloud2(
    make: Make, cloud: np.ndarray, stamp_ns: int = 0, frame_id: str = "", is_dense: bool | None = None
) -> Any:
    """A ``sensor_msgs/PointCloud2`` holding a structured array.

    1-D arrays give an unorganised cloud (height 1), 2-D arrays an organised one.  Fields
    are packed little-endian in the array's field order (``point_step`` = packed size).
    ``is_dense`` defaults to "x, y, z all finite" (True when there are no x/y/z fields).
    """
    cloud = np.asarray(cloud)
    if not cloud.dtype.names:
        raise SensorDataError(f"array_to_pointcloud2 needs a structured array, got dtype {cloud.dtype}")
    if cloud.ndim == 1:
        height, width = 1, cloud.shape[0]
    elif cloud.ndim == 2:
        height, width = cloud.shape
    else:
        raise SensorDataError(f"cloud array must be 1-D or 2-D (organised), got shape {cloud.shape}")
    packed_fields: list[tuple[str, np.dtype]] = []
    codes: list[tuple[int, int]] = []
    for name in cloud.dtype.names:
        fdt = cloud.dtype.fields[name][0]
        base, shape = fdt.subdtype if fdt.subdtype is not None else (fdt, ())
        count = int(np.prod(shape)) if shape else 1
        code = _CODES.get((base.kind, base.itemsize))
        if code is None or len(shape) > 1 or count == 0:
            raise SensorDataError(f"field {name!r} of type {fdt} cannot be stored in a PointField")
        packed_fields.append((name, _field_dtype(base.newbyteorder("<"), count)))
        codes.append((code, count))
    packed = np.dtype(packed_fields)
    points = cloud.reshape(-1).astype(packed)
    fields = [
        make("sensor_msgs/msg/PointField", name=name, offset=packed.fields[name][1], datatype=code, count=count)
        for name, (code, count) in zip(packed.names, codes)
    ]
    if is_dense is None:
        is_dense = True
        if all(n in packed.names for n in "xyz") and points.size:
            is_dense = bool(np.isfinite(xyz_from_cloud(points, skip_nans=False)).all())
    return make(
        "sensor_msgs/msg/PointCloud2",
        header=make_header(make, stamp_ns, frame_id),
        height=height,
        width=width,
        fields=fields,
        is_bigendian=False,
        point_step=packed.itemsize,
        row_step=packed.itemsize * width,
        data=points.view(np.uint8).reshape(-1),
        is_dense=bool(is_dense),
    )


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """``(..., 3)`` r, g, b in 0..255 -> ``(...)`` float32 with bits ``0x00RRGGBB`` (PCL ``rgb``).

    Alpha (the top byte) is 0, as in the ROS point_cloud2 examples: 0xFF there would make
    many colours NaN bit patterns.
    """
    colors = np.asarray(colors)
    if colors.ndim < 1 or colors.shape[-1] != 3:
        raise SensorDataError(f"pack_rgb needs (..., 3) colours, got shape {colors.shape}")
    if colors.dtype != np.uint8:
        if colors.dtype.kind not in "iu" or (colors.size and (colors.min() < 0 or colors.max() > 255)):
            raise SensorDataError(f"pack_rgb needs integer colours in 0..255, got {colors.dtype}")
        colors = colors.astype(np.uint8)
    c = colors.astype(np.uint32)
    bits = (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]
    return np.array(bits, dtype=np.uint32, order="C").view(np.float32)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """PCL ``rgb``/``rgba`` values (float32 bit patterns or uint32) -> ``(..., 3)`` uint8 r, g, b."""
    packed = np.asarray(packed)
    if packed.dtype == np.float64:  # float32 -> float64 -> float32 is exact
        packed = packed.astype(np.float32)
    if packed.dtype == np.float32:
        bits = np.array(packed, order="C").view(np.uint32)
    elif packed.dtype.kind in "iu" and packed.dtype.itemsize == 4:
        bits = packed.astype(np.uint32)
    else:
        raise SensorDataError(f"unpack_rgb needs float32 or uint32 packed colours, got {packed.dtype}")
    out = np.empty(bits.shape + (3,), dtype=np.uint8)
    out[..., 0] = (bits >> 16) & 0xFF
    out[..., 1] = (bits >> 8) & 0xFF
    out[..., 2] = bits & 0xFF
    return out


def scan_arrays(msg: Any, topic: str, max_points: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A LiDAR PointCloud2 as (N, 3) float64 points, per-point time ``t`` (seconds after the
    stamp, when the cloud has a ``t`` field) and ``intensity`` (when it has one), non-finite
    points dropped.  Raises SensorDataError (a counted skip in nodes) for clouds over
    ``max_points`` or without x, y, z."""
    if int(msg.width) * int(msg.height) > max_points:
        raise SensorDataError(f"{topic}: {msg.width * msg.height} points exceed max_points {max_points}")
    cloud = pointcloud2_to_array(msg)
    names = cloud.dtype.names or ()
    if not {"x", "y", "z"} <= set(names):
        raise SensorDataError(f"{topic}: PointCloud2 without x, y, z fields ({names})")
    pts = xyz_from_cloud(cloud, skip_nans=False).astype(np.float64)  # checks x, y, z are scalar numbers
    t = None
    if "t" in names:
        kind = cloud.dtype.fields["t"][0]
        if kind.subdtype is not None or kind.kind not in "iuf":
            raise SensorDataError(f"{topic}: the per-point time t must be one number per point, got {kind}")
        t = cloud["t"].astype(np.float64).reshape(-1)
    finite = np.isfinite(pts).all(axis=1) & (np.isfinite(t) if t is not None else True)
    intensity = None
    if "intensity" in names and cloud["intensity"].ndim == 1:
        intensity = cloud["intensity"].astype(np.float64)[finite]
    return pts[finite], (t[finite] if t is not None else None), intensity
