"""Antipodal parallel-jaw grasps on an object's points, checked for collisions with the scene.

Why our own sampler: the grasp libraries of the field (GraspNet-baseline, Contact-GraspNet,
AnyGrasp) are learned models whose weights cannot be downloaded here, and GPD needs a C++ build
and a GPU-free ROS 1 stack.  Sampling antipodal pairs on the Gaussians' points with a
friction-cone test is the classic geometric method (GaussianGrasper ranks such candidates too).

For a seed point with outward normal n, the opposite contacts are the object points near the
line through the seed along -n whose outward normal points along -n (within the friction cone).
Along the line they form distinct surfaces (split where the distance along the line jumps by more
than ``line_radius``): on a solid object only its far side, on a hollow or thin one several -- from
a seed on a mug's outer wall, its own inner wall (the wall's thickness: a pinch on the rim) and the
far outer wall (the full diameter, too wide to take).  Every surface gives a contact pair: the
farthest first, with its point farthest along the line (the sampler's one rule before: objects
that fit keep their grasps), then the nearer ones, nearest first, each contact on the seed's line
at the depth of the surface's point nearest the line (across a 4 mm wall a point 2 mm beside the
line would tilt the closing line by 25 degrees).  Pairs wider than the gripper opens are dropped.
The fingers close along the line through the two contacts, and both normals must lie inside the
friction cone around it.  Around it, approach directions are tried at ``approach_angles`` steps;
the gripper may sit back along the approach (the contacts stay on the pads) to clear the object
and the scene.  Thin parts (pairs narrower than ``thin_width``) may also open wider than their
contacts need (``extra_openings``): a finger inside a mug's curved wall, beside a handle bar whose
normals its edges blur, or at a noisy banana seen by one real depth camera then clears it.  Wider
pairs close as tight as before: on a Gaussian map's noisy 7 cm box, widened grasps (contacts
inside the true surface) outranked the tight ones and lifted 2 of 5 in MuJoCo.  A grasp is kept
when no scene point is inside a finger or the palm and no gripper corner is below the support
plane.

Normals (:func:`outward_normals`) are the points' local plane normals, turned either away from
the object's centroid (right for convex objects) or, given the cameras that saw the points,
towards them (right for every surface a camera sees, a hollow object's inner wall included).
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

    @field_validator("extra_openings")
    @classmethod
    def _small_non_negative(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not (0.0 <= e < 1.0) for e in v):
            raise ValueError(f"extra_openings must each lie in [0, 1) m, got {v}")
        return v

    @field_validator("standoffs")
    @classmethod
    def _on_the_pads(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not (0.0 <= s < 0.5) for s in v):
            raise ValueError(f"standoffs must each lie in [0, 0.5) (fractions of the finger length), got {v}")
        return v

    seeds: int = Field(400, ge=1, le=100_000, description="seed points sampled on the object")
    max_candidates: int | None = Field(None, ge=1, description="stop sampling seeds once this many collision-free grasps are found (bounds a query's time on big objects); None: try every seed")
    friction_angle_deg: float = Field(20.0, gt=0.0, lt=90.0, description="half-angle of the friction cone the contact normals must lie in")
    line_radius: float = Field(0.004, gt=0.0, description="opposite contacts are searched this close (m) to the closing line")
    min_width: float = Field(0.002, ge=0.0, description="narrower contact pairs are dropped (m); thin walls (a mug's rim, ~3-5 mm) are grasped above it")
    approach_angles: int = Field(12, ge=1, le=72, description="approach directions tried around each closing axis")
    thin_width: float = Field(0.04, ge=0.0, description="contact pairs narrower than this (m) are thin parts (walls, rims, handles, a banana) and may open wider (extra_openings); wider pairs close as tight as their contacts allow")
    extra_openings: tuple[float, ...] = Field((0.0, 0.008), min_length=1, description="on thin parts, the fingers open this much (m) more than the contacts need (width + 2 x clearance), tried in turn while the gripper collides: a finger inside a mug's curved wall, beside a handle whose normals its edges blur, or at a noisy surface clears it when opened wider")
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


def outward_normals(points: np.ndarray, k: int = 16, viewpoints: np.ndarray | None = None) -> np.ndarray:
    """Unit normals (N, 3) from the local covariance of the ``k`` nearest points, turned outward.

    Without ``viewpoints``: away from the object's centroid (right for convex objects, as seen by
    cameras; wrong for the inside of a hollow one).  With ``viewpoints`` -- the camera centre
    that saw each point, (N, 3), or one camera for all, (3,) -- each normal is turned towards its
    camera: a camera only sees a surface from its outside, so this is right for both walls of a
    mug, for a bowl's inside, for any surface a camera saw.  This is open3d's
    ``orient_normals_towards_camera_location``; done here as one sign flip per point because
    open3d's takes a single camera for the whole cloud (a merged multi-view cloud needs one per
    point) and would round-trip the points through an open3d cloud.
    """
    P = np.asarray(points, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != 3 or len(P) < 3:
        raise ConfigError(f"need at least 3 points (N, 3) to estimate normals, got {P.shape}")
    tree = cKDTree(P)
    _, idx = tree.query(P, k=min(k, len(P)))
    nb = P[idx] - P[idx].mean(axis=1, keepdims=True)
    _, vecs = np.linalg.eigh(np.einsum("nki,nkj->nij", nb, nb))
    n = vecs[:, :, 0]
    if viewpoints is None:
        flip = np.einsum("ni,ni->n", n, P - P.mean(axis=0)) < 0
    else:
        V = np.asarray(viewpoints, dtype=np.float64)
        if V.shape == (3,):
            V = np.broadcast_to(V, P.shape)
        if V.shape != P.shape or not np.isfinite(V).all():
            raise ConfigError(f"viewpoints must be one finite camera centre (3,) or one per point {P.shape}, got {V.shape}")
        flip = np.einsum("ni,ni->n", n, V - P) < 0
    n[flip] *= -1
    return n


def _opposite_contacts(P: np.ndarray, i: int, a: np.ndarray, cand: np.ndarray, along: np.ndarray,
                       perp: np.ndarray, gap: float) -> list[tuple[np.ndarray, int]]:
    """One opposite contact (point, index of its normal's point) per distinct surface among the
    candidate points ``cand`` on the line from seed ``i`` along ``a``; surfaces are split where
    the distance ``along`` the line jumps by more than ``gap``.

    The farthest surface comes first, with its point farthest along the line (the sampler's rule
    before thin surfaces were grasped: objects that fit keep their grasps).  Then the nearer
    surfaces, nearest first, each with its contact on the seed's line itself, at the depth of its
    point nearest to the line: across a thin wall the width is as small as the line's radius, and
    a sampled point beside the line would tilt the closing line by tens of degrees."""
    order = cand[np.argsort(along[cand], kind="stable")]
    groups = np.split(order, np.flatnonzero(np.diff(along[order]) > gap) + 1)
    out = [(P[int(groups[-1][-1])], int(groups[-1][-1]))]
    for g in groups[:-1]:
        j = int(g[np.argmin(perp[g])])
        out.append((P[i] + along[j] * a, j))
    return out


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
    # scene points farther from a grasp's centre than any corner of the gripper (widest open, set
    # furthest back) plus the margin cannot touch it
    corners = gripper.corners(gripper.max_opening)
    reach = max(float(np.linalg.norm(corners - [0.0, 0.0, st * gripper.finger_length], axis=1).max()) for st in config.standoffs)
    reach += config.collision_margin + 1e-6
    out: list[Grasp] = []
    for i in seeds:
        a0 = -Nn[i]
        d = P - P[i]
        along = d @ a0
        perp = np.linalg.norm(d - along[:, None] * a0, axis=1)
        ok = (along > config.min_width) & (perp < config.line_radius) & (Nn @ a0 > cos_fc)
        if not ok.any():
            continue
        for p_j, j in _opposite_contacts(P, i, a0, np.flatnonzero(ok), along, perp, config.line_radius):
            out.extend(_grasps_on_pair(P[i], Nn[i], p_j, Nn[j], scene, tree, gripper, config, cos_fc, reach, support_height))
        if config.max_candidates is not None and len(out) >= config.max_candidates:
            break
    return out


def _grasps_on_pair(p_i: np.ndarray, n_i: np.ndarray, p_j: np.ndarray, n_j: np.ndarray, scene: np.ndarray,
                    tree: cKDTree | None, gripper: ParallelGripper, config: AntipodalConfig, cos_fc: float, reach: float,
                    support_height: float | None) -> list[Grasp]:
    """Collision-free grasps closing on contacts ``p_i`` and ``p_j`` (outward normals ``n_i``,
    ``n_j``): at most one per approach direction."""
    # the fingers close along the contact line itself; both normals must lie in its cone
    a = p_j - p_i
    width = float(np.linalg.norm(a))
    if width < max(config.min_width, 1e-9):
        return []
    a = a / width
    c_i, c_j = float(-n_i @ a), float(n_j @ a)
    if c_i < cos_fc or c_j < cos_fc:
        return []
    extra = config.extra_openings if width < config.thin_width else (0.0,)
    openings = [o for o in (width + 2 * gripper.clearance + e for e in extra) if o <= gripper.max_opening]
    if not openings:
        return []
    quality = 0.5 * (c_i + c_j)  # 1: both normals on the closing line
    centre = 0.5 * (p_i + p_j)
    # two axes across the closing line (np.cross costs ~20x this on 3-vectors)
    u = np.array([a[1], -a[0], 0.0]) if abs(a[2]) < 0.9 else np.array([0.0, a[2], -a[1]])  # a x z, or a x x
    u /= math.sqrt(u @ u)
    v = np.array([a[1] * u[2] - a[2] * u[1], a[2] * u[0] - a[0] * u[2], a[0] * u[1] - a[1] * u[0]])
    near = scene[tree.query_ball_point(centre, reach)] if tree is not None else scene
    d = near - centre
    x_loc = d @ a
    near_slab = np.abs(x_loc) <= max(openings) / 2 + gripper.finger_thickness + config.collision_margin  # else outside every box
    d, x_loc = d[near_slab], x_loc[near_slab]
    # every approach direction at once: the frames' z (approach) and y axes, (A, 3) each
    phis = np.arange(config.approach_angles) * (2 * math.pi / config.approach_angles)
    Z = np.cos(phis)[:, None] * u + np.sin(phis)[:, None] * v
    Y = np.stack([Z[:, 1] * a[2] - Z[:, 2] * a[1], Z[:, 2] * a[0] - Z[:, 0] * a[2], Z[:, 0] * a[1] - Z[:, 1] * a[0]], axis=1)  # Z x a
    Y /= np.linalg.norm(Y, axis=1, keepdims=True)
    L, m = gripper.finger_length, config.collision_margin
    free = {}  # (opening, standoff) -> (A,) bool: no scene point inside the gripper (points_inside, box by box)
    for opening in openings:
        boxes = gripper.boxes(opening)
        hit = {st: np.zeros(len(phis), dtype=bool) for st in config.standoffs}
        for lo, hi in boxes:  # the fingers first: where both collide everywhere the palm is not looked at
            if all(h.all() for h in hit.values()):
                break
            # the x test needs no approach direction: only the points within the box's x range
            # (few for a finger) are turned into each grasp frame
            db = d[(x_loc >= lo[0] - m) & (x_loc <= hi[0] + m)]
            if not len(db):
                continue
            yb = db @ Y.T  # (m_b, A)
            zb = db @ Z.T
            in_y = (yb >= lo[1] - m) & (yb <= hi[1] + m)
            for st in config.standoffs:
                zs = zb + st * L
                hit[st] |= (in_y & (zs >= lo[2] - m) & (zs <= hi[2] + m)).any(axis=0)
        for st in config.standoffs:
            free[opening, st] = ~hit[st]
    out: list[Grasp] = []
    w = config.top_down_weight
    for k in range(len(phis)):
        z = Z[k]
        R = np.stack([a, Y[k], z], axis=1)
        for opening, st in free:
            if not free[opening, st][k]:
                continue
            T = np.eye(4)
            T[:3, :3] = R
            T[:3, 3] = centre - st * L * z
            if support_height is not None:
                corners = gripper.corners(opening) @ R.T + T[:3, 3]
                if corners[:, 2].min() < support_height + config.support_margin:
                    continue
            top_down = max(0.0, -float(z[2]))
            out.append(Grasp(T, opening, quality * (1 - w + w * top_down), np.stack([p_i, p_j])))
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
