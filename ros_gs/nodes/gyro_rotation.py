"""The gyroscope's rotation between two stamps, expressed in another sensor's frame: the
rotation prior that the mapper node takes from an Imu topic until its IMU fusion is aligned
(the lidar_odometry node gets the same from ros_gs.mapping.LidarInertialOdometry, whose
extrinsic is fixed when the fusion is set up)."""

from __future__ import annotations

import numpy as np

from ros_gs.errors import InputError, SensorDataError
from ros_gs.mapping.imu_rotation import GyroIntegrator
from ros_gs.sensors.imu import ImuSample, imu_from_msg
from ros_gs.sensors.tf_buffer import TfBuffer


class GyroRotation:
    """Integrates ``sensor_msgs/Imu`` angular rates (:meth:`on_imu`, a subscription callback) and
    answers :meth:`rotation` in any frame TF links to the IMU's."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.gyro = GyroIntegrator()
        self.frame: str | None = None  # the IMU's frame, from its messages

    def on_imu(self, msg) -> ImuSample:
        """Add one message's angular rate; returns the parsed sample (for other consumers)."""
        sample = imu_from_msg(msg)
        self.frame = sample.frame_id
        if not self.gyro.add(sample.stamp_ns, sample.angular_velocity):
            raise SensorDataError(f"{self.topic}: sample at {sample.stamp_ns} ns is not newer than the last or not finite")
        return sample

    def rotation(self, t0_ns: int, t1_ns: int, frame: str, tf: TfBuffer) -> np.ndarray | None:
        """``R_t0_t1`` (3x3) of ``frame``, rigidly mounted with the IMU (extrinsic rotation from
        ``tf``); None without IMU samples over the interval or without that TF."""
        if self.frame is None:
            return None
        R = self.gyro.rotation(t0_ns, t1_ns)
        if R is None:
            return None
        try:
            R_fi = tf.lookup(frame, self.frame).matrix[:3, :3]
        except InputError:
            return None
        return R_fi @ R @ R_fi.T
