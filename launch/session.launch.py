"""ROS 2 launch file for any realrl session (the same topology `realrl up <session>` runs without ROS 2).

    ros2 launch launch/session.launch.py session:=sim-lift

Reads hardware/sessions.py, so a session is described once. Nodes run with the rclpy backend
(REALRL_ROS_BACKEND=rclpy) in the Python that has realrl installed (argument `python:=...`, default python3).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.actions import ExecuteProcess
from launch.substitutions import LaunchConfiguration


def _nodes(context, *args, **kwargs):
    from hardware.sessions import get_session

    session = get_session(LaunchConfiguration("session").perform(context))
    python = LaunchConfiguration("python").perform(context)
    return [
        ExecuteProcess(
            cmd=node.command(python),
            name=node.name,
            output="screen",
            respawn=node.respawn,
            additional_env={"REALRL_ROS_BACKEND": "rclpy"},
        )
        for node in session.nodes
    ]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("session", default_value="sim-lift", description="a name from hardware/sessions.py"),
        DeclareLaunchArgument("python", default_value="python3", description="Python with realrl installed"),
        OpaqueFunction(function=_nodes),
    ])
