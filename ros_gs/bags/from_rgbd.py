"""``ros-gs bag from-rgbd``: an RGB-D frame folder (7-Scenes layout) -> rosbag2.

Topics (frames follow REP 103/105 naming; images are lossless, so decoded frames equal the
source files bit for bit):

- ``/camera/color/image_raw``   sensor_msgs/Image rgb8, frame ``camera_color_optical_frame``
- ``/camera/depth/image_raw``   sensor_msgs/Image 16UC1 millimetres (0 = no return), frame
  ``camera_depth_optical_frame``
- ``/camera/color/camera_info``, ``/camera/depth/camera_info``  sensor_msgs/CameraInfo: the
  folder's K for depth; for colour the colour camera's own K when one is given (``color``,
  e.g. ``kinect-v1`` for 7-Scenes, whose colour is not registered to depth), else the same K
- ``/tf_static`` depth -> colour optical frames (the colour camera's extrinsic; identity when
  registered), once, transient-local
- ``/ground_truth/tf``  ``world`` -> ``gt/camera_depth_optical_frame``: the ground-truth pose (the
  folder's poses are the depth camera's, as in 7-Scenes' KinectFusion poses).  Ground truth only
  under ``/ground_truth/``, as in ``ros-gs bag from-mujoco`` bags: on ``/tf`` the camera frame
  would have two parents once a mapper publishes its own estimate (``ros2 bag play`` with a
  running mapper)
- ``/ground_truth/pose``  geometry_msgs/PoseStamped, the same pose
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ros_gs.bags.writer import BagWriter
from ros_gs.datasets.rgbd_folder import DEFAULT_START_NS, ColorCamera, RgbdFolder
from ros_gs.errors import ConfigError
from ros_gs.runtime.qos import LATCHED_QOS, SENSOR_QOS
from ros_gs.sensors.camera import PinholeCamera, camera_to_info
from ros_gs.sensors.image import numpy_to_image
from ros_gs.sensors.poses import matrix_to_pose_stamped, matrix_to_transform_stamped
from ros_gs.sensors.stamps import make_header

log = logging.getLogger("ros_gs.bags")

WORLD = "world"
COLOR_FRAME = "camera_color_optical_frame"
DEPTH_FRAME = "camera_depth_optical_frame"
GT_FRAME = "gt/" + DEPTH_FRAME  # the true pose of the depth camera (/ground_truth/tf)
TOPICS = {
    "color": "/camera/color/image_raw",
    "depth": "/camera/depth/image_raw",
    "color_info": "/camera/color/camera_info",
    "depth_info": "/camera/depth/camera_info",
    "gt_tf": "/ground_truth/tf",
    "tf_static": "/tf_static",
    "gt_pose": "/ground_truth/pose",
}


def rgbd_folder_to_bag(
    folder: Path | str,
    out: Path | str,
    *,
    fps: float = 30.0,
    max_frames: int | None = None,
    first_frame: int = 0,
    step: int = 1,
    start_ns: int = DEFAULT_START_NS,
    color: ColorCamera | str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, int]:
    """Write the folder's frames ``first_frame, first_frame + step, ...`` (at most ``max_frames``)
    to ``out`` (MCAP), stamped at their own index / fps; returns messages written per topic.
    ``color``: the colour camera when colour is not registered to depth (see :class:`RgbdFolder`)."""
    if first_frame < 0 or step < 1 or (max_frames is not None and max_frames < 1):
        raise ConfigError(f"first_frame must be >= 0, step >= 1 and max_frames >= 1, got {first_frame}, {step}, {max_frames}")
    data = RgbdFolder(folder, fps=fps, start_ns=start_ns, color=color)
    indices = list(range(first_frame, len(data), step))
    if max_frames is not None:
        indices = indices[:max_frames]
    n = len(indices)
    if n == 0:  # an empty bag that looks like a result would hide the mistake
        raise ConfigError(f"first frame {first_frame} is past the folder's last frame ({len(data) - 1}): nothing to write")
    with BagWriter(out, overwrite=overwrite) as bag:
        make = bag.factory
        color_K, T_depth_color = data.K, np.eye(4)
        if data.color is not None:
            color_K, T_depth_color = data.color.K, np.linalg.inv(data.color.T_color_depth)
        cams = {
            "color_info": PinholeCamera(width=data.width, height=data.height, K=color_K, frame_id=COLOR_FRAME),
            "depth_info": PinholeCamera(width=data.width, height=data.height, K=data.K, frame_id=DEPTH_FRAME),
        }
        static = make(
            "tf2_msgs/msg/TFMessage",
            transforms=[matrix_to_transform_stamped(make, T_depth_color, make_header(make, start_ns, DEPTH_FRAME), COLOR_FRAME)],
        )
        bag.write(TOPICS["tf_static"], "tf2_msgs/msg/TFMessage", static, start_ns, LATCHED_QOS)
        missing_pose = 0
        for i in tqdm(indices, desc="frames", unit="frame", disable=not progress):
            frame = data[i]
            t = frame.stamp_ns
            # The pose goes first: at equal log times a replay delivers in write order, so an
            # evaluator can look up the true pose at an image's stamp when the image arrives.
            if frame.pose_c2w is None:
                missing_pose += 1
            else:
                header = make_header(make, t, WORLD)
                tf = make("tf2_msgs/msg/TFMessage", transforms=[matrix_to_transform_stamped(make, frame.pose_c2w, header, GT_FRAME)])
                bag.write(TOPICS["gt_tf"], "tf2_msgs/msg/TFMessage", tf, t)
                bag.write(TOPICS["gt_pose"], "geometry_msgs/msg/PoseStamped", matrix_to_pose_stamped(make, frame.pose_c2w, header), t)
            bag.write(TOPICS["color"], "sensor_msgs/msg/Image", numpy_to_image(make, frame.rgb, "rgb8", t, COLOR_FRAME), t, SENSOR_QOS)
            bag.write(TOPICS["depth"], "sensor_msgs/msg/Image", numpy_to_image(make, frame.depth_mm, "16UC1", t, DEPTH_FRAME), t, SENSOR_QOS)
            for key, cam in cams.items():
                bag.write(TOPICS[key], "sensor_msgs/msg/CameraInfo", camera_to_info(make, cam, t), t)
        if missing_pose:
            log.warning("%d of %d frames have no pose file: no ground truth for them", missing_pose, n)
        return dict(bag.counts)
