"""PLY I/O on synthetic files: INRIA round trip, layout, compressed decoding, hostile files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ros_gs.errors import DatasetError
from ros_gs.gaussians import C0, GaussianMap, read_ply, read_ply_data, write_ply


def random_map(n: int, degree: int, fdim: int = 0, seed: int = 0) -> GaussianMap:
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    return GaussianMap.from_tensors(
        torch.randn(n, 3, generator=g) * 3,
        torch.randn(n, 4, generator=g),  # raw, unnormalised: must survive as is
        torch.randn(n, 3, generator=g) - 4,
        torch.randn(n, generator=g) * 3,
        torch.randn(n, k, 3, generator=g),
        features=torch.randn(n, fdim, generator=g) if fdim else None,
        ids=torch.randint(-1, 50, (n,), generator=g),
        confidence=torch.rand(n, generator=g),
    )


def write_raw(path: Path, header_lines: list[str], body: bytes = b"") -> Path:
    path.write_bytes(("\n".join(header_lines) + "\n").encode() + body)
    return path


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_inria_round_trip_is_exact(tmp_path, degree):
    m = random_map(257, degree, fdim=5)
    m.remove([3, 100])  # only the active set is written
    out = write_ply(m, tmp_path / "m.ply")
    r = read_ply(out)
    assert len(r) == 255 and r.sh_degree == degree and r.features is None  # features dropped
    for name in ("means", "raw_quats", "log_scales", "opacity_logits", "sh"):
        assert torch.equal(getattr(r, name), getattr(m, name)), name
    assert (r.ids == -1).all()
    names = list(read_ply_data(out).elements["vertex"])
    k = (degree + 1) ** 2
    assert names == (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
                     + [f"f_rest_{i}" for i in range(3 * (k - 1))]
                     + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    # extras keep features, ids and confidence
    r2 = read_ply(write_ply(m, tmp_path / "e.ply", extras=True))
    assert torch.equal(r2.features, m.features) and torch.equal(r2.ids, m.ids)
    assert torch.equal(r2.confidence, m.confidence) and torch.equal(r2.sh, m.sh)


def test_f_rest_is_channel_major(tmp_path):
    n, k = 2, 16
    names = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(45)] + [
        "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    vals = np.zeros((n, len(names)), np.float32)
    vals[:, 6:51] = np.arange(45)
    vals[:, names.index("rot_0")] = 1
    p = write_raw(tmp_path / "o.ply", ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
                  + [f"property float {c}" for c in names] + ["end_header"], vals.tobytes())
    sh = read_ply(p).sh
    for c in range(3):
        for j in range(1, k):
            assert sh[0, j, c] == c * (k - 1) + (j - 1)
    # write puts them back in the same order
    back = read_ply_data(write_ply(read_ply(p), tmp_path / "w.ply")).elements["vertex"]
    assert [float(back[f"f_rest_{i}"][0]) for i in range(45)] == list(range(45))


def test_any_order_types_extras_no_normals_big_endian_ascii(tmp_path):
    m = random_map(20, 1)
    q, ls, op, sh, mu = m.raw_quats.numpy(), m.log_scales.numpy(), m.opacity_logits.numpy(), m.sh.numpy(), m.means.numpy()
    rest = sh[:, 1:].transpose(0, 2, 1).reshape(20, 9)
    cols = {"rot_2": q[:, 2], "f_dc_1": sh[:, 0, 1], "junk": np.arange(20.0), "z": mu[:, 2], "rot_0": q[:, 0],
            "opacity": op, "x": mu[:, 0], "scale_1": ls[:, 1], "f_dc_0": sh[:, 0, 0], "rot_3": q[:, 3],
            "scale_0": ls[:, 0], "y": mu[:, 1], "f_dc_2": sh[:, 0, 2], "rot_1": q[:, 1], "scale_2": ls[:, 2]}
    cols.update({f"f_rest_{i}": rest[:, i] for i in range(9)})
    order = list(cols)[::-1]
    types = {name: ("double" if i % 3 == 0 else "float") for i, name in enumerate(order)}
    types["junk"] = "uchar"
    for endian, fmt in (("<", "binary_little_endian"), (">", "binary_big_endian")):
        code = {"double": "f8", "float": "f4", "uchar": "u1"}
        dt = np.dtype([(c, endian + code[types[c]]) for c in order])
        rec = np.empty(20, dt)
        for c in order:
            rec[c] = cols[c]
        p = write_raw(tmp_path / f"{fmt}.ply", ["ply", f"format {fmt} 1.0", "comment hi", "element vertex 20"]
                      + [f"property {types[c]} {c}" for c in order] + ["element face 0",
                      "property uchar dummy", "end_header"], rec.tobytes())
        r = read_ply(p)
        for name in ("means", "raw_quats", "log_scales", "opacity_logits", "sh"):
            assert torch.equal(getattr(r, name), getattr(m, name)), (fmt, name)
    # ascii (repr of float32 values round-trips exactly)
    lines = [" ".join(repr(float(cols[c][i])) if types[c] != "uchar" else str(int(cols[c][i])) for c in order)
             for i in range(20)]
    p = write_raw(tmp_path / "a.ply", ["ply", "format ascii 1.0", "element vertex 20"]
                  + [f"property {types[c]} {c}" for c in order] + ["end_header"] + lines)
    r = read_ply(p)
    for name in ("means", "raw_quats", "log_scales", "opacity_logits", "sh"):
        assert torch.equal(getattr(r, name), getattr(m, name)), ("ascii", name)
    empty = ["ply", "format ascii 1.0", "element vertex 0"] + [f"property float {c}" for c in (
        "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
        "rot_0", "rot_1", "rot_2", "rot_3")] + ["end_header"]
    assert len(read_ply(write_raw(tmp_path / "e.ply", empty))) == 0


def test_point_cloud_colours_become_dc(tmp_path):
    rec = np.zeros(1, np.dtype([(c, "<f4") for c in ("x", "y", "z", "opacity", "scale_0", "scale_1", "scale_2",
                                                       "rot_0", "rot_1", "rot_2", "rot_3")] + [(c, "u1") for c in ("red", "green", "blue")]))
    rec["rot_0"] = 1
    rec["red"], rec["green"], rec["blue"] = 255, 0, 128
    p = write_raw(tmp_path / "c.ply", ["ply", "format binary_little_endian 1.0", "element vertex 1"]
                  + [f"property {'uchar' if n in ('red', 'green', 'blue') else 'float'} {n}" for n in rec.dtype.names]
                  + ["end_header"], rec.tobytes())
    assert torch.allclose(read_ply(p).colors_dc, torch.tensor([[1.0, 0.0, 128 / 255]]), atol=1e-6)


# ------------------------------------------------------------------ compressed (own encoder)
def pack_unorm(v: np.ndarray, bits: int) -> np.ndarray:
    t = (1 << bits) - 1
    return np.clip(np.floor(v * t + 0.5), 0, t).astype(np.uint32)


def encode_compressed(path: Path, means, quats, log_scales, opac, dc, rest=None, chunk_colour=True) -> np.ndarray:
    """A from-the-spec SuperSplat encoder (chunks of 256); returns the chunk table."""
    n = len(means)
    nc = -(-n // 256)
    chunks = np.zeros((nc, 18 if chunk_colour else 12), np.float32)
    pos, rot, scl, col = (np.zeros(n, np.uint32) for _ in range(4))
    base = 0.5 + C0 * dc
    for c in range(nc):
        s = slice(c * 256, min(n, c * 256 + 256))

        def norm(x):
            lo, hi = x.min(0), x.max(0)
            return lo, hi, np.where(hi - lo < 1e-5, 0, (x - lo) / np.where(hi - lo < 1e-5, 1, hi - lo))

        plo, phi, pn = norm(means[s])
        slo, shi, sn = norm(log_scales[s])
        chunks[c, :12] = np.concatenate([plo, phi, slo, shi])
        if chunk_colour:
            clo, chi, cn = norm(base[s])
            chunks[c, 12:] = np.concatenate([clo, chi])
        else:
            cn = np.clip(base[s], 0, 1)
        pos[s] = pack_unorm(pn[:, 0], 11) << 21 | pack_unorm(pn[:, 1], 10) << 11 | pack_unorm(pn[:, 2], 11)
        scl[s] = pack_unorm(sn[:, 0], 11) << 21 | pack_unorm(sn[:, 1], 10) << 11 | pack_unorm(sn[:, 2], 11)
        alpha = 1 / (1 + np.exp(-opac[s]))
        col[s] = (pack_unorm(cn[:, 0], 8) << 24 | pack_unorm(cn[:, 1], 8) << 16 | pack_unorm(cn[:, 2], 8) << 8
                  | pack_unorm(alpha, 8))
        q = quats[s] / np.linalg.norm(quats[s], axis=1, keepdims=True)
        for i, qi in enumerate(q):
            big = int(np.argmax(np.abs(qi)))
            if qi[big] < 0:
                qi = -qi
            word = big
            for j in range(4):
                if j != big:
                    word = (word << 10) | int(pack_unorm(np.array(qi[j] * math.sqrt(2) * 0.5 + 0.5), 10))
            rot[s.start + i] = word
    names = ["min_x", "min_y", "min_z", "max_x", "max_y", "max_z", "min_scale_x", "min_scale_y", "min_scale_z",
             "max_scale_x", "max_scale_y", "max_scale_z"] + (["min_r", "min_g", "min_b", "max_r", "max_g", "max_b"]
                                                             if chunk_colour else [])
    header = ["ply", "format binary_little_endian 1.0", "comment Generated by a test", f"element chunk {nc}"]
    header += [f"property float {c}" for c in names]
    header += [f"element vertex {n}"] + [f"property uint packed_{c}" for c in ("position", "rotation", "scale", "color")]
    body = chunks.astype("<f4").tobytes() + np.stack([pos, rot, scl, col], 1).astype("<u4").tobytes()
    if rest is not None:
        header += [f"element sh {n}"] + [f"property uchar f_rest_{i}" for i in range(rest.shape[1])]
        body += np.clip(np.trunc((rest / 8 + 0.5) * 256), 0, 255).astype(np.uint8).tobytes()
    write_raw(path, header + ["end_header"], body)
    return chunks


def quat_angle_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rotation angle between quaternions (q ~ -q), stable for tiny angles."""
    a = a.double() / a.double().norm(dim=1, keepdim=True)
    b = b.double() / b.double().norm(dim=1, keepdim=True)
    b = b * torch.where((a * b).sum(1, keepdim=True) < 0, -1.0, 1.0)
    return torch.rad2deg(4 * torch.atan2((a - b).norm(dim=1), (a + b).norm(dim=1)))


@pytest.mark.parametrize("chunk_colour", [True, False])
def test_compressed_decodes_within_quantisation(tmp_path, chunk_colour):
    rng = np.random.default_rng(3)
    n = 600  # 3 chunks, the last partial
    means = (rng.normal(size=(n, 3)) * 2).astype(np.float32)
    quats = rng.normal(size=(n, 4)).astype(np.float32)
    log_scales = rng.uniform(-7, -1, size=(n, 3)).astype(np.float32)
    opac = rng.uniform(-5, 5, size=n).astype(np.float32)
    dc = rng.uniform(-1.5, 1.5, size=(n, 3)).astype(np.float32)
    rest = rng.uniform(-3, 3, size=(n, 24)).astype(np.float32)
    chunks = encode_compressed(tmp_path / "s.compressed.ply", means, quats, log_scales, opac, dc, rest, chunk_colour)
    m = read_ply(tmp_path / "s.compressed.ply")
    assert len(m) == n and m.sh_degree == 2
    ci = np.arange(n) // 256
    step = (chunks[ci, 3:6] - chunks[ci, 0:3]) / np.array([2047, 1023, 2047])
    assert (np.abs(m.means.numpy() - means) <= 0.5 * step + 1e-6).all()
    sstep = (chunks[ci, 9:12] - chunks[ci, 6:9]) / np.array([2047, 1023, 2047])
    assert (np.abs(m.log_scales.numpy() - log_scales) <= 0.5 * sstep + 1e-5).all()
    ang = quat_angle_deg(m.quats, torch.from_numpy(quats))
    assert float(ang.max()) < 0.25  # 10-bit components over [-1/sqrt2, 1/sqrt2]
    base = 0.5 + C0 * dc
    cstep = (chunks[ci, 15:18] - chunks[ci, 12:15]) / 255 if chunk_colour else np.full((n, 3), 1 / 255)
    assert (np.abs(m.colors_dc.numpy() - np.clip(base, 0, None)) <= 0.5 * cstep + 1e-6).all()
    assert (np.abs(m.opacities.numpy() - 1 / (1 + np.exp(-opac))) <= 0.5 / 255 + 1e-6).all()
    # sh: channel-major, 8-bit over [-4, 4]
    want = rest.reshape(n, 3, 8).transpose(0, 2, 1)
    assert (np.abs(m.sh[:, 1:].numpy() - want) <= 8 / 256 + 1e-6).all()


# ------------------------------------------------------------------ hostile files
GOOD = ["ply", "format binary_little_endian 1.0", "element vertex 2"] + [f"property float {c}" for c in (
    "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
    "rot_0", "rot_1", "rot_2", "rot_3")] + ["end_header"]


def good_body(n: int = 2) -> np.ndarray:
    v = np.zeros((n, 14), np.float32)
    v[:, 10] = 1
    return v


def hostile_cases(tmp: Path) -> list[tuple[str, Path, str]]:
    cases = []

    def add(name, data, match):
        p = tmp / f"{name}.ply"
        p.write_bytes(data)
        cases.append((name, p, match))

    hdr = ("\n".join(GOOD) + "\n").encode()
    body = good_body().tobytes()
    add("empty", b"", "not a PLY")
    add("not_ply", b"hello world\n" * 10, "not a PLY")
    add("no_end_header", hdr.replace(b"end_header\n", b""), "end_header")
    add("truncated_body", hdr + body[:-5], "truncated")
    add("absurd_count", hdr.replace(b"vertex 2", b"vertex 1000000000000") + body, "truncated or corrupt")
    add("huge_count", hdr.replace(b"vertex 2", b"vertex 99999999999999999999"), "absurd")
    add("negative_count", hdr.replace(b"vertex 2", b"vertex -3") + body, "absurd")
    add("text_count", hdr.replace(b"vertex 2", b"vertex two") + body, "not an integer")
    add("bad_type", hdr.replace(b"float x", b"float128 x") + body, "unknown property type")
    add("list_prop", hdr.replace(b"property float x\n", b"property list uchar int x\n") + body, "list")
    add("no_format", hdr.replace(b"format binary_little_endian 1.0\n", b"") + body, "format")
    add("bad_format", hdr.replace(b"binary_little_endian", b"binary_middle_endian") + body, "format")
    add("bad_keyword", hdr.replace(b"element vertex 2", b"element vertex 2\nbogus line") + body, "unrecognised")
    add("dup_prop", hdr.replace(b"property float y\n", b"property float x\n") + body, "duplicate")
    add("binary_header", b"ply\n\xff\xfe\nend_header\n", "ASCII")
    add("missing_opacity", hdr.replace(b"property float opacity\n", b"") + good_body()[:, :13].tobytes(), "opacity")
    v = good_body()
    v[1, 0] = np.nan
    add("nan_position", hdr + v.tobytes(), "non-finite position")
    v = good_body()
    v[0, 8] = np.inf
    add("inf_scale", hdr + v.tobytes(), "non-finite scale")
    v = good_body()
    v[1, 10] = 0
    add("zero_quat", hdr + v.tobytes(), "zero rotation")
    rest5 = hdr.replace(b"property float opacity\n", b"".join(b"property float f_rest_%d\n" % i for i in range(5))
                        + b"property float opacity\n")
    add("bad_f_rest", rest5 + np.zeros((2, 19), np.float32).tobytes(), "f_rest")
    v = good_body()
    v[0, 8] = 100.0  # exp(100) overflows float32
    add("huge_log_scale", hdr + v.tobytes(), "log scale above 80")
    ids = np.array([[np.nan], [1.0]], np.float32)
    add("nan_object_id", hdr.replace(b"end_header\n", b"property float object_id\nend_header\n")
        + np.concatenate([good_body(), ids], 1).tobytes(), "object_id must hold finite integers")
    ids = np.array([[1e30], [1.0]], np.float32)
    add("huge_object_id", hdr.replace(b"end_header\n", b"property float object_id\nend_header\n")
        + np.concatenate([good_body(), ids], 1).tobytes(), "object_id outside the int64 range")
    add("ascii_uchar_range", b"ply\nformat ascii 1.0\nelement vertex 2\nproperty uchar x\nend_header\n3 300\n",
        "outside")
    add("ascii_int_negative", b"ply\nformat ascii 1.0\nelement vertex 1\nproperty ushort x\nend_header\n-1\n",
        "outside")
    add("ascii_text", b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\nabc\n", "non-numeric")
    add("ascii_short", b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n1 2\n", "truncated")
    comp = ["ply", "format binary_little_endian 1.0", "element chunk 2"] + [f"property float {c}" for c in (
        "min_x", "min_y", "min_z", "max_x", "max_y", "max_z", "min_scale_x", "min_scale_y", "min_scale_z",
        "max_scale_x", "max_scale_y", "max_scale_z")] + ["element vertex 3"] + [
        f"property uint packed_{c}" for c in ("position", "rotation", "scale", "color")] + ["end_header"]
    cbody = np.zeros((2, 12), "<f4").tobytes() + np.zeros((3, 4), "<u4").tobytes()
    add("compressed_chunk_count", ("\n".join(comp) + "\n").encode() + cbody, "chunks for 3 splats")
    chunk = np.zeros((1, 12), "<f4")
    chunk[0, 4] = np.nan
    add("compressed_nan", ("\n".join(comp).replace("chunk 2", "chunk 1") + "\n").encode() + chunk.tobytes()
        + np.zeros((3, 4), "<u4").tobytes(), "non-finite chunk")
    add("compressed_truncated", ("\n".join(comp).replace("chunk 2", "chunk 1") + "\n").encode() + chunk.tobytes()[:20],
        "truncated")
    return cases


def test_hostile_files_raise_dataset_error(tmp_path):
    cases = hostile_cases(tmp_path)
    for name, path, match in cases:
        with pytest.raises(DatasetError, match=match) as info:
            read_ply(path)
        assert str(path) in str(info.value), name
    with pytest.raises(DatasetError, match="no such file"):
        read_ply(tmp_path / "missing.ply")
    with pytest.raises(DatasetError, match="directory"):
        read_ply(tmp_path)
    # the good header and body parse
    ok = tmp_path / "ok.ply"
    ok.write_bytes(("\n".join(GOOD) + "\n").encode() + good_body().tobytes())
    assert len(read_ply(ok)) == 2


def test_fuzzed_bytes_never_escape_as_other_errors(tmp_path):
    m = random_map(300, 1)
    rng = np.random.default_rng(0)
    encode_compressed(tmp_path / "c.ply", m.means.numpy(), m.raw_quats.numpy(), m.log_scales.numpy(),
                      m.opacity_logits.numpy(), m.sh[:, 0].numpy(), rng.uniform(-3, 3, (300, 9)))
    inria = write_ply(m, tmp_path / "m.ply").read_bytes()
    compressed = (tmp_path / "c.ply").read_bytes()
    p = tmp_path / "f.ply"
    for i in range(300):
        data = inria if i % 2 else compressed
        b = bytearray(data)
        op = (i // 2) % 3
        if op == 0:
            b = b[: int(rng.integers(0, len(b)))]
        elif op == 1:
            for pos in rng.integers(0, 600, size=4):  # corrupt the header region
                b[int(pos) % len(b)] = int(rng.integers(0, 256))
        else:
            for pos in rng.integers(0, len(b), size=20):
                b[int(pos)] = 0xFF  # 0xFFFFFFFF floats are NaN
        p.write_bytes(bytes(b))
        try:
            read_ply(p)
        except DatasetError:
            pass
