"""Which normalized gripper commands keep a lifted cube in the Franka's hand (the residual gripper scale it implies)."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np


def held_height(command: float, seed: int, hold_steps: int = 30) -> float:
    """Cube height (m) after the scripted expert lifts it and the gripper is then held at `command`, arm still."""
    from robot.env import RobotEnv
    from robot.sessions.envs import make_env

    env = make_env("realrl/FrankaPickPlace-v0")
    try:
        obs, _ = env.reset(seed=seed)
        inner = env.unwrapped
        assert isinstance(inner, RobotEnv)
        task: Any = inner.task
        expert = task.expert(seed=seed)
        lifted_at = None
        for t in range(task.max_episode_steps):
            a = np.asarray(expert.act(obs), np.float32)
            if lifted_at is not None:
                if t - lifted_at > hold_steps:
                    break
                a = np.zeros_like(a)
                a[-1] = command
            obs, _, term, trunc, _ = env.step(a)
            if lifted_at is None and obs["state/cube_pose"][2] > 0.06:
                lifted_at = t
            if term or trunc:
                break
        if lifted_at is None:
            raise RuntimeError(f"the expert did not lift the cube on seed {seed}; try other seeds")
        return float(obs["state/cube_pose"][2])
    finally:
        env.close()


def main() -> None:
    """Print, per command, how many of the seeds keep the cube up."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--commands", type=float, nargs="+", default=[1.0, 0.5, 0.3, 0.2, 0.0, -0.2, -1.0])
    p.add_argument("--seeds", type=int, default=6)
    args = p.parse_args()
    print("normalized gripper command | cube kept up (of seeds) | cube heights after 30 steps (m)")
    always = []
    for c in args.commands:
        h = [held_height(c, s) for s in range(args.seeds)]
        kept = sum(x > 0.04 for x in h)
        if kept == len(h):
            always.append(c)
        print(f"{c:+.1f} | {kept}/{len(h)} | {' '.join(f'{x:.3f}' for x in h)}")
    if always:
        # A residual of scale s on a base that opens (-1) reaches at most -1 + s.
        print(f"every seed held from {min(always):+.1f} up: keeping shut a gripper the base opens takes a residual "
              f"gripper scale of at least {1 + min(always):.1f}")


if __name__ == "__main__":
    main()
