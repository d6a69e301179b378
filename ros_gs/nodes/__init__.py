"""Thin ROS nodes: message -> sensors -> core call -> message.

``NODES`` maps each executable name (``ros2 run ros_gs <name>``, ``ros-gs replay --node
<name>``) to its class.  Classes are imported on demand so listing nodes stays cheap.
CMakeLists.txt, setup.py, scripts/ and launch/ must name the same set (a test checks).
"""

from __future__ import annotations

import importlib
from typing import Any

NODES: dict[str, str] = {
    "grasp_planner": "ros_gs.nodes.grasp_planner:GraspPlannerNode",
    "image_stats": "ros_gs.nodes.image_stats:ImageStatsNode",
    "lidar_odometry": "ros_gs.nodes.lidar_odometry:LidarOdometryNode",
    "mapper": "ros_gs.nodes.mapper:MapperNode",
    "physics_tracker": "ros_gs.nodes.physics_tracker:PhysicsTrackerNode",
}


def load_node(name: str) -> Any:
    """The node class registered under ``name``."""
    try:
        module, _, cls = NODES[name].partition(":")
    except KeyError:
        raise KeyError(f"unknown node {name!r}; known: {', '.join(sorted(NODES))}") from None
    return getattr(importlib.import_module(module), cls)
