"""A Gaussian map as a PointCloud2 payload, shared by the nodes that publish maps."""

from __future__ import annotations

import numpy as np

from ros_gs.gaussians.model import GaussianMap
from ros_gs.sensors.pointcloud2 import pack_rgb

# Gaussian centres with colour (packed rgb, as RViz/Foxglove colour clouds) and the rest of each
# Gaussian: opacity, standard deviations along its axes (m) and rotation (w, x, y, z).
CLOUD_DTYPE = np.dtype([("x", np.float32), ("y", np.float32), ("z", np.float32), ("rgb", np.float32), ("opacity", np.float32),
                        ("scale_x", np.float32), ("scale_y", np.float32), ("scale_z", np.float32),
                        ("rot_w", np.float32), ("rot_x", np.float32), ("rot_y", np.float32), ("rot_z", np.float32)])


def gaussian_cloud(gmap: GaussianMap) -> np.ndarray:
    """Structured array (CLOUD_DTYPE) of the active Gaussians, for ``array_to_pointcloud2``."""
    cloud = np.zeros(len(gmap), CLOUD_DTYPE)
    cloud["x"], cloud["y"], cloud["z"] = gmap.means.detach().cpu().numpy().T
    colors = (gmap.colors_dc.detach().cpu().numpy().clip(0, 1) * 255).round().astype(np.uint8)
    cloud["rgb"] = pack_rgb(colors)
    cloud["opacity"] = gmap.opacities.detach().cpu().numpy()
    cloud["scale_x"], cloud["scale_y"], cloud["scale_z"] = gmap.scales.detach().cpu().numpy().T
    cloud["rot_w"], cloud["rot_x"], cloud["rot_y"], cloud["rot_z"] = gmap.quats.detach().cpu().numpy().T
    return cloud
