"""Node configs, importable without DDS or MuJoCo (the CLI parses them before anything heavy loads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import tyro

from hardware.teleop.registry import DeviceChoice
from robot.core.errors import ConfigError


@dataclass(frozen=True)
class SimNodeConfig:
    """Run a MuJoCo robot and its task scene in real time behind the topics of its real driver (ROS 2 node)."""

    env: str = "realrl/FrankaLift-v0"
    """Registered env id whose robot and scene to run (see `realrl envs`)."""
    cameras: tuple[str, ...] = ()
    """Cameras to render and publish (Franka: 'front', 'wrist')."""
    image_size: int = 84
    """Square image size (pixels)."""
    action_mode: Literal["ee_delta", "joint_pos"] = "ee_delta"
    """What the robot accepts: TCP twists / target poses (ee_delta) or joint targets (joint_pos)."""
    namespace: str = ""
    """ROS namespace of every topic."""
    realtime_factor: float = 1.0
    """Sim seconds per wall second (1 = real time)."""
    control_hz: float = 0.0
    """Control rate (ticks, states and commands per second); 0: the env's own (20 Hz for the Franka tasks)."""
    stats_period_s: float = 1.0
    """How often ~/stats (JSON counters) is published."""
    ros_args: tyro.conf.Suppress[tuple[str, ...]] = ()
    """Everything after `--ros-args` on the command line (remaps `-r a:=b`, parameters `-p name:=value`)."""

    def __post_init__(self) -> None:
        if not self.realtime_factor > 0:
            raise ConfigError(f"--realtime-factor must be > 0, got {self.realtime_factor}")
        if self.control_hz < 0:
            raise ConfigError(f"--control-hz must be > 0 (or 0 for the env's own rate), got {self.control_hz}")

    def env_kwargs(self) -> dict[str, Any]:
        """gym.make kwargs of this scene (only the non-defaults, so any registered id accepts them)."""
        kw: dict[str, Any] = {}
        if self.cameras:
            kw.update(cameras=tuple(self.cameras), image_size=self.image_size)
        if self.action_mode != "ee_delta":
            kw["action_mode"] = self.action_mode
        if self.control_hz:
            kw["control_hz"] = self.control_hz
        return kw


@dataclass(frozen=True)
class FrankaNodeConfig:
    """Bridge realrl's arm topics to a franka_ros2 compliant Cartesian controller, with workspace and speed limits
    enforced before anything reaches the robot."""

    control_hz: float = 20.0
    """Rate of the client's TCP twist commands (each is valid for one period of this rate)."""
    workspace_low: tuple[float, float, float] = (0.15, -0.5, 0.005)
    """Lower corner of the box (m, base frame) the target pose is clipped into."""
    workspace_high: tuple[float, float, float] = (0.85, 0.5, 0.7)
    """Upper corner of that box (m)."""
    max_speed: float = 0.6
    """Largest commanded TCP speed (m/s); faster twists are scaled down."""
    max_angular_speed: float = 4.0
    """Largest commanded TCP angular speed (rad/s)."""
    max_lead: float = 0.06
    """Largest distance (m) the target may run ahead of the measured TCP (no wind-up against contact)."""
    max_lead_angle: float = 0.4
    """Largest angle (rad) between target and measured TCP orientation."""
    command_timeout_s: float = 0.3
    """No command for this long: the target is re-anchored at the measured pose (the arm holds where it is)."""
    home_pose: tuple[float, float, float, float, float, float, float] = (0.543, 0.0, 0.2345, 0.0, 1.0, 0.0, 0.0)
    """TCP pose (position m, wxyz quaternion, base frame) a robot reset drives to (the sim's home: gripper down)."""
    home_speed: float = 0.1
    """TCP speed (m/s) while homing: slow, since nobody is steering."""
    home_angular_speed: float = 0.5
    """TCP angular speed (rad/s) while homing."""
    home_tolerance: float = 0.01
    """Homing is done when the measured TCP is this close (m) to the home pose (and within 0.05 rad)."""
    home_timeout_s: float = 30.0
    """Homing that does not reach the tolerance in this time (an obstacle, a stuck arm) is abandoned: the arm holds
    where it is and no acknowledgement is sent, so the client's reset fails with a clear error."""
    namespace: str = ""
    """ROS namespace of every topic."""
    ros_args: tyro.conf.Suppress[tuple[str, ...]] = ()
    """Everything after `--ros-args` on the command line."""

    def __post_init__(self) -> None:
        if not 0.99 < sum(q * q for q in self.home_pose[3:]) ** 0.5 < 1.01:
            raise ConfigError(f"home_pose must end in a unit wxyz quaternion, got {self.home_pose[3:]}")
        for name in ("home_speed", "home_angular_speed", "home_tolerance", "home_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        lo, hi = self.workspace_low, self.workspace_high
        if not all(a < b for a, b in zip(lo, hi, strict=True)):
            raise ConfigError(f"workspace_low {lo} must be below workspace_high {hi} in every axis")
        for name in ("control_hz", "max_speed", "max_angular_speed", "max_lead", "max_lead_angle",
                     "command_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class RealSenseNodeConfig:
    """Publish an Intel RealSense camera's colour (and depth) as sensor_msgs/Image + CameraInfo, laid out like
    realsense2_camera (`<camera>/color/image_raw`, `<camera>/depth/image_rect_raw`, `.../camera_info`)."""

    serial: str = ""
    """Serial number of the camera to open (empty: the only one connected; an error when several are)."""
    camera: str = "camera"
    """Camera name: the topic prefix and frame ids (`<camera>_color_optical_frame`)."""
    width: int = 640
    """Colour and depth width (pixels)."""
    height: int = 480
    """Colour and depth height (pixels)."""
    fps: int = 30
    """Frame rate."""
    depth: bool = True
    """Also stream depth (16UC1, millimetres)."""
    namespace: str = ""
    """ROS namespace of every topic."""
    ros_args: tyro.conf.Suppress[tuple[str, ...]] = ()
    """Everything after `--ros-args` on the command line."""

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.fps <= 0:
            raise ConfigError(f"--width/--height/--fps must be > 0, got {self.width}x{self.height}@{self.fps}")


@dataclass(frozen=True)
class TeleopNodeConfig:
    """Read a teleop device on this machine and publish it over ROS 2: a TCP twist and gripper closure (what a robot
    node takes) plus the operator's events, for a robot node (direct drive) or `realrl collect --device ros`."""

    teleop: Annotated[DeviceChoice, tyro.conf.arg(name="")] = field(default_factory=DeviceChoice)
    """The device: --device keyboard|spacemouse|gamepad|replay, and its --<device>.* settings."""
    rate_hz: float = 20.0
    """Publishing rate: the robot's control rate (each twist is valid for one period)."""
    linear_speed: float = 0.6
    """TCP speed (m/s) at full deflection (the Franka sim's largest step, 3 cm, at 20 Hz)."""
    angular_speed: float = 4.0
    """TCP angular speed (rad/s) at full deflection (0.2 rad at 20 Hz)."""
    namespace: str = "teleop"
    """ROS namespace of the published topics. The default never moves a robot by itself (a recording collect
    session listens here); use --namespace '' (or the robot's namespace) to drive a robot node directly."""
    frame_id: str = "world"
    """Frame of the twists (the robot's base frame)."""
    wait_for_subscriber: bool = True
    """Read the device only once someone listens (a replayed stream starts when its reader is there)."""
    ros_args: tyro.conf.Suppress[tuple[str, ...]] = ()
    """Everything after `--ros-args` on the command line."""

    def __post_init__(self) -> None:
        for name in ("rate_hz", "linear_speed", "angular_speed"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        if self.teleop.device == "ros":
            raise ConfigError("the teleop node reads a local device: --device keyboard|spacemouse|gamepad|replay")
