"""Gymnasium registration of the realrl sim tasks as `realrl/<Task>-v0`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from robot.core.errors import ConfigError
from robot.core.spec import ActionMode, CameraSpec
from robot.env import RobotEnv
from sim.franka import FrankaConfig, FrankaRobot
from sim.tasks.franka_tasks import FrankaTableTask, TableTopConfig
from sim.tasks.registry import TASKS

NAMESPACE = "realrl"
FRANKA_TASKS = ("FrankaLift", "FrankaPickPlace", "FrankaStack")


def make_franka_env(
    task: str,
    *,
    action_mode: str = "ee_delta",
    cameras: Sequence[str] = (),
    image_size: int | tuple[int, int] = 84,
    table: TableTopConfig | None = None,
    render_mode: str | None = None,
    fast_render: bool = True,
    control_hz: float = 20.0,
) -> RobotEnv:
    """A RobotEnv for a Franka table-top task; `cameras` from ('front', 'wrist'), square or (H, W) images."""
    task_cls = TASKS.get(task)
    try:
        mode = ActionMode(action_mode)
    except ValueError:
        raise ConfigError(f"action_mode {action_mode!r} unknown; use one of {[m.value for m in ActionMode]}") from None
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    unknown = [c for c in cameras if c not in ("front", "wrist")]
    if unknown:
        raise ConfigError(f"unknown cameras {unknown}; the Franka scene has 'front' and 'wrist'")
    t: FrankaTableTask = task_cls(table)
    robot = FrankaRobot(
        FrankaConfig(action_mode=mode, cameras=tuple(CameraSpec(c, h, w) for c in cameras),
                     fast_render=fast_render, control_hz=control_hz),
        objects=t.objects, markers=t.markers,
    )
    return RobotEnv(robot, t, render_mode=render_mode)


def register_all() -> None:
    """Register every realrl/* id (idempotent)."""
    for name in FRANKA_TASKS:
        env_id = f"{NAMESPACE}/{name}-v0"
        if env_id in gym.registry:
            continue
        cls: Any = TASKS.get(name)
        gym.register(
            env_id,
            entry_point="sim.registration:make_franka_env",
            kwargs={"task": name},
            max_episode_steps=cls.max_episode_steps,
        )
