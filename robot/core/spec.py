"""Embodiment description: joints, groups, frames, cameras, action layout and control rate."""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from robot.core.errors import ConfigError


class ActionMode(enum.Enum):
    """What the dimensions of a robot command mean."""

    EE_DELTA = "ee_delta"
    """End-effector delta pose (dx, dy, dz in m; drx, dry, drz in rad, world frame) then effector dims."""
    JOINT_POS = "joint_pos"
    """Absolute joint position targets (rad or m) then effector dims."""


@dataclass(frozen=True)
class JointSpec:
    """One actuated joint and its limits."""

    name: str
    """Joint name as the robot (MJCF or driver) names it."""
    lower: float
    """Position lower limit (rad or m)."""
    upper: float
    """Position upper limit (rad or m)."""
    max_velocity: float = float("inf")
    """Velocity limit (rad/s or m/s)."""
    max_effort: float = float("inf")
    """Effort limit (Nm or N)."""

    def __post_init__(self) -> None:
        if not self.lower < self.upper:
            raise ConfigError(f"joint {self.name!r}: lower limit {self.lower} must be < upper {self.upper}")


@dataclass(frozen=True)
class CameraSpec:
    """A camera a robot provides; images are uint8 (height, width, 3)."""

    name: str
    """Camera name; the observation key is image/<name>."""
    height: int = 84
    """Image height in pixels."""
    width: int = 84
    """Image width in pixels."""
    fps: float = 30.0
    """Nominal frame rate of the physical device (sim renders on demand)."""

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise ConfigError(f"camera {self.name!r}: size must be positive, got {self.height}x{self.width}")


@dataclass(frozen=True)
class ActionSpec:
    """Physical meaning and bounds of each command dimension; RobotEnv maps [-1, 1] onto [low, high]."""

    mode: ActionMode
    """How the robot interprets the command."""
    names: tuple[str, ...]
    """One name per dimension."""
    low: tuple[float, ...]
    """Physical lower bound per dimension."""
    high: tuple[float, ...]
    """Physical upper bound per dimension."""

    def __post_init__(self) -> None:
        n = len(self.names)
        if len(self.low) != n or len(self.high) != n:
            raise ConfigError(
                f"action spec: {n} names but {len(self.low)} low and {len(self.high)} high bounds"
            )
        bad = [nm for nm, lo, hi in zip(self.names, self.low, self.high, strict=True) if not lo < hi]
        if bad:
            raise ConfigError(f"action spec: low must be < high for dimensions {bad}")

    @property
    def dim(self) -> int:
        """Number of action dimensions (Da)."""
        return len(self.names)

    @cached_property
    def low_array(self) -> np.ndarray:
        """Lower bounds as a float64 array (cached: this sits on the control hot path)."""
        return np.asarray(self.low, dtype=np.float64)

    @cached_property
    def high_array(self) -> np.ndarray:
        """Upper bounds as a float64 array."""
        return np.asarray(self.high, dtype=np.float64)

    @cached_property
    def _half_range(self) -> np.ndarray:
        return 0.5 * (self.high_array - self.low_array)

    def to_physical(self, normalized: np.ndarray) -> np.ndarray:
        """Map a normalized action in [-1, 1] to physical units (no clipping)."""
        return self.low_array + (np.asarray(normalized, dtype=np.float64) + 1.0) * self._half_range

    def to_normalized(self, physical: np.ndarray) -> np.ndarray:
        """Map a physical command to the normalized [-1, 1] range (no clipping)."""
        return (np.asarray(physical, dtype=np.float64) - self.low_array) / self._half_range - 1.0


@dataclass(frozen=True)
class EmbodimentSpec:
    """Everything a policy or session may know about a robot, readable before connect()."""

    name: str
    """Embodiment name, e.g. 'franka_panda'."""
    joints: tuple[JointSpec, ...]
    """Actuated joints in observation order (state/joint_pos)."""
    action: ActionSpec
    """Command layout."""
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Named joint groups: 'arm', 'gripper', 'left_hand', ..."""
    ee_frames: tuple[str, ...] = ()
    """End-effector frame names (state/ee_pose is position + wxyz quaternion per frame)."""
    cameras: tuple[CameraSpec, ...] = ()
    """Cameras, each giving image/<name>."""
    control_hz: float = 20.0
    """Rate at which command() is expected to be called."""

    def __post_init__(self) -> None:
        if self.control_hz <= 0:
            raise ConfigError(f"embodiment {self.name!r}: control_hz must be > 0, got {self.control_hz}")
        names = [j.name for j in self.joints]
        if len(set(names)) != len(names):
            raise ConfigError(f"embodiment {self.name!r}: duplicate joint names in {names}")
        for group, members in self.groups.items():
            missing = [m for m in members if m not in names]
            if missing:
                raise ConfigError(f"embodiment {self.name!r}: group {group!r} names unknown joints {missing}")
        cams = [c.name for c in self.cameras]
        if len(set(cams)) != len(cams):
            raise ConfigError(f"embodiment {self.name!r}: duplicate camera names in {cams}")

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Joint names in order."""
        return tuple(j.name for j in self.joints)

    def increment_dims(self) -> np.ndarray:
        """Boolean mask of the action dimensions that are increments (ee_delta: the 6 pose deltas of every
        end-effector frame, in ee_frames order); the rest (gripper, hands, joint targets) are absolute."""
        mask = np.zeros(self.action.dim, dtype=bool)
        if self.action.mode is ActionMode.EE_DELTA:
            mask[: 6 * max(1, len(self.ee_frames))] = True
        return mask

    def joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) position limits as float64 arrays."""
        return (
            np.array([j.lower for j in self.joints], dtype=np.float64),
            np.array([j.upper for j in self.joints], dtype=np.float64),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (stored with datasets and checkpoints)."""
        d = asdict(self)
        d["action"]["mode"] = self.action.mode.value
        d["groups"] = {k: list(v) for k, v in self.groups.items()}
        # Round-trip through json so the result holds only lists/dicts/str/float (inf stays "Infinity").
        return json.loads(json.dumps(d))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbodimentSpec:
        """Inverse of to_dict; raises ConfigError on a malformed dict."""
        try:
            a = d["action"]
            action = ActionSpec(
                mode=ActionMode(a["mode"]),
                names=tuple(a["names"]),
                low=tuple(float(x) for x in a["low"]),
                high=tuple(float(x) for x in a["high"]),
            )
            return cls(
                name=d["name"],
                joints=tuple(
                    JointSpec(str(j["name"]), float(j["lower"]), float(j["upper"]),
                              float(j.get("max_velocity", "inf")), float(j.get("max_effort", "inf")))
                    for j in d["joints"]
                ),
                action=action,
                groups={k: tuple(v) for k, v in d.get("groups", {}).items()},
                ee_frames=tuple(d.get("ee_frames", ())),
                cameras=tuple(CameraSpec(**c) for c in d.get("cameras", ())),
                control_hz=float(d["control_hz"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(f"malformed embodiment spec dict ({e!r}); was it written by realrl?") from e

