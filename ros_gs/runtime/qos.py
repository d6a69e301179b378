"""Quality-of-service profiles, reduced to the three knobs ros_gs nodes choose.

Both runtimes map these onto their own QoS: rclpy onto ``rclpy.qos.QoSProfile``, replay
onto the ``offered_qos_profiles`` written into the output bag (so ``ros2 bag play``
re-publishes latched topics as transient-local).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QoS:
    """History depth, reliability and durability of a publisher or subscription."""

    depth: int = 10
    reliable: bool = True
    transient_local: bool = False

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ValueError(f"QoS depth must be >= 1, got {self.depth}")


#: Default for commands and results.
DEFAULT_QOS = QoS()
#: Sensor streams: best effort, shallow queue (rclpy's qos_profile_sensor_data).
SENSOR_QOS = QoS(depth=5, reliable=False)
#: Latched data sent once (maps, object lists, /tf_static).
LATCHED_QOS = QoS(depth=1, reliable=True, transient_local=True)
#: /tf as tf2_ros subscribes to it (tf2_ros/qos.hpp: depth 100).
TF_QOS = QoS(depth=100, reliable=True)
#: /tf_static as tf2_ros: depth 100 so several latched broadcasters all arrive.
TF_STATIC_QOS = QoS(depth=100, reliable=True, transient_local=True)
