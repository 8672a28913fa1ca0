"""OperatorTask: a task on a real robot, where a person resets the scene and labels success."""

from __future__ import annotations

import numpy as np

from robot.core.interfaces import Robot, Task
from robot.core.types import Observation


class OperatorTask(Task):
    """No privileged state on hardware: the scene is reset by the operator (sessions wait for START), success comes
    from the operator's label (SUCCESS / FAILURE keys), there is no shaped reward, and nothing ends an episode
    but the label or the time limit."""

    def __init__(self, name: str = "operator", instruction: str = "") -> None:
        self.name = name
        self.instruction = instruction

    def reset(self, rng: np.random.Generator, robot: Robot) -> None:
        """Nothing to randomize: the operator sets the scene up."""

    def reward(self, obs: Observation) -> float:
        """No dense reward without privileged state."""
        return 0.0

    def success(self, obs: Observation) -> bool:
        """Never from observations: the operator labels it."""
        return False

    def terminated(self, obs: Observation) -> bool:
        """Only the operator (or the time limit) ends an episode."""
        return False
