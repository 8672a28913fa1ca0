"""Observation, action and teleop value types shared by every layer."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

Observation = dict[str, np.ndarray]
"""state/<name> float32, image/<camera> uint8 HxWx3, time/<source> float64 wall-clock stamps (s)."""

STATE_PREFIX = "state/"
IMAGE_PREFIX = "image/"
TIME_PREFIX = "time/"


def state_keys(obs: Observation) -> list[str]:
    """Sorted state/* keys of an observation."""
    return sorted(k for k in obs if k.startswith(STATE_PREFIX))


def image_keys(obs: Observation) -> list[str]:
    """Sorted image/* keys of an observation."""
    return sorted(k for k in obs if k.startswith(IMAGE_PREFIX))


class TeleopEvent(enum.Enum):
    """Episode-level events an operator can raise."""

    START = "start"
    """Start an episode (collect, deploy), or re-arm after an e-stop."""
    STOP = "stop"
    """End the episode and save it (collect: label with the success/failure key pressed before, if any)."""
    PAUSE = "pause"
    """Toggle pause: the robot holds, no policy or operator action is sent, the episode stays open."""
    ESTOP = "estop"
    """Emergency stop: hold and refuse every further command until re-armed with START."""
    SUCCESS = "success"
    """Label the open episode a success and end it (saved)."""
    FAILURE = "failure"
    """Label the open episode a failure and end it (saved)."""
    DISCARD = "discard"
    """End the open episode and throw it away."""
    INTERVENE = "intervene"
    """Toggle take-over: while on, the operator's action replaces the policy's."""
    RESET = "reset"
    """Reset the robot and scene (between episodes)."""


@dataclass(frozen=True)
class TeleopCommand:
    """One teleoperator reading: an action in the robot's normalized action space plus events."""

    action: np.ndarray
    """Normalized action in [-1, 1], shape (Da,)."""
    events: frozenset[TeleopEvent] = field(default_factory=frozenset)
    """Events raised since the last read."""
    active: bool = True
    """False when the operator is not driving (deadman released): the action must not be applied."""
