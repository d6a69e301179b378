"""Rigid transforms: 4x4 matrices <-> geometry_msgs (Pose, PoseStamped, Transform, TransformStamped),
and 3-vectors <-> geometry_msgs/Vector3 (velocities, accelerations, sizes).

Quaternions follow ROS order (x, y, z, w); conversions use scipy's Rotation, which also
projects a slightly non-orthonormal rotation (as in recorded ground truth) to the nearest one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from ros_gs.errors import SensorDataError
from ros_gs.sensors.stamps import Make


def _check(T: np.ndarray) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise SensorDataError(f"expected a finite 4x4 transform, got shape {T.shape}")
    return T


def matrix_to_xyz_quat(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Translation (3,) and unit quaternion (x, y, z, w) of a 4x4 rigid transform."""
    T = _check(T)
    return T[:3, 3].copy(), Rotation.from_matrix(T[:3, :3]).as_quat()


def xyz_quat_to_matrix(xyz: Any, quat_xyzw: Any) -> np.ndarray:
    """4x4 transform from a translation and a quaternion (x, y, z, w), normalised here."""
    q = np.asarray(quat_xyzw, dtype=np.float64)
    t = np.asarray(xyz, dtype=np.float64)
    if q.shape != (4,) or t.shape != (3,) or not (np.isfinite(q).all() and np.isfinite(t).all()):
        raise SensorDataError(f"bad pose: translation {t.tolist()}, quaternion {q.tolist()}")
    norm = np.linalg.norm(q)
    if norm < 1e-9:
        raise SensorDataError("quaternion has zero norm")
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(q / norm).as_matrix()
    T[:3, 3] = t
    return T


def pose_msg_to_matrix(pose: Any) -> np.ndarray:
    """geometry_msgs/Pose (position, orientation) or Transform (translation, rotation) -> 4x4."""
    p = getattr(pose, "position", None) or pose.translation
    q = getattr(pose, "orientation", None) or pose.rotation
    return xyz_quat_to_matrix([p.x, p.y, p.z], [q.x, q.y, q.z, q.w])


def vector3_to_msg(make: Make, v: Any, msgtype: str = "geometry_msgs/msg/Vector3") -> Any:
    """A Vector3 (or another x, y, z message such as Point) from three numbers."""
    return make(msgtype, x=float(v[0]), y=float(v[1]), z=float(v[2]))


def vector3_from_msg(msg: Any) -> np.ndarray:
    """(3,) float64 from a Vector3 or Point message."""
    return np.array([msg.x, msg.y, msg.z], dtype=np.float64)


def _xyz_quat_msgs(make: Make, T: np.ndarray, point_type: str) -> tuple[Any, Any]:
    t, q = matrix_to_xyz_quat(T)
    return (
        vector3_to_msg(make, t, point_type),
        make("geometry_msgs/msg/Quaternion", x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])),
    )


def matrix_to_pose(make: Make, T: np.ndarray) -> Any:
    position, orientation = _xyz_quat_msgs(make, T, "geometry_msgs/msg/Point")
    return make("geometry_msgs/msg/Pose", position=position, orientation=orientation)


def matrix_to_transform(make: Make, T: np.ndarray) -> Any:
    translation, rotation = _xyz_quat_msgs(make, T, "geometry_msgs/msg/Vector3")
    return make("geometry_msgs/msg/Transform", translation=translation, rotation=rotation)


def matrix_to_pose_stamped(make: Make, T: np.ndarray, header: Any) -> Any:
    return make("geometry_msgs/msg/PoseStamped", header=header, pose=matrix_to_pose(make, T))


def matrix_to_transform_stamped(make: Make, T_parent_child: np.ndarray, header: Any, child_frame_id: str) -> Any:
    """TransformStamped whose header.frame_id is the parent and that maps child points into it."""
    return make(
        "geometry_msgs/msg/TransformStamped",
        header=header,
        child_frame_id=child_frame_id,
        transform=matrix_to_transform(make, T_parent_child),
    )
