"""Relocalisation: find a camera's pose in a saved map with no pose prior.

Used for the first frame of a run that starts in a loaded map and after tracking is lost.  Two
stages, both open3d: a cheap image-similarity ranking picks the keyframes most like the frame
(normalised cross-correlation of small grey thumbnails), then each candidate is registered
globally (FPFH features + RANSAC on voxelised depth clouds, point-to-plane ICP refinement) and
the best one by inlier fraction is refined with RGB-D odometry against that keyframe.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import open3d as o3d

from ros_gs.mapping.frames import backproject

_reg = o3d.pipelines.registration


@dataclass
class Relocalisation:
    T_world_cam: np.ndarray
    keyframe: int  # index of the keyframe it was registered against
    fitness: float  # ICP inlier fraction of the frame's cloud against the keyframe's


def thumbnail(rgb: np.ndarray, size: tuple[int, int] = (40, 30)) -> np.ndarray:
    """Zero-mean, unit-norm grey thumbnail (block means) for image-similarity ranking."""
    g = rgb.astype(np.float32).mean(axis=2)
    h, w = g.shape
    tw, th = size
    g = g[: h - h % th, : w - w % tw].reshape(th, (h - h % th) // th, tw, (w - w % tw) // tw).mean(axis=(1, 3))
    g = g - g.mean()
    return (g / max(float(np.linalg.norm(g)), 1e-6)).ravel()


def _cloud(depth: np.ndarray, K: np.ndarray, voxel: float):
    pts, _ = backproject(depth, K, 1)
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts.astype(np.float64)))
    pc = pc.voxel_down_sample(voxel)
    pc.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2.5 * voxel, max_nn=30))
    pc.orient_normals_towards_camera_location(np.zeros(3))
    fpfh = _reg.compute_fpfh_feature(pc, o3d.geometry.KDTreeSearchParamHybrid(radius=5 * voxel, max_nn=100))
    return pc, fpfh


class Relocaliser:
    """Holds per-keyframe thumbnails (all keyframes, ~1 KB each) and clouds/FPFH features (the
    ``2 x candidates`` most recently registered keyframes: ~1 MB each, and every keyframe's
    would grow without bound on a long run), both built on first use."""

    def __init__(self, voxel: float = 0.03, candidates: int = 5, min_fitness: float = 0.5, seed: int = 0) -> None:
        self.voxel = float(voxel)
        self.candidates = int(candidates)
        self.min_fitness = float(min_fitness)
        self.seed = int(seed)
        self._thumbs: dict[int, np.ndarray] = {}
        self._clouds: OrderedDict[int, tuple] = OrderedDict()

    def _thumbnail(self, index: int, kf) -> np.ndarray:
        if index not in self._thumbs:
            self._thumbs[index] = thumbnail(kf.peek_frame().rgb)  # every keyframe once: leave the image cache be
        return self._thumbs[index]

    def _keyframe_cloud(self, index: int, kf) -> tuple:
        if index not in self._clouds:
            self._clouds[index] = _cloud(kf.frame.depth, kf.K, self.voxel)
            while len(self._clouds) > 2 * self.candidates:
                self._clouds.popitem(last=False)
        self._clouds.move_to_end(index)
        return self._clouds[index]

    def locate(self, keyframes: list, rgb: np.ndarray, depth: np.ndarray, K: np.ndarray) -> Relocalisation | None:
        """Pose of a frame (processing resolution) in the keyframes' world, or None if no keyframe
        registers with at least ``min_fitness`` of the frame's points as inliers."""
        if not keyframes or int((depth > 0).sum()) < 100:
            return None
        thumb = thumbnail(rgb)
        scores = [float(self._thumbnail(i, kf) @ thumb) for i, kf in enumerate(keyframes)]
        order = np.argsort(scores)[::-1][: self.candidates]
        src, src_f = _cloud(depth, K, self.voxel)
        if len(src.points) < 30:
            return None
        o3d.utility.random.seed(self.seed)
        best: Relocalisation | None = None
        dist = 1.5 * self.voxel
        for i in order:
            kf = keyframes[int(i)]
            tgt, tgt_f = self._keyframe_cloud(int(i), kf)
            if len(tgt.points) < 30:
                continue
            ransac = _reg.registration_ransac_based_on_feature_matching(
                src, tgt, src_f, tgt_f, True, dist,
                _reg.TransformationEstimationPointToPoint(False), 3,
                [_reg.CorrespondenceCheckerBasedOnEdgeLength(0.9), _reg.CorrespondenceCheckerBasedOnDistance(dist)],
                _reg.RANSACConvergenceCriteria(100000, 0.999))
            icp = _reg.registration_icp(src, tgt, dist, ransac.transformation,
                                        _reg.TransformationEstimationPointToPlane())
            if best is None or icp.fitness > best.fitness:
                best = Relocalisation(kf.T_world_cam @ np.asarray(icp.transformation), int(i), float(icp.fitness))
        if best is None or best.fitness < self.min_fitness:
            return None
        return best
