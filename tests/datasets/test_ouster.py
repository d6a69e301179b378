"""Tests for the plain-Python Ouster pcap reader against real captures.

The captures (ouster-sdk's public test pcaps) live outside the repo in ../shared/data/ouster;
without them these tests skip.  Geometry is checked independently of our own code through the
KITTI poses shipped with the 3-scan capture (estimated by Ouster's SLAM, not by us).
"""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from ros_gs.datasets.ouster import (
    GRAVITY,
    POINT_DTYPE,
    ImuPacket,
    LidarScan,
    OusterMetadata,
    OusterReadStats,
    destagger,
    read_ouster_pcap,
    xyz_lut,
)
from ros_gs.errors import DatasetError, InputError

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ouster"
pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"Ouster sample captures not found at {DATA} (shared data not mounted)"
)

LB_PCAP = DATA / "OS-1-128_v2.3.0_1024x10_lb_n3.pcap"
LB_JSON = DATA / "OS-1-128_v2.3.0_1024x10.json"
LB_POSES = DATA / "OS-1-128_v2.3.0_1024x10_lb_n3_poses_kitti.txt"

# (pcap, metadata, profile, beams, IMU packets)
SINGLE_SCANS = [
    ("OS-0-128-U1_v2.3.0_1024x10.pcap", "OS-0-128-U1_v2.3.0_1024x10.json", "RNG15_RFL8_NIR8", 128, 10),
    ("OS-1-32-G_v2.1.1_1024x10.pcap", "OS-1-32-G_v2.1.1_1024x10.json", "LEGACY", 32, 0),
    ("OS-1-64_1024x10_fw20.pcap", "OS-1-64_sensor_config_reduced.json", "LEGACY", 64, 11),
    ("OS-2-128-U1_v2.3.0_1024x10.pcap", "OS-2-128-U1_v2.3.0_1024x10.json", "RNG19_RFL8_SIG16_NIR16", 128, 10),
]


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _read(
    pcap: Path, meta: OusterMetadata | Path
) -> tuple[list[LidarScan], list[ImuPacket], OusterReadStats]:
    stats = OusterReadStats()
    items = list(read_ouster_pcap(pcap, meta, stats))
    scans = [i for i in items if isinstance(i, LidarScan)]
    imus = [i for i in items if isinstance(i, ImuPacket)]
    assert len(scans) + len(imus) == len(items)
    return scans, imus, stats


def _xyz(scan: LidarScan) -> np.ndarray:
    p = scan.points
    return np.stack([p["x"], p["y"], p["z"]], axis=1).astype(np.float64)


def _project(scan: LidarScan, meta: OusterMetadata, range_scale: float = 1.0) -> np.ndarray:
    """Re-project a scan's range image with (possibly perturbed) metadata, valid pixels only."""
    direction, offset = xyz_lut(meta)
    rows, cols = np.nonzero(scan.range_mm)
    r = scan.range_mm[rows, cols].astype(np.float64) * range_scale
    return r[:, None] * direction[rows, cols] + offset[rows, cols]


def _transform(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p @ m[:3, :3].T + m[:3, 3]


def _kitti_poses() -> np.ndarray:
    rows = np.loadtxt(LB_POSES).reshape(-1, 3, 4)
    poses = np.tile(np.eye(4), (len(rows), 1, 1))
    poses[:, :3, :] = rows
    return poses


class _PlaneRef:
    """Reference cloud with per-point PCA normals, for point-to-plane residuals."""

    def __init__(self, ref: np.ndarray, max_range: float = 30.0, k: int = 10) -> None:
        ref = ref[np.linalg.norm(ref, axis=1) < max_range]
        self.pts = ref
        self.tree = cKDTree(ref)
        dist, idx = self.tree.query(ref, k=k)
        nb = ref[idx] - ref[idx].mean(axis=1, keepdims=True)
        evals, evecs = np.linalg.eigh(np.einsum("nki,nkj->nij", nb, nb) / k)
        self.normal = evecs[:, :, 0]
        self.planar = (evals[:, 0] < 0.05 * evals[:, 1]) & (dist[:, -1] < 0.5)

    def residuals(self, query: np.ndarray, facing: np.ndarray | None = None) -> tuple[float, float]:
        """(median NN distance, median point-to-plane distance on planar matches).

        ``facing``: only use reference planes whose normal is within ~45 degrees of this
        direction.  Surfaces facing the direction of travel are where a wrong translation shows;
        the plain NN distance is dominated by the sampling spacing (0.35 deg ~ 6 cm at 10 m).
        """
        dist, idx = self.tree.query(query, k=1)
        ok = (dist < 0.5) & self.planar[idx]
        if facing is not None:
            ok &= np.abs(self.normal[idx] @ facing) > 0.7
        res = np.abs(np.einsum("ij,ij->i", query[ok] - self.pts[idx[ok]], self.normal[idx[ok]]))
        assert ok.sum() > 300, "too few matched points for a meaningful residual"
        return float(np.median(dist)), float(np.median(res))


# pcap synthesis, for format variants and damage the sample files do not contain


def _pcap_records(path: Path) -> list[tuple[int, int, bytes]]:
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1"  # the samples are little-endian microsecond pcaps
    out, pos = [], 24
    while pos < len(data):
        ts, frac, incl, _orig = struct.unpack("<IIII", data[pos : pos + 16])
        out.append((ts, frac, data[pos + 16 : pos + 16 + incl]))
        pos += 16 + incl
    return out


def _write_pcap(path: Path, records, endian: str = "<", nano: bool = False, link: int = 1) -> Path:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    with path.open("wb") as fh:
        fh.write(struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, link))
        for ts, frac, frame in records:
            fh.write(struct.pack(endian + "IIII", ts, frac * 1000 if nano else frac, len(frame), len(frame)))
            fh.write(frame)
    return path


def _to_sll(frame: bytes) -> bytes:
    """Ethernet frame -> Linux cooked (SLL) frame carrying the same IPv4 packet."""
    return struct.pack(">HHH8sH", 0, 1, 6, frame[6:12] + b"\0\0", 0x0800) + frame[14:]


def _fragment(frame: bytes, mtu: int = 1500) -> list[bytes]:
    """Split an Ethernet/IPv4 frame into IPv4 fragments (as a sender with this MTU would)."""
    eth, ip = frame[:14], frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    body = ip[ihl:]
    chunk = (mtu - ihl) // 8 * 8
    if len(body) <= chunk:
        return [frame]
    frags = []
    for off in range(0, len(body), chunk):
        part = body[off : off + chunk]
        more = off + chunk < len(body)
        hdr = bytearray(ip[:ihl])
        hdr[2:4] = struct.pack(">H", ihl + len(part))
        hdr[6:8] = struct.pack(">H", (0x2000 if more else 0) | (off // 8))
        frags.append(eth + bytes(hdr) + part)
    return frags


# ------------------------------------------------------------------------------------------
# fixtures: decode once per module
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lb_meta() -> OusterMetadata:
    return OusterMetadata.from_json(LB_JSON)


@pytest.fixture(scope="module")
def lb(lb_meta):
    return _read(LB_PCAP, lb_meta)


@pytest.fixture(scope="module")
def lb_ref(lb):
    scans, _, _ = lb
    return _PlaneRef(_xyz(scans[0]))


# ------------------------------------------------------------------------------------------
# the 3-scan low-bandwidth capture
# ------------------------------------------------------------------------------------------


def test_metadata_flat_v2(lb_meta):
    m = lb_meta
    assert (m.columns_per_frame, m.pixels_per_column, m.columns_per_packet) == (1024, 128, 16)
    assert m.udp_profile_lidar == "RNG15_RFL8_NIR8"
    assert (m.udp_port_lidar, m.udp_port_imu) == (7502, 7503)
    assert m.prod_line == "OS-1-128" and m.lidar_mode == "1024x10"
    assert m.lidar_origin_to_beam_origin_mm == pytest.approx(15.806)
    assert m.beam_to_lidar_transform[0, 3] == pytest.approx(15.806)
    assert m.lidar_to_sensor_transform[2, 3] == pytest.approx(36.18)
    assert m.lidar_to_sensor_transform[0, 0] == -1  # OS sensors: lidar frame is yawed 180 deg
    assert m.imu_to_sensor_transform[:3, 3] == pytest.approx([6.253, -11.775, 7.645])
    assert m.beam_altitude_angles.shape == m.beam_azimuth_angles.shape == (128,)
    assert m.lidar_packet_size("RNG15_RFL8_NIR8") == 8448


def test_lb_counts(lb):
    scans, imus, stats = lb
    assert len(scans) == 3 and len(imus) == 30
    assert stats.lidar_packets == 192 and stats.imu_packets == 30
    assert stats.skipped == 0 and stats.other_port == 0 and stats.init_id_mismatch == 0
    assert [s.frame_id for s in scans] == [1795, 1796, 1797]
    for s in scans:
        assert s.complete and s.column_valid.all()
        assert s.profile == "RNG15_RFL8_NIR8" and s.intensity_field == "reflectivity"
        assert s.range_mm.shape == (128, 1024) and s.range_mm.dtype == np.uint32
        assert 100_000 < len(s.points) < 115_000  # README: ~107k valid points
        assert len(s.points) == np.count_nonzero(s.range_mm)


def test_lb_scan_fields(lb):
    scans, _, _ = lb
    for s in scans:
        p = s.points
        assert p.dtype == POINT_DTYPE
        xyz = _xyz(s)
        assert np.isfinite(xyz).all()
        r = np.linalg.norm(xyz, axis=1)
        assert 0.3 < r.min() and r.max() < 300.0  # RNG15 saturates at 32767 * 8 mm = 262 m
        assert 5.0 < np.median(r) < 20.0  # a street scene
        # the 15-bit range is in 8 mm units: every range is a multiple of 8 mm
        assert np.all(s.range_mm % 8 == 0)
        assert p["t"].min() == 0.0 and 0.095 < p["t"].max() < 0.1  # one 10 Hz revolution
        assert p["ring"].min() == 0 and p["ring"].max() == 127
        assert 0 <= p["intensity"].min() and p["intensity"].max() <= 255
        ts = s.column_timestamps_ns.astype(np.int64)
        assert np.all(np.diff(ts) > 0)  # columns in measurement_id order are in time order
        assert np.median(np.diff(ts)) == pytest.approx(1e8 / 1024, rel=0.01)
        assert s.stamp_ns == ts[0] and s.end_ns == ts[-1]
    # scans 100 ms apart on both clocks; sensor clock is not Unix time, capture clock is
    assert np.diff([s.stamp_ns for s in scans]) == pytest.approx([1e8, 1e8], rel=0.01)
    assert np.diff([s.capture_ns for s in scans]) == pytest.approx([1e8, 1e8], rel=0.01)
    assert scans[0].capture_ns // 10**9 == 1650410295


def test_points_follow_range_image_and_lut(lb, lb_meta):
    scan = lb[0][0]
    np.testing.assert_allclose(_xyz(scan), _project(scan, lb_meta), atol=1e-5)
    rows, cols = np.nonzero(scan.range_mm)
    assert np.array_equal(scan.points["ring"], rows)
    # the destaggered image is a coherent picture: adjacent rows agree far better than with
    # the stagger left in (the stagger is 24/16/8/0 columns on this sensor)
    def row_step(img):
        a, b = img[:-1].astype(float), img[1:].astype(float)
        ok = (a > 0) & (b > 0)
        return np.median(np.abs(a - b)[ok])

    assert row_step(destagger(scan.range_mm, lb_meta)) < 0.5 * row_step(scan.range_mm)
    round_trip = destagger(destagger(scan.range_mm, lb_meta), lb_meta, inverse=True)
    np.testing.assert_array_equal(round_trip, scan.range_mm)


def test_imu(lb):
    _, imus, _ = lb
    stamps = np.array([i.stamp_ns for i in imus])
    assert np.diff(stamps) == pytest.approx(np.full(29, 1e7), rel=0.01)  # 100 Hz
    # IMU and lidar share the sensor clock (time since boot here, not Unix time)
    scans = lb[0]
    assert scans[0].stamp_ns < stamps[0] and stamps[-1] < scans[-1].end_ns + 50_000_000
    acc = np.array([i.linear_acceleration for i in imus])
    gyr = np.array([i.angular_velocity for i in imus])
    assert np.isfinite(acc).all() and np.isfinite(gyr).all()
    mean = acc.mean(axis=0)
    # The car is driving (~2.5 m/s by the poses) so |a| is not exactly g: the mean is
    # [4.05, 0.32, 9.81] m/s^2 here, i.e. gravity on +z (specific force, sensor upright) plus a
    # forward component from acceleration and/or road slope.
    assert 9.0 < np.linalg.norm(mean) < 11.5
    assert mean[2] == pytest.approx(GRAVITY, abs=0.5)
    cos = acc @ mean / (np.linalg.norm(acc, axis=1) * np.linalg.norm(mean))
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 15.0  # gravity direction is stable
    assert np.abs(gyr).max() < 0.5  # rad/s: no wild rotation (would be ~57x larger if left in deg/s)


def test_kitti_poses_align_scans_in_sensor_frame(lb, lb_meta, lb_ref):
    """Scans 1 and 2 moved by the shipped poses land on scan 0 (sensor frame, not lidar frame)."""
    scans, _, _ = lb
    poses = _kitti_poses()
    assert np.allclose(poses[0], np.eye(4))
    forward = poses[1][:3, 3] / np.linalg.norm(poses[1][:3, 3])
    assert forward[0] > 0.99  # driving along sensor +x

    results = {}
    for i in (1, 2):
        q = _xyz(scans[i])
        results[i] = {
            "posed": lb_ref.residuals(_transform(poses[i], q), forward),
            "unposed": lb_ref.residuals(q, forward),
        }
    # correct: NN a few cm (sampling-limited), point-to-plane on travel-facing surfaces ~2.5 cm
    for i in (1, 2):
        nn, p2pl = results[i]["posed"]
        assert nn < 0.07 and p2pl < 0.04
        # without the poses the 0.25 m / 0.5 m of travel shows on the facing surfaces
        assert results[i]["unposed"][1] > 3 * p2pl

    # Poses interpreted in the lidar frame (x/y flipped w.r.t. the sensor frame) do not fit:
    lidar_to_sensor = lb_meta.lidar_to_sensor_transform.copy()
    lidar_to_sensor[:3, 3] *= 1e-3
    to_lidar = np.linalg.inv(lidar_to_sensor)
    ref_lidar = _PlaneRef(_transform(to_lidar, _xyz(scans[0])))
    fwd_lidar = to_lidar[:3, :3] @ forward
    _, p2pl_lidar = ref_lidar.residuals(_transform(poses[2] @ to_lidar, _xyz(scans[2])), fwd_lidar)
    assert p2pl_lidar > 3 * results[2]["posed"][1]


def test_wrong_range_unit_breaks_pose_alignment(lb, lb_meta):
    """Decoding the 15-bit range as 4 mm units (instead of 8) no longer matches the metric poses."""
    scans, _, _ = lb
    poses = _kitti_poses()
    forward = poses[2][:3, 3] / np.linalg.norm(poses[2][:3, 3])
    good = _PlaneRef(_project(scans[0], lb_meta)).residuals(
        _transform(poses[2], _project(scans[2], lb_meta)), forward
    )
    half = _PlaneRef(_project(scans[0], lb_meta, 0.5)).residuals(
        _transform(poses[2], _project(scans[2], lb_meta, 0.5)), forward
    )
    assert half[1] > 3 * good[1]


def test_beam_azimuth_offsets_make_beam_groups_agree(lb, lb_meta):
    """Beams with +4 deg and -4 deg azimuth offsets see the same surfaces from columns ~24 apart.

    With the manual's sign (theta_a = -azimuth) the two groups coincide; flipping the sign
    rotates them 17 deg apart.  This checks the azimuth model without any poses.
    """
    scan = lb[0][0]
    rows, _ = np.nonzero(scan.range_mm)

    def group_gap(meta: OusterMetadata) -> float:
        p = _project(scan, meta)
        az = lb_meta.beam_azimuth_angles[rows]
        near = np.linalg.norm(p, axis=1) < 30
        a, b = p[(az > 2) & near], p[(az < -2) & near]
        d, _ = cKDTree(a).query(b, k=1)
        return float(np.median(d))

    good = group_gap(lb_meta)
    flipped = group_gap(dataclasses.replace(lb_meta, beam_azimuth_angles=-lb_meta.beam_azimuth_angles))
    assert good < 0.2  # groups interleave every 4th beam (1.4 deg apart), so ~12 cm at 10 m
    assert flipped > 3 * good


def test_ground_is_flat_and_level(lb, lb_meta):
    scan = lb[0][0]
    xyz = _xyz(scan)
    alt = lb_meta.beam_altitude_angles[scan.points["ring"]]
    horiz = np.hypot(xyz[:, 0], xyz[:, 1])
    pts = xyz[(alt < -8) & (horiz > 1) & (horiz < 15)]
    rng = np.random.default_rng(0)
    best = None
    for _ in range(200):  # RANSAC-lite: the largest 5 cm-consensus plane
        s = pts[rng.choice(len(pts), 3, replace=False)]
        n = np.cross(s[1] - s[0], s[2] - s[0])
        if np.linalg.norm(n) < 1e-9:
            continue
        n /= np.linalg.norm(n)
        inl = np.abs((pts - s[0]) @ n) < 0.05
        if best is None or inl.sum() > best.sum():
            best = inl
    q = pts[best]
    c = q.mean(axis=0)
    normal = np.linalg.eigh((q - c).T @ (q - c))[1][:, 0]
    normal *= np.sign(normal[2])
    rms = np.sqrt(np.mean(((q - c) @ normal) ** 2))
    assert best.mean() > 0.4  # the road dominates the low beams
    assert rms < 0.03
    assert normal[2] > 0.995  # level in the sensor frame (within ~6 deg)
    assert -c @ normal == pytest.approx(1.92, abs=0.2)  # sensor ~1.9 m above the road


# ------------------------------------------------------------------------------------------
# other sensor models / profiles
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pcap", "meta_json", "profile", "beams", "n_imu"), SINGLE_SCANS)
def test_single_scan_files(pcap, meta_json, profile, beams, n_imu):
    meta = OusterMetadata.from_json(DATA / meta_json)
    scans, imus, stats = _read(DATA / pcap, meta)
    assert len(scans) == 1 and len(imus) == n_imu
    assert stats.skipped == 0
    s = scans[0]
    assert s.profile == profile and s.complete
    assert s.range_mm.shape == (beams, 1024)
    xyz = _xyz(s)
    assert np.isfinite(xyz).all() and np.isfinite(s.points["intensity"]).all()
    r = np.linalg.norm(xyz, axis=1)
    assert len(s.points) > 0.2 * beams * 1024
    assert 0.15 < r.min() and np.percentile(r, 99) < 100.0 and r.max() < 400.0
    assert 0.0 <= s.points["t"].min() and s.points["t"].max() < 0.1
    for imu in imus:
        assert 9.0 < np.linalg.norm(imu.linear_acceleration) < 11.5


def test_legacy_metadata_defaults():
    """The reduced OS-1-64 JSON has only beam angles and mode: defaults fill the rest."""
    m = OusterMetadata.from_json(DATA / "OS-1-64_sensor_config_reduced.json")
    assert (m.columns_per_frame, m.pixels_per_column, m.columns_per_packet) == (1024, 64, 16)
    assert m.udp_profile_lidar is None
    assert m.profile_for_size(12608) == "LEGACY"  # 16 columns x (16 + 64 x 12 + 4) bytes
    assert m.lidar_origin_to_beam_origin_mm == pytest.approx(12.163)
    assert m.lidar_to_sensor_transform[2, 3] == pytest.approx(36.18)
    assert list(m.pixel_shift_by_row[:4]) == [18, 12, 6, 0]


def test_nested_metadata_schema_gives_same_points(lb, lb_meta, tmp_path):
    flat = json.loads(LB_JSON.read_text())
    fmt = flat["data_format"]
    nested = {
        "sensor_info": {"prod_line": flat["prod_line"], "initialization_id": flat["initialization_id"],
                        "prod_sn": flat["prod_sn"]},
        "beam_intrinsics": {
            "beam_altitude_angles": flat["beam_altitude_angles"],
            "beam_azimuth_angles": flat["beam_azimuth_angles"],
            "lidar_origin_to_beam_origin_mm": flat["lidar_origin_to_beam_origin_mm"],
            "beam_to_lidar_transform": [1, 0, 0, flat["lidar_origin_to_beam_origin_mm"], 0, 1, 0, 0,
                                        0, 0, 1, 0, 0, 0, 0, 1],
        },
        "lidar_intrinsics": {"lidar_to_sensor_transform": flat["lidar_to_sensor_transform"]},
        "imu_intrinsics": {"imu_to_sensor_transform": flat["imu_to_sensor_transform"]},
        "lidar_data_format": fmt,
        "config_params": {"lidar_mode": "1024x10", "udp_port_lidar": 7502, "udp_port_imu": 7503,
                          "udp_profile_lidar": fmt["udp_profile_lidar"]},
    }
    path = tmp_path / "nested.json"
    path.write_text(json.dumps(nested))
    m = OusterMetadata.from_json(path)
    assert m.initialization_id == lb_meta.initialization_id and m.prod_line == "OS-1-128"
    scans, _, stats = _read(LB_PCAP, m)
    assert stats.init_id_mismatch == 0
    np.testing.assert_array_equal(scans[0].points, lb[0][0].points)


# ------------------------------------------------------------------------------------------
# pcap variants and damage
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lb_records():
    return _pcap_records(LB_PCAP)


@pytest.mark.parametrize("variant", ["big_endian_ns", "sll", "fragmented"])
def test_pcap_variants_decode_identically(variant, lb, lb_meta, lb_records, tmp_path):
    recs = lb_records
    kw = {}
    if variant == "big_endian_ns":
        kw = {"endian": ">", "nano": True}
    elif variant == "sll":
        recs = [(t, f, _to_sll(fr)) for t, f, fr in recs]
        kw = {"link": 113}
    else:
        recs = [(t, f, frag) for t, f, fr in recs for frag in _fragment(fr)]
        assert len(recs) > 1000
    path = _write_pcap(tmp_path / f"{variant}.pcap", recs, **kw)
    scans, imus, stats = _read(path, lb_meta)
    assert len(scans) == 3 and len(imus) == 30 and stats.skipped == 0
    if variant == "fragmented":
        assert stats.fragments_reassembled == 192
    for a, b in zip(scans, lb[0]):
        np.testing.assert_array_equal(a.points, b.points)
        assert a.capture_ns == b.capture_ns and a.stamp_ns == b.stamp_ns


def test_partial_scan_and_garbage_packets(lb, lb_meta, lb_records, tmp_path):
    lidar_idx = [i for i, (_, _, fr) in enumerate(lb_records) if len(fr) == 8490]
    drop = lidar_idx[64 + 10]  # one packet from the middle of the second scan
    recs = [r for i, r in enumerate(lb_records) if i != drop]
    t, f, fr = lb_records[lidar_idx[5]]
    bad_lidar = fr[:-100]  # wrong-size lidar payload (UDP length fixed up below)
    bad_lidar = bad_lidar[:38] + struct.pack(">H", len(bad_lidar) - 34) + bad_lidar[40:]
    bad_lidar = bad_lidar[:16] + struct.pack(">H", len(bad_lidar) - 14) + bad_lidar[18:]
    recs.insert(7, (t, f, bad_lidar))
    recs.insert(9, (t, f, fr[:14] + b"\x45" + b"\xff" * 40))  # IPv4 header with bogus length
    recs.insert(11, (t, f, b"\xff" * 12 + b"\x08\x06" + b"\0" * 28))  # ARP
    path = _write_pcap(tmp_path / "damaged.pcap", recs)
    scans, imus, stats = _read(path, lb_meta)
    assert len(scans) == 3 and len(imus) == 30
    assert stats.bad_lidar_size == 1 and stats.non_ip == 1 and stats.bad_ip + stats.non_udp >= 1
    assert [s.complete for s in scans] == [True, False, True]
    assert stats.incomplete_scans == 1
    assert scans[1].column_valid.sum() == 1024 - 16
    missing = ~scans[1].column_valid
    assert not scans[1].range_mm[:, missing].any()
    np.testing.assert_array_equal(scans[0].points, lb[0][0].points)


def test_truncated_pcap(lb_meta, tmp_path):
    data = LB_PCAP.read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[: len(data) // 2 + 1234])  # cuts a record in half
    scans, _, stats = _read(path, lb_meta)
    assert stats.truncated_records == 1
    assert len(scans) == 2 and scans[0].complete and not scans[1].complete


def test_not_a_pcap(lb_meta, tmp_path):
    rnd = tmp_path / "random.pcap"
    rnd.write_bytes(np.random.default_rng(1).bytes(4096))
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    ng = tmp_path / "capture.pcapng"
    ng.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\0" * 60)
    for path in (rnd, empty, ng, tmp_path / "missing.pcap"):
        with pytest.raises(DatasetError):
            list(read_ouster_pcap(path, lb_meta))
    assert issubclass(DatasetError, InputError)


def test_garbage_record_length_stops_with_count(lb_meta, lb_records, tmp_path):
    path = _write_pcap(tmp_path / "x.pcap", lb_records[:80])
    with path.open("ab") as fh:
        fh.write(struct.pack("<IIII", 1, 2, 0x7FFFFFF0, 0x7FFFFFF0) + b"junk")
    scans, _, stats = _read(path, lb_meta)  # 69 lidar packets: one scan and 5 packets
    assert stats.corrupt_records == 1 and [s.complete for s in scans] == [True, False]


def test_wrong_metadata_is_counted_not_fatal(lb_meta):
    other = OusterMetadata.from_json(DATA / "OS-2-128-U1_v2.3.0_1024x10.json")  # RNG19 profile
    scans, imus, stats = _read(LB_PCAP, other)
    assert scans == [] and len(imus) == 30 and stats.bad_lidar_size == 192
    # OS-0 metadata: same profile and size, different sensor session -> decoded, but flagged
    os0 = OusterMetadata.from_json(DATA / "OS-0-128-U1_v2.3.0_1024x10.json")
    scans, _, stats = _read(LB_PCAP, os0)
    assert len(scans) == 3 and stats.init_id_mismatch == 192
    unsupported = dataclasses.replace(lb_meta, udp_profile_lidar="FUSA_RNG15_RFL8_NIR8_DUAL")
    with pytest.raises(DatasetError):
        list(read_ouster_pcap(LB_PCAP, unsupported))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("beam_altitude_angles"),
        lambda d: d.__setitem__("beam_azimuth_angles", d["beam_azimuth_angles"][:5]),
        lambda d: d.__setitem__("lidar_to_sensor_transform", [1, 2, 3]),
        lambda d: d.__setitem__("beam_altitude_angles", ["a"] * 128),
        lambda d: d["data_format"].__setitem__("pixels_per_column", 64),
        lambda d: d.__setitem__("data_format", 7),
    ],
)
def test_bad_metadata_raises(mutate, tmp_path):
    doc = json.loads(LB_JSON.read_text())
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError):
        OusterMetadata.from_json(path)


def test_unreadable_metadata(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{not json")
    with pytest.raises(DatasetError):
        OusterMetadata.from_json(path)
    with pytest.raises(DatasetError):
        OusterMetadata.from_json(tmp_path / "absent.json")
    path.write_text("[1, 2]")
    with pytest.raises(DatasetError):
        OusterMetadata.from_json(path)
