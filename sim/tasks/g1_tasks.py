"""G1 bimanual table-top tasks: BoxPickup (lift a box between both hands) and Handover (left hand to right)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from robot.core.errors import ConfigError
from robot.core.interfaces import Policy, Robot, Task
from robot.core.types import Observation
from sim.mujoco_robot import MujocoRobot, ObjectSpec
from sim.tasks.franka_tasks import TableTopConfig, yaw_quat
from sim.tasks.registry import TASKS


def _norm(v: np.ndarray) -> float:
    return math.sqrt(float(v @ v))  # np.linalg.norm's generality costs more than the 3-vector math


class G1TableTask(Task):
    """Shared scene handling: one object placed in the task's region with seeded yaw and physics."""

    objects: tuple[ObjectSpec, ...] = ()
    max_episode_steps: int = 120
    default_table = TableTopConfig()
    """Placement region, yaw range and physics randomization when the factory is given none."""

    def __init__(self, config: TableTopConfig | None = None) -> None:
        self.config = config or self.default_table
        if len(self.objects) != 1:
            raise ConfigError(f"{type(self).__name__} places exactly one object, has {len(self.objects)}")
        self.obj = self.objects[0].name
        self._half = np.array(self.objects[0].half_size)
        self.robot: MujocoRobot | None = None

    def reset(self, rng: np.random.Generator, robot: Robot) -> None:
        """Randomize the object's physics, then place it upright in the region at a random yaw."""
        if not isinstance(robot, MujocoRobot):
            raise ConfigError(
                f"{type(self).__name__} is a sim task and needs a MujocoRobot, got {type(robot).__name__}"
            )
        self.robot = robot  # the experts read its action mode (and, for joint actions, its IK)
        c = self.config
        robot.randomize_object(self.obj, rng, c.physics)
        self._half = robot.object_half_size(self.obj)
        xy = rng.uniform(c.xy_low, c.xy_high)
        yaw = rng.uniform(-c.yaw_range, c.yaw_range)
        robot.set_object_pose(self.obj, np.array([xy[0], xy[1], self._half[2]]), yaw_quat(yaw))
        robot.forward()

    @property
    def half_size(self) -> np.ndarray:
        """Half extents of the object this episode (after size randomization)."""
        return self._half.copy()

    def _height(self, obs: Observation) -> float:
        """Height of the object's centre above its resting height (m)."""
        return float(obs[f"state/{self.obj}_pose"][2] - self._half[2])

    def reward(self, obs: Observation) -> float:
        """Dense shaped reward (see evaluate)."""
        return self.evaluate(obs)[0]

    def success(self, obs: Observation) -> bool:
        """Sparse success (see evaluate)."""
        return self.evaluate(obs)[1]

    def info(self, obs: Observation) -> dict[str, Any]:
        """Diagnostics (see evaluate)."""
        return self.evaluate(obs)[3]


@TASKS.register("G1BoxPickup")
class G1BoxPickup(G1TableTask):
    """Lift a box off the table squeezed between both palms, and hold it there."""

    name = "G1BoxPickup"
    instruction = "pick up the box with both hands"
    objects = (ObjectSpec("box", (0.06, 0.09, 0.06), (0.85, 0.35, 0.15, 1.0), mass=0.3, friction=1.0),)
    max_episode_steps = 100
    default_table = TableTopConfig(xy_low=(0.31, -0.04), xy_high=(0.35, 0.04), yaw_range=0.25)
    lift_height = 0.05
    """The box's bottom must be this high above the table (m)."""
    hold_distance = 0.13
    """Each palm must be within this distance (m) of the box centre: the box is held, not thrown."""

    def expert(self, *, noise: float = 0.0, skill: float = 1.0, seed: int | None = None) -> Policy:
        """The scripted bimanual squeeze-and-lift expert."""
        from sim.g1_experts import BoxPickupExpert

        return BoxPickupExpert(self, noise=noise, skill=skill, seed=seed)

    def evaluate(self, obs: Observation) -> tuple[float, bool, bool, dict[str, Any]]:
        """Reward = reach (both palms to the box) + lift progress, in [0, 3]; success = lifted and held."""
        h = self._height(obs)
        dl = _norm(obs["state/box_rel_left"])
        dr = _norm(obs["state/box_rel_right"])
        reach = 2.0 - math.tanh(5.0 * max(dl - 0.08, 0.0)) - math.tanh(5.0 * max(dr - 0.08, 0.0))
        held = dl < self.hold_distance and dr < self.hold_distance
        lift = min(max(h, 0.0) / self.lift_height, 1.0) if held else 0.0
        ok = held and h >= self.lift_height
        return reach + lift, ok, ok, {"lift_height": h, "palm_distance": max(dl, dr)}


@TASKS.register("G1Handover")
class G1Handover(G1TableTask):
    """Pick an upright bar with the left hand, pass it to the right hand, and let go with the left."""

    name = "G1Handover"
    instruction = "hand the bar over from the left hand to the right hand"
    objects = (ObjectSpec("bar", (0.02, 0.02, 0.1), (0.2, 0.45, 0.85, 1.0), mass=0.1, friction=1.0),)
    max_episode_steps = 200
    default_table = TableTopConfig(xy_low=(0.3, 0.08), xy_high=(0.34, 0.14), yaw_range=0.3)
    lift_height = 0.05
    """The bar's bottom must be this high above the table (m)."""
    grasp_distance = 0.05
    """The receiving palm must be within this horizontal distance (m) of the bar's axis."""
    release_distance = 0.08
    """The giving palm must be at least this far (m) from the bar, with its hand open."""

    def expert(self, *, noise: float = 0.0, skill: float = 1.0, seed: int | None = None) -> Policy:
        """The scripted pick-pass-release expert."""
        from sim.g1_experts import HandoverExpert

        return HandoverExpert(self, noise=noise, skill=skill, seed=seed)

    def evaluate(self, obs: Observation) -> tuple[float, bool, bool, dict[str, Any]]:
        """Reward = left reach + lift + right reach + left release, in [0, 4]; success = held by the right
        hand only (right closed within grasp_distance of the bar, left open and away), bar lifted."""
        h = self._height(obs)
        rl, rr = obs["state/bar_rel_left"], obs["state/bar_rel_right"]
        dl = _norm(rl)
        dr_xy = math.hypot(float(rr[0]), float(rr[1]))
        hand = obs["state/hand"]
        right_holds = dr_xy < self.grasp_distance and float(hand[1]) > 0.5
        left_free = dl > self.release_distance and float(hand[0]) < 0.3
        lift = min(max(h, 0.0) / self.lift_height, 1.0)
        reward = (1.0 - math.tanh(5.0 * dl)) + lift + (1.0 - math.tanh(5.0 * dr_xy))
        if right_holds:
            reward += float(left_free)
        ok = right_holds and left_free and h >= self.lift_height
        return reward, ok, ok, {"lift_height": h, "right_distance": dr_xy, "left_distance": dl}
