"""Keyboard teleoperation in a plain terminal (works over SSH, no X server): the key map and the device."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from hardware.teleop.base import MOTION_DIMS, TeleopDevice, compose_action
from hardware.teleop.terminal import TerminalKeys
from robot.core.errors import ConfigError
from robot.core.types import TeleopCommand, TeleopEvent

_AXES = ("x", "y", "z", "roll", "pitch", "yaw")


@dataclass(frozen=True)
class KeyMap:
    """Which key does what: one map for collecting demos and for deploying (`realrl collect`, the deploy session).

    Each binding is a tuple of key names as TerminalKeys reports them (characters, or "up", "enter", "space",
    ...); letters match either case. Motion is in the robot's base frame (Franka: +x away from the base, +y to
    its left, +z up); rotations are about those axes, right-handed.
    """

    x_pos: tuple[str, ...] = ("w", "up")
    """Move +x (forward, away from the robot's base)."""
    x_neg: tuple[str, ...] = ("s", "down")
    """Move -x (back toward the base)."""
    y_pos: tuple[str, ...] = ("a", "left")
    """Move +y (to the robot's left)."""
    y_neg: tuple[str, ...] = ("d", "right")
    """Move -y (to the robot's right)."""
    z_pos: tuple[str, ...] = ("r",)
    """Move +z (up)."""
    z_neg: tuple[str, ...] = ("f",)
    """Move -z (down)."""
    roll_pos: tuple[str, ...] = ("u",)
    """Rotate +rx (roll about x)."""
    roll_neg: tuple[str, ...] = ("o",)
    """Rotate -rx."""
    pitch_pos: tuple[str, ...] = ("i",)
    """Rotate +ry (pitch about y)."""
    pitch_neg: tuple[str, ...] = ("k",)
    """Rotate -ry."""
    yaw_pos: tuple[str, ...] = ("j",)
    """Rotate +rz (yaw about z, counter-clockwise seen from above)."""
    yaw_neg: tuple[str, ...] = ("l",)
    """Rotate -rz."""
    gripper: tuple[str, ...] = ("g",)
    """Toggle the gripper (open <-> closed); it is open at every episode start."""
    halt: tuple[str, ...] = ("h",)
    """Stop every motion at once (no event; the robot just holds)."""
    faster: tuple[str, ...] = ("=", "+")
    """Speed up (x1.25, up to full scale)."""
    slower: tuple[str, ...] = ("-",)
    """Slow down (/1.25)."""
    start: tuple[str, ...] = ("enter",)
    """START: start an episode; re-arm after an e-stop."""
    stop: tuple[str, ...] = (".",)
    """STOP: end the episode and save it (success as the task reports it)."""
    estop: tuple[str, ...] = ("space",)
    """ESTOP: hold, refuse every command until re-armed with START. The biggest key, on purpose."""
    pause: tuple[str, ...] = ("p",)
    """PAUSE (toggle): hold; the episode stays open and paused steps are not recorded."""
    success: tuple[str, ...] = ("y",)
    """SUCCESS: label the episode a success, end and save it."""
    failure: tuple[str, ...] = ("n",)
    """FAILURE: label the episode a failure, end and save it."""
    discard: tuple[str, ...] = ("x",)
    """DISCARD: end the episode and throw it away."""
    intervene: tuple[str, ...] = ("t",)
    """INTERVENE (toggle): take over from the policy / hand back."""
    reset: tuple[str, ...] = ("0",)
    """RESET: reset robot and scene (an open episode is discarded)."""

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for f in dataclasses.fields(self):
            for key in getattr(self, f.name):
                k = _norm(key)
                if k in seen:
                    raise ConfigError(f"key {key!r} is bound to both {seen[k]} and {f.name}: give each key one job")
                seen[k] = f.name

    def motion_bindings(self) -> dict[str, tuple[int, float]]:
        """key -> (motion axis 0..5, direction +-1)."""
        out: dict[str, tuple[int, float]] = {}
        for axis, name in enumerate(_AXES):
            for sign, suffix in ((1.0, "pos"), (-1.0, "neg")):
                for key in getattr(self, f"{name}_{suffix}"):
                    out[_norm(key)] = (axis, sign)
        return out

    def event_bindings(self) -> dict[str, TeleopEvent]:
        """key -> TeleopEvent (the operator keys the collect and deploy sessions share)."""
        return {_norm(k): ev for ev in TeleopEvent for k in getattr(self, ev.value)}

    def help_lines(self) -> list[str]:
        """The map as lines for the operator."""
        def keys(name: str) -> str:
            return "/".join(getattr(self, name))

        return [
            f"move  +x/-x {keys('x_pos')} {keys('x_neg')}   +y/-y {keys('y_pos')} {keys('y_neg')}   "
            f"+z/-z {keys('z_pos')} {keys('z_neg')}",
            f"turn  roll {keys('roll_pos')}/{keys('roll_neg')}  pitch {keys('pitch_pos')}/{keys('pitch_neg')}  "
            f"yaw {keys('yaw_pos')}/{keys('yaw_neg')}   gripper {keys('gripper')}   halt {keys('halt')}   "
            f"speed {keys('faster')} {keys('slower')}",
            f"episode  start {keys('start')}  stop+save {keys('stop')}  success {keys('success')}  "
            f"failure {keys('failure')}  discard {keys('discard')}  reset {keys('reset')}  pause {keys('pause')}  "
            f"intervene {keys('intervene')}  E-STOP {keys('estop')}  (Ctrl-C quits)",
        ]


def _norm(key: str) -> str:
    return key.lower() if len(key) == 1 else key


@dataclass(frozen=True)
class KeyboardConfig:
    """Keyboard teleop. Terminals send key presses and autorepeats but no key releases, so motion works like this:
    a key that starts a motion drives its axis for `hold_s` (a tap is a short nudge); every further event of a
    moving key (the terminal's autorepeat while the key is held) keeps it going for at least `repeat_hold_s`
    more. A held key therefore moves continuously, bridging the autorepeat's initial delay (typically 0.25-0.5 s;
    `xset q` shows it under X, `kbdrate` on a console), and the motion stops within `repeat_hold_s` of the
    release. The opposite key reverses at once; the halt key stops everything. Terminals autorepeat only the last
    key pressed, so one axis moves at a time while keys are held."""

    keymap: KeyMap = field(default_factory=KeyMap)
    """The key bindings."""
    speed: float = 0.4
    """Translation speed as a fraction of the robot's largest step (0..1]."""
    rotation_speed: float = 0.4
    """Rotation speed as a fraction of the robot's largest rotation step (0..1]."""
    speed_step: float = 1.25
    """Factor applied by the faster/slower keys."""
    hold_s: float = 0.6
    """How long a key that starts a motion drives its axis (must exceed the autorepeat delay for smooth holds)."""
    repeat_hold_s: float = 0.15
    """How long each autorepeat keeps the axis going (must exceed the autorepeat interval, ~33-40 ms, plus jitter)."""
    motion: bool = True
    """False: episode keys only, no motion (the terminal beside a SpaceMouse or gamepad)."""

    name: ClassVar[str] = "keyboard"

    def __post_init__(self) -> None:
        for f in ("speed", "rotation_speed"):
            if not 0.0 < getattr(self, f) <= 1.0:
                raise ConfigError(f"--keyboard.{f.replace('_', '-')} must be in (0, 1], got {getattr(self, f)}")
        if not self.speed_step > 1.0:
            raise ConfigError(f"--keyboard.speed-step must be > 1, got {self.speed_step}")
        if not 0.0 < self.repeat_hold_s <= self.hold_s:
            raise ConfigError(f"need 0 < repeat_hold_s <= hold_s, got {self.repeat_hold_s}, {self.hold_s}")

    def make(self) -> KeyboardTeleop:
        """The device (reads stdin)."""
        return KeyboardTeleop(self)


class KeyboardTeleop(TeleopDevice):
    """Keyboard Teleoperator over TerminalKeys (stdin by default, or any tty fd). See KeyboardConfig for the
    motion semantics and KeyMap for the bindings."""

    name: ClassVar[str] = "keyboard"

    def __init__(self, config: KeyboardConfig | None = None, fd: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.config = config or KeyboardConfig()
        self._fd = fd
        self._clock = clock
        self._terminal: TerminalKeys | None = None
        self._motion = self.config.keymap.motion_bindings()
        self._events = self.config.keymap.event_bindings()
        km = self.config.keymap
        self._gripper = {_norm(k) for k in km.gripper}
        self._halt = {_norm(k) for k in km.halt}
        self._faster = {_norm(k) for k in km.faster}
        self._slower = {_norm(k) for k in km.slower}
        self._direction = np.zeros(MOTION_DIMS)
        self._deadline = np.full(MOTION_DIMS, -np.inf)
        self.speed = self.config.speed
        """Current translation speed fraction (changed by the faster/slower keys)."""
        self.rotation_speed = self.config.rotation_speed
        """Current rotation speed fraction."""
        self.last_keys: list[str] = []
        """Keys seen by the latest read() (an overlay or a status line may show them)."""

    def connect(self) -> None:
        """Put the terminal into cbreak mode; DeviceError when stdin is not a terminal."""
        if self._terminal is None:
            self._terminal = TerminalKeys(self._fd).__enter__()

    def disconnect(self) -> None:
        """Restore the terminal."""
        term, self._terminal = self._terminal, None
        if term is not None:
            term.close()

    def reset_state(self) -> None:
        """Gripper open, every motion stopped."""
        super().reset_state()
        self._deadline[:] = -np.inf

    def read(self) -> TeleopCommand:
        """Keys since the last read -> (motion + gripper, events)."""
        if self._terminal is None:
            self.connect()
        assert self._terminal is not None
        keys = self._terminal.read()
        self.last_keys = keys
        return self.apply(keys, self._clock())

    def apply(self, keys: list[str], now: float) -> TeleopCommand:
        """Update the motion state with keys seen at time `now` and return the command (read() calls this)."""
        cfg = self.config
        events: set[TeleopEvent] = set()
        for raw in keys:
            key = _norm(raw)
            if key in self._events:
                events.add(self._events[key])
            elif not cfg.motion:
                continue
            elif key in self._motion:
                axis, sign = self._motion[key]
                moving = self._deadline[axis] > now and self._direction[axis] == sign
                if moving:  # autorepeat (or another tap) of the key already driving this axis
                    self._deadline[axis] = max(self._deadline[axis], now + cfg.repeat_hold_s)
                else:  # starts (or reverses) the motion
                    self._direction[axis] = sign
                    self._deadline[axis] = now + cfg.hold_s
            elif key in self._gripper:
                self.gripper_closed = not self.gripper_closed
            elif key in self._halt:
                self._deadline[:] = -np.inf
            elif key in self._faster:
                self.speed = min(1.0, self.speed * cfg.speed_step)
                self.rotation_speed = min(1.0, self.rotation_speed * cfg.speed_step)
            elif key in self._slower:
                self.speed = max(0.05, self.speed / cfg.speed_step)
                self.rotation_speed = max(0.05, self.rotation_speed / cfg.speed_step)
        live = self._deadline > now
        scale = np.array([self.speed] * 3 + [self.rotation_speed] * 3)
        motion = np.where(live, self._direction * scale, 0.0)
        return TeleopCommand(compose_action(motion, self.gripper_closed), frozenset(events), True)

    def describe(self) -> str:
        """The key map, a few lines."""
        return "keyboard keys:\n  " + "\n  ".join(self.config.keymap.help_lines())
