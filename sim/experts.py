"""Scripted experts: what they share (noise and skill knobs for demo quality, DART-style clean labels), and the
pick(-and-place) expert of the Franka tasks."""

from __future__ import annotations

import abc
import enum
import math
from typing import ClassVar, Generic, TypeVar

import numpy as np

from robot.core.errors import ConfigError
from robot.core.interfaces import Policy, Task
from robot.core.types import Observation
from sim.tasks.franka_tasks import FrankaTableTask, yaw_of

TaskT = TypeVar("TaskT", bound=Task)


class ScriptedExpert(Policy, Generic[TaskT]):
    """A phase machine over a task's observations, planned in the normalized ee-delta action space.

    `noise` adds Gaussian noise (std, normalized units) to the pose dimensions (the first `noisy_dims`) every step;
    `skill` in [0, 1] degrades the plan (see the subclasses' `_plan`). noise=0, skill=1 is the clean expert; the
    same seed gives the same episode. `clean_action` holds each step's action before the execution noise: the label
    for DART-style demos (noisy states, clean labels).
    """

    noisy_dims: ClassVar[int]
    """How many leading action dimensions (the pose ones) get the execution noise."""

    def __init__(self, task: TaskT, *, noise: float = 0.0, skill: float = 1.0, seed: int | None = None,
                 max_translation: float = 0.03, max_rotation: float = 0.2) -> None:
        if noise < 0:
            raise ConfigError(f"expert noise must be >= 0, got {noise}")
        if not 0.0 <= skill <= 1.0:
            raise ConfigError(f"expert skill must be in [0, 1], got {skill}")
        self.task = task
        self.noise = noise
        self.skill = skill
        self.max_t = max_translation
        self.max_r = max_rotation
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        """Start a new episode: first phase, new plan errors."""
        self.clean_action: np.ndarray | None = None
        self.timer = 0
        self._plan(1.0 - self.skill)

    @abc.abstractmethod
    def _plan(self, err: float) -> None:
        """Enter the first phase and draw this episode's plan errors; err = 1 - skill."""

    def _to(self, pos: np.ndarray, target: np.ndarray, speed: float | None = None) -> np.ndarray:
        """Normalized translation toward `target`, at most `speed` (m per step; default the action bound)."""
        limit = 1.0 if speed is None else min(speed / self.max_t, 1.0)
        return np.clip((target - pos) / self.max_t, -limit, limit)

    def _finish(self, a: np.ndarray) -> np.ndarray:
        """The planned action clipped to the bounds becomes `clean_action`; returned with the execution noise."""
        clean = np.clip(a, -1.0, 1.0)
        noisy = clean
        if self.noise > 0:
            noisy = clean.copy()
            noisy[: self.noisy_dims] += self.rng.normal(0.0, self.noise, self.noisy_dims)
            noisy = np.clip(noisy, -1.0, 1.0)
        clean, noisy = (self._for_robot(x) for x in (clean, noisy))
        self.clean_action = clean.astype(np.float32)
        return noisy.astype(np.float32)

    def _for_robot(self, a: np.ndarray) -> np.ndarray:
        """The planned (ee-delta) action as the task's robot takes it (the same here)."""
        return a


class Phase(enum.IntEnum):
    """Expert state machine phases."""

    APPROACH = 0
    DESCEND = 1
    CLOSE = 2
    LIFT = 3
    CARRY = 4
    LOWER = 5
    RELEASE = 6
    RETREAT = 7


def _rotmat(quat: np.ndarray) -> np.ndarray:
    w, x, y, z = (float(v) for v in quat)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


class PickPlaceExpert(ScriptedExpert[FrankaTableTask]):
    """Closed-loop state machine in the normalized ee-delta action space.

    `noise` adds Gaussian noise (std, normalized units) to the pose dimensions every step; `skill` in [0, 1]
    degrades the plan: grasp and place offsets with std (1 - skill) * 2 cm, and a chance (1 - skill) / 2 of
    closing the gripper early. noise=0, skill=1 is the clean expert; the same seed gives the same episode.
    """

    noisy_dims = 6
    hover = 0.10
    carry_height = 0.12

    def _plan(self, err: float) -> None:
        self.phase = Phase.APPROACH
        self.grasp_offset = np.append(self.rng.normal(0.0, 0.02 * err, 2), self.rng.normal(0.0, 0.01 * err))
        self.place_offset = np.append(self.rng.normal(0.0, 0.02 * err, 2), 0.0)
        self.early_close = bool(self.rng.random() < err / 2)

    def act(self, obs: Observation) -> np.ndarray:
        """One normalized action (dx, dy, dz, drx, dry, drz, gripper)."""
        ee = np.asarray(obs["state/ee_pose"], dtype=np.float64)
        pos, rot = ee[:3], _rotmat(ee[3:])
        obj = np.asarray(obs[f"state/{self.task.pick}_pose"], dtype=np.float64)
        grasp = obj[:3] + self.grasp_offset
        place = self.task.place_target(obs)
        a = np.zeros(7)
        grip = 1.0 if self.phase in (Phase.CLOSE, Phase.LIFT, Phase.CARRY, Phase.LOWER) else 0.0
        self.timer += 1

        above = grasp + np.array([0.0, 0.0, self.hover])
        if self.phase == Phase.APPROACH:
            a[:3] = self._to(pos, above)
            if np.linalg.norm(pos[:2] - above[:2]) < 0.01 and abs(pos[2] - above[2]) < 0.03 and self._yaw_ok(rot, obj):
                self.phase, self.timer = Phase.DESCEND, 0
        elif self.phase == Phase.DESCEND:
            a[:3] = self._to(pos, grasp)
            close_at = 0.04 if self.early_close else 0.006
            if abs(pos[2] - grasp[2]) < close_at or self.timer > 40:
                self.phase, self.timer = Phase.CLOSE, 0
        elif self.phase == Phase.CLOSE:
            a[:3] = self._to(pos, grasp)
            if self.timer >= 6:
                self.phase, self.timer = Phase.LIFT, 0
        elif self.phase == Phase.LIFT:
            a[:3] = self._to(pos, np.array([pos[0], pos[1], self.carry_height]))
            if pos[2] > self.carry_height - 0.02 and place is not None:
                self.phase, self.timer = Phase.CARRY, 0
        elif self.phase == Phase.CARRY:
            assert place is not None
            # Carry so that the *object* (not the TCP) ends above the place target.
            tcp_goal = place + self.place_offset + (pos - obj[:3])
            tcp_goal[2] = self.carry_height
            a[:3] = self._to(pos, tcp_goal)
            if np.linalg.norm(pos[:2] - tcp_goal[:2]) < 0.008:
                self.phase, self.timer = Phase.LOWER, 0
        elif self.phase == Phase.LOWER:
            assert place is not None
            tcp_goal = place + self.place_offset + (pos - obj[:3]) + np.array([0.0, 0.0, 0.005])
            a[:3] = self._to(pos, tcp_goal)
            if abs(obj[2] - (place[2] + 0.005)) < 0.006 or self.timer > 40:
                self.phase, self.timer = Phase.RELEASE, 0
        elif self.phase == Phase.RELEASE:
            if self.timer >= 5:
                self.phase, self.timer = Phase.RETREAT, 0
        elif self.phase == Phase.RETREAT:
            a[:3] = self._to(pos, np.array([pos[0], pos[1], self.carry_height]))

        a[3:6] = self._orient(rot, obj if self.phase <= Phase.CLOSE else None)
        a[6] = 2.0 * grip - 1.0
        return self._finish(a)

    def _yaw_error(self, rot: np.ndarray, obj: np.ndarray) -> float:
        hand_yaw = math.atan2(rot[1, 0], rot[0, 0])
        e = yaw_of(obj[3:]) - hand_yaw
        q = math.pi / 2  # a cube looks the same every quarter turn
        return (e + q / 2) % q - q / 2

    def _yaw_ok(self, rot: np.ndarray, obj: np.ndarray) -> bool:
        return abs(self._yaw_error(rot, obj)) < 0.05

    def _orient(self, rot: np.ndarray, obj: np.ndarray | None) -> np.ndarray:
        """Keep the hand pointing down; turn its yaw to the object's faces before grasping."""
        z = rot[:, 2]
        w = np.cross(z, np.array([0.0, 0.0, -1.0]))  # rotation that takes the hand axis to straight down
        if obj is not None:
            w[2] = self._yaw_error(rot, obj)
        return np.clip(w / self.max_r, -1.0, 1.0)
