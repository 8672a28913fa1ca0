"""Franka table-top tasks: Lift, PickPlace (goal-conditioned) and Stack, all with sparse success."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot.core.errors import ConfigError
from robot.core.interfaces import Policy, Robot, Task
from robot.core.types import Observation
from robot.env import GoalTask
from sim.mujoco_robot import MarkerSpec, MujocoRobot, ObjectSpec, Randomization
from sim.tasks.registry import TASKS

CUBE = 0.02  # nominal cube half size (m)


@dataclass(frozen=True)
class TableTopConfig:
    """Scene randomization for the Franka table-top tasks."""

    xy_low: tuple[float, float] = (0.42, -0.15)
    """Lower corner of the region where objects and goals are placed (m)."""
    xy_high: tuple[float, float] = (0.62, 0.15)
    """Upper corner of that region (m)."""
    yaw_range: float = 0.6
    """Object yaw is drawn from +-yaw_range (rad)."""
    min_separation: float = 0.1
    """Minimum xy distance between placed objects/goals (m)."""
    physics: Randomization = field(default_factory=Randomization)
    """Size / friction / mass randomization of the objects."""

    def __post_init__(self) -> None:
        if not all(lo < hi for lo, hi in zip(self.xy_low, self.xy_high, strict=True)):
            raise ConfigError(f"TableTopConfig: xy_low {self.xy_low} must be < xy_high {self.xy_high}")


def yaw_of(quat: np.ndarray) -> float:
    """Yaw (rad) of a wxyz quaternion."""
    w, x, y, z = (float(v) for v in quat)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def yaw_quat(yaw: float) -> np.ndarray:
    """wxyz quaternion of a rotation about world z."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


class FrankaTableTask(Task):
    """Shared scene handling: objects placed apart in the table region with seeded randomization."""

    objects: tuple[ObjectSpec, ...] = ()
    markers: tuple[MarkerSpec, ...] = ()
    max_episode_steps: int = 100

    def __init__(self, config: TableTopConfig | None = None) -> None:
        self.config = config or TableTopConfig()
        self._half = {o.name: np.array(o.half_size) for o in self.objects}
        self._goal = np.array([0.5, 0.0, CUBE])
        self._goal32 = self._goal.astype(np.float32)

    def _sample_xy(self, rng: np.random.Generator, taken: list[np.ndarray]) -> np.ndarray:
        c = self.config
        for _ in range(100):
            xy = rng.uniform(c.xy_low, c.xy_high)
            if all(np.linalg.norm(xy - t) >= c.min_separation for t in taken):
                taken.append(xy)
                return xy
        raise ConfigError("TableTopConfig: cannot place objects apart; enlarge the region or lower min_separation")

    def _sim(self, robot: Robot) -> MujocoRobot:
        if not isinstance(robot, MujocoRobot):
            raise ConfigError(
                f"{type(self).__name__} is a sim task and needs a MujocoRobot, got {type(robot).__name__}"
            )
        return robot

    def reset(self, rng: np.random.Generator, robot: Robot) -> None:
        """Randomize object physics and place every object apart on the table."""
        sim = self._sim(robot)
        taken: list[np.ndarray] = []
        for o in self.objects:
            sim.randomize_object(o.name, rng, self.config.physics)
            xy = self._sample_xy(rng, taken)
            h = float(sim.object_half_size(o.name)[2])
            yaw = rng.uniform(-self.config.yaw_range, self.config.yaw_range)
            sim.set_object_pose(o.name, np.array([xy[0], xy[1], h]), yaw_quat(yaw))
        self._place_goals(rng, sim, taken)
        sim.forward()
        self._half = {o.name: sim.object_half_size(o.name) for o in self.objects}

    def _place_goals(self, rng: np.random.Generator, sim: MujocoRobot, taken: list[np.ndarray]) -> None:
        """Hook for goal placement."""

    def expert(self, *, noise: float = 0.0, skill: float = 1.0, seed: int | None = None) -> Policy:
        """The scripted expert for this task."""
        from sim.experts import PickPlaceExpert

        return PickPlaceExpert(self, noise=noise, skill=skill, seed=seed)

    # what the expert needs to know
    pick: str = "cube"

    def place_target(self, obs: Observation) -> np.ndarray | None:
        """Where the picked object's centre should go (None: just lift)."""
        return None

    @staticmethod
    def _reach(obs: Observation, name: str) -> float:
        v = obs["state/ee_pose"][:3] - obs[f"state/{name}_pose"][:3]
        d = math.sqrt(float(v @ v))  # np.linalg.norm's generality costs more than the 3-vector math
        return 1.0 - math.tanh(10.0 * d)


@TASKS.register("FrankaLift")
class FrankaLift(FrankaTableTask):
    """Lift the cube 6 cm off the table."""

    name = "FrankaLift"
    instruction = "lift the red cube"
    objects = (ObjectSpec("cube", (CUBE, CUBE, CUBE), (0.85, 0.2, 0.2, 1.0)),)
    max_episode_steps = 100
    lift_height = 0.06

    def _height(self, obs: Observation) -> float:
        return float(obs["state/cube_pose"][2] - self._half["cube"][2])

    def success(self, obs: Observation) -> bool:
        """Cube bottom at least lift_height above the table."""
        return self._height(obs) >= self.lift_height

    def reward(self, obs: Observation) -> float:
        """Reach + grasp + lift progress, in [0, 3]."""
        lift = min(max(self._height(obs), 0.0) / self.lift_height, 1.0)
        grasp = float(obs["state/gripper"][0] > 0.3) * self._reach(obs, "cube")
        return self._reach(obs, "cube") + grasp + 1.0 * lift

    def info(self, obs: Observation) -> dict[str, Any]:
        """Lift height for diagnostics."""
        return {"lift_height": self._height(obs)}

    def evaluate(self, obs: Observation) -> tuple[float, bool, bool, dict[str, Any]]:
        """One height computation for reward, success and info."""
        h = self._height(obs)
        lift = min(max(h, 0.0) / self.lift_height, 1.0)
        reach = self._reach(obs, "cube")
        reward = reach + float(obs["state/gripper"][0] > 0.3) * reach + lift
        ok = h >= self.lift_height
        return reward, ok, ok, {"lift_height": h}


@TASKS.register("FrankaPickPlace")
class FrankaPickPlace(FrankaTableTask, GoalTask):
    """Move the cube onto a goal spot on the table (goal-conditioned, GoalEnv keys)."""

    name = "FrankaPickPlace"
    instruction = "put the red cube on the green spot"
    objects = (ObjectSpec("cube", (CUBE, CUBE, CUBE), (0.85, 0.2, 0.2, 1.0)),)
    markers = (MarkerSpec("goal", 0.02),)
    max_episode_steps = 160
    goal_dim = 3
    goal_state_keys = ("state/cube_pose", "state/goal_pos")
    tolerance = 0.03
    rest_tolerance = 0.005
    """How far (m) a cube centre may sit from its resting height and still count as on the table."""

    def _place_goals(self, rng: np.random.Generator, sim: MujocoRobot, taken: list[np.ndarray]) -> None:
        xy = self._sample_xy(rng, taken)
        self._goal = np.array([xy[0], xy[1], float(sim.object_half_size("cube")[2])])
        self._goal32 = self._goal.astype(np.float32)
        sim.set_marker("goal", self._goal)

    def extra_observation(self) -> dict[str, np.ndarray]:
        """state/goal_pos: where the cube centre must end up."""
        return {"state/goal_pos": self._goal32.copy()}

    def achieved_goal(self, obs: Observation) -> np.ndarray:
        """Cube centre."""
        return np.asarray(obs["state/cube_pose"][:3], dtype=np.float64)

    def desired_goal(self) -> np.ndarray:
        """Goal centre."""
        return self._goal.copy()

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """0 within tolerance, -1 otherwise (batched)."""
        d = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return -(d > self.tolerance).astype(np.float32)

    def goal_observation(self, goal: np.ndarray) -> dict[str, np.ndarray]:
        """state/goal_pos for `goal`."""
        return {"state/goal_pos": np.asarray(goal, np.float32).reshape(3).copy()}

    def hindsight_goals(self, achieved: np.ndarray, first: Observation) -> tuple[np.ndarray, np.ndarray]:
        """Cube positions that _place_goals could have drawn: resting on the table (centre within rest_tolerance
        of its half height), inside the placement region and min_separation from where the cube started; the
        goal sits at the half height exactly, like a drawn one. A position in the air is no goal of this task."""
        a = np.asarray(achieved, np.float64).reshape(-1, 3)
        c, h = self.config, float(self._half["cube"][2])
        resting = np.abs(a[:, 2] - h) <= self.rest_tolerance
        inside = np.all((a[:, :2] >= c.xy_low) & (a[:, :2] <= c.xy_high), axis=1)
        start = np.asarray(first["state/cube_pose"][:2], np.float64)
        apart = np.linalg.norm(a[:, :2] - start, axis=1) >= c.min_separation
        goals = a.copy()
        goals[:, 2] = h
        return resting & inside & apart, goals

    def success(self, obs: Observation) -> bool:
        """Cube centre within tolerance of the goal (so resting on the table at the spot)."""
        return bool(np.linalg.norm(self.achieved_goal(obs) - self._goal) <= self.tolerance)

    def reward(self, obs: Observation) -> float:
        """Reach + carry progress, in [0, 2]."""
        d = float(np.linalg.norm(self.achieved_goal(obs) - self._goal))
        return self._reach(obs, "cube") + 1.0 - math.tanh(5.0 * d)

    def place_target(self, obs: Observation) -> np.ndarray | None:
        """The goal."""
        return np.asarray(obs["state/goal_pos"], dtype=np.float64)

    def info(self, obs: Observation) -> dict[str, Any]:
        """Distance to goal."""
        return {"goal_distance": float(np.linalg.norm(self.achieved_goal(obs) - self._goal))}

    def evaluate(self, obs: Observation) -> tuple[float, bool, bool, dict[str, Any]]:
        """One distance computation for reward, success and info."""
        v = obs["state/cube_pose"][:3] - self._goal
        d = math.sqrt(float(v @ v))
        ok = d <= self.tolerance
        return self._reach(obs, "cube") + 1.0 - math.tanh(5.0 * d), ok, ok, {"goal_distance": d}


@TASKS.register("FrankaStack")
class FrankaStack(FrankaTableTask):
    """Stack the red cube on the green cube and let go."""

    name = "FrankaStack"
    instruction = "stack the red cube on the green cube"
    objects = (
        ObjectSpec("cube", (CUBE, CUBE, CUBE), (0.85, 0.2, 0.2, 1.0)),
        ObjectSpec("base", (0.025, 0.025, 0.025), (0.2, 0.7, 0.25, 1.0), mass=0.2),
    )
    max_episode_steps = 200

    def _errors(self, obs: Observation) -> tuple[float, float]:
        top, base = obs["state/cube_pose"], obs["state/base_pose"]
        v = top[:2] - base[:2]
        dxy = math.sqrt(float(v @ v))
        dz = float(top[2] - base[2] - (self._half["cube"][2] + self._half["base"][2]))
        return dxy, dz

    def success(self, obs: Observation) -> bool:
        """Cube resting on the base (xy within 2 cm, height within 1 cm) with the gripper open."""
        dxy, dz = self._errors(obs)
        return dxy < 0.02 and abs(dz) < 0.01 and float(obs["state/gripper"][0]) < 0.3

    def reward(self, obs: Observation) -> float:
        """Reach + align + stack, in [0, 3]."""
        dxy, dz = self._errors(obs)
        return self._reach(obs, "cube") + 1.0 - math.tanh(10.0 * dxy) + 1.0 - math.tanh(10.0 * abs(dz))

    def place_target(self, obs: Observation) -> np.ndarray | None:
        """On top of the base cube."""
        base = np.asarray(obs["state/base_pose"][:3], dtype=np.float64)
        return base + np.array([0.0, 0.0, self._half["cube"][2] + self._half["base"][2]])

    def info(self, obs: Observation) -> dict[str, Any]:
        """Alignment errors."""
        dxy, dz = self._errors(obs)
        return {"stack_dxy": dxy, "stack_dz": dz}

    def evaluate(self, obs: Observation) -> tuple[float, bool, bool, dict[str, Any]]:
        """One alignment computation for reward, success and info."""
        dxy, dz = self._errors(obs)
        ok = dxy < 0.02 and abs(dz) < 0.01 and float(obs["state/gripper"][0]) < 0.3
        reward = self._reach(obs, "cube") + 1.0 - math.tanh(10.0 * dxy) + 1.0 - math.tanh(10.0 * abs(dz))
        return reward, ok, ok, {"stack_dxy": dxy, "stack_dz": dz}
