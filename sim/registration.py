"""Gymnasium registration of the realrl sim tasks as `realrl/<Task>-v0`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from robot.core.errors import ConfigError
from robot.core.spec import ActionMode, CameraSpec
from robot.env import RobotEnv
from sim.franka import FrankaConfig, FrankaRobot
from sim.g1 import G1Config, G1Robot
from sim.tasks.franka_tasks import FrankaTableTask, TableTopConfig
from sim.tasks.g1_tasks import G1TableTask
from sim.tasks.registry import TASKS

NAMESPACE = "realrl"
FRANKA_TASKS = ("FrankaLift", "FrankaPickPlace", "FrankaStack")
G1_TASKS = ("G1BoxPickup", "G1Handover")
FRANKA_CAMERAS = ("front", "wrist")
G1_CAMERAS = ("head", "front", "left_wrist", "right_wrist")


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
    """A RobotEnv for a Franka table-top task; `cameras` from FRANKA_CAMERAS, square or (H, W) images."""
    task_cls = TASKS.get(task)
    mode = _action_mode(action_mode)
    cams = _camera_specs(cameras, image_size, "Franka", FRANKA_CAMERAS)
    t: FrankaTableTask = task_cls(table)
    robot = FrankaRobot(
        FrankaConfig(action_mode=mode, cameras=cams, fast_render=fast_render, control_hz=control_hz),
        objects=t.objects, markers=t.markers,
    )
    return RobotEnv(robot, t, render_mode=render_mode)


def make_g1_env(
    task: str,
    *,
    action_mode: str = "ee_delta",
    cameras: Sequence[str] = (),
    image_size: int | tuple[int, int] = 84,
    table: TableTopConfig | None = None,
    render_mode: str | None = None,
    fast_render: bool = True,
    control_hz: float = 20.0,
    freeze_waist: bool = True,
) -> RobotEnv:
    """A RobotEnv for a G1 bimanual task; `cameras` from G1_CAMERAS, square or (H, W) images."""
    task_cls = TASKS.get(task)
    mode = _action_mode(action_mode)
    cams = _camera_specs(cameras, image_size, "G1", G1_CAMERAS)
    t: G1TableTask = task_cls(table)
    robot = G1Robot(
        G1Config(action_mode=mode, cameras=cams, fast_render=fast_render, control_hz=control_hz,
                 freeze_waist=freeze_waist),
        objects=t.objects,
    )
    return RobotEnv(robot, t, render_mode=render_mode)


def _camera_specs(
    cameras: Sequence[str], image_size: int | tuple[int, int], scene: str, known: Sequence[str]
) -> tuple[CameraSpec, ...]:
    """The named cameras at a square or (H, W) image size; ConfigError for a camera the scene lacks."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    unknown = [c for c in cameras if c not in known]
    if unknown:
        raise ConfigError(f"unknown cameras {unknown}; the {scene} scene has {list(known)}")
    return tuple(CameraSpec(c, h, w) for c in cameras)


def _action_mode(action_mode: str) -> ActionMode:
    try:
        return ActionMode(action_mode)
    except ValueError:
        raise ConfigError(f"action_mode {action_mode!r} unknown; use one of {[m.value for m in ActionMode]}") from None


def register_all() -> None:
    """Register every realrl/* id (idempotent)."""
    for names, factory in ((FRANKA_TASKS, "make_franka_env"), (G1_TASKS, "make_g1_env")):
        for name in names:
            env_id = f"{NAMESPACE}/{name}-v0"
            if env_id in gym.registry:
                continue
            cls: Any = TASKS.get(name)
            gym.register(
                env_id,
                entry_point=f"sim.registration:{factory}",
                kwargs={"task": name},
                max_episode_steps=cls.max_episode_steps,
            )
