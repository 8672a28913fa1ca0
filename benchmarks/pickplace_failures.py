"""Where FrankaPickPlace episodes fail: each episode of each policy classified by the cube's path and the gripper.

    python benchmarks/pickplace_failures.py runs/rpp/bc80_300 runs/bench_pp_g2/td3_s0 --episodes 40 --seed 1000

Classes (the first that applies): success; never lifts (the cube never rose 1 cm); hovers holding (at the end the
cube is held 1 cm or more above the table); releases off target (at the end it rests on the table, not at the goal);
other. Prints one row per policy, and with --per-episode one line per episode.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

CLASSES = ("success", "hovers holding", "releases off target", "never lifts", "other")


def classify(policy_dir: Path, episodes: int, seed: int, per_episode: bool = False) -> Counter[str]:
    """Run `episodes` episodes from `seed` on and count the classes."""
    from policies.io import load_any_policy
    from robot.sessions.envs import make_env
    from robot.sessions.episodes import start_episode

    policy = load_any_policy(policy_dir)
    env = make_env("realrl/FrankaPickPlace-v0")
    counts: Counter[str] = Counter()
    try:
        for i in range(episodes):
            obs = start_episode(env, policy, seed + i)
            half = float(env.unwrapped.task._half["cube"][2])
            done, success, max_lift, steps = False, False, 0.0, 0
            while not done:
                obs, _, terminated, truncated, info = env.step(policy.act(obs))
                done, steps = terminated or truncated, steps + 1
                success = success or bool(info.get("success", False))
                max_lift = max(max_lift, float(obs["state/cube_pose"][2]) - half)
            lift = float(obs["state/cube_pose"][2]) - half
            dist = float(np.linalg.norm(obs["state/cube_pose"][:3] - obs["state/goal_pos"]))
            if success:
                kind = "success"
            elif max_lift < 0.01:
                kind = "never lifts"
            elif lift >= 0.01:
                kind = "hovers holding"
            elif lift < 0.005:
                kind = "releases off target"
            else:
                kind = "other"
            counts[kind] += 1
            if per_episode:
                print(f"  seed {seed + i}: {kind:20s} steps {steps:3d}  max lift {max_lift:.3f} m  final lift "
                      f"{lift:.3f} m  goal distance {dist:.3f} m  gripper {float(obs['state/gripper'][0]):.2f}")
    finally:
        env.close()
    return counts


def main() -> None:
    """Classify every policy given and print the table."""
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("policies", nargs="+", type=Path, help="policy run directories (base, head or residual)")
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1000, help="first episode seed")
    ap.add_argument("--per-episode", action="store_true", help="also print one line per episode")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"| policy ({args.episodes} episodes, seeds {args.seed}-{args.seed + args.episodes - 1}) | "
          + " | ".join(CLASSES) + " |")
    print("|---" * (len(CLASSES) + 1) + "|")
    for p in args.policies:
        c = classify(p, args.episodes, args.seed, args.per_episode)
        print(f"| {p} | " + " | ".join(str(c[k]) for k in CLASSES) + " |", flush=True)


if __name__ == "__main__":
    main()
