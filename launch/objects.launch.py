"""Launch the object graph: physics_tracker (objects' poses through physics and visual forces)
and grasp_planner (grasps by text, service /grasp_planner/query_grasps), with one parameter file.

    ros2 launch ros_gs objects.launch.py [use_sim_time:=true] [params_file:=/my/params.yaml]

The default parameters are for bags of `ros-gs bag from-mujoco` (three table cameras, table top
at 0.75 m); for a real rig list its camera namespaces and its support height instead.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    default_params = os.path.join(get_package_share_directory("ros_gs"), "config", "objects_mujoco.yaml")
    params = [LaunchConfiguration("params_file"), {"use_sim_time": LaunchConfiguration("use_sim_time")}]
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="false",
                description="use /clock (true when playing a bag with `ros2 bag play --clock`)",
            ),
            DeclareLaunchArgument(
                "params_file", default_value=default_params, description="ROS 2 parameter YAML for both nodes"
            ),
            Node(package="ros_gs", executable="physics_tracker", name="physics_tracker", output="screen", parameters=params),
            Node(package="ros_gs", executable="grasp_planner", name="grasp_planner", output="screen", parameters=params),
        ]
    )
