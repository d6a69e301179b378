"""``ObjectFinder(config).update(views) -> list[SceneObject]``: objects from RGB-D views, with
ids that stay the same as more views arrive.

Per view: the support plane (shared by all views once found), then instances
(:func:`segment_view`, or the view's own instance masks when an upstream detector gave them,
cleaned of pixels off the object's depth), lifted to world points.  Instances of different
views are the same object when their voxels overlap; across updates an object keeps its id
when its voxels overlap the new detection's (``stable ids``), and is dropped after
``forget_after`` updates unseen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ros_gs.errors import SensorDataError
from ros_gs.objects.colors import rgb_to_lab
from ros_gs.objects.segmentation import SegmentationConfig, backproject, normals_image, segment_view
from ros_gs.objects.support import SupportConfig, SupportPlane, fit_support


class ObjectFinderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    support: SupportConfig = Field(default_factory=SupportConfig, description="support plane fitting")
    segmentation: SegmentationConfig = Field(default_factory=SegmentationConfig, description="instances without masks")
    use_masks: bool = Field(True, description="use a view's instance masks when it has them (an upstream detector's)")
    voxel: float = Field(0.01, gt=0.0, description="voxel (m) in which instances of different views or updates are compared")
    min_overlap: float = Field(0.3, gt=0.0, le=1.0, description="two instances are one object when this share of the smaller one's voxels is in the other's (dilated by one voxel)")
    forget_after: int = Field(30, ge=1, description="an object unseen in this many updates is dropped")
    min_points: int = Field(30, ge=1, description="instances with fewer depth points are left out")
    min_facing: float = Field(0.05, ge=0.0, lt=1.0, description="object points whose surface is seen more edge-on than this (|cos| of the angle between its normal and the view ray; 0.05: 87 deg) are veil points and left out. Chosen on tabletop seeds 0-4 (one camera: 0.15 cut real grazing sides, 42 of 50 lifts against 50) and the GraspNet frame (0: phantom walls beside the cracker box, no grasp)")
    max_points: int = Field(20000, ge=100, description="an object keeps at most this many points (randomly thinned, seeded)")


@dataclass
class View:
    """One RGB-D camera view: ``depth`` (H, W) metres, ``K`` (3, 3) OpenCV, ``T_world_cam``
    (4, 4), optional ``rgb`` (H, W, 3) uint8 registered to depth, ``instances`` (H, W) ids
    (> 0 objects) from an upstream detector, ``labels`` {id: text} for them, ``roi`` (H, W)
    bool where objects may be."""

    depth: np.ndarray
    K: np.ndarray
    T_world_cam: np.ndarray
    rgb: np.ndarray | None = None
    instances: np.ndarray | None = None
    labels: dict[int, str] = field(default_factory=dict)
    roi: np.ndarray | None = None


@dataclass
class FoundObject:
    """An object: stable ``id``, world ``points`` (N, 3) with ``lab`` colours (N, 3; NaN
    without colour) and the ``viewpoints`` (N, 3) of the cameras that saw them, a ``label`` when
    a detector named it."""

    id: int
    points: np.ndarray
    lab: np.ndarray
    viewpoints: np.ndarray
    label: str = ""
    last_seen: int = 0
    masks: dict[int, np.ndarray] = field(default_factory=dict)  # view index -> (H, W) bool, this update


def _voxels(points: np.ndarray, size: float) -> set[tuple[int, int, int]]:
    return set(map(tuple, np.unique(np.floor(points / size).astype(np.int64), axis=0)))


def _overlap(a: set, b: set) -> float:
    """Share of the smaller set's voxels that lie in (or next to) the other's."""
    small, big = (a, b) if len(a) <= len(b) else (b, a)
    if not small:
        return 0.0
    offs = [(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)]
    hit = sum(1 for v in small if any((v[0] + o[0], v[1] + o[1], v[2] + o[2]) in big for o in offs))
    return hit / len(small)


class ObjectFinder:
    """Finds the objects in each set of views; one entry method, :meth:`update`."""

    def __init__(self, config: ObjectFinderConfig | None = None) -> None:
        self.config = config or ObjectFinderConfig()
        self.support: SupportPlane | None = None  # world frame
        self.objects: list[FoundObject] = []
        self.updates = 0
        self._next_id = 1
        self._rng = np.random.default_rng(0)

    def reset(self) -> None:
        self.support, self.objects, self.updates, self._next_id = None, [], 0, 1

    def update(self, views: list[View], up: np.ndarray | None = None) -> list[FoundObject]:
        """Objects seen in ``views`` (one time step), merged with the ones already known.
        ``up`` (3,): the world's up direction, when known (then the support must face it)."""
        if not views:
            raise SensorDataError("no views to find objects in")
        cfg = self.config
        self.updates += 1
        if self.support is None:
            self.support = self._fit_support(views, up)
        detections: list[tuple[np.ndarray, np.ndarray, np.ndarray, str, int, np.ndarray]] = []
        for vi, view in enumerate(views):
            for pts, lab, vp, label, mask in self._instances(view):
                detections.append((pts, lab, vp, label, vi, mask))
        merged = self._merge_views(detections)
        self._associate(merged)
        self.objects = [o for o in self.objects if self.updates - o.last_seen < cfg.forget_after]
        return [o for o in self.objects if o.last_seen == self.updates]

    # ------------------------------------------------------------------ steps

    def _fit_support(self, views: list[View], up: np.ndarray | None) -> SupportPlane:
        pts, centres = [], []
        for v in views:
            P = backproject(np.asarray(v.depth, dtype=np.float64)[::2, ::2], np.diag([0.5, 0.5, 1.0]) @ np.asarray(v.K, float))
            P = P.reshape(-1, 3)
            P = P[np.isfinite(P).all(axis=1)]
            T = np.asarray(v.T_world_cam, dtype=np.float64)
            pts.append(P @ T[:3, :3].T + T[:3, 3])
            centres.append(T[:3, 3])
        return fit_support(np.concatenate(pts), np.mean(centres, axis=0), self.config.support, up)

    def _instances(self, view: View):
        cfg = self.config
        depth = np.asarray(view.depth, dtype=np.float64)
        T = np.asarray(view.T_world_cam, dtype=np.float64)
        if T.shape != (4, 4) or not np.isfinite(T).all():
            raise SensorDataError("T_world_cam must be a finite 4x4 matrix")
        R, t = T[:3, :3], T[:3, 3]
        plane_cam = SupportPlane(R.T @ self.support.normal, float(self.support.offset + self.support.normal @ t))
        labels = view.labels
        if cfg.use_masks and view.instances is not None:
            ids = np.asarray(view.instances).astype(np.int64)
            if ids.shape != depth.shape:
                raise SensorDataError(f"instance image {ids.shape} and depth {depth.shape} differ in size")
            ids = np.where(ids > 0, ids, 0)
        else:
            ids = segment_view(depth, view.K, plane_cam, view.rgb, view.roi, cfg.segmentation)
            labels = {}
        P = backproject(depth, np.asarray(view.K, dtype=np.float64))
        h = P @ plane_cam.normal + plane_cam.offset
        # veil points: at a depth edge a sensor returns points between the near and the far
        # surface, seen edge-on (as PCL's ShadowPoints filter finds them); they would stand as
        # phantom walls beside an object
        n = normals_image(P, cfg.segmentation.normal_window)
        with np.errstate(invalid="ignore", divide="ignore"):
            facing = np.abs(np.einsum("hwc,hwc->hw", n, P)) / np.linalg.norm(P, axis=-1)
        veil = ~(facing > cfg.min_facing)
        lab_img = rgb_to_lab(view.rgb) if view.rgb is not None and view.rgb.shape[:2] == depth.shape else None
        for i in np.unique(ids[ids > 0]):
            mask = ids == i
            sel = mask & np.isfinite(h) & (h > -0.01) & ~veil  # masks refined: nothing below the support, no veil
            if sel.sum() < cfg.min_points:
                continue
            pts = P[sel] @ R.T + t
            lab = lab_img[sel] if lab_img is not None else np.full((len(pts), 3), np.nan)
            yield pts, lab, np.broadcast_to(t, pts.shape).copy(), labels.get(int(i), ""), mask

    def _merge_views(self, dets):
        """Union of detections of different views whose voxels overlap."""
        cfg = self.config
        vox = [_voxels(d[0], cfg.voxel) for d in dets]
        parent = list(range(len(dets)))

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in range(len(dets)):
            for j in range(i + 1, len(dets)):
                if dets[i][4] != dets[j][4] and _overlap(vox[i], vox[j]) >= cfg.min_overlap:
                    parent[find(i)] = find(j)
        groups: dict[int, list[int]] = {}
        for i in range(len(dets)):
            groups.setdefault(find(i), []).append(i)
        out = []
        for members in groups.values():
            pts = np.concatenate([dets[k][0] for k in members])
            lab = np.concatenate([dets[k][1] for k in members])
            vp = np.concatenate([dets[k][2] for k in members])
            label = next((dets[k][3] for k in members if dets[k][3]), "")
            masks = {dets[k][4]: dets[k][5] for k in members}
            if len(pts) > cfg.max_points:
                keep = np.sort(self._rng.choice(len(pts), cfg.max_points, replace=False))
                pts, lab, vp = pts[keep], lab[keep], vp[keep]
            out.append((pts, lab, vp, label, masks, set().union(*(vox[k] for k in members))))
        return out

    def _associate(self, merged) -> None:
        """Each new object takes the id of the known object it overlaps most (one-to-one)."""
        cfg = self.config
        known = {o.id: _voxels(o.points, cfg.voxel) for o in self.objects}
        pairs = []
        for k, m in enumerate(merged):
            for o in self.objects:
                ov = _overlap(m[5], known[o.id])
                if ov >= cfg.min_overlap:
                    pairs.append((ov, k, o.id))
        taken_k, taken_id, assign = set(), set(), {}
        for ov, k, oid in sorted(pairs, reverse=True):
            if k not in taken_k and oid not in taken_id:
                assign[k] = oid
                taken_k.add(k)
                taken_id.add(oid)
        by_id = {o.id: o for o in self.objects}
        for k, (pts, lab, vp, label, masks, _) in enumerate(merged):
            if k in assign:
                o = by_id[assign[k]]
                o.points, o.lab, o.viewpoints, o.masks, o.last_seen = pts, lab, vp, masks, self.updates
                o.label = label or o.label
            else:
                self.objects.append(FoundObject(self._next_id, pts, lab, vp, label, self.updates, masks))
                self._next_id += 1
        self.objects.sort(key=lambda o: o.id)
