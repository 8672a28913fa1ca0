"""Teleoperation devices (keyboard, SpaceMouse, gamepad, replay, ROS) behind robot.core's Teleoperator."""

from hardware.teleop.base import ACTION_DIM, GRIPPER_CLOSED, GRIPPER_OPEN, TeleopDevice, WithKeys
from hardware.teleop.gamepad import GamepadConfig, GamepadTeleop
from hardware.teleop.keyboard import KeyboardConfig, KeyboardTeleop, KeyMap
from hardware.teleop.registry import DEVICES, DeviceChoice, DeviceConfig
from hardware.teleop.replay import ReplayConfig, ReplayStep, ReplayTeleop, load_stream, save_stream
from hardware.teleop.ros import RosTeleop, RosTeleopConfig
from hardware.teleop.spacemouse import SpaceMouseConfig, SpaceMouseTeleop
from hardware.teleop.terminal import TerminalKeys, decode_keys

__all__ = [
    "ACTION_DIM",
    "DEVICES",
    "GRIPPER_CLOSED",
    "GRIPPER_OPEN",
    "DeviceChoice",
    "DeviceConfig",
    "GamepadConfig",
    "GamepadTeleop",
    "KeyMap",
    "KeyboardConfig",
    "KeyboardTeleop",
    "ReplayConfig",
    "ReplayStep",
    "ReplayTeleop",
    "RosTeleop",
    "RosTeleopConfig",
    "SpaceMouseConfig",
    "SpaceMouseTeleop",
    "TeleopDevice",
    "TerminalKeys",
    "WithKeys",
    "decode_keys",
    "load_stream",
    "save_stream",
]
