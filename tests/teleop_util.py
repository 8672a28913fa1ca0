"""Helpers for the teleop / collect tests: scripted-expert command streams and episode replays."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENV = "realrl/FrankaPickPlace-v0"


def expert_actions(seed: int, env_id: str = ENV, max_steps: int = 160) -> tuple[np.ndarray, bool]:
    """The scripted expert's actions for one seeded episode, run through SafetyLimits as collect runs them."""
    import sim  # noqa: F401 - registers realrl/*
    from robot.wrappers import SafetyLimits

    env = SafetyLimits(gym.make(env_id))
    obs, _ = env.reset(seed=seed)
    expert = env.unwrapped.task.expert(seed=seed)
    expert.reset()
    actions, success = [], False
    for _ in range(max_steps):
        a = expert.act(obs)
        actions.append(a)
        obs, _, terminated, _, info = env.step(a)
        success = success or bool(info["success"])
        if terminated:
            break
    env.close()
    return np.asarray(actions, np.float32), success


def replay_success(env_id: str, seed: int, actions: np.ndarray) -> bool:
    """Replay recorded actions from the seeded reset through SafetyLimits; whether the task succeeded."""
    import sim  # noqa: F401
    from robot.wrappers import SafetyLimits

    env = SafetyLimits(gym.make(env_id))
    env.reset(seed=seed)
    success = False
    for a in actions:
        _, _, terminated, _, info = env.step(a)
        success = success or bool(info["success"])
        if terminated:
            break
    env.close()
    return success


def realrl(*args: str, timeout: float = 300, **kw: Any) -> subprocess.CompletedProcess[str]:
    """`realrl ...` as a user types it (a subprocess, no display)."""
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    return subprocess.run([sys.executable, "-m", "robot.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env, **kw)
