"""imu: sensor_msgs/Imu <-> ImuSample."""

import numpy as np
import pytest

from ros_gs.errors import SensorDataError
from ros_gs.runtime.typestore import MessageFactory
from ros_gs.sensors.imu import ImuSample, imu_from_msg, imu_to_msg
from ros_gs.sensors.stamps import make_header

make = MessageFactory()
TYPE = "sensor_msgs/msg/Imu"


def cdr(msg):
    return make.deserialize(make.serialize(msg, TYPE), TYPE)


def imu_msg(q=(0.0, 0.0, 0.0, 2.0), w=(0.1, -0.2, 0.3), a=(0.0, 0.0, 9.81), o_cov=None, w_cov=None, a_cov=None):
    vec = lambda v: make("geometry_msgs/msg/Vector3", x=v[0], y=v[1], z=v[2])  # noqa: E731
    return make(
        TYPE,
        header=make_header(make, 1_500_000_000, "imu_link"),
        orientation=make("geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2], w=q[3]),
        orientation_covariance=np.arange(9.0) if o_cov is None else np.asarray(o_cov, float),
        angular_velocity=vec(w),
        angular_velocity_covariance=np.eye(3).ravel() * 0.01 if w_cov is None else np.asarray(w_cov, float),
        linear_acceleration=vec(a),
        linear_acceleration_covariance=np.zeros(9) if a_cov is None else np.asarray(a_cov, float),
    )


def test_from_msg_normalises_and_reshapes():
    s = imu_from_msg(imu_msg())
    assert (s.stamp_ns, s.frame_id) == (1_500_000_000, "imu_link")
    assert s.orientation.tolist() == [0.0, 0.0, 0.0, 1.0]
    assert s.angular_velocity.tolist() == [0.1, -0.2, 0.3]
    assert s.linear_acceleration.tolist() == [0.0, 0.0, 9.81]
    assert s.orientation_covariance.shape == (3, 3) and s.orientation_covariance[1, 2] == 5.0
    np.testing.assert_array_equal(s.angular_velocity_covariance, np.eye(3) * 0.01)


def test_orientation_none_when_marked_or_zero():
    cov = np.zeros(9)
    cov[0] = -1
    assert imu_from_msg(imu_msg(q=(0.5, 0.5, 0.5, 0.5), o_cov=cov)).orientation is None
    zero = imu_from_msg(imu_msg(q=(0, 0, 0, 0), o_cov=np.zeros(9)))
    assert zero.orientation is None and zero.orientation_covariance[0, 0] == -1


def test_accelerometer_marked_missing():
    cov = np.zeros(9)
    cov[0] = -1
    assert imu_from_msg(imu_msg()).has_linear_acceleration
    assert not imu_from_msg(imu_msg(a=(0.0, 0.0, 0.0), a_cov=cov)).has_linear_acceleration


def test_round_trip_through_cdr():
    s = imu_from_msg(imu_msg(q=(0.1, 0.2, 0.3, 0.9)))
    back = imu_from_msg(cdr(imu_to_msg(make, s)))
    assert back.stamp_ns == s.stamp_ns and back.frame_id == s.frame_id
    for name in ("orientation", "angular_velocity", "linear_acceleration", "orientation_covariance",
                 "angular_velocity_covariance", "linear_acceleration_covariance"):
        np.testing.assert_allclose(getattr(back, name), getattr(s, name), rtol=1e-12)
    assert np.linalg.norm(back.orientation) == pytest.approx(1.0)


def test_round_trip_without_orientation():
    s = ImuSample(stamp_ns=5, frame_id="imu", orientation=None, angular_velocity=[1, 2, 3],
                  linear_acceleration=[4, 5, 6])
    msg = cdr(imu_to_msg(make, s))
    assert msg.orientation_covariance[0] == -1.0
    assert (msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w) == (0, 0, 0, 0)
    back = imu_from_msg(msg)
    assert back.orientation is None and back.linear_acceleration.tolist() == [4, 5, 6]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(w=(float("nan"), 0, 0)), "angular_velocity has non-finite"),
        (dict(a=(0, float("inf"), 0)), "linear_acceleration has non-finite"),
        (dict(q=(float("nan"), 0, 0, 1)), "orientation has non-finite"),
        (dict(w_cov=[float("nan")] + [0] * 8), "angular_velocity_covariance"),
        (dict(a_cov=[0] * 8), "9 values"),
    ],
)
def test_rejects(kwargs, words):
    with pytest.raises(SensorDataError, match=words):
        imu_from_msg(imu_msg(**kwargs))


def test_sample_rejects_zero_quaternion_and_bad_shapes():
    with pytest.raises(SensorDataError, match="zero length"):
        ImuSample(0, "imu", orientation=[0, 0, 0, 0], angular_velocity=[0, 0, 0], linear_acceleration=[0, 0, 0])
    with pytest.raises(SensorDataError, match="3 values"):
        ImuSample(0, "imu", orientation=None, angular_velocity=[0, 0], linear_acceleration=[0, 0, 0])


def test_implausible_samples_are_refused() -> None:
    """Beyond any MEMS IMU's full scale (a driver's garbage): a SensorDataError, a counted skip
    in the nodes; a hard but real 15 g knock passes."""
    make = MessageFactory()
    ok = imu_to_msg(make, ImuSample(1, "imu", None, [0.0, 0.0, 30.0], [0.0, 0.0, 15 * 9.81]))
    assert imu_from_msg(ok).linear_acceleration[2] == pytest.approx(15 * 9.81)
    for w, a in (([0.0, 0.0, 0.0], [1e6, 0.0, 9.81]), ([100.0, 0.0, 0.0], [0.0, 0.0, 9.81])):
        with pytest.raises(SensorDataError, match="implausible"):
            imu_from_msg(imu_to_msg(make, ImuSample(1, "imu", None, w, a)))
