"""QoS profiles with ROS 2's presets: default, sensor data, latched (transient local), clock."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from robot.core.errors import ConfigError


class Reliability(enum.Enum):
    """Whether lost samples are repaired."""

    RELIABLE = "reliable"
    BEST_EFFORT = "best_effort"


class Durability(enum.Enum):
    """Whether late-joining readers get the last samples."""

    VOLATILE = "volatile"
    TRANSIENT_LOCAL = "transient_local"


@dataclass(frozen=True)
class QosProfile:
    """A ROS 2 QoS profile (history is always keep-last, as every ROS 2 preset is)."""

    depth: int = 10
    """Keep-last history depth."""
    reliability: Reliability = Reliability.RELIABLE
    """Reliable or best effort."""
    durability: Durability = Durability.VOLATILE
    """Volatile or transient local (latched)."""

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ConfigError(f"QoS history depth must be >= 1, got {self.depth}")


DEFAULT = QosProfile(10, Reliability.RELIABLE, Durability.VOLATILE)
"""rmw_qos_profile_default: reliable, keep-last 10, volatile."""
SENSOR_DATA = QosProfile(5, Reliability.BEST_EFFORT, Durability.VOLATILE)
"""rmw_qos_profile_sensor_data: best effort, keep-last 5, volatile."""
LATCHED = QosProfile(1, Reliability.RELIABLE, Durability.TRANSIENT_LOCAL)
"""A latched topic (robot description, static info): reliable, keep-last 1, transient local."""
CLOCK = QosProfile(1, Reliability.BEST_EFFORT, Durability.VOLATILE)
"""rclcpp::ClockQoS for /clock: best effort, keep-last 1."""
