"""3Dconnexion SpaceMouse over Linux hidraw (raw HID reports read from /dev/hidraw*, no extra dependency)."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
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

VENDOR_3DCONNEXION = 0x256F
"""USB vendor id of 3Dconnexion devices (every product id is a 6-DoF device)."""
VENDOR_LOGITECH = 0x046D
"""Older 3Dconnexion devices carry Logitech's vendor id; only these product ids of it are SpaceMice."""
LOGITECH_SPACEMICE = frozenset({0xC603, 0xC605, 0xC606, 0xC621, 0xC623, 0xC625, 0xC626, 0xC627, 0xC628, 0xC629,
                                0xC62B, 0xC640})
_AXIS3 = struct.Struct("<3h")

UDEV_HINT = (
    "Let your user read it with a udev rule: echo 'KERNEL==\"hidraw*\", ATTRS{idVendor}==\"256f\", MODE=\"0660\", "
    "TAG+=\"uaccess\"' | sudo tee /etc/udev/rules.d/70-spacemouse.rules; sudo udevadm control --reload; "
    "sudo udevadm trigger; then replug (use idVendor 046d for a SpaceNavigator-era device)"
)


@dataclass(frozen=True)
class SpaceMouseReport:
    """What one HID input report carried (None: not in this report)."""

    translation: tuple[int, int, int] | None = None
    """Raw x, y, z counts (HID frame: x right, y toward the user, z down)."""
    rotation: tuple[int, int, int] | None = None
    """Raw rx, ry, rz counts about those axes."""
    buttons: int | None = None
    """Button bitmask (bit 0: left / button 1, bit 1: right / button 2, ...)."""


def parse_report(data: bytes) -> SpaceMouseReport | None:
    """Decode one hidraw read. Report 1: translation as 3 int16 little-endian (7 bytes), or translation and rotation
    (13 bytes, newer models: SpaceMouse Wireless/Pro Wireless/Enterprise); report 2: rotation (7 bytes);
    report 3: buttons bitmask. Other reports (LEDs, battery) give None."""
    if not data:
        return None
    rid = data[0]
    if rid == 1 and len(data) >= 13:
        return SpaceMouseReport(translation=_AXIS3.unpack_from(data, 1), rotation=_AXIS3.unpack_from(data, 7))
    if rid == 1 and len(data) >= 7:
        return SpaceMouseReport(translation=_AXIS3.unpack_from(data, 1))
    if rid == 2 and len(data) >= 7:
        return SpaceMouseReport(rotation=_AXIS3.unpack_from(data, 1))
    if rid == 3 and len(data) >= 2:
        return SpaceMouseReport(buttons=int.from_bytes(data[1:], "little"))
    return None


@dataclass(frozen=True)
class SpaceMouseConfig:
    """3Dconnexion SpaceMouse (any model: Compact, Wireless, Pro, Enterprise, SpaceNavigator). Push/pull/tilt the cap
    to move the TCP; by default left button = gripper toggle, right button = INTERVENE toggle. The default axis
    map assumes the operator stands behind the robot, facing the way it faces (+x): push the cap away from you
    for +x, left for +y, lift it for +z; tilt and twist it the same way to rotate. Episode keys (start, save,
    e-stop) come from the terminal beside it (`realrl collect` adds them)."""

    path: str = ""
    """hidraw node (e.g. /dev/hidraw3); empty: the first 3Dconnexion device found under /sys/class/hidraw."""
    full_scale: float = 350.0
    """Raw counts at full deflection (about 350 on every model); larger readings clip to 1."""
    deadband: float = 0.1
    """Normalized deflection ignored around the centre (the cap never rests exactly at 0)."""
    speed: float = 1.0
    """Translation scale: 1 = full deflection commands the robot's largest step."""
    rotation_speed: float = 1.0
    """Rotation scale."""
    axes: tuple[int, int, int, int, int, int] = (1, 0, 2, 4, 3, 5)
    """Raw axis (0-5: x, y, z, rx, ry, rz of the HID frame) feeding each action dimension dx, dy, dz, drx, dry, drz."""
    signs: tuple[float, float, float, float, float, float] = (-1.0, -1.0, -1.0, -1.0, -1.0, -1.0)
    """Sign per action dimension (the HID frame is x right, y toward the user, z down)."""
    gripper_button: int | None = 0
    """Button index toggling the gripper (0: left)."""
    intervene_button: int | None = 1
    """Button index raising INTERVENE on press (1: right)."""
    deadman_button: int | None = None
    """Button that must be held for the action to count (`active`); None: always active."""
    button_events: tuple[tuple[int, str], ...] = ()
    """More buttons (Pro/Enterprise models) -> event names, e.g. ((12, "start"), (13, "stop"))."""
    stale_s: float = 0.5
    """No report for this long while deflected: the motion is zeroed (a wireless link that dropped). The device
    streams reports while the cap is off-centre; 0 disables the check."""

    name: ClassVar[str] = "spacemouse"

    def __post_init__(self) -> None:
        if sorted(self.axes) != list(range(MOTION_DIMS)):
            raise ConfigError(f"--spacemouse.axes must be a permutation of 0..5, got {self.axes}")
        if not self.full_scale > 0 or not 0.0 <= self.deadband < 1.0:
            raise ConfigError(f"need full_scale > 0 and 0 <= deadband < 1, got {self.full_scale}, {self.deadband}")
        events_of(name for _, name in self.button_events)

    def make(self) -> SpaceMouseTeleop:
        """The device (opened at connect())."""
        return SpaceMouseTeleop(self)


def find_spacemouse(sysfs: Path = Path("/sys"), dev: Path = Path("/dev")) -> Path:
    """The hidraw node of the first SpaceMouse, from /sys/class/hidraw/*/device/uevent (HID_ID=bus:vendor:product)."""
    found: list[str] = []
    for entry in sorted((sysfs / "class" / "hidraw").glob("hidraw*"), key=lambda p: (len(p.name), p.name)):
        try:
            uevent = (entry / "device" / "uevent").read_text()
        except OSError:
            continue
        fields = dict(line.split("=", 1) for line in uevent.splitlines() if "=" in line)
        parts = fields.get("HID_ID", "").split(":")
        if len(parts) != 3:
            continue
        vendor, product = int(parts[1], 16), int(parts[2], 16)
        found.append(f"{entry.name} ({vendor:04x}:{product:04x} {fields.get('HID_NAME', '?')})")
        if vendor == VENDOR_3DCONNEXION or (vendor == VENDOR_LOGITECH and product in LOGITECH_SPACEMICE):
            return dev / entry.name
    seen = f" HID devices seen: {', '.join(found)}." if found else " No hidraw devices at all."
    raise DeviceError(
        f"no 3Dconnexion SpaceMouse found under {sysfs / 'class' / 'hidraw'}.{seen} Plug it in (check "
        "`lsusb | grep -i -e 3dconnexion -e 256f`; a wireless one needs its receiver), or pass --spacemouse.path "
        "/dev/hidrawN"
    )


class SpaceMouseTeleop(TeleopDevice):
    """SpaceMouse Teleoperator reading raw HID reports from hidraw (each read() of a hidraw node is one report)."""

    name: ClassVar[str] = "spacemouse"

    def __init__(self, config: SpaceMouseConfig | None = None, *, fd: int | None = None, sysfs: Path = Path("/sys"),
                 dev: Path = Path("/dev"), clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.config = config or SpaceMouseConfig()
        self._sysfs, self._dev, self._clock = sysfs, dev, clock
        self.fd: int | None = fd
        """The open node; an fd given here (any fd with one report per read) is used as is and closed at the end."""
        self.path = f"fd {fd}" if fd is not None else ""
        self.raw = np.zeros(MOTION_DIMS)
        """Latest raw counts x, y, z, rx, ry, rz."""
        self.buttons = 0
        """Latest button bitmask."""
        self._last_report = -np.inf
        self._extra = {b: next(iter(events_of([n]))) for b, n in self.config.button_events}

    def connect(self) -> None:
        """Find and open the hidraw node; DeviceError (absent, no permission) says what to do."""
        if self.fd is not None:
            return
        self.path = self.config.path or str(find_spacemouse(self._sysfs, self._dev))
        self.fd = open_device_node(self.path, "SpaceMouse", UDEV_HINT)

    def disconnect(self) -> None:
        """Close the node."""
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def _pressed(self, old: int, new: int, button: int | None) -> bool:
        return button is not None and bool(new >> button & 1) and not old >> button & 1

    def read(self) -> TeleopCommand:
        """Drain the reports waiting, then the command from the newest state."""
        if self.fd is None:
            self.connect()
        assert self.fd is not None
        cfg = self.config
        events: set[TeleopEvent] = set()
        now = self._clock()
        for data in read_available(self.fd, 64, f"SpaceMouse {self.path}"):
            rep = parse_report(data)
            if rep is None:
                continue
            self._last_report = now
            if rep.translation is not None:
                self.raw[:3] = rep.translation
            if rep.rotation is not None:
                self.raw[3:] = rep.rotation
            if rep.buttons is not None:
                old, new = self.buttons, rep.buttons
                if self._pressed(old, new, cfg.gripper_button):
                    self.gripper_closed = not self.gripper_closed
                if self._pressed(old, new, cfg.intervene_button):
                    events.add(TeleopEvent.INTERVENE)
                events.update(ev for b, ev in self._extra.items() if self._pressed(old, new, b))
                self.buttons = new
        return TeleopCommand(compose_action(self.motion(now), self.gripper_closed), frozenset(events), self.active)

    @property
    def active(self) -> bool:
        """Deadman held (always True without a deadman button)."""
        b = self.config.deadman_button
        return b is None or bool(self.buttons >> b & 1)

    def motion(self, now: float) -> np.ndarray:
        """Normalized 6-D motion from the raw state (axis map, sign, deadband, scale); zero once the stream is stale."""
        cfg = self.config
        if cfg.stale_s > 0 and now - self._last_report > cfg.stale_s:
            return np.zeros(MOTION_DIMS)
        v = self.raw[list(cfg.axes)] * np.asarray(cfg.signs) / cfg.full_scale
        scale = np.array([cfg.speed] * 3 + [cfg.rotation_speed] * 3)
        return deadband(v, cfg.deadband) * scale

    def describe(self) -> str:
        """The node in use and the button roles."""
        c = self.config
        return (f"SpaceMouse {self.path or '(not open)'}: cap = motion, button {c.gripper_button} = gripper, "
                f"button {c.intervene_button} = intervene"
                + (f", button {c.deadman_button} = deadman" if c.deadman_button is not None else ""))
