"""What every teleop device shares: the 7-D end-effector delta + gripper command, deadband, the device base."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from typing import ClassVar

import numpy as np

from robot.core.errors import ConfigError, DeviceError
from robot.core.interfaces import Teleoperator
from robot.core.types import TeleopCommand, TeleopEvent

MOTION_DIMS = 6
"""(dx, dy, dz, drx, dry, drz): TCP translation and rotation in the robot's base frame, normalized to [-1, 1]."""
ACTION_DIM = 7
"""Motion plus the gripper: the action layout of realrl's ee_delta robots (see the README's Actions)."""
GRIPPER_OPEN = -1.0
"""Normalized gripper command of an open gripper."""
GRIPPER_CLOSED = 1.0
"""Normalized gripper command of a closed gripper."""


def deadband(values: np.ndarray, width: float) -> np.ndarray:
    """Zero inside +-width, rescaled outside so the output still spans [-1, 1] without a jump at the edge."""
    v = np.clip(np.asarray(values, dtype=np.float64), -1.0, 1.0)
    if width <= 0.0:
        return v
    mag = np.clip((np.abs(v) - width) / (1.0 - width), 0.0, 1.0)
    return np.sign(v) * mag


def compose_action(motion: np.ndarray, gripper_closed: bool) -> np.ndarray:
    """The 7-D normalized action; a non-finite motion value becomes 0 (a device never asks for NaN/inf)."""
    m = np.asarray(motion, dtype=np.float64).reshape(MOTION_DIMS)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.empty(ACTION_DIM, dtype=np.float32)
    out[:MOTION_DIMS] = np.clip(m, -1.0, 1.0)
    out[MOTION_DIMS] = GRIPPER_CLOSED if gripper_closed else GRIPPER_OPEN
    return out


class TeleopDevice(Teleoperator):
    """Base of realrl's teleop devices: commands in the 7-D ee_delta action space, a gripper toggle state that
    opens at every episode start, and `finished` for devices with an end (a replayed stream)."""

    name: ClassVar[str] = "device"
    """Short name (the --device value)."""

    def __init__(self) -> None:
        self.gripper_closed = False
        self.action_dim = ACTION_DIM

    def reset_state(self) -> None:
        """Forget per-episode state: the gripper command goes back to open (the robot opens it on reset)."""
        self.gripper_closed = False

    @property
    def finished(self) -> bool:
        """True once the device has nothing more to say (only a replayed stream ends)."""
        return False

    def describe(self) -> str:
        """One line for the operator: what drives what."""
        return self.name


class WithKeys(TeleopDevice):
    """A motion device (SpaceMouse, gamepad) plus the terminal's episode keys: actions and `active` come from the
    device, events from both (a 2-button SpaceMouse has no START/STOP of its own)."""

    name: ClassVar[str] = "with-keys"

    def __init__(self, device: TeleopDevice, keys: Teleoperator) -> None:
        super().__init__()
        self.device, self.keys = device, keys
        self.action_dim = device.action_dim

    def connect(self) -> None:
        """Open the device, then the terminal (the device's error comes first: it is the one that matters)."""
        self.device.connect()
        try:
            self.keys.connect()
        except BaseException:
            self.device.disconnect()
            raise

    def disconnect(self) -> None:
        """Release both."""
        try:
            self.keys.disconnect()
        finally:
            self.device.disconnect()

    def read(self) -> TeleopCommand:
        """The device's command with the keys' events added."""
        cmd = self.device.read()
        extra = self.keys.read().events
        return TeleopCommand(cmd.action, cmd.events | extra, cmd.active) if extra else cmd

    def reset_state(self) -> None:
        """Reset the device's per-episode state."""
        self.device.reset_state()

    @property
    def finished(self) -> bool:
        """The device's end."""
        return self.device.finished

    def describe(self) -> str:
        """The device, plus the keys."""
        return f"{self.device.describe()}; episode keys from the terminal"


def events_of(names: Iterable[str]) -> frozenset[TeleopEvent]:
    """TeleopEvents from their values ('start', 'stop', ...); an unknown name is a ConfigError naming the valid ones."""
    out = set()
    for n in names:
        try:
            out.add(TeleopEvent(n))
        except ValueError:
            raise ConfigError(f"unknown teleop event {n!r}; events: {[e.value for e in TeleopEvent]}") from None
    return frozenset(out)


def open_device_node(path: str, what: str, permission_hint: str) -> int:
    """Open a device node read-only and non-blocking; absence and permission problems are DeviceErrors that say
    what to do."""
    try:
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise DeviceError(f"{what}: {path} does not exist; is it plugged in? Give the right node with --...path, "
                          "or leave the path empty to search for it") from None
    except PermissionError:
        raise DeviceError(f"{what}: permission denied opening {path} (see `ls -l {path}`). {permission_hint}") from None
    except OSError as e:
        if e.errno in (errno.ENODEV, errno.ENXIO):
            raise DeviceError(f"{what}: {path} is gone ({e.strerror}); replug the device") from None
        raise DeviceError(f"{what}: cannot open {path}: {e}") from e


def read_available(fd: int, size: int, what: str) -> list[bytes]:
    """Every read() the fd has ready now, one chunk per read (a hidraw read is one HID report); never blocks."""
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(fd, size)
        except BlockingIOError:
            break
        except OSError as e:  # ENODEV / EIO: unplugged while open
            raise DeviceError(f"{what}: reading failed ({e.strerror}); the device was unplugged or reset. "
                              "Replug it and start again") from e
        if not data:
            break
        chunks.append(data)
        if len(chunks) > 4096:  # a regular file or a flood: the rest comes next tick
            break
    return chunks
