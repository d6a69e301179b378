"""Ground-truth scenes from MuJoCo: a tool, not a part of ros_gs's core.

MuJoCo is the independent judge of dynamics, rendering and sensors: :mod:`ros_gs.sim.scenes`
writes small MJCF scenes with named, labelled objects, and :mod:`ros_gs.sim.recorder` steps
them and yields camera frames (RGB, z-depth, instance masks), skewed spinning-LiDAR scans, IMU
samples and the exact poses, all as numpy arrays.  The core never imports this package; it
imports only numpy, scipy, mujoco and :mod:`ros_gs.errors`.
"""

from ros_gs.sim.scenes import SCENES, CameraSpec, LidarSpec, ObjectSpec, SceneSpec, build_scene

__all__ = ["SCENES", "CameraSpec", "LidarSpec", "ObjectSpec", "SceneSpec", "build_scene"]
