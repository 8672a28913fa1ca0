"""`realrl demo`: the main job on the embedded default (MuJoCo sim, no ROS, no hardware)."""

from __future__ import annotations

from dataclasses import dataclass

from robot.core.errors import ConfigError


@dataclass(frozen=True)
class DemoConfig:
    """Run every registered realrl sim task with its scripted expert and print a success table."""

    episodes: int = 10
    """Episodes per task."""
    noise: float = 0.0
    """Expert action noise."""
    seed: int = 0
    """First episode seed."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"--episodes must be >= 1, got {self.episodes}")


def run(cfg: DemoConfig) -> str:
    """Run the demo and return the table it printed."""
    from robot.sessions.envs import registered_ids
    from robot.sessions.simrun import SimRunConfig, format_results
    from robot.sessions.simrun import run as sim_run

    results = []
    for env_id in registered_ids(third_party=False):
        print(f"running {env_id}: scripted expert, {cfg.episodes} episodes", flush=True)
        results.append(
            sim_run(SimRunConfig(env=env_id, episodes=cfg.episodes, noise=cfg.noise, seed=cfg.seed,
                                 progress=cfg.progress))
        )
    table = format_results(results)
    print(table)
    return table
