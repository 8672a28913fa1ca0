"""Linux gamepad over evdev: raw `struct input_event` records read from /dev/input/event* (no compiled dependency)."""

from __future__ import annotations

import fcntl
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from hardware.teleop.base import (
    MOTION_DIMS,
    TeleopDevice,
    compose_action,
    deadband,
    events_of,
    open_device_node,
    read_available,
)
from robot.core.errors import ConfigError, DeviceError
from robot.core.types import TeleopCommand, TeleopEvent

# linux/input-event-codes.h
EV_SYN, EV_KEY, EV_ABS = 0x00, 0x01, 0x03
SYN_DROPPED = 3
ABS_X, ABS_Y, ABS_Z, ABS_RX, ABS_RY, ABS_RZ = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05
ABS_HAT0X, ABS_HAT0Y = 0x10, 0x11
BTN_JOYSTICK, BTN_GAMEPAD = 0x120, 0x130
BTN_A, BTN_B, BTN_X, BTN_Y = 0x130, 0x131, 0x133, 0x134  # xpad names: BTN_SOUTH, BTN_EAST, BTN_NORTH, BTN_WEST
BTN_TL, BTN_TR, BTN_SELECT, BTN_START, BTN_MODE, BTN_THUMBL, BTN_THUMBR = (
    0x136, 0x137, 0x13A, 0x13B, 0x13C, 0x13D, 0x13E)

INPUT_EVENT = struct.Struct("@llHHi")
"""struct input_event: struct timeval (two C longs), __u16 type, __u16 code, __s32 value (24 bytes on 64-bit)."""
_ABSINFO = struct.Struct("@6i")  # value, minimum, maximum, fuzz, flat, resolution


def _eviocgabs(code: int) -> int:
    """EVIOCGABS(code) = _IOR('E', 0x40 + code, struct input_absinfo)."""
    return (2 << 30) | (_ABSINFO.size << 16) | (ord("E") << 8) | (0x40 + code)


UDEV_HINT = (
    "Event nodes belong to group `input`: add yourself (`sudo usermod -aG input $USER`, then log in again), or add a "
    "udev rule: echo 'SUBSYSTEM==\"input\", ENV{ID_INPUT_JOYSTICK}==\"1\", TAG+=\"uaccess\"' | sudo tee "
    "/etc/udev/rules.d/70-gamepad.rules; sudo udevadm control --reload; sudo udevadm trigger"
)


@dataclass(frozen=True)
class GamepadConfig:
    """A Linux gamepad read through evdev (Xbox layout by default, as the xpad / hid-generic drivers report it).
    The default map assumes the operator stands behind the robot, facing the way it faces (+x): left stick =
    x/y (up: +x, left: +y), right stick = z (up: +z) and yaw (left: +rz), d-pad = roll (right: +rx) and pitch
    (up: +ry). Buttons: A gripper, B E-STOP, Start START, Back STOP (save), Y SUCCESS, X FAILURE, LB INTERVENE,
    RB PAUSE, left-stick click DISCARD, right-stick click RESET."""

    path: str = ""
    """Event node (e.g. /dev/input/event7 or /dev/input/by-id/...-event-joystick); empty: the first gamepad found."""
    deadband: float = 0.15
    """Normalized stick deflection ignored around the centre (sticks rarely rest at 0)."""
    speed: float = 1.0
    """Translation scale: 1 = full deflection commands the robot's largest step."""
    rotation_speed: float = 1.0
    """Rotation scale."""
    axes: tuple[tuple[int, int, float], ...] = (
        (ABS_Y, 0, -1.0), (ABS_X, 1, -1.0), (ABS_RY, 2, -1.0),
        (ABS_HAT0X, 3, 1.0), (ABS_HAT0Y, 4, -1.0), (ABS_RX, 5, -1.0),
    )
    """(evdev ABS code, action dimension 0..5 = dx, dy, dz, drx, dry, drz, sign); evdev's y axes point down."""
    trigger_axes: tuple[int, ...] = (ABS_Z, ABS_RZ)
    """ABS codes that rest at their minimum (analog triggers): normalized to [0, 1] instead of [-1, 1]."""
    buttons: tuple[tuple[int, str], ...] = (
        (BTN_A, "gripper"), (BTN_B, "estop"), (BTN_START, "start"), (BTN_SELECT, "stop"), (BTN_Y, "success"),
        (BTN_X, "failure"), (BTN_TL, "intervene"), (BTN_TR, "pause"), (BTN_THUMBL, "discard"), (BTN_THUMBR, "reset"),
    )
    """(evdev KEY code, "gripper" or an event name) acting on press."""
    deadman_button: int | None = None
    """KEY code that must be held for the action to count (`active`), e.g. 0x137 (RB); None: always active."""

    name: ClassVar[str] = "gamepad"

    def __post_init__(self) -> None:
        dims = [d for _, d, _ in self.axes]
        if any(not 0 <= d < MOTION_DIMS for d in dims) or len(set(dims)) != len(dims):
            raise ConfigError(f"--gamepad.axes: each action dimension 0..5 at most once, got {dims}")
        if not 0.0 <= self.deadband < 1.0:
            raise ConfigError(f"--gamepad.deadband must be in [0, 1), got {self.deadband}")
        codes = [c for c, _ in self.buttons]
        if len(set(codes)) != len(codes):
            raise ConfigError(f"--gamepad.buttons: a button code appears twice in {codes}")
        events_of(n for _, n in self.buttons if n != "gripper")

    def make(self) -> GamepadTeleop:
        """The device (opened at connect())."""
        return GamepadTeleop(self)


def _has_bit(mask_text: str, bit: int) -> bool:
    """sysfs capability masks are hex words, most significant first, each a C long (64 bits here)."""
    words = mask_text.split()
    value = 0
    for w in words:
        value = (value << 64) | int(w, 16)
    return bool(value >> bit & 1)


def find_gamepad(sysfs: Path = Path("/sys"), dev: Path = Path("/dev")) -> Path:
    """The first event node with gamepad/joystick buttons: udev's by-id `*-event-joystick` links first, then a scan
    of /sys/class/input/event*/device/capabilities/key for BTN_GAMEPAD or BTN_JOYSTICK."""
    links = sorted((dev / "input" / "by-id").glob("*-event-joystick"))
    if links:
        return links[0]
    seen: list[str] = []
    for entry in sorted((sysfs / "class" / "input").glob("event*"), key=lambda p: (len(p.name), p.name)):
        try:
            caps = (entry / "device" / "capabilities" / "key").read_text()
            name = (entry / "device" / "name").read_text().strip()
        except OSError:
            continue
        seen.append(f"{entry.name} ({name})")
        if _has_bit(caps, BTN_GAMEPAD) or _has_bit(caps, BTN_JOYSTICK):
            return dev / "input" / entry.name
    listed = f" Input devices seen: {', '.join(seen)}." if seen else ""
    raise DeviceError(
        f"no gamepad found (no /dev/input/by-id/*-event-joystick, no event device with gamepad buttons under "
        f"{sysfs / 'class' / 'input'}).{listed} Plug it in (a Bluetooth pad must be paired and connected), or pass "
        "--gamepad.path /dev/input/eventN"
    )


class GamepadTeleop(TeleopDevice):
    """Gamepad Teleoperator over an evdev event node; axis ranges come from the device (EVIOCGABS) when it answers,
    else the usual xpad ranges (sticks +-32768, hats +-1, triggers 0..1023)."""

    name: ClassVar[str] = "gamepad"

    def __init__(self, config: GamepadConfig | None = None, *, fd: int | None = None, sysfs: Path = Path("/sys"),
                 dev: Path = Path("/dev")) -> None:
        super().__init__()
        self.config = config or GamepadConfig()
        self._sysfs, self._dev = sysfs, dev
        self.fd: int | None = fd
        """The open node; an fd given here (any stream of input_event records) is used as is and closed at the end."""
        self.path = f"fd {fd}" if fd is not None else ""
        self._buf = b""
        self.values: dict[int, int] = {}
        """Latest raw value per ABS code."""
        self.pressed: set[int] = set()
        """KEY codes held now."""
        self.ranges: dict[int, tuple[int, int]] = {}
        """(min, max) per ABS code in use."""
        self._buttons = dict(self.config.buttons)
        self._dropped = False

    def connect(self) -> None:
        """Find and open the event node, and read the axis ranges."""
        if self.fd is None:
            self.path = self.config.path or str(find_gamepad(self._sysfs, self._dev))
            self.fd = open_device_node(self.path, "gamepad", UDEV_HINT)
        for code, _, _ in self.config.axes:
            self.ranges[code] = self._range(code)

    def _range(self, code: int) -> tuple[int, int]:
        assert self.fd is not None
        try:
            buf = fcntl.ioctl(self.fd, _eviocgabs(code), bytes(_ABSINFO.size))
            _, lo, hi, *_ = _ABSINFO.unpack(buf)
            if hi > lo:
                return lo, hi
        except OSError:
            pass  # not an evdev node (a test fixture) or an axis the device lacks: the usual ranges
        if code in (ABS_HAT0X, ABS_HAT0Y):
            return -1, 1
        if code in self.config.trigger_axes:
            return 0, 1023
        return -32768, 32767

    def disconnect(self) -> None:
        """Close the node."""
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def read(self) -> TeleopCommand:
        """Apply every event waiting, then the command from the newest state."""
        if self.fd is None or not self.ranges:
            self.connect()
        assert self.fd is not None
        events: set[TeleopEvent] = set()
        data = self._buf + b"".join(read_available(self.fd, INPUT_EVENT.size * 64, f"gamepad {self.path}"))
        n = len(data) // INPUT_EVENT.size
        for i in range(n):
            _, _, etype, code, value = INPUT_EVENT.unpack_from(data, i * INPUT_EVENT.size)
            self.handle(etype, code, value, events)
        self._buf = data[n * INPUT_EVENT.size:]
        return TeleopCommand(compose_action(self.motion(), self.gripper_closed), frozenset(events), self.active)

    def handle(self, etype: int, code: int, value: int, events: set[TeleopEvent]) -> None:
        """Apply one input event (events raised on button presses are added to `events`)."""
        if etype == EV_ABS:
            self.values[code] = value
            self._dropped = False
        elif etype == EV_KEY:
            if value == 1 and code not in self.pressed:  # 2 is the kernel's autorepeat: not a new press
                role = self._buttons.get(code)
                if role == "gripper":
                    self.gripper_closed = not self.gripper_closed
                elif role is not None:
                    events.update(events_of([role]))
            if value:
                self.pressed.add(code)
            else:
                self.pressed.discard(code)
        elif etype == EV_SYN and code == SYN_DROPPED:
            # The kernel's buffer overflowed and states were lost: stop moving until fresh axis events arrive.
            self._dropped = True

    @property
    def active(self) -> bool:
        """Deadman held (always True without a deadman button)."""
        b = self.config.deadman_button
        return b is None or b in self.pressed

    def normalized(self, code: int) -> float:
        """An axis in [-1, 1] (triggers [0, 1]); 0 before its first event."""
        if code not in self.values:
            return 0.0
        lo, hi = self.ranges.get(code) or ((0, 1023) if code in self.config.trigger_axes else (-32768, 32767))
        v = float(self.values[code])
        if code in self.config.trigger_axes:
            return float(np.clip((v - lo) / (hi - lo), 0.0, 1.0))
        return float(np.clip((2.0 * v - (hi + lo)) / (hi - lo), -1.0, 1.0))

    def motion(self) -> np.ndarray:
        """Normalized 6-D motion: axis map, sign, deadband, scale."""
        cfg = self.config
        m = np.zeros(MOTION_DIMS)
        if self._dropped:
            return m
        for code, dim, sign in cfg.axes:
            m[dim] = sign * self.normalized(code)
        scale = np.array([cfg.speed] * 3 + [cfg.rotation_speed] * 3)
        return deadband(m, cfg.deadband) * scale

    def describe(self) -> str:
        """The node in use and the button roles."""
        return f"gamepad {self.path or '(not open)'}: sticks/d-pad = motion; " + ", ".join(
            f"{code:#x}={role}" for code, role in self.config.buttons)
