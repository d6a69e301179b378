"""Grasps drawn over a camera image (PNG for people to look at): each grasp's gripper boxes
projected with the camera's OpenCV intrinsics, best grasp brightest."""

from __future__ import annotations

import numpy as np

from ros_gs.grasping.antipodal import Grasp
from ros_gs.grasping.gripper import ParallelGripper

_EDGES = [(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 3), (2, 6), (3, 7), (4, 5), (4, 6), (5, 7), (6, 7)]


def draw_grasps(rgb: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray, grasps: list[Grasp],
                gripper: ParallelGripper, max_grasps: int = 5) -> np.ndarray:
    """A copy of ``rgb`` (H, W, 3 uint8) with the first ``max_grasps`` grasps' gripper outlines."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.ascontiguousarray(rgb[..., :3]).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    T_cam_world = np.linalg.inv(T_world_cam)
    for rank, g in enumerate(grasps[:max_grasps]):
        shade = int(255 * (1.0 - 0.6 * rank / max(1, max_grasps - 1)))
        colour = (shade, shade // 4, 255 - shade // 2) if rank else (255, 230, 0)
        corners = gripper.corners(g.opening).reshape(3, 8, 3)
        for box in corners:
            cam = (box @ g.pose[:3, :3].T + g.pose[:3, 3]) @ T_cam_world[:3, :3].T + T_cam_world[:3, 3]
            if (cam[:, 2] <= 0.01).any():
                continue
            uv = cam[:, :2] / cam[:, 2:] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
            for a, b in _EDGES:
                draw.line([tuple(uv[a]), tuple(uv[b])], fill=colour, width=2 if rank == 0 else 1)
    return np.asarray(img)
