"""Gaussian-splat PLY files: the INRIA 3DGS layout (read/write) and SuperSplat's compressed PLY (read).

INRIA 3DGS PLY (what the reference implementation, gsplat exporters and most viewers use)
    element ``vertex`` with float properties ``x y z``, optional ``nx ny nz`` (always zero),
    ``f_dc_0..2`` (SH DC term per RGB channel), ``f_rest_0..M-1`` with M = 3*(K-1) laid out
    channel-major (``f_rest[c*(K-1) + j-1]`` is coefficient j of channel c), ``opacity``
    (logit), ``scale_0..2`` (log standard deviations), ``rot_0..3`` (quaternion **w, x, y, z**,
    not necessarily normalised).  The reader accepts any property order, any scalar type,
    extra properties, missing normals, ``red/green/blue`` instead of ``f_dc`` (a plain
    coloured point cloud), binary little/big endian and ascii.  ``write_ply`` writes binary
    little endian in INRIA order (with zero normals, as INRIA does), optionally followed by
    ``feat_0..F-1`` (features), ``object_id`` (int32 ids) and ``confidence``, which the reader
    maps back.

SuperSplat / PlayCanvas compressed PLY (``*.compressed.ply``), decoded here from the format's
definition (element ``chunk`` of per-256-splat bounds, element ``vertex`` of packed uint32,
optional element ``sh`` of uint8):
    * ``packed_position``: x 11 bits (31..21), y 10 bits (20..11), z 11 bits (10..0), each a
      unorm (v / (2^b - 1)) interpolated between the chunk's ``min_*`` and ``max_*``.
    * ``packed_scale``: same 11-10-11 layout between ``min_scale_*`` and ``max_scale_*``;
      the interpolated values are log scales.
    * ``packed_rotation``: bits 31..30 = index (in w, x, y, z order) of the largest-magnitude
      component, made positive by the encoder; bits 29..20, 19..10, 9..0 = the other three
      components in w, x, y, z order, each ``(v / 1023 - 0.5) * sqrt(2)``; the largest is
      ``sqrt(1 - a^2 - b^2 - c^2)``.
    * ``packed_color``: r 31..24, g 23..16, b 15..8, a 7..0 as 8-bit unorms.  r, g, b are the
      base colour ``0.5 + C0 * f_dc`` (interpolated between ``min_r..max_b`` when the chunk has
      them, SuperSplat >= 1.x, else taken directly); a is ``sigmoid(opacity)``.  Alpha is
      clamped to [0.5/255, 1 - 0.5/255] (half a quantisation step) before the logit, so a
      saturated alpha gives a finite logit of about +-6.2 whose gradient is not vanishing.
    * ``sh`` element: ``f_rest_i`` uint8 q, decoded ``(n - 0.5) * 8`` with n = 0 for q = 0,
      1 for q = 255, else (q + 0.5) / 256; same channel-major order as INRIA.

Hostile input (not a PLY, truncated header or body, counts that do not fit the file, unknown
types, missing properties, non-finite values, ...) raises :class:`ros_gs.errors.DatasetError`
with a message naming the file and the problem.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ros_gs.errors import ConfigError, DatasetError
from ros_gs.gaussians.model import C0, GaussianMap

_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_MAX_HEADER = 1 << 20          # a header longer than 1 MiB is not a splat file
_MAX_COUNT = 1 << 40
_CHUNK = 256                   # splats per chunk in the compressed format
_SH_COEFFS = {0: 0, 9: 1, 24: 2, 45: 3}  # number of f_rest -> SH degree


@dataclass
class _Element:
    name: str
    count: int
    props: list[tuple[str, str]] = field(default_factory=list)  # (name, numpy type code)


@dataclass
class PlyData:
    """A parsed PLY: format, comments, and per element a dict of property -> 1-D array."""

    format: str
    comments: list[str]
    elements: dict[str, dict[str, np.ndarray]]
    counts: dict[str, int]


def _fail(path: Any, msg: str) -> DatasetError:
    return DatasetError(f"{path}: {msg}")


def _parse_header(data: bytes, path: Any) -> tuple[str, list[str], list[_Element], int]:
    if not data.startswith(b"ply"):
        raise _fail(path, "not a PLY file (does not start with 'ply')")
    m = re.search(rb"(\r?\n)end_header[ \t]*\r?\n", data[: _MAX_HEADER])
    if m is None:
        if len(data) >= _MAX_HEADER:
            raise _fail(path, f"PLY header longer than {_MAX_HEADER} bytes or no 'end_header'")
        raise _fail(path, "truncated PLY header (no 'end_header' line)")
    body_offset = m.end()
    try:
        text = data[: m.start()].decode("ascii")
    except UnicodeDecodeError:
        raise _fail(path, "PLY header is not ASCII text") from None
    lines = text.replace("\r\n", "\n").split("\n")
    if lines[0].strip() != "ply":
        raise _fail(path, "not a PLY file (first line is not 'ply')")
    fmt = None
    comments: list[str] = []
    elements: list[_Element] = []
    for no, raw in enumerate(lines[1:], start=2):
        words = raw.split()
        if not words:
            continue
        kw = words[0]
        if kw in ("comment", "obj_info"):
            comments.append(raw[len(kw):].strip())
        elif kw == "format":
            if len(words) < 2 or words[1] not in ("ascii", "binary_little_endian", "binary_big_endian"):
                raise _fail(path, f"header line {no}: unsupported format {raw.strip()!r}")
            fmt = words[1]
        elif kw == "element":
            if len(words) != 3:
                raise _fail(path, f"header line {no}: malformed element line {raw.strip()!r}")
            try:
                count = int(words[2])
            except ValueError:
                raise _fail(path, f"header line {no}: element count {words[2]!r} is not an integer") from None
            if not 0 <= count <= _MAX_COUNT:
                raise _fail(path, f"header line {no}: absurd element count {count}")
            if any(e.name == words[1] for e in elements):
                raise _fail(path, f"header line {no}: duplicate element {words[1]!r}")
            elements.append(_Element(words[1], count))
        elif kw == "property":
            if not elements:
                raise _fail(path, f"header line {no}: property before any element")
            if len(words) >= 2 and words[1] == "list":
                raise _fail(path, f"header line {no}: list properties are not supported in splat files "
                                  f"({raw.strip()!r})")
            if len(words) != 3:
                raise _fail(path, f"header line {no}: malformed property line {raw.strip()!r}")
            if words[1] not in _TYPES:
                raise _fail(path, f"header line {no}: unknown property type {words[1]!r}")
            el = elements[-1]
            if any(p[0] == words[2] for p in el.props):
                raise _fail(path, f"header line {no}: duplicate property {words[2]!r} in element {el.name!r}")
            el.props.append((words[2], _TYPES[words[1]]))
        else:
            raise _fail(path, f"header line {no}: unrecognised keyword {kw!r}")
    if fmt is None:
        raise _fail(path, "PLY header has no 'format' line")
    return fmt, comments, elements, body_offset


def _read_binary(data: bytes, offset: int, elements: list[_Element], big: bool, path: Any) -> dict[str, dict[str, np.ndarray]]:
    end = "<" if not big else ">"
    avail = len(data) - offset
    need = 0
    dtypes = []
    for el in elements:
        if el.count and not el.props:
            raise _fail(path, f"element {el.name!r} has {el.count} rows but no properties")
        dt = np.dtype([(n, end + t) for n, t in el.props]) if el.props else np.dtype([])
        dtypes.append(dt)
        need += el.count * dt.itemsize
    if need > avail:
        desc = ", ".join(f"{e.count} {e.name}" for e in elements)
        raise _fail(path, f"truncated or corrupt: the header declares {desc} ({need} bytes of data) "
                          f"but only {avail} bytes follow the header")
    out: dict[str, dict[str, np.ndarray]] = {}
    pos = offset
    for el, dt in zip(elements, dtypes):
        arr = np.frombuffer(data, dtype=dt, count=el.count, offset=pos) if el.count else np.zeros(0, dt)
        pos += el.count * dt.itemsize
        out[el.name] = {n: arr[n] for n, _ in el.props}
    return out


def _read_ascii(data: bytes, offset: int, elements: list[_Element], path: Any) -> dict[str, dict[str, np.ndarray]]:
    tokens = data[offset:].split()
    need = sum(e.count * len(e.props) for e in elements)
    if need > len(tokens):
        raise _fail(path, f"truncated or corrupt ascii PLY: {need} values declared, {len(tokens)} present")
    out: dict[str, dict[str, np.ndarray]] = {}
    pos = 0
    for el in elements:
        k = len(el.props)
        chunk = tokens[pos: pos + el.count * k]
        pos += el.count * k
        try:
            vals = np.array([float(t) for t in chunk], dtype=np.float64).reshape(el.count, k)
        except ValueError as exc:
            raise _fail(path, f"ascii PLY element {el.name!r}: non-numeric value ({exc})") from None
        cols = {}
        for j, (name, t) in enumerate(el.props):
            col = vals[:, j]
            if t[0] in "iu":
                if not np.all(np.isfinite(col)) or not np.all(col == np.round(col)):
                    raise _fail(path, f"ascii PLY property {name!r} must hold integers")
                info = np.iinfo(np.dtype(t))
                if col.size and (col.min() < info.min or col.max() > info.max):
                    raise _fail(path, f"ascii PLY property {name!r} ({np.dtype(t).name}) has values outside "
                                      f"[{info.min}, {info.max}]: range [{col.min():g}, {col.max():g}]")
            cols[name] = col.astype(np.dtype(t))
        out[el.name] = cols
    return out


def read_ply_data(path: str | os.PathLike) -> PlyData:
    """Parse any PLY of scalar properties into arrays (no Gaussian interpretation)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise DatasetError(f"{p}: is a directory, not a PLY file") from None
    except OSError as exc:
        raise DatasetError(f"{p}: cannot read ({exc})") from None
    fmt, comments, elements, offset = _parse_header(data, p)
    if fmt == "ascii":
        arrays = _read_ascii(data, offset, elements, p)
    else:
        arrays = _read_binary(data, offset, elements, fmt == "binary_big_endian", p)
    return PlyData(fmt, comments, arrays, {e.name: e.count for e in elements})


def is_compressed(ply: PlyData) -> bool:
    """Whether a parsed PLY is the SuperSplat compressed layout."""
    return "chunk" in ply.elements and "packed_position" in ply.elements.get("vertex", {})


# ---------------------------------------------------------------------------- decoding
def _need(props: dict[str, np.ndarray], names: list[str], what: str, path: Any) -> list[np.ndarray]:
    missing = [n for n in names if n not in props]
    if missing:
        raise _fail(path, f"{what}: missing properties {missing}")
    return [props[n] for n in names]


def _finite(name: str, a: np.ndarray, path: Any) -> np.ndarray:
    bad = ~np.isfinite(a)
    if bad.any():
        rows = int(bad.reshape(a.shape[0], -1).any(axis=1).sum()) if a.ndim > 1 else int(bad.sum())
        raise _fail(path, f"{rows} of {a.shape[0]} Gaussians have non-finite {name} (NaN or inf)")
    return a


def _log_scales(a: np.ndarray, path: Any) -> np.ndarray:
    from ros_gs.gaussians.model import MAX_LOG_SCALE

    a = _finite("scale", a, path)
    big = (a > MAX_LOG_SCALE).any(axis=1)
    if big.any():
        raise _fail(path, f"{int(big.sum())} of {a.shape[0]} Gaussians have a log scale above {MAX_LOG_SCALE} "
                          "(exp overflows float32)")
    return a


def _sh_rest(props: dict[str, np.ndarray], n: int, path: Any, decode=None) -> tuple[int, np.ndarray | None]:
    """(degree, (n, K-1, 3) array or None) from f_rest_* properties (channel-major)."""
    rest = {}
    for name in props:
        mm = re.fullmatch(r"f_rest_(\d+)", name)
        if mm:
            rest[int(mm.group(1))] = name
    m = len(rest)
    if m == 0:
        return 0, None
    if m not in _SH_COEFFS or sorted(rest) != list(range(m)):
        raise _fail(path, f"f_rest properties must be f_rest_0..f_rest_{{8,23,44}} (got {m}: "
                          f"indices {sorted(rest)[:5]}...)")
    degree = _SH_COEFFS[m]
    per = m // 3
    cols = np.stack([props[rest[i]] for i in range(m)], axis=1)  # (n, m)
    cols = decode(cols) if decode is not None else cols.astype(np.float32)
    _finite("f_rest", cols, path)
    return degree, cols.reshape(n, 3, per).transpose(0, 2, 1)  # [channel][coeff] -> (n, coeff, channel)


def _extras(props: dict[str, np.ndarray], n: int, path: Any) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    feats = {}
    for name in props:
        mm = re.fullmatch(r"feat_(\d+)", name)
        if mm:
            feats[int(mm.group(1))] = name
    features = None
    if feats:
        if sorted(feats) != list(range(len(feats))):
            raise _fail(path, f"feat_* properties must be feat_0..feat_{len(feats) - 1}")
        features = _finite("features", np.stack([props[feats[i]] for i in range(len(feats))], 1).astype(np.float32), path)
    ids = None
    if "object_id" in props:
        raw = props["object_id"]
        if raw.dtype.kind == "f":
            if not np.all(np.isfinite(raw)) or not np.all(raw == np.round(raw)):
                raise _fail(path, "object_id must hold finite integers")
            if raw.size and (raw.min() < -(2**63) or raw.max() >= 2**63):
                raise _fail(path, "object_id outside the int64 range")
        ids = raw.astype(np.int64)
    conf = _finite("confidence", props["confidence"].astype(np.float32), path) if "confidence" in props else None
    return features, ids, conf


def _check_quats(q: np.ndarray, path: Any) -> np.ndarray:
    _finite("rotation", q, path)
    zero = np.linalg.norm(q.astype(np.float64), axis=1) < 1e-12
    if zero.any():
        raise _fail(path, f"{int(zero.sum())} Gaussians have a zero rotation quaternion")
    return q


def _decode_inria(ply: PlyData, path: Any) -> dict[str, Any]:
    if "vertex" not in ply.elements:
        raise _fail(path, "no 'vertex' element")
    v = ply.elements["vertex"]
    n = ply.counts["vertex"]
    f32 = np.float32
    means = _finite("position", np.stack(_need(v, ["x", "y", "z"], "3DGS PLY", path), 1).astype(f32), path)
    if all(f"f_dc_{i}" in v for i in range(3)):
        dc = np.stack([v[f"f_dc_{i}"] for i in range(3)], 1).astype(f32)
    elif all(c in v for c in ("red", "green", "blue")):
        rgb = np.stack([v[c] for c in ("red", "green", "blue")], 1).astype(np.float64)
        scale = 255.0 if v["red"].dtype.kind in "iu" else 1.0
        dc = ((rgb / scale - 0.5) / C0).astype(f32)
    else:
        raise _fail(path, "3DGS PLY: missing properties f_dc_0..2 (and no red/green/blue)")
    _finite("f_dc", dc, path)
    opac = _finite("opacity", _need(v, ["opacity"], "3DGS PLY", path)[0].astype(f32), path)
    log_scales = _log_scales(np.stack(_need(v, ["scale_0", "scale_1", "scale_2"], "3DGS PLY", path), 1).astype(f32), path)
    quats = _check_quats(np.stack(_need(v, ["rot_0", "rot_1", "rot_2", "rot_3"], "3DGS PLY", path), 1).astype(f32), path)
    degree, rest = _sh_rest(v, n, path)
    sh = np.zeros((n, (degree + 1) ** 2, 3), f32)
    sh[:, 0] = dc
    if rest is not None:
        sh[:, 1:] = rest
    features, ids, conf = _extras(v, n, path)
    return dict(means=means, quats=quats, log_scales=log_scales, opacity_logits=opac, sh=sh,
                sh_degree=degree, features=features, ids=ids, confidence=conf)


def _unorm(v: np.ndarray, shift: int, bits: int) -> np.ndarray:
    return ((v >> np.uint32(shift)) & np.uint32((1 << bits) - 1)).astype(np.float64) / ((1 << bits) - 1)


def _lerp(lo: np.ndarray, hi: np.ndarray, t: np.ndarray) -> np.ndarray:
    return lo * (1.0 - t) + hi * t


_OTHERS = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])


def _decode_compressed(ply: PlyData, path: Any) -> dict[str, Any]:
    ch = ply.elements["chunk"]
    v = ply.elements["vertex"]
    n = ply.counts["vertex"]
    nc = ply.counts["chunk"]
    if nc != -(-n // _CHUNK):
        raise _fail(path, f"compressed PLY: {nc} chunks for {n} splats (expected {-(-n // _CHUNK)} "
                          f"= ceil({n} / {_CHUNK}))")
    bounds = ["min_x", "min_y", "min_z", "max_x", "max_y", "max_z",
              "min_scale_x", "min_scale_y", "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z"]
    cb = np.stack(_need(ch, bounds, "compressed PLY chunk", path), 1).astype(np.float64)
    color_names = ["min_r", "min_g", "min_b", "max_r", "max_g", "max_b"]
    has_color = all(c in ch for c in color_names)
    if has_color:
        cc = np.stack([ch[c] for c in color_names], 1).astype(np.float64)
        cb = np.concatenate([cb, cc], 1)
    _finite("chunk bounds", cb, path)
    packed = _need(v, ["packed_position", "packed_rotation", "packed_scale", "packed_color"], "compressed PLY vertex", path)
    for name, a in zip(("packed_position", "packed_rotation", "packed_scale", "packed_color"), packed):
        if a.dtype.kind not in "iu" or a.dtype.itemsize != 4:
            raise _fail(path, f"compressed PLY: {name} must be uint32, got {a.dtype}")
    pp, pr, ps, pc = (a.astype(np.uint32) for a in packed)
    cdat = cb[np.arange(n) // _CHUNK]  # (n, 12 or 18)

    t = np.stack([_unorm(pp, 21, 11), _unorm(pp, 11, 10), _unorm(pp, 0, 11)], 1)
    means = _lerp(cdat[:, 0:3], cdat[:, 3:6], t)
    t = np.stack([_unorm(ps, 21, 11), _unorm(ps, 11, 10), _unorm(ps, 0, 11)], 1)
    log_scales = _lerp(cdat[:, 6:9], cdat[:, 9:12], t)

    abc = (np.stack([_unorm(pr, 20, 10), _unorm(pr, 10, 10), _unorm(pr, 0, 10)], 1) - 0.5) * math.sqrt(2.0)
    largest = np.sqrt(np.maximum(0.0, 1.0 - (abc * abc).sum(1)))
    which = (pr >> np.uint32(30)).astype(np.int64)
    quats = np.empty((n, 4), np.float64)
    rows = np.arange(n)
    quats[rows, which] = largest
    quats[rows[:, None], _OTHERS[which]] = abc

    rgb = np.stack([_unorm(pc, 24, 8), _unorm(pc, 16, 8), _unorm(pc, 8, 8)], 1)
    if has_color:
        rgb = _lerp(cdat[:, 12:15], cdat[:, 15:18], rgb)
    alpha = np.clip(_unorm(pc, 0, 8), 0.5 / 255, 1.0 - 0.5 / 255)
    opac = np.log(alpha / (1.0 - alpha))

    def sh_decode(q: np.ndarray) -> np.ndarray:
        if q.dtype != np.uint8:
            raise _fail(path, f"compressed PLY: sh coefficients must be uchar, got {q.dtype}")
        nrm = (q.astype(np.float64) + 0.5) / 256.0
        nrm[q == 0] = 0.0
        nrm[q == 255] = 1.0
        return ((nrm - 0.5) * 8.0).astype(np.float32)

    degree, rest = 0, None
    if "sh" in ply.elements:
        if ply.counts["sh"] != n:
            raise _fail(path, f"compressed PLY: sh element has {ply.counts['sh']} rows for {n} splats")
        degree, rest = _sh_rest(ply.elements["sh"], n, path, decode=sh_decode)
    sh = np.zeros((n, (degree + 1) ** 2, 3), np.float32)
    sh[:, 0] = (rgb - 0.5) / C0
    if rest is not None:
        sh[:, 1:] = rest
    f32 = np.float32
    return dict(means=_finite("position", means.astype(f32), path), quats=quats.astype(f32),
                log_scales=_log_scales(log_scales.astype(f32), path), opacity_logits=opac.astype(f32),
                sh=sh, sh_degree=degree, features=None, ids=None, confidence=None)


def read_ply(path: str | os.PathLike, device: str | torch.device = "cpu", **map_kwargs: Any) -> GaussianMap:
    """Read an INRIA 3DGS PLY or a SuperSplat compressed PLY (auto-detected) as a GaussianMap.

    ``map_kwargs`` go to the GaussianMap constructor (``max_gaussians``, ``policy``, ...).
    """
    ply = read_ply_data(path)
    d = _decode_compressed(ply, path) if is_compressed(ply) else _decode_inria(ply, path)
    n = d["means"].shape[0]
    if map_kwargs.get("max_gaussians") is not None and n > map_kwargs["max_gaussians"]:
        raise ConfigError(f"{path} holds {n} Gaussians, more than max_gaussians={map_kwargs['max_gaussians']}")
    return GaussianMap.from_tensors(
        torch.from_numpy(np.ascontiguousarray(d["means"])),
        torch.from_numpy(np.ascontiguousarray(d["quats"])),
        torch.from_numpy(np.ascontiguousarray(d["log_scales"])),
        torch.from_numpy(np.ascontiguousarray(d["opacity_logits"])),
        torch.from_numpy(np.ascontiguousarray(d["sh"])),
        sh_degree=d["sh_degree"],
        features=None if d["features"] is None else torch.from_numpy(d["features"]),
        ids=None if d["ids"] is None else torch.from_numpy(d["ids"]),
        confidence=1.0 if d["confidence"] is None else torch.from_numpy(d["confidence"]),
        device=device,
        **map_kwargs,
    )


def write_ply(gmap: GaussianMap, path: str | os.PathLike, *, extras: bool = False, normals: bool = True) -> Path:
    """Write the active Gaussians as a binary little-endian INRIA 3DGS PLY; returns the path.

    Quaternions are written as stored (w, x, y, z, raw), so write -> read is exact.  With
    ``extras``: ``feat_i`` (features), ``object_id`` (int32) and ``confidence`` follow (viewers
    that read by name ignore them; the fixed-layout SIBR viewer does not).
    """
    n = gmap.num_gaussians
    k = gmap.num_sh_coeffs
    with torch.no_grad():
        means = gmap.means.detach().cpu().numpy()
        quats = gmap.raw_quats.detach().cpu().numpy()
        log_scales = gmap.log_scales.detach().cpu().numpy()
        opac = gmap.opacity_logits.detach().cpu().numpy()
        sh = gmap.sh.detach().cpu().numpy()
    cols: list[tuple[str, str, np.ndarray]] = [(c, "f4", means[:, i]) for i, c in enumerate("xyz")]
    if normals:
        zeros = np.zeros(n, np.float32)
        cols += [(c, "f4", zeros) for c in ("nx", "ny", "nz")]
    cols += [(f"f_dc_{i}", "f4", sh[:, 0, i]) for i in range(3)]
    rest = sh[:, 1:, :].transpose(0, 2, 1).reshape(n, 3 * (k - 1))  # channel-major
    cols += [(f"f_rest_{i}", "f4", rest[:, i]) for i in range(3 * (k - 1))]
    cols.append(("opacity", "f4", opac))
    cols += [(f"scale_{i}", "f4", log_scales[:, i]) for i in range(3)]
    cols += [(f"rot_{i}", "f4", quats[:, i]) for i in range(4)]
    if extras:
        feats = gmap.features
        if feats is not None:
            f = feats.detach().cpu().numpy()
            cols += [(f"feat_{i}", "f4", f[:, i]) for i in range(f.shape[1])]
        ids = gmap.ids.cpu().numpy()
        if ids.size and (ids.min() < -(2**31) or ids.max() >= 2**31):
            raise ConfigError("ids outside the int32 range cannot be written to PLY")
        cols.append(("object_id", "i4", ids))
        cols.append(("confidence", "f4", gmap.confidence.detach().cpu().numpy()))
    ply_type = {"f4": "float", "i4": "int"}
    dt = np.dtype([(name, "<" + t) for name, t, _ in cols])
    rec = np.empty(n, dtype=dt)
    for name, _, a in cols:
        rec[name] = a
    header = "\n".join(
        ["ply", "format binary_little_endian 1.0", "comment written by ros_gs", f"element vertex {n}"]
        + [f"property {ply_type[t]} {name}" for name, t, _ in cols]
        + ["end_header", ""]
    ).encode("ascii")
    out = Path(path)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(header)
        fh.write(rec.tobytes())
    os.replace(tmp, out)
    return out
