"""RobotEnv: the one Gymnasium env over any Robot + Task, with actions normalized to [-1, 1]."""

from __future__ import annotations

import abc
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from robot.core.errors import ConfigError
from robot.core.interfaces import Robot, Task
from robot.core.types import STATE_PREFIX, Observation


class GoalTask(Task):
    """A goal-conditioned task: adds gymnasium-robotics GoalEnv keys and a vectorized compute_reward."""

    goal_dim: int = 3
    goal_state_keys: tuple[str, str] | None = None
    """(achieved, desired): state keys whose first goal_dim entries are the achieved and the desired goal, when the
    goals are in the state (lets a learner give the goal offset as an input); None: they are not."""

    @abc.abstractmethod
    def achieved_goal(self, obs: Observation) -> np.ndarray:
        """What the scene achieves now, shape (goal_dim,)."""

    @abc.abstractmethod
    def desired_goal(self) -> np.ndarray:
        """The goal of this episode, shape (goal_dim,)."""

    @abc.abstractmethod
    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Sparse reward (0 on success, -1 otherwise) for batched goals (..., goal_dim), as in GoalEnv."""

    def goal_observation(self, goal: np.ndarray) -> dict[str, np.ndarray]:
        """The task's own observation keys that carry the desired goal, for `goal` (what hindsight relabelling
        rewrites besides `desired_goal`); none by default."""
        return {}

    def hindsight_goals(self, achieved: np.ndarray, first: Observation) -> tuple[np.ndarray, np.ndarray]:
        """Which achieved goals (N, goal_dim) of an episode that began at `first` this task could have set as its
        goal, and those goals as it would set them: ((N,) bool, (N, goal_dim)). Call before the next reset (the
        task may read the episode's scene). Default: every achieved goal, unchanged."""
        achieved = np.asarray(achieved, np.float64)
        return np.ones(len(achieved), bool), achieved


def _space_for(value: np.ndarray) -> gym.spaces.Box:
    value = np.asarray(value)
    if value.dtype == np.uint8:
        return gym.spaces.Box(0, 255, shape=value.shape, dtype=np.uint8)
    return gym.spaces.Box(-np.inf, np.inf, shape=value.shape, dtype=value.dtype)


class RobotEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Gymnasium env over a Robot and a Task.

    Actions are float32 in [-1, 1]^Da, mapped linearly onto the robot's physical ActionSpec bounds.
    Out-of-range actions are clipped and counted in `info["action_clipped"]`. Observations are the
    robot's (state/*, image/*, time/*) plus task keys; goal tasks add `observation`, `achieved_goal` and
    `desired_goal` (gymnasium-robotics GoalEnv keys).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"]}  # noqa: RUF012 - gymnasium convention

    def __init__(self, robot: Robot, task: Task, *, render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode {render_mode!r} not supported; use one of {self.metadata['render_modes']}")
        self.robot = robot
        self.task = task
        self.render_mode = render_mode
        self.embodiment = robot.spec
        self.metadata = {**self.metadata, "render_fps": robot.spec.control_hz}
        da = robot.spec.action.dim
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(da,), dtype=np.float32)
        robot.connect()
        self._state_keys: list[str] | None = None
        first = self._assemble(robot.observe())
        self.observation_space = gym.spaces.Dict(  # type: ignore[assignment]
            {k: _space_for(v) for k, v in first.items()}
        )
        self._last_obs: Observation = first

    def _assemble(self, obs: Observation) -> Observation:
        extra = self.task.extra_observation()
        if extra:
            obs.update(extra)
        if isinstance(self.task, GoalTask):
            if self._state_keys is None:  # the key set is fixed: sort once, not every step
                self._state_keys = sorted(k for k in obs if k.startswith(STATE_PREFIX))
            obs["observation"] = np.concatenate([obs[k].ravel() for k in self._state_keys]).astype(np.float32)
            obs["achieved_goal"] = np.asarray(self.task.achieved_goal(obs), dtype=np.float32)
            obs["desired_goal"] = np.asarray(self.task.desired_goal(), dtype=np.float32)
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Home the robot (or options['state']), let the task randomize the scene with the env's rng."""
        super().reset(seed=seed)
        options = options or {}
        self.robot.reset(options.get("state"))
        self.task.reset(self.np_random, self.robot)
        obs = self._assemble(self.robot.observe())
        self._last_obs = obs
        _, success, _, task_info = self.task.evaluate(obs)
        return obs, {"success": bool(success), **task_info}

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply a normalized action for one control period and observe."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ConfigError(f"action shape {a.shape} does not match the action space {self.action_space.shape}")
        clipped = np.minimum(np.maximum(a, -1.0), 1.0)  # np.clip's dispatch costs ~3x more per step
        n_clipped = int(np.count_nonzero(clipped != a))
        sent = self.robot.command(self.embodiment.action.to_physical(clipped))
        obs = self._assemble(self.robot.observe())
        self._last_obs = obs
        reward, success, terminated, task_info = self.task.evaluate(obs)
        info: dict[str, Any] = {
            "success": bool(success),
            "action_clipped": n_clipped,
            "sent_action": self.embodiment.action.to_normalized(sent).astype(np.float32),
            **task_info,
        }
        return obs, float(reward), bool(terminated), False, info

    def hold_action(self) -> np.ndarray:
        """The normalized action that keeps the robot where it is."""
        return self.embodiment.action.to_normalized(self.robot.hold_command()).astype(np.float32)

    def observe(self) -> Observation:
        """Observe without acting (a loop holding the robot: paused, e-stopped, waiting for the operator)."""
        obs = self._assemble(self.robot.observe())
        self._last_obs = obs
        return obs

    def last_observation(self) -> Observation:
        """The observation returned by the latest reset/step."""
        return self._last_obs

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """GoalEnv reward for (batched) goals; only defined for goal tasks."""
        if not isinstance(self.task, GoalTask):
            raise ConfigError(f"task {self.task.name!r} is not goal-conditioned: it has no compute_reward")
        return self.task.compute_reward(achieved_goal, desired_goal, info)

    def render(self) -> np.ndarray | None:
        """An RGB frame from the robot's render camera when render_mode='rgb_array'."""
        if self.render_mode != "rgb_array":
            return None
        return self.robot.render()

    def close(self) -> None:
        """Disconnect the robot."""
        self.robot.disconnect()

