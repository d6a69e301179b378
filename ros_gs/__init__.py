"""ros_gs: an online Gaussian-splatting world model for ROS 2.

The core (sensors, mapping, render, physics, ...) imports no ROS; nodes are thin
adapters written against :mod:`ros_gs.runtime`, which runs them under rclpy or
by replaying a rosbag2.
"""

__version__ = "0.1.0"
