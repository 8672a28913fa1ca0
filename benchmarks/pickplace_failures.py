"""Where FrankaPickPlace episodes fail: each episode of each policy classified by the cube's path and the gripper.

    python benchmarks/pickplace_failures.py runs/rpp/bc80_300 runs/bench_pp_g2/td3_s0 --episodes 40 --seed 1000

Classes (the first that applies): success; never lifts (the cube never rose 1 cm); hovers holding (at the end the
cube is held 1 cm or more above the table); releases off target (at the end it rests on the table, not at the goal);
other. Prints one row per policy, and with --per-episode one line per episode. With --critic (residual runs that
kept their checkpoint/) each failed episode also gets the critic's view of its last 30 steps: how far the hand
moved, and the ensemble-mean Q of the actor's action against the same action with the arm pushed fully down or
up (residual dz = -1 / +1) and with the gripper fully open.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

CLASSES = ("success", "hovers holding", "releases off target", "never lifts", "other")


def load_critic(run: Path, features_dim: int, action_names: tuple[str, ...]) -> Any:
    """The run's learner (actor + critic ensemble) from its last checkpoint."""
    from safetensors.torch import load_file

    from policies.residual.learner import ResidualLearner
    from robot.sessions.residual import TrainResidualConfig, learner_config

    raw = json.loads((run / "checkpoint" / "state.json").read_text())["config"]
    raw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items()
           if k in TrainResidualConfig.__dataclass_fields__}
    cfg = TrainResidualConfig(**{**raw, "out": Path(raw["out"]), "base": Path(raw["base"]) if raw["base"] else None})
    learner = ResidualLearner(features_dim, len(action_names), learner_config(cfg, action_names))
    learner.load_state_dict(load_file(str(run / "checkpoint" / "learner.safetensors")))
    return learner


def critic_view(learner: Any, feats: np.ndarray, dz: int, grip: int) -> np.ndarray:
    """(4,) ensemble-mean Q of [actor, arm down, arm up, gripper open] for one feature vector."""
    import torch

    with torch.no_grad():
        o = torch.as_tensor(feats, dtype=torch.float32)[None]
        r = learner.actor(o).repeat(4, 1)
        r[1, dz], r[2, dz] = -1.0, 1.0
        base = o[0, -learner.action_dim + grip]
        r[3, grip] = ((-1.0 - base) / learner.scales[grip]).clamp(-1.0, 1.0)  # executed gripper command -1
        obs = o.repeat(4, 1)
        return learner.critic(obs, learner.combine(obs, r)).mean(0).numpy()


def classify(policy_dir: Path, episodes: int, seed: int, per_episode: bool = False,
             critic: bool = False) -> Counter[str]:
    """Run `episodes` episodes from `seed` on and count the classes."""
    from policies.io import load_any_policy
    from robot.env import RobotEnv
    from robot.sessions.envs import make_env
    from robot.sessions.episodes import start_episode

    policy = load_any_policy(policy_dir)
    env = make_env("realrl/FrankaPickPlace-v0")
    inner = env.unwrapped
    assert isinstance(inner, RobotEnv)
    names = tuple(inner.embodiment.action.names)
    learner = None
    if critic:
        if not hasattr(policy, "features") or not (policy_dir / "checkpoint").exists():
            raise SystemExit(f"--critic needs a residual run directory with its checkpoint/; {policy_dir} is not one")
        learner = load_critic(policy_dir, policy.features.dim, names)
    counts: Counter[str] = Counter()
    try:
        for i in range(episodes):
            obs = start_episode(env, policy, seed + i)
            half = float(inner.task._half["cube"][2])  # type: ignore[attr-defined]
            done, success, max_lift, steps = False, False, 0.0, 0
            views, hand = [], []
            while not done:
                action = policy.act(obs)
                if learner is not None:
                    views.append(critic_view(learner, policy.features(obs, policy.last_base_action, steps),
                                             names.index("dz"), names.index("gripper")))
                    hand.append(np.asarray(obs["state/ee_pose"][:3], np.float64))
                obs, _, terminated, truncated, info = env.step(action)
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
            if learner is not None and not success:
                q = np.mean(views[-30:], axis=0)
                moved = float(np.linalg.norm(hand[-1] - hand[-min(30, len(hand))]))
                print(f"  seed {seed + i} ({kind}), last 30 steps: hand moved {100 * moved:.1f} cm; mean Q actor "
                      f"{q[0]:.2f}, arm down {q[1]:.2f}, arm up {q[2]:.2f}, gripper open {q[3]:.2f}")
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
    ap.add_argument("--critic", action="store_true", help="residual runs: the critic's Q in each failed episode")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"| policy ({args.episodes} episodes, seeds {args.seed}-{args.seed + args.episodes - 1}) | "
          + " | ".join(CLASSES) + " |")
    print("|---" * (len(CLASSES) + 1) + "|")
    for p in args.policies:
        c = classify(p, args.episodes, args.seed, args.per_episode, args.critic)
        print(f"| {p} | " + " | ".join(str(c[k]) for k in CLASSES) + " |", flush=True)


if __name__ == "__main__":
    main()
