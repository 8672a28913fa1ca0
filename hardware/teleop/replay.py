"""Replay: a scripted device that plays a recorded command stream (actions + events per step) from a file or a
store episode; tests and demos drive sessions with it."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hardware.teleop.base import TeleopDevice, events_of
from robot.core.errors import ConfigError, DeviceError
from robot.core.types import TeleopCommand, TeleopEvent


@dataclass(frozen=True)
class ReplayStep:
    """One reading of a replayed stream."""

    action: np.ndarray
    """Normalized action (the env's action layout)."""
    events: frozenset[TeleopEvent] = field(default_factory=frozenset)
    """Events raised at this reading."""
    active: bool = True
    """Whether the operator is driving (deadman held)."""

    def to_json(self) -> dict[str, Any]:
        """One JSON-lines record."""
        d: dict[str, Any] = {"action": [float(x) for x in np.asarray(self.action).ravel()]}
        if self.events:
            d["events"] = sorted(e.value for e in self.events)
        if not self.active:
            d["active"] = False
        return d


@dataclass(frozen=True)
class ReplayConfig:
    """Replay a recorded command stream: a JSON-lines file, one reading per line,
    `{"action": [..], "events": ["start"], "active": true}` ("events" and "active" optional). One line is
    consumed per read (per control tick); when the stream ends the device holds (zero motion, last gripper) and
    reports `finished`, which ends a collect session."""

    path: Path | None = None
    """The stream file (.jsonl); write one with `save_stream` or `stream_from_episode`."""

    name: ClassVar[str] = "replay"

    def make(self) -> ReplayTeleop:
        """The device (the file is read at connect())."""
        if self.path is None:
            raise ConfigError("--device replay needs --replay.path FILE.jsonl (a recorded command stream)")
        return ReplayTeleop(path=self.path)


class ReplayTeleop(TeleopDevice):
    """Plays ReplaySteps one per read(); built from steps, a stream file, or a store episode."""

    name: ClassVar[str] = "replay"

    def __init__(self, steps: Sequence[ReplayStep] | None = None, *, path: Path | None = None) -> None:
        super().__init__()
        if (steps is None) == (path is None):
            raise ConfigError("ReplayTeleop takes steps or a path, exactly one")
        self._path = path
        self._steps: list[ReplayStep] = list(steps) if steps is not None else []
        self._i = 0
        if steps is not None:
            self._check()

    def _check(self) -> None:
        dims = {np.asarray(s.action).shape for s in self._steps}
        if len(dims) > 1:
            raise ConfigError(f"replay stream mixes action shapes {sorted(dims)}: one shape per stream")
        if self._steps:
            self.action_dim = int(np.asarray(self._steps[0].action).size)

    def connect(self) -> None:
        """Load the stream file (if built from a path)."""
        if self._path is not None and not self._steps:
            self._steps = load_stream(self._path)
            self._check()

    def disconnect(self) -> None:
        """Nothing to release."""

    @property
    def position(self) -> int:
        """Readings consumed so far."""
        return self._i

    @property
    def finished(self) -> bool:
        """Every reading has been played."""
        return self._i >= len(self._steps)

    def read(self) -> TeleopCommand:
        """The next reading; after the end, a hold (zero motion, the last gripper command) with no events."""
        if self._i < len(self._steps):
            s = self._steps[self._i]
            self._i += 1
            return TeleopCommand(np.asarray(s.action, dtype=np.float32).copy(), s.events, s.active)
        if not self._steps:
            return TeleopCommand(np.zeros(self.action_dim, np.float32))
        last = np.asarray(self._steps[-1].action, dtype=np.float32)
        hold = np.zeros_like(last)
        hold[-1] = last[-1]  # realrl action layouts end with the gripper / hand closure
        return TeleopCommand(hold)

    def describe(self) -> str:
        """Where the stream comes from."""
        return f"replay of {self._path or 'a recorded stream'} ({len(self._steps)} readings)"


def load_stream(path: str | os.PathLike[str]) -> list[ReplayStep]:
    """Read a JSON-lines command stream; a malformed line is a ConfigError naming it."""
    p = Path(path)
    try:
        lines = p.read_text().splitlines()
    except OSError as e:
        raise DeviceError(f"cannot read the replay stream {p}: {e}") from e
    steps: list[ReplayStep] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            action = np.asarray(d["action"], dtype=np.float64)
            if action.ndim != 1 or action.size == 0 or not np.all(np.isfinite(action)):
                raise ValueError(f"action must be a non-empty list of finite numbers, got {d['action']!r}")
            steps.append(ReplayStep(action.astype(np.float32), events_of(d.get("events", ())),
                                    bool(d.get("active", True))))
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{p}:{n}: not a replay reading ({e}); expected "
                              '{"action": [...], "events": [...], "active": true}') from e
    return steps


def save_stream(path: str | os.PathLike[str], steps: Sequence[ReplayStep]) -> Path:
    """Write steps as a JSON-lines stream (written next to the target, then renamed in)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text("".join(json.dumps(s.to_json()) + "\n" for s in steps))
    tmp.replace(p)
    return p


def stream_from_actions(actions: np.ndarray, end: TeleopEvent = TeleopEvent.STOP) -> list[ReplayStep]:
    """One episode as a stream: START with the first action, the rest, then `end` (STOP, SUCCESS, ...) on a hold."""
    a = np.asarray(actions, dtype=np.float32)
    if a.ndim != 2 or len(a) == 0:
        raise ConfigError(f"need actions of shape (T, Da) with T >= 1, got {a.shape}")
    steps = [ReplayStep(a[0], frozenset({TeleopEvent.START}))]
    steps += [ReplayStep(x) for x in a[1:]]
    hold = np.zeros_like(a[-1])
    hold[-1] = a[-1, -1]
    steps.append(ReplayStep(hold, frozenset({end})))
    return steps


def stream_from_episode(store: Any, episode: int, end: TeleopEvent = TeleopEvent.STOP) -> list[ReplayStep]:
    """The recorded actions of a store episode (an EpisodeStore or its path) as a stream: START, actions, `end`."""
    from data import EpisodeStore

    if isinstance(store, EpisodeStore):
        return stream_from_actions(store.episode(episode, ["action"])["action"], end)
    with EpisodeStore.open(store, "r") as s:
        return stream_from_actions(s.episode(episode, ["action"])["action"], end)
