"""Making envs by id: realrl sim tasks and third-party (gymnasium-robotics) envs, behind the same wrappers."""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from robot.core.errors import ConfigError

THIRD_PARTY_PREFIXES = ("Fetch", "FrankaKitchen")


def _load_third_party() -> None:
    """Register gymnasium-robotics envs (quietly: it prints deprecation notes on import)."""
    _load_realrl()  # sets MUJOCO_GL before gymnasium_robotics imports mujoco
    quiet = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        warnings.simplefilter("ignore")
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)


def _load_realrl() -> None:
    import sim  # noqa: F401 - importing registers the realrl/* ids


@dataclass(frozen=True)
class EnvInfo:
    """One row of `realrl envs`."""

    env_id: str
    action_dim: int
    observation_keys: tuple[str, ...]
    control_hz: float | None
    max_episode_steps: int | None


def registered_ids(third_party: bool = True) -> list[str]:
    """Every env id realrl can make: realrl/* first, then gymnasium-robotics Fetch/Kitchen ids."""
    _load_realrl()
    ids = sorted(i for i in gym.registry if i.startswith("realrl/"))
    if third_party:
        _load_third_party()
        ids += sorted(i for i in gym.registry if i.startswith(THIRD_PARTY_PREFIXES))
    return ids


def make_env(env_id: str, **kwargs: Any) -> gym.Env[Any, Any]:
    """gym.make with realrl's registry loaded; unknown ids raise ConfigError listing the registered ones.

    Third-party envs come wrapped in StateDictObservation so policies see state/* keys and info['success'].
    """
    _load_realrl()
    if env_id not in gym.registry and env_id.startswith(THIRD_PARTY_PREFIXES):
        _load_third_party()
    if env_id not in gym.registry:
        ids = registered_ids()
        raise ConfigError(f"unknown env id {env_id!r}. Registered ids: {', '.join(ids)}")
    try:
        env = gym.make(env_id, **kwargs)
    except TypeError as e:
        raise ConfigError(f"bad arguments for {env_id}: {e}") from e
    if not env_id.startswith("realrl/"):
        from robot.wrappers import StateDictObservation

        env = StateDictObservation(env)
    return env


def describe(env_id: str) -> EnvInfo:
    """Spaces and rate of an env (builds it once)."""
    env = make_env(env_id)
    try:
        emb = getattr(env.unwrapped, "embodiment", None)
        hz = emb.control_hz if emb is not None else env.unwrapped.metadata.get("render_fps")
        space = env.observation_space
        keys = tuple(space.spaces) if isinstance(space, gym.spaces.Dict) else ("obs",)
        shape = env.action_space.shape or (0,)
        return EnvInfo(env_id, int(shape[0]), keys, float(hz) if hz else None,
                       env.spec.max_episode_steps if env.spec else None)
    finally:
        env.close()


def make_robot_env(env_id: str, robot: str = "sim", *, cameras: tuple[str, ...] = (),
                   image_size: int | tuple[int, int] = 84, control_hz: float = 0.0, namespace: str = "",
                   watchdog_s: float = 0.5, node_name: str = "") -> gym.Env[Any, Any]:
    """A realrl task on the robot a session runs: `sim` (MuJoCo in this process) or `ros` (its robot node over
    ROS 2: the sim node for the Franka tasks, the humanoid node for the G1 tasks, each with the task mirrored on a
    local shadow scene); TimeLimit'ed as gym.make does, the same observations either way."""
    if robot not in ("sim", "ros"):
        raise ConfigError(f"robot must be 'sim' or 'ros', got {robot!r}")
    if robot == "ros":
        link: dict[str, Any] = {"namespace": namespace, "watchdog_s": watchdog_s,
                                **({"node_name": node_name} if node_name else {})}
        if env_id.startswith("realrl/G1"):
            from hardware.humanoid_robot import HumanoidRobotConfig
            from hardware.nodes.g1_remote import RemoteG1EnvConfig, make_remote_g1_env

            if cameras:
                raise ConfigError("the humanoid node carries no cameras yet: G1 policies over ROS are state-only")
            return make_remote_g1_env(RemoteG1EnvConfig(env_id, control_hz=control_hz,
                                                        robot=HumanoidRobotConfig(**link)))
        from hardware.nodes.sim_node import RemoteEnvConfig, make_remote_env
        from hardware.ros_robot import RosRobotConfig

        size = image_size if isinstance(image_size, int) else int(image_size[0])
        return make_remote_env(RemoteEnvConfig(env_id, cameras=tuple(cameras), image_size=size,
                                               control_hz=control_hz, robot=RosRobotConfig(**link)))
    kw: dict[str, Any] = {"cameras": tuple(cameras), "image_size": image_size} if cameras else {}
    if control_hz:
        kw["control_hz"] = control_hz
    return make_env(env_id, **kw)
