"""Antipodal parallel-jaw grasps on an object's points, checked for collisions with the scene.

Why our own sampler: the grasp libraries of the field (GraspNet-baseline, Contact-GraspNet,
AnyGrasp) are learned models whose weights cannot be downloaded here, and GPD needs a C++ build
and a GPU-free ROS 1 stack.  Sampling antipodal pairs on the Gaussians' points with a
friction-cone test is the classic geometric method (GaussianGrasper ranks such candidates too).

For a seed point with outward normal n, the opposite contact is the farthest object point near
the line through the seed along -n whose outward normal points along -n; the fingers then
close along the line through the two contacts, and both normals must lie inside the friction
cone around it.  Around a, approach directions are tried at ``approach_angles``
steps; the gripper may sit back along the approach (the contacts stay on the pads) to clear the
object and the scene.  A grasp is kept when no scene point is inside a finger or the palm and no
gripper corner is below the support plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy.spatial import cKDTree

from ros_gs.errors import ConfigError
from ros_gs.grasping.gripper import ParallelGripper


class AntipodalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("standoffs")
    @classmethod
    def _on_the_pads(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not (0.0 <= s < 0.5) for s in v):
            raise ValueError(f"standoffs must each lie in [0, 0.5) (fractions of the finger length), got {v}")
        return v

    seeds: int = Field(400, ge=1, le=100_000, description="seed points sampled on the object")
    friction_angle_deg: float = Field(20.0, gt=0.0, lt=90.0, description="half-angle of the friction cone the contact normals must lie in")
    line_radius: float = Field(0.004, gt=0.0, description="opposite contacts are searched this close (m) to the closing line")
    min_width: float = Field(0.005, ge=0.0, description="narrower contact pairs are dropped (m)")
    approach_angles: int = Field(12, ge=1, le=72, description="approach directions tried around each closing axis")
    standoffs: tuple[float, ...] = Field((0.0, 0.2, 0.4), min_length=1, description="how far the gripper may sit back along the approach, as fractions of the finger length (each in [0, 0.5): the contacts stay on the pads)")
    collision_margin: float = Field(0.003, ge=0.0, description="scene points this close to the gripper count as collisions (m)")
    support_margin: float = Field(0.005, ge=0.0, description="the gripper stays this far above the support plane (m)")
    top_down_weight: float = Field(0.5, ge=0.0, le=1.0, description="score = quality x (1 - w + w x top-downness): how much approaching from above is preferred")
    seed: int = Field(0, description="random seed of the seed-point sampling")


@dataclass
class Grasp:
    """A grasp: ``pose`` (4, 4) ``T_world_grasp`` (frame of :mod:`ros_gs.grasping.gripper`),
    finger ``opening`` (m), ``score`` in [0, 1], the two ``contacts`` (2, 3) and the object."""

    pose: np.ndarray
    opening: float
    score: float
    contacts: np.ndarray
    label: str = ""
    object_index: int = -1


def outward_normals(points: np.ndarray, k: int = 16) -> np.ndarray:
    """Unit normals (N, 3) from the local covariance of the ``k`` nearest points, turned to
    point away from the object's centroid (right for convex objects, as seen by cameras)."""
    tree = cKDTree(points)
    _, idx = tree.query(points, k=min(k, len(points)))
    nb = points[idx] - points[idx].mean(axis=1, keepdims=True)
    _, vecs = np.linalg.eigh(np.einsum("nki,nkj->nij", nb, nb))
    n = vecs[:, :, 0]
    flip = np.einsum("ni,ni->n", n, points - points.mean(axis=0)) < 0
    n[flip] *= -1
    return n


def _frame(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    y = np.cross(z, x)
    return np.stack([x, y / np.linalg.norm(y), z], axis=1)


def sample_grasps(points: np.ndarray, normals: np.ndarray, scene_points: np.ndarray, gripper: ParallelGripper,
                  config: AntipodalConfig, support_height: float | None = None) -> list[Grasp]:
    """Collision-free antipodal grasps on the object ``points`` (N, 3) with outward ``normals``;
    ``scene_points`` (M, 3) are everything the gripper must not touch (the object included)."""
    P = np.asarray(points, dtype=np.float64)
    Nn = np.asarray(normals, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != 3 or Nn.shape != P.shape or len(P) < 3:
        raise ConfigError(f"need at least 3 object points with one normal each, got {P.shape} and {Nn.shape}")
    if not (np.isfinite(P).all() and np.isfinite(Nn).all()):
        raise ConfigError("object points or normals hold NaN or inf")
    rng = np.random.default_rng(config.seed)
    seeds = rng.choice(len(P), size=min(config.seeds, len(P)), replace=False)
    cos_fc = math.cos(math.radians(config.friction_angle_deg))
    scene = np.asarray(scene_points, dtype=np.float64).reshape(-1, 3)
    tree = cKDTree(scene) if len(scene) else None
    reach = math.hypot(gripper.max_opening / 2 + gripper.finger_thickness, gripper.finger_width / 2,
                       gripper.finger_length / 2 + gripper.palm_depth) + gripper.finger_length
    out: list[Grasp] = []
    for i in seeds:
        a = -Nn[i]
        d = P - P[i]
        along = d @ a
        perp = np.linalg.norm(d - along[:, None] * a, axis=1)
        ok = (along > config.min_width) & (perp < config.line_radius) & (Nn @ a > cos_fc)
        if not ok.any():
            continue
        j = int(np.flatnonzero(ok)[np.argmax(along[ok])])
        # the fingers close along the contact line itself; both normals must lie in its cone
        a = P[j] - P[i]
        width = float(np.linalg.norm(a))
        a = a / width
        c_i, c_j = float(-Nn[i] @ a), float(Nn[j] @ a)
        if c_i < cos_fc or c_j < cos_fc:
            continue
        opening = width + 2 * gripper.clearance
        if opening > gripper.max_opening:
            continue
        quality = 0.5 * (c_i + c_j)  # 1: both normals on the closing line
        centre = 0.5 * (P[i] + P[j])
        u = np.cross(a, [0.0, 0.0, 1.0] if abs(a[2]) < 0.9 else [1.0, 0.0, 0.0])
        u /= np.linalg.norm(u)
        v = np.cross(a, u)
        near = scene[tree.query_ball_point(centre, reach)] if tree is not None else scene
        for phi in np.arange(config.approach_angles) * (2 * math.pi / config.approach_angles):
            z = math.cos(phi) * u + math.sin(phi) * v
            R = _frame(a, z)
            for s in config.standoffs:
                T = np.eye(4)
                T[:3, :3] = R
                T[:3, 3] = centre - s * gripper.finger_length * z
                local = (near - T[:3, 3]) @ R
                if gripper.points_inside(local, opening, config.collision_margin).any():
                    continue
                if support_height is not None:
                    corners = gripper.corners(opening) @ R.T + T[:3, 3]
                    if corners[:, 2].min() < support_height + config.support_margin:
                        continue
                top_down = max(0.0, -float(z[2]))
                w = config.top_down_weight
                out.append(Grasp(T, opening, quality * (1 - w + w * top_down), np.stack([P[i], P[j]])))
                break
    return out


def suppress(grasps: list[Grasp], distance: float = 0.01, angle_deg: float = 20.0) -> list[Grasp]:
    """Best-first non-maximum suppression: drop grasps within ``distance`` and ``angle_deg`` of a
    better one (the closing axis counts both ways)."""
    kept: list[Grasp] = []
    cos_a = math.cos(math.radians(angle_deg))
    for g in sorted(grasps, key=lambda g: -g.score):
        similar = False
        for k in kept:
            if np.linalg.norm(g.pose[:3, 3] - k.pose[:3, 3]) < distance and \
               abs(g.pose[:3, 0] @ k.pose[:3, 0]) > cos_a and g.pose[:3, 2] @ k.pose[:3, 2] > cos_a:
                similar = True
                break
        if not similar:
            kept.append(g)
    return kept
