"""Sim-to-real checks: perturbation families (object physics, actuator gains, observation noise, latency, dropped
camera frames) at light / medium / heavy strength, applied to a realrl sim env per episode."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np

from robot.core.errors import ConfigError
from robot.core.types import IMAGE_PREFIX, STATE_PREFIX, TIME_PREFIX

Level = Literal["light", "medium", "heavy"]
FAMILIES = ("object", "actuator", "obs_noise", "obs_latency", "action_latency", "frame_drop")
"""Every perturbation family, in report order."""


@dataclass(frozen=True)
class Perturbation:
    """What differs from the nominal sim in one evaluation (ranges are drawn uniformly per episode)."""

    family: str = "nominal"
    """Name in reports."""
    object_mass: tuple[float, float] = (1.0, 1.0)
    """Object mass multiplier range."""
    object_friction: tuple[float, float] = (1.0, 1.0)
    """Object friction multiplier range."""
    object_size: tuple[float, float] = (1.0, 1.0)
    """Object size multiplier range."""
    actuator_gain: tuple[float, float] = (1.0, 1.0)
    """Servo stiffness/damping multiplier range, drawn per actuator."""
    obs_noise: float = 0.0
    """Std of Gaussian noise added to every state/* value (m, rad, unitless alike)."""
    obs_latency_s: float = 0.0
    """Age of every observation (the sim returns the state from this long ago, stamped accordingly)."""
    action_latency_s: float = 0.0
    """Delay before a command starts acting."""
    frame_drop: float = 0.0
    """Probability that a camera frame is not refreshed (the previous frame and its stamp are returned)."""

    def __post_init__(self) -> None:
        for name in ("object_mass", "object_friction", "object_size", "actuator_gain"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ConfigError(f"Perturbation.{name} must satisfy 0 < low <= high, got {(lo, hi)}")
        if self.obs_noise < 0 or self.obs_latency_s < 0 or self.action_latency_s < 0:
            raise ConfigError("Perturbation: noise and latencies must be >= 0")
        if not 0.0 <= self.frame_drop < 1.0:
            raise ConfigError(f"Perturbation.frame_drop must be in [0, 1), got {self.frame_drop}")

    @property
    def changes_objects(self) -> bool:
        """Whether object physics differ from nominal."""
        return (self.object_mass, self.object_friction, self.object_size) != ((1.0, 1.0),) * 3


# Strengths per level, chosen around what a table-top setup meets: a few-mm tracker noise, one to three control
# periods of latency at 20 Hz, +-10..50% servo gains and object properties.
_LEVELS: dict[str, dict[str, Any]] = {
    "light": {"spread": 0.1, "obs_noise": 0.002, "latency": 0.01, "frame_drop": 0.05},
    "medium": {"spread": 0.25, "obs_noise": 0.005, "latency": 0.03, "frame_drop": 0.15},
    "heavy": {"spread": 0.5, "obs_noise": 0.01, "latency": 0.06, "frame_drop": 0.3},
}


def perturbations(level: Level, *, cameras: bool = True) -> list[Perturbation]:
    """One Perturbation per family at this level (frame_drop only when the env has cameras)."""
    if level not in _LEVELS:
        raise ConfigError(f"unknown randomization level {level!r}; use one of {sorted(_LEVELS)}")
    k = _LEVELS[level]
    spread = (1.0 - k["spread"], 1.0 + k["spread"])
    out = [
        Perturbation("object", object_mass=spread, object_friction=spread,
                     object_size=(1.0 - k["spread"] / 2, 1.0 + k["spread"] / 2)),
        Perturbation("actuator", actuator_gain=spread),
        Perturbation("obs_noise", obs_noise=k["obs_noise"]),
        Perturbation("obs_latency", obs_latency_s=k["latency"]),
        Perturbation("action_latency", action_latency_s=k["latency"]),
    ]
    if cameras:
        out.append(Perturbation("frame_drop", frame_drop=k["frame_drop"]))
    return out


class Perturb(gym.Wrapper[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray], np.ndarray]):
    """Applies a Perturbation to a realrl sim env (RobotEnv over a MujocoRobot, possibly wrapped).

    Object physics go through the task's own randomization knob (`task.config.physics`), so the scene layout
    drawn from the env's rng is the same as without the perturbation; actuator gains, noise and dropped frames
    come from this wrapper's own rng, re-seeded from the episode seed, so every family sees the same scenes.
    """

    def __init__(self, env: gym.Env[Any, Any], perturbation: Perturbation) -> None:
        super().__init__(env)
        from sim.mujoco_robot import MujocoRobot

        self.p = perturbation
        base = env.unwrapped
        robot = getattr(base, "robot", None)
        if not isinstance(robot, MujocoRobot):
            raise ConfigError(f"perturbations need a realrl sim env (a MuJoCo robot), got {type(base).__name__}")
        self.robot = robot
        task = getattr(base, "task", None)
        if perturbation.changes_objects:
            cfg = getattr(task, "config", None)
            if cfg is None or not hasattr(cfg, "physics"):
                raise ConfigError(f"task {type(task).__name__} has no object randomization knob (config.physics); "
                                  "the 'object' family cannot be applied to it")
            from sim.mujoco_robot import Randomization

            phys = Randomization(size_scale=perturbation.object_size, friction_scale=perturbation.object_friction,
                                 mass_scale=perturbation.object_mass)
            task.config = dataclasses.replace(cfg, physics=phys)  # type: ignore[union-attr]
        robot.set_latency(perturbation.obs_latency_s, perturbation.action_latency_s)
        self._rng = np.random.default_rng(0)
        self._last_images: dict[str, np.ndarray] = {}

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset, then draw this episode's actuator gains (from the episode seed)."""
        seed = kwargs.get("seed")
        self._rng = np.random.default_rng(None if seed is None else [int(seed), 7919])
        obs, info = self.env.reset(**kwargs)
        lo, hi = self.p.actuator_gain
        if (lo, hi) != (1.0, 1.0):
            model = self.robot.model
            assert model is not None
            self.robot.scale_actuator_gains(self._rng.uniform(lo, hi, size=model.nu))
        self._last_images = {}
        return self._observe(obs), info

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        """Step and perturb the observation."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._observe(obs), reward, terminated, truncated, info

    def _observe(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        p = self.p
        if p.obs_noise == 0.0 and p.frame_drop == 0.0:
            return obs
        out = dict(obs)
        if p.obs_noise > 0:
            for k, v in obs.items():
                if k.startswith(STATE_PREFIX):
                    out[k] = (v + self._rng.normal(0.0, p.obs_noise, size=v.shape)).astype(v.dtype)
        if p.frame_drop > 0:
            for k in [k for k in obs if k.startswith(IMAGE_PREFIX)]:
                stamp = TIME_PREFIX + k[len(IMAGE_PREFIX):]
                if k in self._last_images and self._rng.random() < p.frame_drop:
                    out[k] = self._last_images[k]
                    if stamp in self._last_images:
                        out[stamp] = self._last_images[stamp]
                else:
                    self._last_images[k] = obs[k]
                    if stamp in obs:
                        self._last_images[stamp] = obs[stamp]
        return out

    def close(self) -> None:
        """Restore the nominal robot (latency, gains) and close."""
        self.robot.set_latency(0.0, 0.0)
        if self.robot.model is not None:
            self.robot.scale_actuator_gains(1.0)
        super().close()
