"""tf_buffer: tree of timed transforms, lookups with interpolation, errors."""

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ros_gs.errors import TransformError
from ros_gs.runtime.typestore import MessageFactory
from ros_gs.sensors.stamps import make_header
from ros_gs.sensors.tf_buffer import TfBuffer, Transform

make = MessageFactory()
S = 1_000_000_000


def yaw(deg):
    """Quaternion xyzw of a rotation by ``deg`` about z."""
    h = math.radians(deg) / 2
    return [0.0, 0.0, math.sin(h), math.cos(h)]


def rz(deg):
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def chain():
    """world -> base (dynamic: (0,0,0) yaw 0 at 0 s, (2,0,0) yaw 90 at 2 s); base -> camera static."""
    buf = TfBuffer()
    buf.set_transform("world", "base", 0, [0, 0, 0], yaw(0))
    buf.set_transform("world", "base", 2 * S, [2, 0, 0], yaw(90))
    buf.set_transform("base", "camera", 0, [0.5, 0, 0.25], yaw(90), static=True)
    return buf


def test_chain_interpolated_at_midpoint_analytic():
    T = chain().lookup("world", "camera", 1 * S)
    # base at t=1: halfway translation (1,0,0), slerp halfway = yaw 45.
    # T_world_camera: R = Rz(45) Rz(90) = Rz(135), t = (1,0,0) + Rz(45) (0.5, 0, 0.25)
    expected = np.eye(4)
    expected[:3, :3] = rz(135)
    expected[:3, 3] = [1 + 0.5 * math.cos(math.pi / 4), 0.5 * math.sin(math.pi / 4), 0.25]
    np.testing.assert_allclose(T.matrix, expected, atol=1e-12)
    assert T.stamp_ns == S
    np.testing.assert_allclose(T.apply([1.0, 0, 0]), expected[:3, :3] @ [1, 0, 0] + expected[:3, 3], atol=1e-12)


def test_interpolation_quarter_way():
    T = chain().lookup("world", "base", S // 2)
    np.testing.assert_allclose(T.translation, [0.5, 0, 0], atol=1e-12)
    angle = Rotation.from_quat(T.rotation).as_euler("xyz", degrees=True)[2]
    assert angle == pytest.approx(22.5)


def test_inverse_lookup_is_inverse_matrix():
    buf = chain()
    a = buf.lookup("world", "camera", S // 3).matrix
    b = buf.lookup("camera", "world", S // 3).matrix
    np.testing.assert_allclose(a @ b, np.eye(4), atol=1e-12)


def test_exact_sample_times_and_latest():
    buf = chain()
    np.testing.assert_allclose(buf.lookup("world", "base", 2 * S).translation, [2, 0, 0])
    latest = buf.lookup("world", "base")
    assert latest.stamp_ns == 2 * S
    np.testing.assert_allclose(latest.matrix[:3, :3], rz(90), atol=1e-12)


def test_latest_common_time_over_two_dynamic_edges():
    buf = TfBuffer()
    buf.set_transform("map", "odom", 0, [0, 0, 0], yaw(0))
    buf.set_transform("map", "odom", 3 * S, [3, 0, 0], yaw(0))
    buf.set_transform("odom", "base", 1 * S, [0, 0, 0], yaw(0))
    buf.set_transform("odom", "base", 2 * S, [0, 1, 0], yaw(0))
    T = buf.lookup("map", "base")
    assert T.stamp_ns == 2 * S
    np.testing.assert_allclose(T.translation, [2, 1, 0], atol=1e-12)


def test_siblings_only_use_edges_below_common_ancestor():
    buf = chain()
    buf.set_transform("base", "lidar", 0, [0, 0, 1], yaw(0), static=True)
    T = buf.lookup("lidar", "camera", 100 * S)  # world -> base has no data at 100 s: not needed
    np.testing.assert_allclose(T.translation, [0.5, 0, -0.75], atol=1e-12)
    assert T.stamp_ns == 100 * S
    assert buf.lookup("lidar", "camera").stamp_ns is None  # all-static path


def test_out_of_order_inserts():
    buf = TfBuffer()
    for t in (2, 0, 3, 1):
        buf.set_transform("a", "b", t * S, [t, 0, 0], yaw(0))
    for t in (0.5, 1.5, 2.5):
        np.testing.assert_allclose(buf.lookup("a", "b", int(t * S)).translation, [t, 0, 0], atol=1e-12)


def test_same_stamp_replaces():
    buf = TfBuffer()
    buf.set_transform("a", "b", S, [1, 0, 0], yaw(0))
    buf.set_transform("a", "b", S, [5, 0, 0], yaw(0))
    assert buf.lookup("a", "b", S).translation.tolist() == [5, 0, 0]


def test_slerp_takes_shortest_path_with_flipped_sign():
    buf = TfBuffer()
    buf.set_transform("a", "b", 0, [0, 0, 0], yaw(10))
    buf.set_transform("a", "b", S, [0, 0, 0], -np.array(yaw(30)))  # same rotation, other hemisphere
    angle = Rotation.from_quat(buf.lookup("a", "b", S // 2).rotation).as_euler("xyz", degrees=True)[2]
    assert angle == pytest.approx(20.0)


def test_quaternion_normalised():
    buf = TfBuffer()
    buf.set_transform("a", "b", 0, [0, 0, 0], [0, 0, 0, 2], static=True)
    assert buf.lookup("a", "b").rotation.tolist() == [0, 0, 0, 1]


def test_cache_prunes_old_samples():
    buf = TfBuffer(cache_ns=1 * S)
    for i in range(51):  # 0 .. 5 s every 0.1 s
        buf.set_transform("a", "b", i * S // 10, [i, 0, 0], yaw(0))
    assert len(buf._edges["b"].stamps) <= 11
    np.testing.assert_allclose(buf.lookup("a", "b", 4 * S).translation, [40, 0, 0], atol=1e-9)
    with pytest.raises(TransformError, match="into the past"):
        buf.lookup("a", "b", 3 * S)


def test_extrapolation_errors_say_by_how_much():
    buf = chain()
    with pytest.raises(TransformError, match="0.500000000 s into the future.*world -> base"):
        buf.lookup("world", "camera", 2 * S + S // 2)
    with pytest.raises(TransformError, match="0.250000000 s into the past"):
        buf.lookup("camera", "world", -S // 4)


def test_extrapolation_tolerance_clamps():
    buf = TfBuffer(tolerance_ns=S // 10)
    buf.set_transform("a", "b", 0, [0, 0, 0], yaw(0))
    buf.set_transform("a", "b", S, [1, 0, 0], yaw(0))
    assert buf.lookup("a", "b", S + S // 20).translation.tolist() == [1, 0, 0]
    with pytest.raises(TransformError, match="future"):
        buf.lookup("a", "b", S + S // 5)


def test_unknown_frame_lists_known_frames():
    with pytest.raises(TransformError, match="unknown frame 'gripper'; known frames: \\['base', 'camera', 'world'\\]"):
        chain().lookup("world", "gripper", S)


def test_not_connected():
    buf = chain()
    buf.set_transform("map", "robot2", 0, [0, 0, 0], yaw(0), static=True)
    with pytest.raises(TransformError, match="not connected.*'map'.*'world'"):
        buf.lookup("robot2", "camera", S)


def test_second_parent_rejected_and_first_kept():
    buf = chain()
    with pytest.raises(TransformError, match="'camera' already has parent 'base'; rejecting second parent 'world'"):
        buf.set_transform("world", "camera", 0, [0, 0, 0], yaw(0), static=True)
    assert buf.parent("camera") == "base"


def test_cycle_and_self_loop_rejected():
    buf = chain()
    with pytest.raises(TransformError, match="cycle"):
        buf.set_transform("camera", "world", 0, [0, 0, 0], yaw(0))
    with pytest.raises(TransformError, match="itself"):
        buf.set_transform("a", "a", 0, [0, 0, 0], yaw(0))


def test_static_dynamic_mismatch_rejected():
    buf = chain()
    with pytest.raises(TransformError, match="already static"):
        buf.set_transform("base", "camera", S, [0, 0, 0], yaw(0), static=False)


@pytest.mark.parametrize(
    "t, q, words",
    [
        ([np.nan, 0, 0], yaw(0), "non-finite"),
        ([0, 0, 0], [0, 0, np.inf, 1], "non-finite"),
        ([0, 0, 0], [0, 0, 0, 0], "zero length"),
        ([0, 0], yaw(0), "3 numbers"),
    ],
)
def test_bad_transform_values(t, q, words):
    with pytest.raises(TransformError, match=words):
        TfBuffer().set_transform("a", "b", 0, t, q)


def test_bad_frame_names_and_stamps():
    with pytest.raises(TransformError, match="frame id"):
        TfBuffer().set_transform("", "b", 0, [0, 0, 0], yaw(0))
    with pytest.raises(TransformError, match="integer"):
        TfBuffer().set_transform("a", "b", 1.5, [0, 0, 0], yaw(0))
    with pytest.raises(TransformError, match="cache_ns"):
        TfBuffer(cache_ns=0)


def test_same_frame_is_identity_and_leading_slash_ignored():
    buf = chain()
    assert buf.lookup("nowhere", "nowhere", 5).matrix.tolist() == np.eye(4).tolist()
    np.testing.assert_allclose(buf.lookup("/world", "/base", S).translation, [1, 0, 0], atol=1e-12)


def transform_stamped(parent, child, stamp_ns, t, q):
    return make(
        "geometry_msgs/msg/TransformStamped",
        header=make_header(make, stamp_ns, parent),
        child_frame_id=child,
        transform=make(
            "geometry_msgs/msg/Transform",
            translation=make("geometry_msgs/msg/Vector3", x=t[0], y=t[1], z=t[2]),
            rotation=make("geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2], w=q[3]),
        ),
    )


def test_add_tf_message_through_cdr():
    msg = make("tf2_msgs/msg/TFMessage", transforms=[
        transform_stamped("world", "base", 0, [0, 0, 0], yaw(0)),
        transform_stamped("world", "base", 2 * S, [2, 0, 0], yaw(90)),
    ])
    static = make("tf2_msgs/msg/TFMessage",
                  transforms=[transform_stamped("base", "camera", 0, [0.5, 0, 0.25], yaw(90))])
    buf = TfBuffer()
    for m, is_static in ((msg, False), (static, True)):
        buf.add_tf_message(make.deserialize(make.serialize(m, "tf2_msgs/msg/TFMessage"), "tf2_msgs/msg/TFMessage"),
                           static=is_static)
    np.testing.assert_allclose(buf.lookup("world", "camera", S).matrix, chain().lookup("world", "camera", S).matrix)


def test_add_tf_message_keeps_good_transforms_and_reports_bad():
    msg = make("tf2_msgs/msg/TFMessage", transforms=[
        transform_stamped("world", "base", 0, [0, 0, 0], [0, 0, 0, 0]),
        transform_stamped("world", "arm", 0, [1, 0, 0], yaw(0)),
    ])
    buf = TfBuffer()
    with pytest.raises(TransformError, match="1 bad transform.*world -> base.*zero length"):
        buf.add_tf_message(msg)
    assert buf.lookup("world", "arm").translation.tolist() == [1, 0, 0]


def test_transform_helpers():
    T = Transform(np.array([1.0, 2, 3]), np.array(yaw(90)))
    M = T.matrix
    np.testing.assert_allclose(Transform.from_matrix(M).matrix, M, atol=1e-12)
    np.testing.assert_allclose((T * T.inverse()).matrix, np.eye(4), atol=1e-12)
    np.testing.assert_allclose((T * T).matrix, M @ M, atol=1e-12)
    np.testing.assert_allclose(T.apply([[1, 0, 0]]), [[1, 3, 3]], atol=1e-12)
    with pytest.raises(TransformError, match="4x4"):
        Transform.from_matrix(np.eye(3))
    assert chain().can_transform("world", "camera", S) and not chain().can_transform("world", "camera", 9 * S)
