"""``GraspPlanner.query("the red box")`` -> ranked, collision-free 6-DoF grasps on the object the
text names (as GaussianGrasper: language picks the object, geometry picks the grasp).

The scene is a list of labelled objects, each a cloud of world points (the means of its
Gaussians, or its depth points), and optionally the support plane's height.  The query is
matched to the labels by meaning (:mod:`ros_gs.semantics.text`); grasps are sampled on the
best match (:mod:`ros_gs.grasping.antipodal`) and checked against every object's points.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ros_gs.errors import ConfigError
from ros_gs.grasping.antipodal import AntipodalConfig, Grasp, outward_normals, sample_grasps, suppress
from ros_gs.grasping.gripper import ParallelGripper
from ros_gs.semantics.text import LabelMatch, check_query, rank_labels

log = logging.getLogger(__name__)


class GraspPlannerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gripper: ParallelGripper = Field(default_factory=ParallelGripper, description="the gripper")
    sampler: AntipodalConfig = Field(default_factory=AntipodalConfig, description="antipodal sampling")
    voxel: float = Field(0.003, gt=0.0, description="object points are thinned to one per voxel of this size (m)")
    min_points: int = Field(20, ge=3, description="objects with fewer points cannot be grasped")
    min_similarity: float = Field(0.25, ge=-1.0, le=1.0, description="the query must match a label at least this well (cosine), else no object is chosen. On the tabletop labels: 'something to drink from' -> mug 0.34, 'a cup' 0.48, 'the mug' 0.60; 'weather forecast for tomorrow' 0.10 (but 'a jet engine turbine blade' -> cylinder 0.34)")
    max_grasps: int = Field(10, ge=1, le=1000, description="at most this many grasps are returned, best first")


@dataclass
class SceneObject:
    label: str
    points: np.ndarray  # (N, 3) world


@dataclass
class GraspResult:
    query: str
    matches: list[LabelMatch]  # every label, best first
    object_index: int  # -1: no object matched well enough
    grasps: list[Grasp] = field(default_factory=list)
    message: str = ""

    @property
    def label(self) -> str:
        return self.matches[0].label if self.object_index >= 0 else ""


def _thin(points: np.ndarray, voxel: float) -> np.ndarray:
    keys = np.floor(points / voxel).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return points[np.sort(first)]


class GraspPlanner:
    """Set a scene, then query it with text."""

    def __init__(self, config: GraspPlannerConfig | None = None) -> None:
        self.config = config or GraspPlannerConfig()
        self.objects: list[SceneObject] = []
        self.support_height: float | None = None

    def set_scene(self, objects: list[SceneObject], support_height: float | None = None) -> None:
        kept = []
        for o in objects:
            pts = np.asarray(o.points, dtype=np.float64).reshape(-1, 3)
            pts = pts[np.isfinite(pts).all(axis=1)]
            if len(pts) == 0:
                raise ConfigError(f"object {o.label!r} has no finite points")
            kept.append(SceneObject(o.label, _thin(pts, self.config.voxel)))
        if support_height is not None and not np.isfinite(support_height):
            raise ConfigError("support_height must be finite")
        self.objects, self.support_height = kept, support_height

    def query(self, text: str) -> GraspResult:
        q = check_query(text)
        if not self.objects:
            raise ConfigError("no scene: call set_scene() with the labelled objects first")
        matches = rank_labels(q, [o.label for o in self.objects])
        best = matches[0]
        if best.score < self.config.min_similarity:
            return GraspResult(q, matches, -1, message=f"no object matches {q!r} (best: {best.label!r}, similarity "
                                                          f"{best.score:.2f} < {self.config.min_similarity})")
        target = self.objects[best.index]
        if len(target.points) < self.config.min_points:
            return GraspResult(q, matches, best.index, message=f"{target.label!r} has only {len(target.points)} points")
        scene = np.concatenate([o.points for o in self.objects])
        cands = sample_grasps(target.points, outward_normals(target.points), scene, self.config.gripper,
                              self.config.sampler, self.support_height)
        grasps = suppress(cands)[: self.config.max_grasps]
        for g in grasps:
            g.label, g.object_index = target.label, best.index
        msg = "" if grasps else f"no collision-free grasp found on {target.label!r}"
        log.info("grasp query %r -> %r (%.2f): %d candidates, %d returned", q, target.label, best.score, len(cands), len(grasps))
        return GraspResult(q, matches, best.index, grasps, msg)
