"""``sensor_msgs/Imu`` <-> :class:`ImuSample`.

sensor_msgs/Imu conventions kept here: a covariance whose element 0 is -1 means "this
quantity is not provided"; all zeros means "covariance unknown".  The orientation is
``None`` when ``orientation_covariance[0] == -1`` and also when the quaternion is all
zeros (drivers without orientation often forget the -1 marker, and a zero quaternion is
no rotation at all).  Angular velocity and linear acceleration must be finite and plausible: a
NaN there would silently poison any integration downstream, and ten samples of 1e6 m/s^2 put
LiDAR odometry 19,645 km off, so either is a SensorDataError (a counted skip in a node).
Plausible: up to ``MAX_ACCEL`` and ``MAX_GYRO``, above the full scale of the MEMS IMUs robots
carry (16 g and 2000 deg/s), which clip there.
Covariances are passed through unchanged (markers included) as 3x3 arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ros_gs.errors import SensorDataError
from ros_gs.sensors._util import float_array
from ros_gs.sensors.poses import vector3_from_msg, vector3_to_msg
from ros_gs.sensors.stamps import Make, make_header, stamp_to_ns


MAX_ACCEL = 200.0  # m/s^2 (about 20 g)
MAX_GYRO = 40.0  # rad/s (about 2300 deg/s)


def _zeros33() -> np.ndarray:
    return np.zeros((3, 3))


@dataclass(eq=False)  # fields are arrays: compare them explicitly
class ImuSample:
    """One IMU reading in SI units (rad/s, m/s^2), quaternion as x, y, z, w."""

    stamp_ns: int
    frame_id: str
    orientation: np.ndarray | None  # (4,) xyzw unit quaternion, or None if not provided
    angular_velocity: np.ndarray  # (3,)
    linear_acceleration: np.ndarray  # (3,)
    orientation_covariance: np.ndarray = field(default_factory=_zeros33)
    angular_velocity_covariance: np.ndarray = field(default_factory=_zeros33)
    linear_acceleration_covariance: np.ndarray = field(default_factory=_zeros33)

    def __post_init__(self) -> None:
        self.angular_velocity = float_array(self.angular_velocity, (3,), "IMU angular_velocity")
        self.linear_acceleration = float_array(self.linear_acceleration, (3,), "IMU linear_acceleration")
        self.orientation_covariance = float_array(self.orientation_covariance, (3, 3), "IMU orientation_covariance")
        self.angular_velocity_covariance = float_array(
            self.angular_velocity_covariance, (3, 3), "IMU angular_velocity_covariance"
        )
        self.linear_acceleration_covariance = float_array(
            self.linear_acceleration_covariance, (3, 3), "IMU linear_acceleration_covariance"
        )
        if self.orientation is not None:
            q = float_array(self.orientation, (4,), "IMU orientation")
            norm = float(np.linalg.norm(q))
            if norm < 1e-9:
                raise SensorDataError("IMU orientation quaternion has zero length; use None for 'no orientation'")
            self.orientation = q / norm
        if self.orientation is None:
            self.orientation_covariance[0, 0] = -1.0

    @property
    def has_linear_acceleration(self) -> bool:
        """False when the driver marks the accelerometer as not provided (covariance[0] == -1)."""
        return bool(self.linear_acceleration_covariance[0, 0] != -1.0)


def imu_from_msg(msg: Any, max_accel: float = MAX_ACCEL, max_gyro: float = MAX_GYRO) -> ImuSample:
    """An :class:`ImuSample` from a ``sensor_msgs/Imu`` (see module docstring); SensorDataError
    when its acceleration (m/s^2) or rate (rad/s) exceeds ``max_accel`` or ``max_gyro``."""
    o_cov = float_array(msg.orientation_covariance, (3, 3), "IMU orientation_covariance")
    q = msg.orientation
    orientation: Any = [q.x, q.y, q.z, q.w]
    if o_cov[0, 0] == -1.0:
        orientation = None
    else:
        quat = float_array(orientation, (4,), "IMU orientation")
        if not np.any(quat):
            orientation = None
    sample = ImuSample(
        stamp_ns=stamp_to_ns(msg.header.stamp),
        frame_id=str(msg.header.frame_id),
        orientation=orientation,
        angular_velocity=vector3_from_msg(msg.angular_velocity),
        linear_acceleration=vector3_from_msg(msg.linear_acceleration),
        orientation_covariance=o_cov,
        angular_velocity_covariance=msg.angular_velocity_covariance,
        linear_acceleration_covariance=msg.linear_acceleration_covariance,
    )
    accel, gyro = float(np.linalg.norm(sample.linear_acceleration)), float(np.linalg.norm(sample.angular_velocity))
    if accel > max_accel or gyro > max_gyro:
        raise SensorDataError(f"IMU sample at {sample.stamp_ns} ns is implausible: |a| = {accel:.3g} m/s^2 "
                              f"(max {max_accel:g}), |w| = {gyro:.3g} rad/s (max {max_gyro:g})")
    return sample


def imu_to_msg(make: Make, sample: ImuSample) -> Any:
    """A ``sensor_msgs/Imu`` from a sample; no orientation -> zero quaternion, covariance[0] = -1."""
    q = np.zeros(4) if sample.orientation is None else np.asarray(sample.orientation, dtype=np.float64)
    o_cov = np.array(sample.orientation_covariance, dtype=np.float64).reshape(-1)
    if sample.orientation is None:
        o_cov[0] = -1.0
    w, a = sample.angular_velocity, sample.linear_acceleration
    return make(
        "sensor_msgs/msg/Imu",
        header=make_header(make, sample.stamp_ns, sample.frame_id),
        orientation=make("geometry_msgs/msg/Quaternion", x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])),
        orientation_covariance=o_cov,
        angular_velocity=vector3_to_msg(make, w),
        angular_velocity_covariance=np.asarray(sample.angular_velocity_covariance, dtype=np.float64).reshape(-1),
        linear_acceleration=vector3_to_msg(make, a),
        linear_acceleration_covariance=np.asarray(sample.linear_acceleration_covariance, dtype=np.float64).reshape(-1),
    )
