"""The boundaries: Robot, Task, Teleoperator, Policy. Sim and hardware implement the same Robot."""

from __future__ import annotations

import abc
import time
from types import TracebackType
from typing import Any

import numpy as np

from robot.core.spec import EmbodimentSpec
from robot.core.types import Observation, TeleopCommand


class Robot(abc.ABC):
    """A robot (simulated or real) that observes and accepts commands at spec.control_hz."""

    @property
    @abc.abstractmethod
    def spec(self) -> EmbodimentSpec:
        """The embodiment; readable before connect()."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the link (load the model, start the driver client). Idempotent."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Close the link and release resources. Idempotent."""

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool:
        """Whether observe()/command() may be called."""

    @abc.abstractmethod
    def observe(self) -> Observation:
        """Current observation; every source carries its acquisition stamp under time/<source>."""

    @abc.abstractmethod
    def command(self, cmd: np.ndarray) -> np.ndarray:
        """Send a physical-unit command laid out as spec.action; return what was really sent (clipped)."""

    @abc.abstractmethod
    def reset(self, state: dict[str, np.ndarray] | None = None) -> Observation:
        """Move to the home pose, or to a given state (e.g. {'joint_pos': q}), and observe."""

    def now(self) -> float:
        """Current time in the clock that stamps observations (sim time in sim, wall time on hardware)."""
        return time.time()

    def render(self, camera: str | None = None) -> np.ndarray:
        """An RGB frame for viewing (default camera when None)."""
        raise NotImplementedError(f"{type(self).__name__} cannot render")

    def hold_command(self) -> np.ndarray:
        """A command that keeps the robot where it is (used when an action is rejected)."""
        raise NotImplementedError(f"{type(self).__name__} does not define a hold command")

    def __enter__(self) -> Robot:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disconnect()


class Task(abc.ABC):
    """What to do with a robot: randomized reset, reward, success and termination from observations."""

    name: str = "task"
    instruction: str = ""
    """A natural-language task string stored with episodes."""

    @abc.abstractmethod
    def reset(self, rng: np.random.Generator, robot: Robot) -> None:
        """Randomize the scene (sim) or ask for a reset (real), using only the given rng."""

    @abc.abstractmethod
    def reward(self, obs: Observation) -> float:
        """Dense shaped reward for diagnostics."""

    @abc.abstractmethod
    def success(self, obs: Observation) -> bool:
        """Sparse binary success."""

    def terminated(self, obs: Observation) -> bool:
        """Whether the episode ends here (default: on success)."""
        return self.success(obs)

    def evaluate(self, obs: Observation) -> tuple[float, bool, bool, dict[str, Any]]:
        """(reward, success, terminated, info) in one call; override to share work between them."""
        success = self.success(obs)
        return self.reward(obs), success, self.terminated(obs), self.info(obs)

    def extra_observation(self) -> dict[str, np.ndarray]:
        """Task-provided observation keys (e.g. a goal) at the current step; RobotEnv adds them (its spaces
        come from the first observation, so the keys and shapes must not change between steps)."""
        return {}

    def info(self, obs: Observation) -> dict[str, Any]:
        """Per-step diagnostics merged into the env's info dict."""
        return {}


class Teleoperator(abc.ABC):
    """An input device that produces actions and episode events."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the device; raise DeviceError with a hint when it is absent."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Release the device."""

    @abc.abstractmethod
    def read(self) -> TeleopCommand:
        """Latest command (never blocks longer than one control period)."""

    def __enter__(self) -> Teleoperator:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disconnect()


class Policy(abc.ABC):
    """Maps observations to normalized actions; act_chunk gives (Ta, Da)."""

    nfe: int = 0
    """Network function evaluations per chunk (0 for non-network policies)."""

    def reset(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Forget episode state (called at every episode start)."""

    @abc.abstractmethod
    def act(self, obs: Observation) -> np.ndarray:
        """Normalized action for this step, shape (Da,)."""

    def act_chunk(self, obs: Observation) -> np.ndarray:
        """Normalized action chunk (Ta, Da); the default is a chunk of one."""
        return self.act(obs)[None]
