"""`realrl demo`: the main job on the embedded default (MuJoCo sim, no ROS, no hardware), end to end."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from robot.core.errors import ConfigError


@dataclass(frozen=True)
class DemoConfig:
    """The whole sim pipeline: scripted demos -> store -> base policy -> one-step head -> residual RL -> table."""

    out: Path = Path("runs/demo")
    """Run directory; finished stages found there are reused (delete it to start over)."""
    env: str = "realrl/FrankaLift-v0"
    """Task for the pipeline."""
    preset: Literal["quick", "full", "smoke"] = "quick"
    """quick: ~8 min on 2 CPU cores (measured 7.5); full: larger budgets (about an hour); smoke: a wiring check
    whose policies are not trained enough to succeed."""
    experts: bool = True
    """First check every task's scripted expert (a few episodes each)."""
    expert_episodes: int = 5
    """Episodes per task for the expert check."""
    episodes: int = 30
    """Evaluation episodes for the final table (fixed seeds)."""
    seed: int = 0
    """Seed for demos and training."""
    threads: int = 2
    """torch threads."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.expert_episodes < 1:
            raise ConfigError(f"--episodes and --expert-episodes must be >= 1, got {self.episodes}, "
                              f"{self.expert_episodes}")


# Stage budgets per preset: demos (episodes, noise), base/head gradient steps, residual env steps, and the
# episodes of each stage's own end-of-training evaluation.
BUDGETS: dict[str, dict[str, Any]] = {
    "quick": {"demos": 40, "noise": 0.1, "base_steps": 1200, "head_steps": 600, "residual_steps": 12_000,
              "stage_eval": 10},
    "full": {"demos": 100, "noise": 0.1, "base_steps": 4000, "head_steps": 3000, "residual_steps": 50_000,
             "stage_eval": 20},
    "smoke": {"demos": 3, "noise": 0.0, "base_steps": 10, "head_steps": 10, "residual_steps": 200,
              "stage_eval": 1},
}


def _trained(run: Path, steps: int) -> bool:
    """Whether a train base/head run already finished `steps` (its policy records its training step)."""
    try:
        meta = json.loads((run / "policy" / "config.json").read_text()).get("meta", {})
    except (OSError, json.JSONDecodeError):
        return False
    return int(meta.get("train_step", -1)) >= steps


def _stage(name: str) -> float:
    print(f"\n== {name}", flush=True)
    return time.perf_counter()


def run(cfg: DemoConfig) -> str:
    """Run (or reuse) every stage and return the final table it printed."""
    from robot.sessions.datacmd import CollectConfig, collect
    from robot.sessions.envs import registered_ids
    from robot.sessions.residual import TrainResidualConfig, train_residual
    from robot.sessions.simrun import SimRunConfig, format_results
    from robot.sessions.simrun import run as sim_run
    from robot.sessions.train import EvalConfig, TrainBaseConfig, TrainHeadConfig, evaluate, train_base, train_head

    b = BUDGETS[cfg.preset]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    if cfg.experts:
        t = _stage(f"scripted experts on every task ({cfg.expert_episodes} episodes each)")
        results = [sim_run(SimRunConfig(env=e, episodes=cfg.expert_episodes, seed=cfg.seed, progress=cfg.progress))
                   for e in registered_ids(third_party=False)]
        print(format_results(results))
        times["experts"] = time.perf_counter() - t

    demos = out / "demos.zarr"
    t = _stage(f"1/4 demos: {b['demos']} noisy expert episodes on {cfg.env} -> {demos}")
    if demos.exists():
        print(f"reusing {demos}")
    else:
        c = collect(CollectConfig(out=demos, env=cfg.env, episodes=b["demos"], noise=b["noise"], seed=cfg.seed,
                                  progress=cfg.progress))
        print(f"recorded {c['recorded']} episodes, {c['successes']} successful")
    times["demos"] = time.perf_counter() - t

    base = out / "base"
    t = _stage(f"2/4 base policy: diffusion, {b['base_steps']} steps -> {base}")
    if _trained(base, b["base_steps"]):
        print(f"reusing {base}")
    else:
        r = train_base(TrainBaseConfig(store=demos, out=base, policy="diffusion", steps=b["base_steps"],
                                       eval_every=0, eval_episodes=b["stage_eval"], seed=cfg.seed,
                                       threads=cfg.threads, progress=cfg.progress))
        print(f"base: loss {r.get('loss', float('nan')):.4f}, success {r.get('eval/success', float('nan')):.0%} "
              f"over {b['stage_eval']} episodes")
    times["base"] = time.perf_counter() - t

    head = out / "head"
    t = _stage(f"3/4 one-step head: MIP distillation, {b['head_steps']} steps -> {head}")
    if _trained(head, b["head_steps"]):
        print(f"reusing {head}")
    else:
        r = train_head(TrainHeadConfig(teacher=base, out=head, kind="mip", steps=b["head_steps"], eval_every=0,
                                       eval_episodes=b["stage_eval"], seed=cfg.seed, threads=cfg.threads,
                                       progress=cfg.progress))
        print(f"head: success {r.get('eval/success', float('nan')):.0%} over {b['stage_eval']} episodes")
    times["head"] = time.perf_counter() - t

    res = out / "residual"
    t = _stage(f"4/4 residual RL on the frozen head: {b['residual_steps']} env steps -> {res}")
    done = (res / "metrics.jsonl").exists() and json.loads(
        (res / "metrics.jsonl").read_text().splitlines()[-1]).get("env_steps", 0) >= b["residual_steps"]
    if done:
        print(f"reusing {res}")
    else:
        every = max(100, b["residual_steps"] // 6)
        warm = min(2000, b["residual_steps"] // 8)
        r = train_residual(TrainResidualConfig(out=res, base=head, steps=b["residual_steps"], seed=cfg.seed,
                                               eval_every=every, eval_episodes=b["stage_eval"],
                                               checkpoint_every=every, warmup_steps=warm, critic_warmup_steps=warm,
                                               # the quick preset was measured with this penalty (RESULTS.md)
                                               residual_l2=0.05, resume=(res / "checkpoint").exists(),
                                               threads=cfg.threads,
                                               progress=cfg.progress))
        print(f"residual: success {r.get('eval/success', float('nan')):.0%} (head alone "
              f"{r.get('eval/base_success', float('nan')):.0%}) over {b['stage_eval']} episodes")
    times["residual"] = time.perf_counter() - t

    t = _stage(f"final evaluation: {cfg.episodes} episodes each, fixed seeds, 1 torch thread")
    rows = []
    for name, path in (("base (diffusion, DDIM)", base), ("one-step head (MIP)", head), ("head + residual", res)):
        r = evaluate(EvalConfig(policy=path, episodes=cfg.episodes, threads=1, progress=cfg.progress))
        rows.append((name, r))
    times["eval"] = time.perf_counter() - t
    lines = [f"{'policy':<24} {'success':>8} {'95% CI':>11} {'NFE':>4} {'act ms mean':>12} {'act ms p99':>11}"]
    for name, r in rows:
        lines.append(f"{name:<24} {r['success']:>8.0%} {r['success_ci_low']:>5.0%}-{r['success_ci_high']:<5.0%} "
                     f"{r['nfe']:>4} {r['act_ms_mean']:>12.2f} {r['act_ms_p99']:>11.2f}")
    lines.append("stage times: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in times.items()))
    table = "\n".join(lines)
    print("\n" + table)
    (out / "summary.json").write_text(json.dumps({"env": cfg.env, "preset": cfg.preset, "times_s": times,
                                                  "results": {n: r for n, r in rows}}, indent=1))
    return table
