"""``GraspPlanner.query("the red box")`` -> ranked, collision-free 6-DoF grasps on the object the
text names (as GaussianGrasper: language picks the object, geometry picks the grasp).

The scene is either a list of labelled objects, each a cloud of world points (the means of its
Gaussians, or its depth points) with the support plane's height (:meth:`set_scene`: the query
is matched to the labels by meaning, :mod:`ros_gs.semantics.text`), or the objects found in
the sensor data with their descriptions and support plane (:meth:`set_objects`: the query is
grounded in colours, shapes, sizes, positions and labels, :mod:`ros_gs.objects.grounding`).
Grasps are sampled on the chosen object (:mod:`ros_gs.grasping.antipodal`) and checked
against every object's points and the support.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ros_gs.errors import ConfigError
from ros_gs.grasping.antipodal import AntipodalConfig, Grasp, outward_normals, sample_grasps, suppress
from ros_gs.grasping.gripper import ParallelGripper
from ros_gs.objects.completion import complete_to_support
from ros_gs.objects.grounding import Candidate, ground
from ros_gs.objects.scene import ObjectScene
from ros_gs.semantics.text import LabelMatch, check_query, rank_labels

log = logging.getLogger(__name__)


class GraspPlannerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gripper: ParallelGripper = Field(default_factory=ParallelGripper, description="the gripper")
    sampler: AntipodalConfig = Field(default_factory=lambda: AntipodalConfig(max_candidates=120), description="antipodal sampling (at most 120 candidates: a query stays well under 300 ms on this CPU)")
    voxel: float = Field(0.003, gt=0.0, description="object points are thinned to one per voxel of this size (m)")
    centre_weight: float = Field(0.3, ge=0.0, le=1.0, description="score x (1 - w x distance from the object's centroid / its radius): central grasps first")
    max_sample_points: int = Field(2500, ge=10, description="a target with more points (walls included) samples contacts on a coarser grid; bounds a query's time")
    collision_voxel: float = Field(0.005, gt=0.0, description="the points the gripper must clear are thinned to this voxel (m); finer than the fingers (12 mm) so no surface slips through one")
    min_points: int = Field(20, ge=3, description="objects with fewer points cannot be grasped")
    min_similarity: float = Field(0.25, ge=-1.0, le=1.0, description="the query must match a label at least this well (cosine), else no object is chosen. On the tabletop labels: 'something to drink from' -> mug 0.34, 'a cup' 0.48, 'the mug' 0.60; 'weather forecast for tomorrow' 0.10 (but 'a jet engine turbine blade' -> cylinder 0.34)")
    max_grasps: int = Field(10, ge=1, le=1000, description="at most this many grasps are returned, best first")
    complete_to_support: bool = Field(True, description="objects seen by one camera fill their footprint down to the support (the side it does not see gets walls: objects.completion)")


@dataclass
class SceneObject:
    label: str
    points: np.ndarray  # (N, 3) world
    id: int = -1
    viewpoints: np.ndarray | None = None  # (N, 3) centre of the camera that saw each point: normals face it


@dataclass
class GraspResult:
    query: str
    matches: list[LabelMatch]  # every label, best first
    object_index: int  # -1: no object matched well enough
    grasps: list[Grasp] = field(default_factory=list)
    message: str = ""
    candidates: list[Candidate] = field(default_factory=list)  # grounded queries: every object, best first
    ambiguous: bool = False
    description: str = ""
    object_id: int = -1

    @property
    def label(self) -> str:
        if self.object_index < 0:
            return ""
        return self.matches[0].label if self.matches else ""


def _thin_index(points: np.ndarray, voxel: float) -> np.ndarray:
    """Indices of the first point in each voxel, in order."""
    keys = np.floor(points / voxel).astype(np.int64)
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    keys -= keys.min(axis=0)
    span = keys.max(axis=0) + 1
    # one integer per voxel: np.unique on 1-D keys is ~10x faster than on rows (axis=0)
    flat = (keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2]
    _, first = np.unique(flat, return_index=True)
    return np.sort(first)


def _thin(points: np.ndarray, voxel: float) -> np.ndarray:
    return points[_thin_index(points, voxel)]


class GraspPlanner:
    """Set a scene, then query it with text."""

    def __init__(self, config: GraspPlannerConfig | None = None) -> None:
        self.config = config or GraspPlannerConfig()
        self.objects: list[SceneObject] = []
        self.support_height: float | None = None
        self.scene: ObjectScene | None = None
        self._cache: dict = {}  # see set_scene

    def set_scene(self, objects: list[SceneObject], support_height: float | None = None) -> None:
        """Labelled objects (world points, z up) and the support's height."""
        kept = []
        for o in objects:
            pts = np.asarray(o.points, dtype=np.float64).reshape(-1, 3)
            vps = None if o.viewpoints is None else np.asarray(o.viewpoints, dtype=np.float64).reshape(-1, 3)
            if vps is not None and len(vps) != len(pts):
                raise ConfigError(f"object {o.label!r}: {len(vps)} viewpoints for {len(pts)} points")
            finite = np.isfinite(pts).all(axis=1) & (np.isfinite(vps).all(axis=1) if vps is not None else True)
            pts = pts[finite]
            if len(pts) == 0:
                raise ConfigError(f"object {o.label!r} has no finite points")
            keep = _thin_index(pts, self.config.voxel)
            kept.append(SceneObject(o.label, pts[keep], o.id, None if vps is None else vps[finite][keep]))
        if support_height is not None and not np.isfinite(support_height):
            raise ConfigError("support_height must be finite")
        self.objects, self.support_height, self.scene = kept, support_height, None
        self._cache = {}  # what every query on this scene shares: collision points, normals

    def set_objects(self, scene: ObjectScene) -> None:
        """Objects found in sensor data (:func:`ros_gs.objects.find_objects`): queries are
        grounded in their descriptions; the gripper stays above ``scene.support``."""
        self.set_scene([SceneObject(d.label, o.points, o.id, o.viewpoints) for o, d in zip(scene.objects, scene.descriptions)])
        self.scene = scene

    def _choose(self, q: str) -> GraspResult:
        if self.scene is None:
            matches = rank_labels(q, [o.label for o in self.objects])
            best = matches[0]
            if best.score < self.config.min_similarity:
                return GraspResult(q, matches, -1, message=f"no object matches {q!r} (best: {best.label!r}, similarity "
                                                              f"{best.score:.2f} < {self.config.min_similarity})")
            return GraspResult(q, matches, best.index, object_id=self.objects[best.index].id)
        g = ground(q, self.scene.descriptions, [o.lab for o in self.scene.objects],
                   min_label_similarity=self.config.min_similarity)
        d = self.scene.descriptions[g.index] if g.index >= 0 else None
        matches = [LabelMatch(c.index, self.scene.descriptions[c.index].label, c.score) for c in g.candidates]
        return GraspResult(q, matches, g.index, message=g.message, candidates=g.candidates, ambiguous=g.ambiguous,
                           description=d.text() if d else "", object_id=d.id if d else -1)

    def query(self, text: str) -> GraspResult:
        q = check_query(text)
        if not self.objects:
            raise ConfigError("no scene: call set_scene() or set_objects() first")
        result = self._choose(q)
        if result.object_index < 0:
            return result
        target = self.objects[result.object_index]
        name = target.label or result.description or f"object {target.id}"
        if len(target.points) < self.config.min_points:
            result.message = f"{name!r} has only {len(target.points)} points"
            return result
        # sample in the support's frame (z up, support at z = 0) so that any support, a tilted
        # table seen by one camera included, is a height the gripper stays above
        T_ws = np.eye(4)
        support = self.support_height
        if self.scene is not None:
            B = self.scene.support.basis()
            T_ws[:3, :3] = B.T
            T_ws[:3, 3] = -self.scene.support.offset * self.scene.support.normal
            support = 0.0
        T_sw = np.linalg.inv(T_ws)

        def to_s(p):
            return p @ T_sw[:3, :3].T + T_sw[:3, 3]

        pts = to_s(target.points)
        # normals face the camera that saw each point: right for both walls of a cup (the
        # centroid rule turns its inner wall inside out); they and the thinned collision points
        # depend on the scene only, so later queries reuse them
        key = ("normals", result.object_index)
        if key not in self._cache:
            self._cache[key] = outward_normals(pts, viewpoints=None if target.viewpoints is None else to_s(target.viewpoints))
        normals = self._cache[key]
        if "scene" not in self._cache:
            self._cache["scene"] = to_s(_thin(np.concatenate([o.points for o in self.objects]), self.config.collision_voxel))
        scene = self._cache["scene"]
        found = self.scene.objects[result.object_index] if self.scene is not None else None
        one_side = found is not None and len(np.unique(np.round(found.viewpoints, 3), axis=0)) == 1
        if one_side and self.config.complete_to_support:  # seen by one camera: its far side gets walls
            walls, wall_normals = complete_to_support(target.points, self.scene.support, self.config.voxel)
            if len(walls):
                walls = to_s(walls)
                pts = np.concatenate([pts, walls])
                normals = np.concatenate([normals, wall_normals @ T_sw[:3, :3].T])
                scene = _thin(np.concatenate([scene, walls]), self.config.collision_voxel)
        if len(pts) > self.config.max_sample_points:  # a big object: contacts from a coarser grid
            keep = _thin_index(pts, self.config.voxel * np.sqrt(len(pts) / self.config.max_sample_points))
            pts, normals = pts[keep], normals[keep]
        cands = sample_grasps(pts, normals, scene, self.config.gripper, self.config.sampler, support)
        if cands and self.config.centre_weight > 0:
            # near the object's centre is steadier (less torque about the fingers, the widest
            # section of a round object): among equally antipodal grasps, the central ones first
            centroid = pts.mean(axis=0)
            radius = max(float(np.linalg.norm(pts - centroid, axis=1).max()), 1e-6)
            for g in cands:
                g.score *= 1.0 - self.config.centre_weight * min(1.0, float(np.linalg.norm(g.pose[:3, 3] - centroid)) / radius)
        grasps = suppress(cands)[: self.config.max_grasps]
        for g in grasps:
            g.pose = T_ws @ g.pose
            g.contacts = g.contacts @ T_ws[:3, :3].T + T_ws[:3, 3]
            g.label, g.object_index = target.label, result.object_index
        result.grasps = grasps
        if not grasps:
            result.message = (result.message + "; " if result.message else "") + f"no collision-free grasp found on {name!r}"
        log.info("grasp query %r -> %r: %d candidates, %d returned", q, name, len(cands), len(grasps))
        return result
