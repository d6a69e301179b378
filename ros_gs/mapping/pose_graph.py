"""Keyframe pose graph: pairwise RGB-D registrations between keyframes, optimised with open3d.

Frame-to-model tracking drifts slowly; each keyframe is registered against up to a few earlier
keyframes that see the same surfaces (near in position and viewing direction), including far
older ones when the camera comes back (loop closures).  open3d's robust Levenberg-Marquardt pose
graph optimisation (line process: wrong loop edges are pruned) then moves the keyframes, and the
mapper moves the Gaussians each keyframe seeded with it.

Conventions (open3d's): a node's pose is ``T_world_keyframe``; an edge ``(source, target, T)``
holds ``T = T_target_source`` (maps source-frame points into the target frame), which is what
:func:`ros_gs.mapping.tracking.rgbd_odometry` returns for ``(source, target)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import open3d as o3d

_reg = o3d.pipelines.registration


@dataclass
class Edge:
    source: int
    target: int
    T_target_source: np.ndarray
    information: np.ndarray
    uncertain: bool  # a loop closure: may be pruned by the robust optimiser


def view_overlap_candidates(poses: list[np.ndarray], new: int, radius: float, max_angle_deg: float,
                            exclude: set[int] | None = None) -> list[int]:
    """Earlier keyframes whose camera centre is within ``radius`` of keyframe ``new`` and whose
    optical axis is within ``max_angle_deg`` of its axis, nearest first."""
    exclude = exclude or set()
    Tn = poses[new]
    cos_min = math.cos(math.radians(max_angle_deg))
    out = []
    for i in range(new):
        if i in exclude:
            continue
        T = poses[i]
        d = float(np.linalg.norm(T[:3, 3] - Tn[:3, 3]))
        if d <= radius and float(T[:3, 2] @ Tn[:3, 2]) >= cos_min:
            out.append((d, i))
    return [i for _, i in sorted(out)]


class KeyframePoseGraph:
    """Nodes are keyframe poses, edges pairwise registrations; :meth:`optimise` returns new poses."""

    def __init__(self, max_correspondence_distance: float = 0.05, edge_prune_threshold: float = 0.25) -> None:
        self.poses: list[np.ndarray] = []
        self.edges: list[Edge] = []
        self.max_correspondence_distance = float(max_correspondence_distance)
        self.edge_prune_threshold = float(edge_prune_threshold)

    def __len__(self) -> int:
        return len(self.poses)

    def add_node(self, T_world_kf: np.ndarray) -> int:
        self.poses.append(np.asarray(T_world_kf, np.float64).copy())
        return len(self.poses) - 1

    def add_edge(self, source: int, target: int, T_target_source: np.ndarray, information: np.ndarray,
                 uncertain: bool = False) -> None:
        self.edges.append(Edge(int(source), int(target), np.asarray(T_target_source, np.float64).copy(),
                               np.asarray(information, np.float64).copy(), bool(uncertain)))

    def residuals(self) -> np.ndarray:
        """Translation disagreement (m) of every edge with the current poses (for diagnostics)."""
        out = []
        for e in self.edges:
            pred = np.linalg.inv(self.poses[e.target]) @ self.poses[e.source]
            out.append(float(np.linalg.norm(pred[:3, 3] - e.T_target_source[:3, 3])))
        return np.asarray(out)

    def optimise(self, max_iterations: int = 100) -> list[np.ndarray]:
        """Optimise all poses (node 0 fixed); stores and returns them."""
        if len(self.poses) < 2 or not self.edges:
            return [p.copy() for p in self.poses]
        g = _reg.PoseGraph()
        for T in self.poses:
            g.nodes.append(_reg.PoseGraphNode(T))
        for e in self.edges:
            g.edges.append(_reg.PoseGraphEdge(e.source, e.target, e.T_target_source, e.information, e.uncertain))
        option = _reg.GlobalOptimizationOption(
            max_correspondence_distance=self.max_correspondence_distance,
            edge_prune_threshold=self.edge_prune_threshold,
            preference_loop_closure=1.0,
            reference_node=0,
        )
        crit = _reg.GlobalOptimizationConvergenceCriteria()
        crit.max_iteration = int(max_iterations)
        with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
            _reg.global_optimization(g, _reg.GlobalOptimizationLevenbergMarquardt(), crit, option)
        self.poses = [np.asarray(n.pose, np.float64).copy() for n in g.nodes]
        return [p.copy() for p in self.poses]
