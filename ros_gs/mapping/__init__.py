"""Online Gaussian mapping from RGB-D frames (tracking + mapping), CPU.

``Mapper(config).process(RgbdFrame) -> PoseEstimate`` is the one entry; see :mod:`mapper`.
"""

from ros_gs.mapping.config import MapperConfig
from ros_gs.mapping.evaluation import ate_rmse, psnr, ssim
from ros_gs.mapping.frames import RgbdFrame, downscale, register_color_to_depth, register_frame, render_K, scale_K
from ros_gs.mapping.lidar_map import LidarGaussianMapper, LidarMapConfig
from ros_gs.mapping.lidar_odometry import LidarOdometry, LidarOdometryConfig
from ros_gs.mapping.mapper import Keyframe, Mapper, PoseEstimate

__all__ = [
    "Keyframe", "LidarGaussianMapper", "LidarMapConfig", "LidarOdometry", "LidarOdometryConfig", "Mapper", "MapperConfig",
    "PoseEstimate", "RgbdFrame", "ate_rmse", "downscale", "psnr", "register_color_to_depth", "register_frame", "render_K",
    "scale_K", "ssim",
]
