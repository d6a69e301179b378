"""RGB-D frame folders in the 7-Scenes / tsdf-fusion layout.

``frame-%06d.color.jpg`` (or .png), ``frame-%06d.depth.png`` (uint16 millimetres, 0 or 65535
invalid), optional ``frame-%06d.pose.txt`` (4x4 camera-to-world), and ``camera-intrinsics.txt``
(3x3 K, of the depth camera).  Frames carry synthetic stamps at a fixed rate, since the layout
stores none.

The layout has no colour calibration: where colour is not registered to depth (7-Scenes: raw
Kinect v1 images), pass the colour camera (:data:`COLOR_CAMERAS`) so that consumers can register it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ros_gs.errors import DatasetError

_FRAME = re.compile(r"frame-(\d+)\.color\.(jpg|jpeg|png)$")

#: Default first stamp (2023-11-14T22:13:20Z): bag tools treat time 0 as "unset".
DEFAULT_START_NS = 1_700_000_000 * 10**9


@dataclass(frozen=True)
class ColorCamera:
    """A colour camera beside the depth camera: its OpenCV K (at the colour image's resolution)
    and ``T_color_depth`` (4x4, depth-camera coordinates -> colour-camera coordinates)."""

    K: np.ndarray
    T_color_depth: np.ndarray


def _kinect_v1() -> ColorCamera:
    # The nominal Kinect v1 calibration (colour focal 525 px at 640x480, depth camera 585 px as in
    # 7-Scenes' camera-intrinsics.txt; the colour camera 2.5 cm along the depth camera's +x).
    # Checked on 7-Scenes kitchen with its ground-truth poses: the colour of one surface point
    # seen from two frames disagrees 24% less than when colour is taken as registered
    # (tests/datasets/test_color_registration.py).
    T = np.eye(4)
    T[0, 3] = -0.025
    return ColorCamera(np.array([[525.0, 0.0, 319.5], [0.0, 525.0, 239.5], [0.0, 0.0, 1.0]]), T)


#: Named colour cameras for folders whose colour is not registered to depth.
COLOR_CAMERAS: dict[str, ColorCamera] = {"kinect-v1": _kinect_v1()}


@dataclass(frozen=True)
class RgbdFrame:
    index: int
    stamp_ns: int
    rgb: np.ndarray  # HxWx3 uint8
    depth_mm: np.ndarray  # HxW uint16, as stored
    pose_c2w: np.ndarray | None  # 4x4 float64, camera (OpenCV optical) to world


class RgbdFolder:
    """Indexable, iterable frames of one folder.  ``color``: the colour camera when colour is
    not registered to depth (a :class:`ColorCamera` or a name in :data:`COLOR_CAMERAS`); None =
    registered (colour and depth share ``K``)."""

    def __init__(self, root: Path | str, fps: float = 30.0, start_ns: int = DEFAULT_START_NS,
                 color: ColorCamera | str | None = None) -> None:
        self.root = Path(root)
        if isinstance(color, str):
            if color not in COLOR_CAMERAS:
                raise DatasetError(f"unknown colour camera {color!r}; known: {sorted(COLOR_CAMERAS)}")
            color = COLOR_CAMERAS[color]
        self.color = color
        if not self.root.is_dir():
            raise DatasetError(f"{self.root} is not a folder")
        if not fps > 0:
            raise DatasetError(f"fps must be > 0, got {fps}")
        self.fps = fps
        self.start_ns = int(start_ns)
        found = sorted((int(m.group(1)), p) for p in self.root.iterdir() if (m := _FRAME.search(p.name)))
        if not found:
            raise DatasetError(f"{self.root} holds no frame-XXXXXX.color.jpg/png files")
        self._colors = [p for _, p in found]
        self._ids = [i for i, _ in found]
        self.K = self._read_intrinsics()
        first = self._read_color(self._colors[0])
        self.height, self.width = first.shape[:2]

    def _read_intrinsics(self) -> np.ndarray:
        path = self.root / "camera-intrinsics.txt"
        try:
            K = np.loadtxt(path, dtype=np.float64)
        except (OSError, ValueError) as err:
            raise DatasetError(f"cannot read intrinsics {path}: {err}") from err
        if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise DatasetError(f"{path}: expected a finite 3x3 K with positive focal lengths, got {K.tolist()}")
        return K

    @staticmethod
    def _read_color(path: Path) -> np.ndarray:
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError) as err:
            raise DatasetError(f"cannot decode colour image {path}: {err}") from err

    def __len__(self) -> int:
        return len(self._colors)

    def stamp_ns(self, i: int) -> int:
        return self.start_ns + round(i * 1e9 / self.fps)

    def __getitem__(self, i: int) -> RgbdFrame:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        color = self._colors[i]
        stem = f"frame-{self._ids[i]:06d}"
        rgb = self._read_color(color)
        depth_path = self.root / f"{stem}.depth.png"
        try:
            with Image.open(depth_path) as im:
                depth = np.asarray(im)
        except (OSError, UnidentifiedImageError) as err:
            raise DatasetError(f"cannot read depth {depth_path}: {err}") from err
        if depth.dtype != np.uint16 or depth.shape != rgb.shape[:2]:
            raise DatasetError(f"{depth_path}: expected uint16 {rgb.shape[:2]}, got {depth.dtype} {depth.shape}")
        pose = None
        pose_path = self.root / f"{stem}.pose.txt"
        if pose_path.exists():
            try:
                pose = np.loadtxt(pose_path, dtype=np.float64)
            except ValueError as err:
                raise DatasetError(f"{pose_path}: {err}") from err
            if pose.shape != (4, 4) or not np.isfinite(pose).all():
                raise DatasetError(f"{pose_path}: expected a finite 4x4 matrix")
        return RgbdFrame(self._ids[i], self.stamp_ns(i), rgb, depth, pose)

    def __iter__(self) -> Iterator[RgbdFrame]:
        for i in range(len(self)):
            yield self[i]
