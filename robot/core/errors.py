"""One error hierarchy for realrl; every message says what was wrong and what to do."""

from __future__ import annotations


class RealrlError(Exception):
    """Base of every error realrl raises on purpose."""


class ConfigError(RealrlError, ValueError):
    """A configuration, flag, id or argument is invalid."""


class SafetyError(RealrlError):
    """A command or observation was unsafe and the robot was held; repeated faults end the episode."""


class StoreError(RealrlError):
    """An episode store is missing, inconsistent or cannot be written."""


class TransportError(RealrlError):
    """A middleware link (DDS/ROS 2) failed: no peer, timeout, or a malformed message."""


class CheckpointError(RealrlError):
    """A checkpoint is missing, corrupt, or does not match the requested layout."""


class DeviceError(RealrlError):
    """A device (teleop, camera, robot) is absent or failed."""
