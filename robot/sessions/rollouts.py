"""Record a policy's own rollouts into an episode store: the states a policy visits, for distillation.

A one-step head distilled only on demo states meets states at deployment that the demos never showed
(its own small errors compound); recording where the teacher (or the head itself, DAgger-style) actually
goes and labelling those states with the teacher's chunks covers them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from robot.core.errors import ConfigError, SafetyError
from robot.core.interfaces import Policy
from robot.sessions.episodes import check_policy_env, start_episode

ROLLOUT_SEED = 5000
"""First rollout seed: apart from the demo seeds (0..) and the evaluation seeds (1000..)."""


def record_rollouts(
    policy: Policy,
    env_id: str,
    out: str | os.PathLike[str],
    episodes: int,
    *,
    seed: int = ROLLOUT_SEED,
    action_noise: float = 0.0,
    keys: tuple[str, ...] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Run `episodes` seeded episodes (seed + i) of `policy` in `env_id` and store them at `out`.

    Every step stores the observation the policy saw (`keys`, default all), the action executed and the
    reward; each episode's metadata holds its seed, `action_noise` and `meta`. `action_noise` adds Gaussian
    noise (std, normalized units) to the executed action so the recorded states spread around the policy's
    path, as DART does for demos. Returns counts and the success rate.
    """
    from tqdm import tqdm

    from data import EpisodeStore
    from robot.sessions.envs import make_env
    from robot.wrappers import SafetyLimits

    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    if action_noise < 0:
        raise ConfigError(f"action_noise is a standard deviation, got {action_noise}")
    env = SafetyLimits(make_env(env_id, **(env_kwargs or {})))
    check_policy_env(policy, env)
    base = env.unwrapped
    spec = base.embodiment.to_dict() if hasattr(base, "embodiment") else None
    fps = float(base.metadata.get("render_fps") or 20.0)
    store = EpisodeStore.create(Path(out), fps=fps, spec=spec, env_id=env_id, overwrite=True)
    rng = np.random.default_rng(seed)
    successes, steps = 0, 0
    try:
        for i in tqdm(range(episodes), desc=f"rollouts {env_id}", unit="ep", disable=not progress, leave=False):
            obs = start_episode(env, policy, seed + i)
            record: dict[str, list[Any]] = {}
            done, success = False, False
            while not done:
                action = np.asarray(policy.act(obs), dtype=np.float32)
                if action_noise > 0:
                    action = np.clip(action + action_noise * rng.standard_normal(action.shape), -1.0, 1.0)
                for k in keys if keys is not None else tuple(obs):
                    record.setdefault(k, []).append(np.asarray(obs[k]))
                record.setdefault("action", []).append(action.astype(np.float32))
                try:
                    obs, reward, terminated, truncated, info = env.step(action)
                except SafetyError:
                    record.setdefault("reward", []).append(np.float32(0.0))
                    break
                record.setdefault("reward", []).append(np.float32(reward))
                success = success or bool(info.get("success", False))
                done = terminated or truncated
            successes += int(success)
            steps += len(record["action"])
            store.append_episode({k: np.stack(v) for k, v in record.items()}, success=success, source="policy",
                                 meta={**(meta or {}), "seed": seed + i, "action_noise": action_noise})
    finally:
        store.close()
        env.close()
    return {"episodes": episodes, "steps": steps, "success": successes / episodes}
