"""Bounded memory on long sequences: keyframe images and far-away Gaussians kept on disk.

Two stores, both plain ``.npy``/``.npz`` files in one folder (a temporary folder owned by the
store unless one is given):

- :class:`FrameStore` keeps the images of the ``resident`` most recently used keyframes in
  memory and the others on disk, read back on use (~1 ms for 320x240).  Keyframe images are
  what grows without bound on a long run (0.5 MB per keyframe at 320x240, about one keyframe
  per 10 frames), while the optimiser, the pose graph and relocalisation touch only a few of
  them per frame.
- :class:`GaussianStore` holds the Gaussians that keyframes far from the camera seeded,
  expressed in their keyframe's camera frame.  A keyframe pose corrected by the pose graph while
  its Gaussians are on disk therefore takes them along when they come back, exactly as it moves
  the resident ones.

Why our own: the map is a torch buffer with free slots (``GaussianMap``), and what leaves and
comes back is keyed by keyframe; a generic cache (joblib, diskcache) would add a dependency for
two dictionaries of arrays.  Put ``offload_dir`` (or ``TMPDIR``) on a disk, not a tmpfs.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ros_gs.errors import ConfigError
from ros_gs.mapping.frames import RgbdFrame


def check_writable_dir(directory: str | Path, what: str) -> Path:
    """Create ``directory`` if needed; a ConfigError (not a failure later, mid-run) when it
    cannot be created or written."""
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{what} {str(path)!r} cannot be created: {err}") from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {str(path)!r} is not writable")
    return path


class _Folder:
    """A temporary folder for spilled files, inside ``directory`` (the system's temporary folder
    when None), unique to its store (two mappers may share ``directory``) and removed with it."""

    def __init__(self, directory: str | Path | None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="ros_gs_offload_", dir=directory)
        self.path = Path(self._tmp.name)


class FrameStore:
    """Keyframe images by key; at most ``resident`` of them in memory (least recently used to disk).

    ``resident`` 0 keeps every image in memory (nothing is written).  Images do not change, so
    one spilled is written once and its file kept: reading it back and spilling it again costs
    no second write.  Files are written before the image leaves memory, so a failed write (disk
    full) raises with nothing lost."""

    def __init__(self, resident: int = 0, directory: str | Path | None = None) -> None:
        self.resident = int(resident)
        self._directory = directory
        self._folder: _Folder | None = None
        self._mem: OrderedDict[int, RgbdFrame] = OrderedDict()
        self._disk: dict[int, tuple[int, np.ndarray, tuple]] = {}  # key with a file -> (stamp, K, colour meta)
        self.reads = 0
        self.writes = 0

    def __len__(self) -> int:
        return len(self._mem.keys() | self._disk.keys())

    def __contains__(self, key: int) -> bool:
        return key in self._mem or key in self._disk

    @property
    def num_resident(self) -> int:
        return len(self._mem)

    @property
    def resident_bytes(self) -> int:
        """Bytes of the images held in memory."""
        return sum(f.rgb.nbytes + f.depth.nbytes for f in self._mem.values())

    def _file(self, key: int) -> Path:
        if self._folder is None:
            self._folder = _Folder(self._directory)
        return self._folder.path / f"frame_{key:07d}.npz"

    def put(self, key: int, frame: RgbdFrame) -> None:
        self._disk.pop(key, None)  # a new image for the key: its old file is stale
        self._mem[key] = frame
        self._mem.move_to_end(key)
        self._spill()

    def get(self, key: int, promote: bool = True) -> RgbdFrame:
        """The frame, read back from disk if it was spilled.  ``promote``: it becomes the most
        recently used (and stays in memory); False reads it without disturbing the cache (a
        pass over every keyframe, such as saving the map)."""
        if key in self._mem:
            if promote:
                self._mem.move_to_end(key)
            return self._mem[key]
        if key not in self._disk:
            raise KeyError(key)
        stamp, K, (color_K, T_cd) = self._disk[key]
        with np.load(self._file(key)) as z:
            frame = RgbdFrame(stamp, z["rgb"], z["depth"], K, color_K, T_cd)
        self.reads += 1
        if promote:
            self._mem[key] = frame
            self._spill()
        return frame

    def _spill(self) -> None:
        if self.resident <= 0:
            return
        while len(self._mem) > self.resident:
            key, f = next(iter(self._mem.items()))
            if key not in self._disk:
                np.savez(self._file(key), rgb=f.rgb, depth=f.depth)
                self._disk[key] = (f.stamp_ns, f.K, (f.color_K, f.T_color_depth))
                self.writes += 1
            del self._mem[key]


class GaussianStore:
    """Gaussians of off-loaded keyframes: one file per keyframe, fields in its camera frame."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._directory = directory
        self._folder: _Folder | None = None
        self.counts: dict[int, int] = {}  # keyframe -> number of Gaussians on disk

    def __contains__(self, key: int) -> bool:
        return key in self.counts

    @property
    def num_gaussians(self) -> int:
        return sum(self.counts.values())

    def _file(self, key: int) -> Path:
        if self._folder is None:
            self._folder = _Folder(self._directory)
        return self._folder.path / f"gaussians_{key:07d}.npz"

    def put(self, key: int, fields: dict[str, np.ndarray]) -> None:
        """Write a keyframe's Gaussians (the caller removes them from the map afterwards)."""
        np.savez(self._file(key), **fields)
        self.counts[key] = int(len(fields["means"]))

    def peek(self, key: int) -> dict[str, np.ndarray]:
        """The stored fields, left on disk."""
        with np.load(self._file(key)) as z:
            return {n: z[n] for n in z.files}

    def drop(self, key: int) -> None:
        """Forget a keyframe's stored Gaussians (after they went back into the map)."""
        self._file(key).unlink(missing_ok=True)
        del self.counts[key]
