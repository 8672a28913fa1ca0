"""Hindsight goal relabelling (HER) for the residual learner: a finished episode replayed as if a goal it did reach
had been its goal, with the frozen base re-run on the relabelled observations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from policies.residual.demos import base_actions_along
from policies.residual.policy import Features
from robot.core.errors import ConfigError
from robot.core.interfaces import Policy
from robot.core.types import Observation
from robot.env import GoalTask


def pick_goals(task: GoalTask, observations: Sequence[Observation], k: int,
               rng: np.random.Generator) -> list[np.ndarray]:
    """Up to k goals (goal_dim,) the episode reached at some step and the task could have set (task.hindsight_goals),
    each from a different step, drawn uniformly; call before the task's next reset."""
    if not observations:
        return []
    try:
        achieved = np.stack([np.asarray(o["achieved_goal"], np.float64) for o in observations])  # (T+1, g)
    except KeyError:
        raise ConfigError("hindsight relabelling needs the 'achieved_goal' key of a goal-conditioned env") from None
    ok, goals = task.hindsight_goals(achieved, observations[0])
    steps = np.flatnonzero(ok)
    if not len(steps):
        return []
    chosen = rng.choice(steps, size=min(k, len(steps)), replace=False)
    return [goals[t] for t in np.sort(chosen)]


def relabel(observations: Sequence[Observation], actions: np.ndarray, goal: np.ndarray, task: GoalTask, base: Policy,
            features: Features, *, seed: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The episode (observations o_0..o_T, executed actions a_0..a_{T-1}) with `goal` as its goal, cut at the
    first step that reaches it: (feats (f+2, D) for o_0..o_{f+1}, actions (f+1, Da)), the last transition a
    success; None when no step reaches it.

    The goal is written into every observation (`desired_goal` and the task's goal_observation keys) and the base
    re-run from a reset on the result, because the base conditions on the goal: the features must hold the base
    action it would have given for this goal. The executed actions stay what they were (the critic scores them).
    """
    goal = np.asarray(goal, np.float64)
    achieved = np.stack([np.asarray(o["achieved_goal"], np.float64) for o in observations[1:]])  # (T, g)
    if len(achieved) != len(actions):
        raise ConfigError(f"an episode of {len(actions)} actions needs {len(actions) + 1} observations, got "
                          f"{len(observations)}")
    reached = np.flatnonzero(task.compute_reward(achieved, goal[None], None) == 0)
    if not len(reached):
        return None
    f = int(reached[0])  # action a_f brought the episode to the goal
    extra = {"desired_goal": goal.astype(np.float32), **task.goal_observation(goal)}
    obs = [{**o, **extra} for o in observations[: f + 2]]
    base_actions = base_actions_along(base, obs, seed=seed)
    states = {k: np.stack([np.asarray(o[k], np.float32).reshape(-1) for o in obs]) for k in features.state_keys}
    feats = features.batch(states, base_actions, np.arange(len(obs)))
    return feats, np.asarray(actions[: f + 1], np.float32)
