"""Launch the mapper node with its parameters from share/ros_gs/config.

    ros2 launch ros_gs mapper.launch.py [use_sim_time:=true] [params_file:=/my/params.yaml]
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    default_params = os.path.join(get_package_share_directory("ros_gs"), "config", "mapper.yaml")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="false",
                description="use /clock (true when playing a bag with `ros2 bag play --clock`)",
            ),
            DeclareLaunchArgument(
                "params_file", default_value=default_params, description="ROS 2 parameter YAML for mapper"
            ),
            Node(
                package="ros_gs",
                executable="mapper",
                name="mapper",
                output="screen",
                parameters=[LaunchConfiguration("params_file"), {"use_sim_time": LaunchConfiguration("use_sim_time")}],
            ),
        ]
    )
