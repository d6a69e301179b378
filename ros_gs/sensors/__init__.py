"""sensors: ROS messages in, numpy arrays out, and back.

One small module per message family (stamps, image, compressed, camera, pointcloud2, imu),
plus a TF buffer and an approximate time synchroniser.  Messages are duck-typed (rosbags
dataclasses in replay, rclpy messages live): fields are read by name, and messages are
built through a ``make(typename, **fields)`` callable, so this package imports neither ROS
nor :mod:`ros_gs.runtime`.  Bad input raises :class:`~ros_gs.errors.SensorDataError`
(:class:`~ros_gs.errors.TransformError` for TF).
"""

from ros_gs.sensors.camera import PinholeCamera, camera_from_info, camera_to_info
from ros_gs.sensors.compressed import compressed_to_numpy, numpy_to_compressed
from ros_gs.sensors.image import depth_to_metres, image_to_numpy, numpy_to_image
from ros_gs.sensors.imu import ImuSample, imu_from_msg, imu_to_msg
from ros_gs.sensors.pointcloud2 import (
    array_to_pointcloud2,
    pack_rgb,
    pointcloud2_to_array,
    unpack_rgb,
    xyz_from_cloud,
)
from ros_gs.sensors.stamps import header_stamp_ns, make_header, ns_to_stamp, stamp_to_ns
from ros_gs.sensors.sync import ApproximateTimeSync
from ros_gs.sensors.tf_buffer import TfBuffer, Transform

__all__ = [
    "ApproximateTimeSync",
    "ImuSample",
    "PinholeCamera",
    "TfBuffer",
    "Transform",
    "array_to_pointcloud2",
    "camera_from_info",
    "camera_to_info",
    "compressed_to_numpy",
    "depth_to_metres",
    "header_stamp_ns",
    "image_to_numpy",
    "imu_from_msg",
    "imu_to_msg",
    "make_header",
    "ns_to_stamp",
    "numpy_to_compressed",
    "numpy_to_image",
    "pack_rgb",
    "pointcloud2_to_array",
    "stamp_to_ns",
    "unpack_rgb",
    "xyz_from_cloud",
]
