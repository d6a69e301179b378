"""7-Scenes colour is not registered to its depth: with the nominal Kinect v1 colour camera
(``COLOR_CAMERAS['kinect-v1']``) the colour that two frames see of one surface point (matched
through the depth and the ground-truth poses, both the depth camera's) agrees better than when
colour is taken as registered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import map_coordinates

from ros_gs.datasets.rgbd_folder import ColorCamera, RgbdFolder
from ros_gs.mapping import RgbdFrame
from ros_gs.mapping.frames import register_frame

PAIRS = ((50, 60), (100, 110), (200, 212), (300, 306), (400, 410), (500, 508))


def disagreement(ds: RgbdFolder, color) -> float:
    """Mean |grey_i - grey_j| (clipped at 0.2) over depth pixels of frame i seen in frame j."""
    total, count = 0.0, 0
    for i, j in PAIRS:
        fi, fj = (register_frame(RgbdFrame.from_folder_frame(ds[k], ds.K, color)) for k in (i, j))
        Ti, Tj = ds[i].pose_c2w, ds[j].pose_c2w
        K = ds.K
        v, u = np.mgrid[0:fi.height:4, 0:fi.width:4]
        d = fi.depth[v, u]
        ok = (d > 0.2) & (d < 3.5)
        u, v, d = u[ok], v[ok], d[ok]
        X = np.stack([(u - K[0, 2]) * d / K[0, 0], (v - K[1, 2]) * d / K[1, 1], d], 1)
        Xj = (X @ Ti[:3, :3].T + Ti[:3, 3] - Tj[:3, 3]) @ Tj[:3, :3]
        uj, vj = K[0, 0] * Xj[:, 0] / Xj[:, 2] + K[0, 2], K[1, 1] * Xj[:, 1] / Xj[:, 2] + K[1, 2]
        gi = fi.rgb.astype(float).mean(-1)[v, u] / 255
        gj = map_coordinates(fj.rgb.astype(float).mean(-1) / 255, [vj, uj], order=1, mode="constant", cval=np.nan)
        seen = np.isfinite(gj) & (Xj[:, 2] > 0.1)
        total += np.minimum(np.abs(gi[seen] - gj[seen]), 0.2).sum()
        count += int(seen.sum())
    return total / count


def test_kinect_v1_colour_camera_makes_views_agree(kitchen_dir: Path) -> None:
    """Most of the gain is the colour focal length (525 vs 585 px); the 2.5 cm baseline is a
    smaller effect, but its sign is checked too (the mirrored offset agrees worse)."""
    ds = RgbdFolder(kitchen_dir, color="kinect-v1")
    registered = disagreement(ds, None)
    calibrated = disagreement(ds, ds.color)
    mirrored = ColorCamera(ds.color.K, np.linalg.inv(ds.color.T_color_depth))
    # measured: 0.0393 registered -> 0.0298 kinect-v1 (-24%); 0.0313 with the offset mirrored
    assert calibrated < 0.85 * registered, (registered, calibrated)
    assert calibrated < disagreement(ds, mirrored) - 0.0005
