"""Shape prior for objects seen from one side: an object on a support fills its footprint down
to the support.

A camera sees an object's top and the sides facing it; antipodal grasps need both sides.  The
points' footprint on the support (rasterised, closed, holes filled: concave outlines such as a
banana's stay concave) is extruded from the support up to the local height of the object, and
its walls become points with outward normals.  The physics bodies are filled down to the
support for the same reason.  Overhangs (a handle, a drill's body) are filled too: grasps on
them are judged by the points seen.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ros_gs.objects.support import SupportPlane


def complete_to_support(points: np.ndarray, support: SupportPlane, cell: float = 0.003,
                        min_height: float = 0.004, wall_reach: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Wall points (M, 3) and their outward unit normals (M, 3), world frame, for an object's
    points (N, 3) standing on ``support``; empty arrays when the object has no footprint."""
    B = support.basis()
    local = np.asarray(points, dtype=np.float64) @ B.T
    local[:, 2] += support.offset
    lo = local[:, :2].min(axis=0) - 3 * cell
    ij = np.floor((local[:, :2] - lo) / cell).astype(np.int64)
    shape = tuple(ij.max(axis=0) + 4)
    if shape[0] * shape[1] > 4_000_000:  # a 6 m footprint at 3 mm: no object
        return np.zeros((0, 3)), np.zeros((0, 3))
    height = np.zeros(shape)
    np.maximum.at(height, (ij[:, 0], ij[:, 1]), local[:, 2])
    occ = height > 0
    occ = ndimage.binary_fill_holes(ndimage.binary_closing(occ, iterations=2))
    height = np.where(occ, ndimage.grey_closing(height, size=5), 0.0)
    edge = occ & ~ndimage.binary_erosion(occ)
    smooth = ndimage.gaussian_filter(occ.astype(np.float64), 1.5)
    gx, gy = np.gradient(smooth)
    ci, cj = np.nonzero(edge)
    n2 = -np.stack([gx[ci, cj], gy[ci, cj]], axis=1)
    norm = np.linalg.norm(n2, axis=1)
    ok = norm > 1e-6
    ci, cj, n2 = ci[ok], cj[ok], n2[ok] / norm[ok, None]
    # a wall rises to the object's height just inside it (a lying can's or a banana's sides slope
    # down to the support at the outline; the grip is at the widest section, under the top)
    reach = max(3, int(round(wall_reach / cell)) | 1)
    hmax = ndimage.maximum_filter(height, size=reach)[ci, cj]
    pts, nrm = [], []
    for z in np.arange(min_height, max(hmax.max(initial=0.0), min_height) + 1e-9, cell):
        sel = hmax * 0.9 >= z
        if not sel.any():
            break
        xy = lo + (np.stack([ci[sel], cj[sel]], axis=1) + 0.5) * cell
        pts.append(np.column_stack([xy, np.full(len(xy), z)]))
        nrm.append(np.column_stack([n2[sel], np.zeros(len(xy))]))
    if not pts:
        return np.zeros((0, 3)), np.zeros((0, 3))
    P = np.concatenate(pts)
    N = np.concatenate(nrm)
    P[:, 2] -= support.offset
    return P @ B, N @ B
