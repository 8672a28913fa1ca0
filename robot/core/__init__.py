"""Contracts shared by every layer (numpy only: no torch, mujoco or DDS imports here)."""

from robot.core.errors import (
    CheckpointError,
    ConfigError,
    DeviceError,
    RealrlError,
    SafetyError,
    StoreError,
    TransportError,
)
from robot.core.interfaces import Policy, Robot, Task, Teleoperator
from robot.core.registry import Registry
from robot.core.spec import ActionMode, ActionSpec, CameraSpec, EmbodimentSpec, JointSpec
from robot.core.types import Observation, TeleopCommand, TeleopEvent

__all__ = [
    "ActionMode",
    "ActionSpec",
    "CameraSpec",
    "CheckpointError",
    "ConfigError",
    "DeviceError",
    "EmbodimentSpec",
    "JointSpec",
    "Observation",
    "Policy",
    "RealrlError",
    "Registry",
    "Robot",
    "SafetyError",
    "StoreError",
    "Task",
    "TeleopCommand",
    "TeleopEvent",
    "Teleoperator",
    "TransportError",
]
