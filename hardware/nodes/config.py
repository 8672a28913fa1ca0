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
    pose_as: Literal["", "g1"] = ""
    """'g1': speak a Unitree G1's low-level DDS instead (rt/lowstate, rt/lowcmd with CRCs, the Dex3 topics; joint
    setpoints and gains in, for the humanoid node), for realrl/G1* envs."""
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
    home_settle_speed: float = 0.02
    """... and the measured TCP moves slower than this (m/s): the arm has come to rest at home, not passing through."""
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
        for name in ("home_speed", "home_angular_speed", "home_tolerance", "home_settle_speed", "home_timeout_s"):
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


@dataclass(frozen=True)
class HumanoidNodeConfig:
    """Drive a Unitree G1 with Dex3 hands over its low-level DDS (rt/lowstate, rt/lowcmd, rt/dex3/*) from realrl
    joint targets: position limits, velocity limits, gain bounds, legs and waist held (fixed base), and damping
    (kp = 0) on any fault until re-armed."""

    control_hz: float = 500.0
    """Rate of rt/lowcmd and the Dex3 commands (a steady stream, as Unitree's examples send)."""
    waist: bool = False
    """Clients command the waist (yaw, roll, pitch) too; otherwise it is held at its measured pose with the legs."""
    arm_kp: tuple[float, ...] = (40.0,)
    """Arm stiffness (Nm/rad): one value, or seven (shoulder pitch .. wrist yaw; both arms alike)."""
    arm_kd: tuple[float, ...] = (1.0,)
    """Arm damping (Nm s/rad): one value or seven."""
    hand_kp: tuple[float, ...] = (1.5,)
    """Dex3 stiffness: one value or seven (motor order; the right hand mirrors the left)."""
    hand_kd: tuple[float, ...] = (0.1,)
    """Dex3 damping: one value or seven."""
    hold_kp: float = 60.0
    """Stiffness of the legs and the waist (held at their measured pose, the waist unless --waist)."""
    hold_kd: float = 1.0
    """Damping of the legs and the waist."""
    max_kp: float = 300.0
    """Largest body stiffness ever written (configured gains above it are refused)."""
    max_kd: float = 20.0
    """Largest body damping ever written."""
    max_hand_kp: float = 5.0
    """Largest Dex3 stiffness ever written."""
    max_hand_kd: float = 1.0
    """Largest Dex3 damping ever written."""
    damping_kd: float = 2.0
    """Body damping in damping mode (kp = 0 on every motor)."""
    hand_damping_kd: float = 0.1
    """Dex3 damping in damping mode."""
    arm_max_velocity: float = 8.0
    """Largest speed (rad/s) of an arm (or waist) target: a far target is approached at this rate."""
    hand_max_velocity: float = 12.0
    """Largest speed (rad/s) of a hand target."""
    limit_margin: float = 0.02
    """Body targets are clipped this far (rad) inside the joint limits (hand targets to the limits)."""
    state_timeout_s: float = 0.1
    """No rt/lowstate (or Dex3 state) for this long: damping."""
    command_timeout_s: float = 0.5
    """A client that has sent targets and then none for this long: damping."""
    check_state_crc: bool = True
    """Fault on a rt/lowstate whose CRC does not match (off for simulators that leave it 0)."""
    hands: bool = True
    """Drive the two Dex3 hands (rt/dex3/<side>/cmd); False for a G1 without them."""
    stamp: Literal["clock", "tick"] = "clock"
    """Client joint states are stamped with this node's clock at reception, or with rt/lowstate's `tick` (ms; the
    sim node posing as a G1 sets it to its sim time, so stamps match its object poses)."""
    reset_mode: Literal["home", "forward"] = "home"
    """realrl reset requests: 'home' drives a robot reset's arms and hands to the home pose (scene resets are the
    operator's and are refused), 'forward' passes every request to the robot (the sim node posing as a G1
    teleports and resets its scene) and resumes on its first state after."""
    home_arm: tuple[float, float, float, float, float, float, float] = (0.176, 0.288, 0.202, -0.361, -0.326, 0.234,
                                                                          -0.129)
    """Left arm home (rad, shoulder pitch .. wrist yaw; the right arm mirrors it): the sim's table-top posture."""
    home_hand: tuple[float, float, float, float, float, float, float] = (0.0, -0.7, 0.0, 0.0, 0.0, 0.0, 0.0)
    """Left Dex3 home (rad, motor order; the right hand mirrors it): open, thumb back."""
    home_velocity: float = 0.5
    """Largest joint speed (rad/s) while homing."""
    home_tolerance: float = 0.05
    """Homing is done when every arm and hand joint is this close (rad) to home."""
    home_timeout_s: float = 30.0
    """Homing not done by then: abandoned, the robot holds where it is and the request is answered with an error."""
    mode_pr: int = 0
    """LowCmd.mode_pr: 0 PR (ankle pitch/roll joints), 1 AB (ankle motors)."""
    namespace: str = ""
    """ROS namespace of the client-facing topics (the robot's rt/* topics never move)."""
    ros_args: tyro.conf.Suppress[tuple[str, ...]] = ()
    """Everything after `--ros-args` on the command line."""

    def __post_init__(self) -> None:
        for name in ("control_hz", "arm_max_velocity", "hand_max_velocity", "state_timeout_s", "command_timeout_s",
                     "home_velocity", "home_tolerance", "home_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        for name in ("arm_kp", "arm_kd", "hand_kp", "hand_kd"):
            if len(getattr(self, name)) not in (1, 7):
                raise ConfigError(f"--{name.replace('_', '-')} takes one value or seven, got {getattr(self, name)}")
        body = (("arm_kp", self.arm_kp, self.max_kp), ("arm_kd", self.arm_kd, self.max_kd),
                ("hold_kp", (self.hold_kp,), self.max_kp), ("hold_kd", (self.hold_kd,), self.max_kd),
                ("damping_kd", (self.damping_kd,), self.max_kd), ("hand_kp", self.hand_kp, self.max_hand_kp),
                ("hand_kd", self.hand_kd, self.max_hand_kd),
                ("hand_damping_kd", (self.hand_damping_kd,), self.max_hand_kd))
        for name, values, bound in body:
            if not all(0.0 <= v <= bound for v in values):
                raise ConfigError(f"--{name.replace('_', '-')} {values} must lie in [0, {bound}] (the matching "
                                  "--max-* bound); raise the bound deliberately if the robot needs it")
        if not 0.0 <= self.limit_margin < 0.2:
            raise ConfigError(f"--limit-margin must be in [0, 0.2) rad, got {self.limit_margin}")
        if self.mode_pr not in (0, 1):
            raise ConfigError(f"--mode-pr must be 0 (PR) or 1 (AB), got {self.mode_pr}")
