"""Picking a device: `--device NAME` plus each device's own `--NAME.<field>` settings, one union of config types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hardware.teleop.base import TeleopDevice
from hardware.teleop.gamepad import GamepadConfig
from hardware.teleop.keyboard import KeyboardConfig
from hardware.teleop.replay import ReplayConfig
from hardware.teleop.ros import RosTeleopConfig
from hardware.teleop.spacemouse import SpaceMouseConfig

DeviceConfig = KeyboardConfig | SpaceMouseConfig | GamepadConfig | ReplayConfig | RosTeleopConfig
"""Every device's config; each has a `name` and `make() -> TeleopDevice`."""
DeviceName = Literal["keyboard", "spacemouse", "gamepad", "replay", "ros"]
DEVICES: dict[str, type[DeviceConfig]] = {c.name: c for c in (KeyboardConfig, SpaceMouseConfig, GamepadConfig,
                                                              ReplayConfig, RosTeleopConfig)}
"""Device name -> its config type."""


@dataclass(frozen=True)
class DeviceChoice:
    """Which teleop device drives, and every device's settings (only the chosen one is used)."""

    device: DeviceName = "keyboard"
    """keyboard (this terminal), spacemouse (hidraw), gamepad (evdev), replay (a recorded stream), ros (a teleop
    node elsewhere)."""
    keyboard: KeyboardConfig = field(default_factory=KeyboardConfig)
    """Keyboard settings."""
    spacemouse: SpaceMouseConfig = field(default_factory=SpaceMouseConfig)
    """SpaceMouse settings."""
    gamepad: GamepadConfig = field(default_factory=GamepadConfig)
    """Gamepad settings."""
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    """Replay settings."""
    ros: RosTeleopConfig = field(default_factory=RosTeleopConfig)
    """Remote teleop node settings."""

    def selected(self) -> DeviceConfig:
        """The chosen device's config."""
        cfg: DeviceConfig = getattr(self, self.device)
        assert cfg.name == self.device and isinstance(cfg, DEVICES[self.device])
        return cfg

    def make(self) -> TeleopDevice:
        """The chosen device (not yet connected)."""
        return self.selected().make()
