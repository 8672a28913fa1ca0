"""`realrl data ...`: collect scripted demos into a store, inspect, validate and repair stores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from robot.core.errors import ConfigError


@dataclass(frozen=True)
class CollectConfig:
    """Collect episodes from a sim env into an episode store (created, or appended to if it exists)."""

    out: Path
    """Store directory (e.g. demos.zarr)."""
    env: str = "realrl/FrankaLift-v0"
    """Env id (see `realrl envs`)."""
    source: Literal["expert", "random"] = "expert"
    """Who acts: the task's scripted expert, or uniform random actions."""
    episodes: int = 50
    """Episodes to record."""
    noise: float = 0.0
    """Expert action noise (std, normalized units)."""
    skill: float = 1.0
    """Expert skill in [0, 1]."""
    cameras: str = ""
    """Comma-separated cameras to record, e.g. 'front,wrist' (empty: state only)."""
    image_size: int = 84
    """Square camera image size (pixels)."""
    seed: int = 0
    """Episode i uses seed + i (continues after the episodes already in the store)."""
    label: Literal["clean", "executed"] = "clean"
    """Stored action: the expert's noise-free action (DART: noisy states, clean labels, so demos show
    recoveries) or the executed (noisy, safety-clipped) one. Random/teleop sources always store executed."""
    only_success: bool = False
    """Keep only successful episodes (others are discarded, still counted)."""
    operator: str = ""
    """Stored with every episode."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"--episodes must be >= 1, got {self.episodes}")
        if self.noise < 0 or not 0.0 <= self.skill <= 1.0:
            raise ConfigError(f"--noise must be >= 0 and --skill in [0, 1]; got {self.noise}, {self.skill}")


@dataclass(frozen=True)
class StorePathConfig:
    """A store to inspect."""

    store: tyro.conf.Positional[Path]
    """Store directory."""


@dataclass(frozen=True)
class InfoConfig(StorePathConfig):
    """Show episodes, frames, keys and shapes, success rate and size on disk of a store."""


@dataclass(frozen=True)
class ValidateConfig(StorePathConfig):
    """Read every chunk of a store and list every problem found (exit 1 if any)."""


@dataclass(frozen=True)
class RepairConfig(StorePathConfig):
    """Fix what can be fixed: drop uncommitted tails and unreadable trailing episodes."""


@dataclass(frozen=True)
class ExportConfig:
    """Export a store to LeRobotDataset (v3.0 or v2.1) or robomimic hdf5."""

    store: tyro.conf.Positional[Path]
    """Source store."""
    out: tyro.conf.Positional[Path]
    """Output directory (lerobot) or .hdf5 file (robomimic); must not exist."""
    format: Literal["lerobot", "robomimic"] = "lerobot"
    """Target format."""
    version: Literal["v3.0", "v2.1"] = "v3.0"
    """LeRobotDataset layout version."""


@dataclass(frozen=True)
class ImportConfig:
    """Import a LeRobotDataset (v3.0/v2.1) or robomimic hdf5 into a new store."""

    src: tyro.conf.Positional[Path]
    """Dataset directory (lerobot) or .hdf5 file (robomimic)."""
    store: tyro.conf.Positional[Path]
    """New store; must not exist."""
    format: Literal["lerobot", "robomimic"] = "lerobot"
    """Source format."""


def export_store(cfg: ExportConfig) -> Path:
    """Run an export; returns the output path."""
    from data.convert import export_lerobot, export_robomimic

    if cfg.format == "lerobot":
        return export_lerobot(cfg.store, cfg.out, version=cfg.version)
    return export_robomimic(cfg.store, cfg.out)


def import_store(cfg: ImportConfig) -> int:
    """Run an import; returns the number of episodes imported."""
    from data.convert import import_lerobot, import_robomimic

    store = import_lerobot(cfg.src, cfg.store) if cfg.format == "lerobot" else import_robomimic(cfg.src, cfg.store)
    n = len(store)
    store.close()
    return n


def collect(cfg: CollectConfig) -> dict[str, int]:
    """Record cfg.episodes episodes; returns counts (recorded, kept, successes, dropped_steps)."""
    import numpy as np
    from tqdm import tqdm

    from data import Recorder
    from robot.sessions.envs import make_env
    from robot.sessions.recording import open_store
    from robot.sessions.simrun import SimRunConfig, make_policy
    from robot.wrappers import SafetyLimits

    cams = tuple(c.strip() for c in cfg.cameras.split(",") if c.strip())
    kwargs = {"cameras": cams, "image_size": cfg.image_size} if cams else {}
    env = SafetyLimits(make_env(cfg.env, **kwargs))
    base = env.unwrapped
    spec = base.embodiment.to_dict() if hasattr(base, "embodiment") else None
    fps = float(base.metadata.get("render_fps") or 20.0)
    store = open_store(cfg.out, cfg.env, fps=fps, spec=spec)
    first_seed = cfg.seed + len(store)
    task_text = getattr(getattr(base, "task", None), "instruction", "")
    policy_cfg = SimRunConfig(env=cfg.env, policy=cfg.source, noise=cfg.noise, skill=cfg.skill)
    counts = {"recorded": 0, "kept": 0, "successes": 0, "dropped_steps": 0}
    try:
        with Recorder(store) as rec:
            bar = tqdm(range(cfg.episodes), desc=f"collect {cfg.env}", unit="ep", disable=not cfg.progress)
            for i in bar:
                seed = first_seed + i
                obs, info = env.reset(seed=seed)
                policy = make_policy(policy_cfg, env, seed)
                rec.start_episode()
                success, done = False, False
                while not done:
                    action = policy.act(obs)
                    next_obs, reward, terminated, truncated, info = env.step(action)
                    clean = getattr(policy, "clean_action", None)
                    if cfg.label == "clean" and clean is not None:
                        label = clean
                    else:  # what was executed after safety clipping, aligned with obs
                        label = np.asarray(info.get("sent_action", action))
                    rec.add_step(obs, label, float(reward))
                    obs, done = next_obs, terminated or truncated
                    success = success or bool(info.get("success", False))
                counts["recorded"] += 1
                counts["successes"] += int(success)
                if cfg.only_success and not success:
                    rec.discard_episode()
                else:
                    rec.end_episode(success=success, task=task_text, source="expert" if cfg.source == "expert"
                                    else "policy", operator=cfg.operator,
                                    meta={"seed": seed, "noise": cfg.noise, "skill": cfg.skill, "label": cfg.label})
                    counts["kept"] += 1
                bar.set_postfix(success=f"{counts['successes']}/{counts['recorded']}", kept=counts["kept"])
        counts["dropped_steps"] = rec.stats().steps_dropped
    finally:
        store.close()
        env.close()
    return counts


def info_text(cfg: InfoConfig) -> str:
    """Formatted store summary."""
    from data import format_info, info

    return format_info(info(cfg.store))
