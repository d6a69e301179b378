"""A TF buffer without tf2: a tree of timed transforms, looked up with interpolation.

Semantics follow tf2 where it matters:

* Each frame has at most one parent.  An edge ``parent -> child`` stores
  ``T_parent_child`` (maps points in ``child`` to ``parent``), either static (valid at
  every time) or dynamic (a time series, kept sorted so out-of-order inserts work, and
  pruned to ``cache_ns`` behind its newest sample to bound memory).
* ``lookup(target, source, t)`` returns ``T_target_source`` (maps points in ``source`` to
  ``target``) as a :class:`Transform`, composing edges only up to the frames' common
  ancestor.  Each dynamic edge is interpolated at ``t``: translation linearly, rotation
  by slerp.  ``t=None`` means "latest": the newest time all dynamic edges on the path
  cover (tf2's time 0).
* No extrapolation: a time before the oldest or after the newest sample of an edge is a
  :class:`~ros_gs.errors.TransformError` saying by how much, unless within
  ``tolerance_ns`` (then the end sample is used).
* Frame ids are used as given, except that a leading ``/`` (ROS 1 style) is removed.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from ros_gs.errors import TransformError
from ros_gs.sensors._util import as_int
from ros_gs.quaternion import quat_conj, quat_mul, quat_rotate, quat_slerp, quat_to_matrix
from ros_gs.sensors.stamps import stamp_to_ns

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, eq=False)  # eq on arrays would be ambiguous; compare .matrix
class Transform:
    """A rigid transform ``T_a_b``: ``p_a = R p_b + t``.  Quaternion is x, y, z, w, unit length."""

    translation: np.ndarray  # (3,)
    rotation: np.ndarray  # (4,) xyzw
    stamp_ns: int | None = None  # time it holds for; None for an all-static chain

    @staticmethod
    def identity(stamp_ns: int | None = None) -> Transform:
        return Transform(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]), stamp_ns)

    @staticmethod
    def from_matrix(matrix: np.ndarray, stamp_ns: int | None = None) -> Transform:
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (4, 4) or not np.all(np.isfinite(m)):
            raise TransformError(f"need a finite 4x4 matrix, got shape {m.shape}")
        return Transform(m[:3, 3].copy(), Rotation.from_matrix(m[:3, :3]).as_quat(), stamp_ns)

    @property
    def matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix."""
        out = np.eye(4)
        out[:3, :3] = quat_to_matrix(self.rotation)
        out[:3, 3] = self.translation
        return out

    def inverse(self) -> Transform:
        inv = quat_conj(self.rotation)
        return Transform(-quat_rotate(inv, self.translation), inv, self.stamp_ns)

    def __mul__(self, other: Transform) -> Transform:
        """``T_a_b * T_b_c = T_a_c``."""
        return Transform(
            quat_rotate(self.rotation, other.translation) + self.translation,
            quat_mul(self.rotation, other.rotation),
            self.stamp_ns if self.stamp_ns is not None else other.stamp_ns,
        )

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map ``N x 3`` (or ``(3,)``) points from frame b to frame a."""
        return quat_rotate(self.rotation, points) + self.translation


def _frame(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.lstrip("/"):
        raise TransformError(f"{what} must be a non-empty frame id, got {name!r}")
    return name.lstrip("/")


def _stamp(value: Any, what: str = "stamp") -> int:
    try:
        return as_int(value, what, minimum=None)
    except ValueError as err:
        raise TransformError(str(err)) from None


def _fmt_s(ns: int) -> str:
    return f"{ns / NS_PER_S:.9f} s"


class _Edge:
    """``T_parent_child`` over time (or static)."""

    def __init__(self, parent: str, child: str, static: bool) -> None:
        self.parent, self.child, self.static = parent, child, static
        self.stamps: list[int] = []
        self.translations: list[np.ndarray] = []
        self.rotations: list[np.ndarray] = []

    def insert(self, stamp: int, translation: np.ndarray, rotation: np.ndarray, cache_ns: int) -> None:
        if self.static:
            self.stamps, self.translations, self.rotations = [stamp], [translation], [rotation]
            return
        i = bisect.bisect_left(self.stamps, stamp)
        if i < len(self.stamps) and self.stamps[i] == stamp:  # same time again: newest value wins
            self.translations[i], self.rotations[i] = translation, rotation
        else:
            self.stamps.insert(i, stamp)
            self.translations.insert(i, translation)
            self.rotations.insert(i, rotation)
        cut = bisect.bisect_left(self.stamps, self.stamps[-1] - cache_ns)
        if cut:
            del self.stamps[:cut], self.translations[:cut], self.rotations[:cut]

    def at(self, stamp: int | None, tolerance_ns: int) -> Transform:
        if self.static:
            return Transform(self.translations[0], self.rotations[0], stamp)
        assert stamp is not None
        first, last = self.stamps[0], self.stamps[-1]
        if stamp < first - tolerance_ns:
            raise TransformError(
                f"lookup would require extrapolation {_fmt_s(first - stamp)} into the past: requested "
                f"{_fmt_s(stamp)}, oldest {self.parent} -> {self.child} sample is at {_fmt_s(first)}"
            )
        if stamp > last + tolerance_ns:
            raise TransformError(
                f"lookup would require extrapolation {_fmt_s(stamp - last)} into the future: requested "
                f"{_fmt_s(stamp)}, newest {self.parent} -> {self.child} sample is at {_fmt_s(last)}"
            )
        t = min(max(stamp, first), last)
        i = bisect.bisect_left(self.stamps, t)
        if self.stamps[i] == t:
            return Transform(self.translations[i], self.rotations[i], stamp)
        t0, t1 = self.stamps[i - 1], self.stamps[i]
        alpha = (t - t0) / (t1 - t0)
        translation = (1 - alpha) * self.translations[i - 1] + alpha * self.translations[i]
        return Transform(translation, quat_slerp(self.rotations[i - 1], self.rotations[i], alpha), stamp)


class TfBuffer:
    """Transforms between frames over time (see module docstring)."""

    def __init__(self, cache_ns: int = 10 * NS_PER_S, tolerance_ns: int = 0) -> None:
        self.cache_ns = _stamp(cache_ns, "cache_ns")
        self.tolerance_ns = _stamp(tolerance_ns, "tolerance_ns")
        if self.cache_ns <= 0 or self.tolerance_ns < 0:
            raise TransformError(f"need cache_ns > 0 and tolerance_ns >= 0, got {cache_ns}, {tolerance_ns}")
        self._edges: dict[str, _Edge] = {}  # child -> edge to its parent
        # /tf callbacks and lookups may run on different executor threads under rclpy.
        self._lock = threading.RLock()

    # -- input -------------------------------------------------------------------------------
    def set_transform(
        self,
        parent: str,
        child: str,
        stamp_ns: int,
        translation: Iterable[float],
        rotation_xyzw: Iterable[float],
        static: bool = False,
    ) -> None:
        """Store ``T_parent_child`` at ``stamp_ns`` (static: for all times)."""
        parent, child = _frame(parent, "parent frame"), _frame(child, "child frame")
        stamp = _stamp(stamp_ns)
        if parent == child:
            raise TransformError(f"transform from frame {child!r} to itself")
        try:
            t = np.array(translation, dtype=np.float64).reshape(3)
            q = np.array(rotation_xyzw, dtype=np.float64).reshape(4)
        except (TypeError, ValueError):
            raise TransformError(f"{parent} -> {child}: translation needs 3 numbers, rotation 4") from None
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(q))):
            raise TransformError(f"{parent} -> {child}: non-finite transform t={t.tolist()} q={q.tolist()}")
        norm = float(np.linalg.norm(q))
        if norm < 1e-9:
            raise TransformError(f"{parent} -> {child}: rotation quaternion has zero length")
        q = q / norm
        with self._lock:
            self._insert(parent, child, stamp, t, q, static)

    def _insert(self, parent: str, child: str, stamp: int, t: np.ndarray, q: np.ndarray, static: bool) -> None:
        edge = self._edges.get(child)
        if edge is None:
            node: str | None = parent
            while node is not None:  # a new edge must not close a loop
                if node == child:
                    raise TransformError(f"{parent} -> {child} would make a cycle: {parent!r} is below {child!r}")
                node = self._edges[node].parent if node in self._edges else None
            edge = self._edges[child] = _Edge(parent, child, static)
        elif edge.parent != parent:
            raise TransformError(
                f"frame {child!r} already has parent {edge.parent!r}; rejecting second parent {parent!r}"
            )
        elif edge.static != static:
            kind = "static" if edge.static else "dynamic"
            raise TransformError(f"{parent} -> {child} is already {kind}; cannot also publish it as the other")
        edge.insert(stamp, t, q, self.cache_ns)

    def add_tf_message(self, msg: Any, static: bool = False) -> None:
        """Store every transform of a ``tf2_msgs/TFMessage``.

        Good transforms are kept even if others in the message are bad; the bad ones are
        then reported together in one TransformError.
        """
        problems = []
        for ts in msg.transforms:
            try:
                tr, rot = ts.transform.translation, ts.transform.rotation
                self.set_transform(
                    ts.header.frame_id,
                    ts.child_frame_id,
                    stamp_to_ns(ts.header.stamp),
                    (tr.x, tr.y, tr.z),
                    (rot.x, rot.y, rot.z, rot.w),
                    static=static,
                )
            except (ValueError, AttributeError) as err:  # TransformError is a ValueError
                problems.append(str(err))
        if problems:
            raise TransformError(f"{len(problems)} bad transform(s) in TFMessage: " + "; ".join(problems))

    def clear(self) -> None:
        with self._lock:
            self._edges.clear()

    # -- queries -----------------------------------------------------------------------------
    def frames(self) -> list[str]:
        """All known frame ids, sorted."""
        with self._lock:
            return sorted(set(self._edges) | {e.parent for e in self._edges.values()})

    def parent(self, frame: str) -> str | None:
        edge = self._edges.get(_frame(frame, "frame"))
        return edge.parent if edge else None

    def _chain(self, frame: str) -> list[str]:
        chain = [frame]
        while chain[-1] in self._edges:
            chain.append(self._edges[chain[-1]].parent)
        return chain

    def lookup(self, target_frame: str, source_frame: str, stamp_ns: int | None = None) -> Transform:
        """``T_target_source`` at ``stamp_ns`` (None: latest common time).  ``.matrix`` gives 4x4."""
        target, source = _frame(target_frame, "target frame"), _frame(source_frame, "source frame")
        stamp = None if stamp_ns is None else _stamp(stamp_ns)
        if target == source:  # as tf2: identity, even for a frame not (yet) known
            return Transform.identity(stamp)
        with self._lock:
            return self._lookup(target, source, stamp)

    def _lookup(self, target: str, source: str, stamp: int | None) -> Transform:
        known = self.frames()
        for name in (target, source):
            if name not in known:
                raise TransformError(f"unknown frame {name!r}; known frames: {known}")
        up_s, up_t = self._chain(source), self._chain(target)
        in_s = set(up_s)
        common = next((f for f in up_t if f in in_s), None)
        if common is None:
            raise TransformError(
                f"frames {target!r} and {source!r} are not connected (their tree roots are {up_t[-1]!r} "
                f"and {up_s[-1]!r})"
            )
        edges_s = [self._edges[f] for f in up_s[: up_s.index(common)]]
        edges_t = [self._edges[f] for f in up_t[: up_t.index(common)]]
        if stamp is None:
            stamp = self._latest_common(edges_s + edges_t)
        common_source = Transform.identity(stamp)
        for edge in edges_s:
            common_source = edge.at(stamp, self.tolerance_ns) * common_source
        common_target = Transform.identity(stamp)
        for edge in edges_t:
            common_target = edge.at(stamp, self.tolerance_ns) * common_target
        result = common_target.inverse() * common_source
        return Transform(result.translation, result.rotation, stamp)

    @staticmethod
    def _latest_common(edges: list[_Edge]) -> int | None:
        dynamic = [e for e in edges if not e.static]
        if not dynamic:
            return None
        newest = min(dynamic, key=lambda e: e.stamps[-1])
        oldest = max(dynamic, key=lambda e: e.stamps[0])
        if newest.stamps[-1] < oldest.stamps[0]:
            raise TransformError(
                f"no common time: {newest.parent} -> {newest.child} ends at {_fmt_s(newest.stamps[-1])} before "
                f"{oldest.parent} -> {oldest.child} starts at {_fmt_s(oldest.stamps[0])}"
            )
        return newest.stamps[-1]

    def can_transform(self, target_frame: str, source_frame: str, stamp_ns: int | None = None) -> bool:
        try:
            self.lookup(target_frame, source_frame, stamp_ns)
        except TransformError:
            return False
        return True
