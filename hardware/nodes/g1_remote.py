"""The client half of the G1 over DDS: the sim G1's spec, IK and observations on a local MuJoCo shadow of the model,
joint targets to the humanoid node (as on a real humanoid, where IK runs on the client PC)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import mujoco
import numpy as np

from hardware.humanoid_robot import HumanoidRobot, HumanoidRobotConfig
from hardware.nodes.config import SimNodeConfig
from hardware.nodes.sim_node import RemoteSimTask, make_sim_env
from robot.core.errors import ConfigError
from robot.core.interfaces import Robot
from robot.core.spec import ActionMode, ActionSpec, EmbodimentSpec
from robot.core.types import Observation
from robot.env import RobotEnv
from sim.g1 import G1Robot


class ShadowG1(G1Robot):
    """A G1Robot that never steps physics: its state is set from measurements, and command() only runs the
    bimanual IK and hand synergy (the robot's own mapping from actions to joint setpoints)."""

    def step_physics(self) -> None:
        """Nothing to step: the physics runs on the robot."""

    def set_measured(self, q: np.ndarray, dq: np.ndarray) -> None:
        """Put the measured joint positions and velocities (spec order) into the model and update kinematics."""
        model, data = self._require()
        data.qpos[self._qadr] = q
        data.qvel[self._dadr] = dq
        mujoco.mj_kinematics(model, data)

    def robot_state(self, q: np.ndarray, dq: np.ndarray) -> Observation:
        """state/joint_pos, joint_vel, ee_pose and hand closure of a measured state, exactly as the sim computes
        them."""
        self.set_measured(q, dq)
        obs: Observation = {}
        self._robot_state(obs)
        return obs

    def setpoints(self) -> np.ndarray:
        """The joint setpoints (spec order) the last command() produced."""
        _, data = self._require()
        return data.ctrl[self._act].copy()


def joint_spec(spec: EmbodimentSpec) -> EmbodimentSpec:
    """The joint-position embodiment with the same joints (what goes to the humanoid node)."""
    lo, hi = spec.joint_limits()
    action = ActionSpec(ActionMode.JOINT_POS, spec.joint_names, tuple(lo.tolist()), tuple(hi.tolist()))
    return dataclasses.replace(spec, action=action, cameras=())


class G1ShadowRobot(Robot):
    """The G1 as the sim robot presents it (spec, actions, observation keys) over a HumanoidRobot.

    command(): the shadow takes the newest measured state, runs the sim's own action mapping (ee-delta IK on its
    joint setpoints, or clipping of joint targets) and the setpoints go to the humanoid node. observe(): the
    node's joint states and the tracked objects, with palm poses, hand closure and object-to-palm vectors
    computed on the shadow as the sim computes them.
    """

    def __init__(self, shadow: ShadowG1, link: HumanoidRobot) -> None:
        self.shadow = shadow
        self.link = link
        self._measured: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def spec(self) -> EmbodimentSpec:
        """The sim G1's embodiment (ee_delta or joint_pos)."""
        return self.shadow.spec

    @property
    def is_connected(self) -> bool:
        """Whether the link to the humanoid node is up."""
        return self.link.is_connected

    def connect(self) -> None:
        """Compile the shadow model and connect to the humanoid node."""
        self.shadow.connect()
        self.link.connect()

    def disconnect(self) -> None:
        """Disconnect from the node."""
        self.link.disconnect()

    def observe(self) -> Observation:
        """The newest state with the sim's keys: joints, palms, hands, objects and object-to-palm vectors."""
        return self._complete(self.link.observe())

    def _complete(self, raw: Observation) -> Observation:
        q = raw["state/joint_pos"].astype(np.float64)
        dq = raw["state/joint_vel"].astype(np.float64)
        self._measured = (q, dq)
        obs = self.shadow.robot_state(q, dq)
        ee = obs["state/ee_pose"]
        left, right = ee[0:3], ee[7:10]
        for name in self.link.config.objects:
            p = raw[f"state/{name}_pose"]
            obs[f"state/{name}_pose"] = p
            obs[f"state/{name}_rel_left"] = p[:3] - left
            obs[f"state/{name}_rel_right"] = p[:3] - right
        obs["time/state"] = raw["time/state"]
        return obs

    def command(self, cmd: np.ndarray) -> np.ndarray:
        """Map the action to joint setpoints on the shadow (from the newest measured state) and send them."""
        if self._measured is not None:
            self.shadow.set_measured(*self._measured)
        sent = self.shadow.command(cmd)
        self.link.command(self.shadow.setpoints())
        return sent

    def reset(self, state: dict[str, np.ndarray] | None = None) -> Observation:
        """Reset the robot through the node and the shadow's setpoints alike (home, or state['joint_pos'])."""
        raw = self.link.reset(state)
        self.shadow.reset(state)
        return self._complete(raw)

    def request_reset(self, kind: str, payload: dict[str, Any]) -> None:
        """Forward a reset request (the task's scene reset) to the robot through the node."""
        self.link.request_reset(kind, payload)

    def rearm(self) -> None:
        """Re-arm the humanoid node after a fault (the robot holds its measured pose)."""
        self.link.rearm()
        self.shadow.reset({"joint_pos": self._measured[0]} if self._measured is not None else None)

    def now(self) -> float:
        """The robot's clock."""
        return self.link.now()

    def hold_command(self) -> np.ndarray:
        """The shadow's hold action (zero wrist deltas, hands as commanded; or the current setpoints)."""
        return self.shadow.hold_command()


class RemoteG1Task(RemoteSimTask):
    """A G1 sim task whose scene lives in the sim node posing as a G1, reset through the humanoid node."""

    def reset(self, rng: np.random.Generator, robot: Robot) -> None:
        """Reset the node's scene with this rng, then replay it on the shadow."""
        if not isinstance(robot, G1ShadowRobot):
            raise ConfigError(f"RemoteG1Task drives the G1 through G1ShadowRobot, got {type(robot).__name__}")
        robot.request_reset("task", {"rng": rng.bit_generator.state})
        self.inner.reset(rng, self.shadow)


@dataclass(frozen=True)
class RemoteG1EnvConfig:
    """A RobotEnv whose G1 is reached through the humanoid node (the sim node posing as a G1, or the robot)."""

    env: str = "realrl/G1BoxPickup-v0"
    """The G1 env id (its task and scene; the sim node posing as a G1 runs the same id)."""
    action_mode: Literal["ee_delta", "joint_pos"] = "ee_delta"
    """The env's action space (the client maps it to joint setpoints either way)."""
    control_hz: float = 0.0
    """Control rate (as given to the sim node; 0: the env's own)."""
    robot: HumanoidRobotConfig = field(default_factory=HumanoidRobotConfig)
    """HumanoidRobot settings (objects are filled in from the task)."""


def make_remote_g1_env(config: RemoteG1EnvConfig) -> Any:
    """gymnasium env (TimeLimit-wrapped like gym.make's) = RobotEnv(G1ShadowRobot, RemoteG1Task)."""
    import gymnasium as gym
    from gymnasium.wrappers import TimeLimit

    kw = SimNodeConfig(env=config.env, action_mode=config.action_mode, control_hz=config.control_hz).env_kwargs()
    local = make_sim_env(config.env, **kw)
    if not isinstance(local.robot, G1Robot):
        raise ConfigError(f"{config.env} is not a G1 env; make_remote_g1_env drives realrl/G1* ids")
    g1: G1Robot = local.robot
    shadow = ShadowG1(g1.config, objects=g1.objects, markers=g1.markers)
    shadow.connect()
    objects = tuple(o.name for o in g1.objects)
    link = HumanoidRobot(joint_spec(shadow.spec), dataclasses.replace(config.robot, objects=objects))
    env = RobotEnv(G1ShadowRobot(shadow, link), RemoteG1Task(local.task, shadow))
    max_steps = gym.spec(config.env).max_episode_steps
    return TimeLimit(env, max_steps) if max_steps else env
