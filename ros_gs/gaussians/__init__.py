"""The Gaussian map data model: storage (``model``), PLY I/O (``ply``), voxel hash (``spatial_index``).

A leaf of the core: imports nothing from ros_gs but ``ros_gs.errors`` (no ROS, no rosbags).
Quaternions here are **w, x, y, z** (gsplat / INRIA PLY order); ROS messages use x, y, z, w.
"""

from ros_gs.gaussians.model import C0, POLICIES, AddResult, GaussianMap
from ros_gs.gaussians.ply import PlyData, is_compressed, read_ply, read_ply_data, write_ply
from ros_gs.gaussians.spatial_index import VoxelIndex

__all__ = [
    "C0",
    "POLICIES",
    "AddResult",
    "GaussianMap",
    "PlyData",
    "VoxelIndex",
    "is_compressed",
    "read_ply",
    "read_ply_data",
    "write_ply",
]
