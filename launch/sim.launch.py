"""ROS 2 launch file for the realrl sim node alone, with its flags as launch arguments.

    ros2 launch launch/sim.launch.py env:=realrl/FrankaLift-v0 namespace:=arm joint_prefix:=fr3_

The node is an ordinary rclpy node (REALRL_ROS_BACKEND=rclpy): `ros2 topic list` shows /joint_states,
/franka_robot_state_broadcaster/current_pose, /objects/<name>/pose, /clock, ...; remaps and parameters go
through `--ros-args` as for any ROS 2 node.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.substitutions import LaunchConfiguration


def generate_launch_description():
    arg = LaunchConfiguration
    return LaunchDescription([
        DeclareLaunchArgument("env", default_value="realrl/FrankaLift-v0"),
        DeclareLaunchArgument("namespace", default_value=""),
        DeclareLaunchArgument("joint_prefix", default_value=""),
        DeclareLaunchArgument("python", default_value="python3", description="Python with realrl installed"),
        ExecuteProcess(
            cmd=[arg("python"), "-m", "hardware.nodes.sim_node", "--env", arg("env"), "--namespace", arg("namespace"),
                 "--ros-args", "-r", "__node:=sim", "-p", ["joint_prefix:=", arg("joint_prefix")]],
            name="sim",
            output="screen",
            additional_env={"REALRL_ROS_BACKEND": "rclpy"},
        ),
    ])
