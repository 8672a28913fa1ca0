"""Evaluate a policy in a sim env: success rate with a 95% interval and per-call latency."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot.core.errors import SafetyError
from robot.core.interfaces import Policy
from robot.sessions.episodes import check_policy_env, start_episode
from robot.sessions.perturb import FAMILIES, Level, Perturbation, perturbations


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class EvalResult:
    """Outcome of an evaluation."""

    env: str
    episodes: int
    successes: int
    mean_length: float
    act_ms_mean: float
    act_ms_p99: float
    plan_ms_p50: float

    @property
    def success_rate(self) -> float:
        """Fraction of successful episodes."""
        return self.successes / self.episodes if self.episodes else 0.0

    def as_dict(self) -> dict[str, float]:
        """Flat metrics."""
        lo, hi = wilson_interval(self.successes, self.episodes)
        return {"success": self.success_rate, "success_ci_low": lo, "success_ci_high": hi,
                "mean_length": self.mean_length, "act_ms_mean": self.act_ms_mean, "act_ms_p99": self.act_ms_p99,
                "plan_ms_p50": self.plan_ms_p50}


def evaluate_policy(policy: Policy, env_id: str, episodes: int, *, seed: int = 1000, env_kwargs: dict[str, Any] | None
                    = None, progress: bool = False, perturbation: Perturbation | None = None) -> EvalResult:
    """Roll out `episodes` seeded episodes (seed + i) through SafetyLimits (and a perturbation, if given); time
    every act() call."""
    from tqdm import tqdm

    from robot.sessions.envs import make_env
    from robot.sessions.perturb import Perturb
    from robot.wrappers import SafetyLimits

    inner = make_env(env_id, **(env_kwargs or {}))
    env = SafetyLimits(Perturb(inner, perturbation) if perturbation is not None else inner)
    check_policy_env(policy, env)
    succ, lengths, act_ms, plan_ms = 0, [], [], []
    try:
        for i in tqdm(range(episodes), desc=f"eval {env_id}", unit="ep", disable=not progress, leave=False):
            obs = start_episode(env, policy, seed + i)
            done, n, success = False, 0, False
            while not done:
                t0 = time.perf_counter()
                queued = len(getattr(policy, "_queue", ()))
                action = policy.act(obs)
                dt = (time.perf_counter() - t0) * 1e3
                act_ms.append(dt)
                if queued == 0:
                    plan_ms.append(dt)
                try:
                    obs, _, terminated, truncated, info = env.step(action)
                except SafetyError:
                    break
                n += 1
                success = success or bool(info.get("success", False))
                done = terminated or truncated
            succ += int(success)
            lengths.append(n)
    finally:
        env.close()
    return EvalResult(env_id, episodes, succ, float(np.mean(lengths)), float(np.mean(act_ms)),
                      float(np.percentile(act_ms, 99)), float(np.median(plan_ms)) if plan_ms else 0.0)


def evaluate_perturbed(policy: Policy, env_id: str, episodes: int, level: Level, *, seed: int = 1000,
                       env_kwargs: dict[str, Any] | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """Nominal, then each perturbation family at `level`, on the same seeds: one row per family with its success,
    95% interval and change against nominal (what breaks first, before any hardware is touched)."""
    cameras = bool((env_kwargs or {}).get("cameras"))
    rows: list[dict[str, Any]] = []
    nominal = 0.0
    for p in [Perturbation(), *perturbations(level, cameras=cameras)]:
        if progress:
            print(f"randomize {level}: {p.family} ...", flush=True)
        res = evaluate_policy(policy, env_id, episodes, seed=seed, env_kwargs=env_kwargs, progress=progress,
                              perturbation=None if p.family == "nominal" else p)
        d = res.as_dict()
        if p.family == "nominal":
            nominal = d["success"]
        rows.append({"family": p.family, "level": "none" if p.family == "nominal" else level,
                     "delta": d["success"] - nominal, **d})
    return rows


def format_perturbed(rows: list[dict[str, Any]]) -> str:
    """A table of evaluate_perturbed's rows."""
    lines = [f"{'family':<16} {'level':<7} {'success':>8} {'95% CI':>11} {'vs nominal':>10} {'mean length':>11}"]
    for r in rows:
        ci = f"{r['success_ci_low']:.0%}-{r['success_ci_high']:.0%}"
        delta = "" if r["family"] == "nominal" else f"{r['delta'] * 100:+.0f} pts"
        lines.append(f"{r['family']:<16} {r['level']:<7} {r['success']:>8.0%} {ci:>11} {delta:>10} "
                     f"{r['mean_length']:>11.1f}")
    missing = [f for f in FAMILIES if f not in {r["family"] for r in rows}]
    if missing:
        lines.append(f"(not applicable here: {', '.join(missing)})")
    return "\n".join(lines)
