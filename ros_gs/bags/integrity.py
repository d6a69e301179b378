"""Chunk CRCs of the MCAP files we write, and their check (``ros-gs bag info --check``).

Why our own pass: rosbags' MCAP writer leaves every chunk's ``uncompressed_crc`` at 0 ("not
computed"), so a flipped byte in a bag reads as valid data, and it has no option to compute
them.  The MCAP format gives the CRC a fixed 4-byte slot in each Chunk record, so once the
writer has closed the file we walk its records and fill the slots in place (offsets do not move).
Readers that check CRCs (rosbags' reader, the ``mcap`` tools, Foxglove) then catch corruption.

MCAP layout (https://mcap.dev/spec): 8-byte magic, then records ``opcode u8, length u64 LE,
content``; a Chunk (opcode 0x06) holds ``message_start_time u64, message_end_time u64,
uncompressed_size u64, uncompressed_crc u32, compression (u32 length + bytes), records_length
u64, records``; the Footer (0x02) ends the records.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ros_gs.errors import DatasetError

MAGIC = b"\x89MCAP0\r\n"
OP_FOOTER, OP_CHUNK = 0x02, 0x06
_CRC_AT = 24  # offset of uncompressed_crc in a chunk's content


@dataclass
class ChunkCheck:
    """What :func:`check_chunks` found in one MCAP file."""

    path: str
    chunks: int = 0
    without_crc: int = 0
    bad: list[str] = field(default_factory=list)  # one line per chunk whose CRC does not match

    @property
    def ok(self) -> bool:
        return not self.bad


def _chunks(data: bytes | bytearray, path: Path):
    """(offset of the chunk's content, compression, records) of every chunk record."""
    if data[:8] != MAGIC:
        raise DatasetError(f"{path} is not an MCAP file (no magic)")
    pos = 8
    while pos + 9 <= len(data):
        op, length = data[pos], struct.unpack_from("<Q", data, pos + 1)[0]
        start, end = pos + 9, pos + 9 + length
        if end > len(data):
            raise DatasetError(f"{path}: record at byte {pos} runs past the end of the file (truncated)")
        if op == OP_FOOTER:
            return
        if op == OP_CHUNK:
            (n,) = struct.unpack_from("<I", data, start + 28)
            compression = bytes(data[start + 32:start + 32 + n]).decode("ascii", "replace")
            rec_at = start + 32 + n
            (rec_len,) = struct.unpack_from("<Q", data, rec_at)
            yield start, compression, data[rec_at + 8:rec_at + 8 + rec_len]
        pos = end
    raise DatasetError(f"{path}: no footer (the file was not closed)")


def _uncompressed(compression: str, records: bytes) -> bytes:
    if compression == "":
        return bytes(records)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompress(bytes(records), max_output_size=1 << 34)
    raise DatasetError(f"chunk compression {compression!r} is not supported")


def fill_chunk_crcs(mcap: Path | str) -> int:
    """Write each chunk's CRC-32 of its uncompressed records into its slot; returns the count."""
    path = Path(mcap)
    data = path.read_bytes()
    slots = [(start + _CRC_AT, zlib.crc32(_uncompressed(compression, records))) for start, compression, records in _chunks(data, path)]
    # patched in place: a slot left 0 (stopped halfway) only means "no CRC", never a wrong one
    with path.open("r+b") as f:
        for at, crc in slots:
            f.seek(at)
            f.write(struct.pack("<I", crc))
    return len(slots)


def check_chunks(mcap: Path | str) -> ChunkCheck:
    """Every chunk's CRC against its records (0: none recorded, counted, not an error)."""
    path = Path(mcap)
    data = path.read_bytes()
    out = ChunkCheck(str(path))
    for k, (start, compression, records) in enumerate(_chunks(data, path)):
        out.chunks += 1
        (want,) = struct.unpack_from("<I", data, start + _CRC_AT)
        if want == 0:
            out.without_crc += 1
            continue
        got = zlib.crc32(_uncompressed(compression, records))
        if got != want:
            out.bad.append(f"chunk {k} at byte {start - 9}: CRC {got:08x}, recorded {want:08x}")
    return out
