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
    STOP = "stop"
    SUCCESS = "success"
    FAILURE = "failure"
    DISCARD = "discard"
    INTERVENE = "intervene"
    RESET = "reset"


@dataclass(frozen=True)
class TeleopCommand:
    """One teleoperator reading: an action in the robot's normalized action space plus events."""

    action: np.ndarray
    """Normalized action in [-1, 1], shape (Da,)."""
    events: frozenset[TeleopEvent] = field(default_factory=frozenset)
    """Events raised since the last read."""
    active: bool = True
    """False when the operator is not driving (deadman released): the action must not be applied."""
