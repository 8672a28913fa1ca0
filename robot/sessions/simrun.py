"""Run a policy (scripted expert, random, hold) in a sim env for N episodes and report success."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robot.core.errors import ConfigError, SafetyError
from robot.core.interfaces import Policy
from robot.core.types import Observation


@dataclass(frozen=True)
class SimRunConfig:
    """`realrl sim run`: roll out a policy in a registered env."""

    env: str = "realrl/FrankaLift-v0"
    """Env id (see `realrl envs`)."""
    policy: Literal["expert", "random", "hold"] = "expert"
    """expert: the task's scripted expert; random: uniform actions; hold: the robot's hold action."""
    episodes: int = 20
    """Number of episodes."""
    noise: float = 0.0
    """Expert action noise (std, normalized units)."""
    skill: float = 1.0
    """Expert skill in [0, 1] (1 = clean plan)."""
    seed: int = 0
    """Episode i uses seed + i (env and expert)."""
    render_video: Path | None = None
    """Write every episode's overview camera to this .mp4."""
    safety: bool = True
    """Wrap the env in SafetyLimits."""
    realtime: bool = False
    """Pace the loop at the robot's control rate (RealTimeRate)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"--episodes must be >= 1, got {self.episodes}")
        if self.noise < 0:
            raise ConfigError(f"--noise must be >= 0, got {self.noise}")
        if not 0.0 <= self.skill <= 1.0:
            raise ConfigError(f"--skill must be in [0, 1], got {self.skill}")


@dataclass
class RunResult:
    """Outcome of a run."""

    env: str
    successes: list[bool] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    steps: int = 0
    wall_s: float = 0.0
    safety_faults: int = 0
    clipped: int = 0

    @property
    def success_rate(self) -> float:
        """Fraction of successful episodes."""
        return float(np.mean(self.successes)) if self.successes else 0.0

    @property
    def mean_length(self) -> float:
        """Mean episode length in steps."""
        return float(np.mean(self.lengths)) if self.lengths else 0.0

    @property
    def steps_per_s(self) -> float:
        """Env steps per wall-clock second (policy included)."""
        return self.steps / self.wall_s if self.wall_s > 0 else 0.0


class _Random(Policy):
    def __init__(self, dim: int, seed: int) -> None:
        self.dim, self.rng = dim, np.random.default_rng(seed)

    def act(self, obs: Observation) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, self.dim).astype(np.float32)


class _Hold(Policy):
    def __init__(self, env: Any) -> None:
        self.env = env

    def act(self, obs: Observation) -> np.ndarray:
        base = self.env.unwrapped
        if hasattr(base, "hold_action"):
            return np.asarray(base.hold_action(), dtype=np.float32)
        return np.zeros(self.env.action_space.shape, dtype=np.float32)


def make_policy(cfg: SimRunConfig, env: Any, seed: int) -> Policy:
    """The policy named by cfg.policy for this env."""
    if cfg.policy == "random":
        return _Random(int(env.action_space.shape[0]), seed)
    if cfg.policy == "hold":
        return _Hold(env)
    task = getattr(env.unwrapped, "task", None)
    if task is None or not hasattr(task, "expert"):
        raise ConfigError(f"{cfg.env} has no scripted expert; use --policy random or --policy hold")
    expert: Policy = task.expert(noise=cfg.noise, skill=cfg.skill, seed=seed)
    return expert


def run(cfg: SimRunConfig) -> RunResult:
    """Roll out cfg.episodes episodes; raises ConfigError for bad ids/flags."""
    from tqdm import tqdm

    from robot.sessions.envs import make_env
    from robot.sessions.video import VideoWriter
    from robot.wrappers import RealTimeRate, SafetyLimits

    env: Any = make_env(cfg.env, **({"render_mode": "rgb_array"} if cfg.render_video else {}))
    safety = SafetyLimits(env) if cfg.safety else None
    if safety is not None:
        env = safety
    if cfg.realtime:
        env = RealTimeRate(env)
    result = RunResult(cfg.env)
    fps = float(env.unwrapped.metadata.get("render_fps") or 20)
    video = VideoWriter(cfg.render_video, fps) if cfg.render_video else None
    bar = tqdm(range(cfg.episodes), desc=cfg.env, unit="ep", disable=not cfg.progress, leave=False)
    t0 = time.perf_counter()
    try:
        for i in bar:
            seed = cfg.seed + i
            obs, info = env.reset(seed=seed)
            policy = make_policy(cfg, env, seed)
            policy.reset()
            done, n, success = False, 0, False
            while not done:
                try:
                    obs, _, terminated, truncated, info = env.step(policy.act(obs))
                except SafetyError as e:
                    bar.write(f"episode {i}: stopped by safety: {e}")
                    break
                n += 1
                success = success or bool(info.get("success", False))
                done = terminated or truncated
                if video is not None:
                    video.write(env.unwrapped.render())
            result.successes.append(success)
            result.lengths.append(n)
            result.steps += n
            bar.set_postfix(success=f"{sum(result.successes)}/{len(result.successes)}")
    finally:
        result.wall_s = time.perf_counter() - t0
        if video is not None:
            video.close()
        if safety is not None:
            result.safety_faults = safety.totals["faults"]
            result.clipped = safety.totals["clipped"]
        env.close()
    return result


def format_results(results: list[RunResult]) -> str:
    """A fixed-width success table."""
    head = f"{'env':<30} {'episodes':>8} {'success':>8} {'mean len':>9} {'steps/s':>8}"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.env:<30} {len(r.successes):>8} {r.success_rate:>8.0%} {r.mean_length:>9.1f} {r.steps_per_s:>8.0f}"
        )
    return "\n".join(lines)
