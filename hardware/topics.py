"""Topic names of an arm robot node, as the real drivers (franka_ros2, ros2_control, MoveIt Servo) name them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArmTopics:
    """Every topic between an arm node (sim or real driver) and its clients; relative names, so a namespace or
    `--ros-args -r` remap moves them. Commands travel on topics: ROS 2 services/actions are rmw-specific in
    plain DDS."""

    joint_states: str = "joint_states"
    """sensor_msgs/JointState of arm and finger joints (joint_state_broadcaster)."""
    current_pose: str = "franka_robot_state_broadcaster/current_pose"
    """geometry_msgs/PoseStamped of the TCP in the base frame (franka_robot_state_broadcaster)."""
    twist_command: str = "servo_node/delta_twist_cmds"
    """geometry_msgs/TwistStamped TCP velocity for one control period (MoveIt Servo's input)."""
    pose_command: str = "cartesian_impedance_controller/equilibrium_pose"
    """geometry_msgs/PoseStamped absolute TCP target for a compliant Cartesian controller."""
    joint_command: str = "joint_position_controller/commands"
    """std_msgs/Float64MultiArray arm joint targets (rad), as ros2_control's forward command controllers take."""
    gripper_command: str = "gripper_controller/commands"
    """std_msgs/Float64MultiArray [closure]: 0 open .. 1 closed."""
    object_pose: str = "objects/{name}/pose"
    """geometry_msgs/PoseStamped of tracked object `name`, as a mocap or vision tracker publishes it."""
    image: str = "{camera}/color/image_raw"
    """sensor_msgs/Image of camera `camera` (realsense2_camera's layout)."""
    camera_info: str = "{camera}/color/camera_info"
    """sensor_msgs/CameraInfo of camera `camera`."""
    reset: str = "realrl/reset"
    """std_msgs/String JSON request {"id", "kind": "robot"|"task", ...}: home the robot / reset the scene."""
    reset_done: str = "realrl/reset_done"
    """std_msgs/String JSON {"id", "stamp"} (latched): the request is done; states stamped >= stamp follow it."""
    clock: str = "/clock"
    """rosgraph_msgs/Clock (sim time)."""

    def object(self, name: str) -> str:
        """The pose topic of one tracked object."""
        return self.object_pose.format(name=name)

    def camera(self, camera: str) -> tuple[str, str]:
        """(image, camera_info) topics of one camera."""
        return self.image.format(camera=camera), self.camera_info.format(camera=camera)
