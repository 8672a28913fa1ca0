"""The sim node: a MuJoCo robot in real time behind the topics its real driver uses, plus its client half."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import mujoco
import numpy as np

from hardware.geometry import rotation_error
from hardware.nodes.config import SimNodeConfig
from hardware.nodes.entry import run_cli, serve
from hardware.nodes.sim_reset import SimResets
from hardware.ros import CLOCK, DEFAULT, LATCHED, Node, Publisher, create_node
from hardware.ros.convert import (
    camera_info_msg,
    float_array,
    image_msg,
    joint_state_msg,
    pose_array,
    pose_msg,
    to_stamp,
)
from hardware.ros.msgs import (
    CameraInfo,
    Clock,
    Float64MultiArray,
    Image,
    JointState,
    PoseStamped,
    String,
    TwistStamped,
)
from hardware.ros_robot import RosRobot, RosRobotConfig
from hardware.topics import ArmTopics
from robot.core.errors import ConfigError
from robot.core.interfaces import Policy, Robot, Task
from robot.core.spec import ActionMode
from robot.core.types import Observation
from robot.env import GoalTask, RobotEnv
from sim.mujoco_robot import MujocoRobot


def make_sim_env(env_id: str, **kwargs: Any) -> RobotEnv:
    """The in-process RobotEnv of an id (its MujocoRobot and Task are what the node runs and the client mirrors)."""
    from robot.sessions.envs import make_env

    env: Any = make_env(env_id, **kwargs).unwrapped
    if not isinstance(env, RobotEnv):
        raise ConfigError(f"{env_id} is not a realrl robot env; the sim node runs realrl/* ids")
    return env


class SimNode:
    """Steps the robot once per control period against the wall clock and publishes what the real driver would.

    Commands: a TwistStamped is applied for the next control period only (MoveIt Servo semantics: no fresh
    twist, the robot holds); a target pose is tracked until replaced; joint targets (joint_pos mode) likewise; the
    gripper closure persists. Non-finite or misshapen commands are dropped and counted, never applied.
    """

    def __init__(self, config: SimNodeConfig, node: Node | None = None) -> None:
        self.config = config
        self.env = make_sim_env(config.env, **config.env_kwargs())
        robot = self.env.robot
        if not isinstance(robot, MujocoRobot):
            raise ConfigError(f"{config.env} does not run a MuJoCo robot; the sim node needs one")
        self.robot: MujocoRobot = robot
        robot.connect()  # RobotEnv already did; model and data exist from here on
        assert robot.model is not None and robot.data is not None
        self.model, self.data = robot.model, robot.data
        self.task: Task = self.env.task
        spec = self.robot.spec
        self.spec = spec
        self.dt = 1.0 / spec.control_hz
        self.node = node or create_node("sim", namespace=config.namespace, args=config.ros_args)
        n, t = self.node, ArmTopics()
        self.topics = t
        prefix = str(n.declare_parameter("joint_prefix", ""))
        self.frame_id = str(n.declare_parameter("frame_id", "world"))
        self._names = [prefix + j for j in spec.joint_names]
        model = self.model
        self._f2 = None
        if "finger_joint2" in [model.joint(i).name for i in range(model.njnt)]:
            jnt = model.joint("finger_joint2")
            self._f2 = (int(model.jnt_qposadr[jnt.id]), int(model.jnt_dofadr[jnt.id]))
            self._names.append(prefix + "finger_joint2")
        # Forward kinematics of the actuator setpoints (position servos on the arm joints) for target-pose tracking.
        self._fk = mujoco.MjData(model)
        arm = [model.joint(j).id for j in spec.groups.get("arm", ())]
        self._arm_qadr = np.array([model.jnt_qposadr[j] for j in arm], dtype=np.intp)
        act_of = {int(model.actuator_trnid[a, 0]): a for a in range(model.nu)
                  if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT}
        self._arm_act = np.array([act_of[j] for j in arm], dtype=np.intp)
        self._ee_site = model.site(spec.ee_frames[0]).id if spec.ee_frames else -1
        self.pub_js: Publisher[JointState] = n.create_publisher(JointState, t.joint_states, DEFAULT)
        self.pub_pose: Publisher[PoseStamped] = n.create_publisher(PoseStamped, t.current_pose, DEFAULT)
        self.pub_objects = {o.name: n.create_publisher(PoseStamped, t.object(o.name), DEFAULT)
                            for o in self.robot.objects}
        self.pub_images: dict[str, tuple[Publisher[Image], Publisher[CameraInfo], CameraInfo]] = {}
        for cam in spec.cameras:
            img_topic, info_topic = t.camera(cam.name)
            fovy = float(model.cam_fovy[model.camera(cam.name).id])
            self.pub_images[cam.name] = (n.create_publisher(Image, img_topic, DEFAULT),
                                         n.create_publisher(CameraInfo, info_topic, DEFAULT),
                                         camera_info_msg(cam.height, cam.width, fovy, frame_id=cam.name))
        self.pub_clock: Publisher[Clock] = n.create_publisher(Clock, t.clock, CLOCK)
        self.pub_stats: Publisher[String] = n.create_publisher(String, "~/stats", LATCHED)
        self.pub_spec: Publisher[String] = n.create_publisher(String, "~/spec", LATCHED)
        self.subs = {
            "twist": n.create_subscription(TwistStamped, t.twist_command, self._on_twist),
            "pose": n.create_subscription(PoseStamped, t.pose_command, self._on_pose),
            "joints": n.create_subscription(Float64MultiArray, t.joint_command, self._on_joints),
            "gripper": n.create_subscription(Float64MultiArray, t.gripper_command, self._on_gripper),
        }
        self.resets = SimResets(n, robot, self.task, on_home=self._forget_commands, on_done=self._restart)
        self.subs["reset"] = self.resets.subscription
        self._twist: np.ndarray | None = None
        self._target_pose: np.ndarray | None = None
        self._sag = np.zeros(3)
        self._joint_target: np.ndarray | None = None
        self._grip = 0.0
        self.ticks = 0
        self.idle_ticks = 0
        self.robot.connect()
        self.robot.reset()
        self.pub_spec.publish(String(json.dumps({"env": config.env, "spec": spec.to_dict()})))
        self._obs = self.robot.observe()
        self.tick_timer = n.create_timer(self.dt / config.realtime_factor, self.tick)
        n.create_timer(config.stats_period_s, self.publish_stats)
        self.publish_state()

    # -- clock ---------------------------------------------------------------------------------------------------
    def sim_time(self) -> float:
        """Node clock (s): simulated time since the node started, strictly increasing across resets."""
        return self.resets.sim_time()

    # -- commands in ---------------------------------------------------------------------------------------------
    @staticmethod
    def _finite(values: np.ndarray, what: str) -> np.ndarray:
        if not np.all(np.isfinite(values)):
            raise ValueError(f"non-finite {what} {values.tolist()}: not applied")
        return values

    def _on_twist(self, msg: TwistStamped) -> None:
        if self.spec.action.mode is not ActionMode.EE_DELTA:
            raise ValueError("twist commands need the ee_delta action mode")
        lin, ang = msg.twist.linear, msg.twist.angular
        self._twist = self._finite(np.array([lin.x, lin.y, lin.z, ang.x, ang.y, ang.z]), "twist")
        self._target_pose = None

    def _on_pose(self, msg: PoseStamped) -> None:
        if self.spec.action.mode is not ActionMode.EE_DELTA:
            raise ValueError("target poses need the ee_delta action mode")
        pose = self._finite(pose_array(msg), "target pose")
        norm = float(np.linalg.norm(pose[3:]))
        if not 0.5 < norm < 1.5:
            raise ValueError(f"target orientation is not a unit quaternion (norm {norm:.3f})")
        pose[3:] /= norm
        self._target_pose, self._twist = pose, None

    def _on_joints(self, msg: Float64MultiArray) -> None:
        if self.spec.action.mode is not ActionMode.JOINT_POS:
            raise ValueError("joint targets need the joint_pos action mode")
        q = self._finite(float_array(msg), "joint targets")
        n_arm = self.spec.action.dim - 1
        if q.shape != (n_arm,):
            raise ValueError(f"expected {n_arm} joint targets, got {q.size}")
        self._joint_target = q

    def _on_gripper(self, msg: Float64MultiArray) -> None:
        g = self._finite(float_array(msg), "gripper command")
        if g.shape != (1,):
            raise ValueError(f"expected one gripper closure value, got {g.size}")
        self._grip = float(np.clip(g[0], 0.0, 1.0))

    def _forget_commands(self) -> None:
        """After a robot reset: a command from before it must not move the robot."""
        self._twist = self._target_pose = self._joint_target = None
        self._sag = np.zeros(3)
        self._grip = 0.0

    def _restart(self) -> None:
        """After a reset: the new state goes out at once, then a full control period before the next step."""
        self._obs = self.robot.observe()
        self.tick_timer.reset()
        self.publish_state()

    def _command(self) -> np.ndarray:
        grip = self._grip
        if self.spec.action.mode is ActionMode.JOINT_POS:
            q = self._joint_target if self._joint_target is not None else self.robot.hold_command()[:-1]
            return np.append(q, grip)
        cmd = np.zeros(7)
        cmd[6] = grip
        if self._twist is not None:
            cmd[:6] = self._twist * self.dt
            self._twist = None  # one control period only
        elif self._target_pose is not None:
            # Move the *commanded* pose (where the position servos are headed) toward the target, as a Cartesian
            # controller does; stepping from the measured pose would integrate the tracking lag and oscillate.
            # A slow integral term (anti-windup at 2 cm) removes the servos' sag under gravity, as the real
            # controller's gravity compensation does.
            measured = self._obs["state/ee_pose"][:3].astype(np.float64)
            self._sag = np.clip(self._sag + 0.1 * (self._target_pose[:3] - measured), -0.02, 0.02)
            ee = self.commanded_pose()
            cmd[:3] = self._target_pose[:3] + self._sag - ee[:3]
            cmd[3:6] = rotation_error(self._target_pose[3:], ee[3:])
        else:
            self.idle_ticks += 1
        return cmd

    def commanded_pose(self) -> np.ndarray:
        """TCP pose (position + wxyz) at the arm actuators' setpoints: forward kinematics of the commanded joints."""
        fk = self._fk
        fk.qpos[:] = self.data.qpos
        fk.qpos[self._arm_qadr] = self.data.ctrl[self._arm_act]
        mujoco.mj_kinematics(self.model, fk)
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, fk.site_xmat[self._ee_site])
        return np.concatenate([fk.site_xpos[self._ee_site], quat])

    # -- physics and state out -----------------------------------------------------------------------------------
    def tick(self) -> None:
        """One control period: apply the newest command (clipped by the robot), step, publish."""
        self.robot.command(self._command())
        self.ticks += 1
        self._obs = self.robot.observe()
        self.publish_state()

    def publish_state(self) -> None:
        """Clock, objects, TCP pose, images, then joint states last (a client that sees the joint state of a
        step has, in practice, the rest of that step already)."""
        t, obs, fid = self.sim_time(), self._obs, self.frame_id
        self.pub_clock.publish(Clock(clock=to_stamp(t)))
        for name, pub in self.pub_objects.items():
            pub.publish(pose_msg(obs[f"state/{name}_pose"], stamp=t, frame_id=fid))
        self.pub_pose.publish(pose_msg(obs["state/ee_pose"], stamp=t, frame_id=fid))
        for cam, (img_pub, info_pub, info) in self.pub_images.items():
            img_pub.publish(image_msg(obs[f"image/{cam}"], stamp=t, frame_id=cam))
            info.header.stamp = to_stamp(t)
            info_pub.publish(info)
        pos = obs["state/joint_pos"].astype(np.float64)
        vel = obs["state/joint_vel"].astype(np.float64)
        if self._f2 is not None:
            pos = np.append(pos, self.data.qpos[self._f2[0]])
            vel = np.append(vel, self.data.qvel[self._f2[1]])
        self.pub_js.publish(joint_state_msg(self._names, pos, vel, stamp=t))

    def publish_stats(self) -> None:
        """~/stats: ticks, ticks without a command, skipped ticks (overruns), dropped messages per input."""
        skipped = int(getattr(self.tick_timer, "skipped", 0))
        self.pub_stats.publish(String(json.dumps({
            "ticks": self.ticks, "idle_ticks": self.idle_ticks, "skipped_ticks": skipped,
            "dropped": {k: s.dropped for k, s in self.subs.items()},
            "received": {k: s.received for k, s in self.subs.items()}, "sim_time": self.sim_time(),
        })))

    def spin(self) -> None:
        """Run until Ctrl-C / SIGTERM."""
        self.node.logger.info("sim node up: %s at %g Hz, %d objects, cameras %s", self.config.env,
                              self.spec.control_hz, len(self.pub_objects), list(self.pub_images) or "none")
        self.node.spin()
        self.node.close()


def run(config: SimNodeConfig) -> None:
    """Entry point of `realrl node sim` (Ctrl-C / SIGTERM stop it cleanly)."""
    if config.pose_as == "g1":
        from hardware.nodes.g1_sim_node import run as run_g1

        run_g1(config)
        return
    serve(lambda: SimNode(config))


def main(argv: list[str] | None = None) -> None:
    """`python -m hardware.nodes.sim_node [flags] [--ros-args ...]` (what launch files and `realrl up` run)."""
    run_cli(SimNodeConfig, run, "sim_node", argv)


# -- the client half: the same task over RosRobot ------------------------------------------------------------------
class RemoteSimTask(Task):
    """A sim task whose scene lives in a sim node. reset() sends the env rng's state to the node, which resets
    the scene with it, and replays the same draws on a local shadow copy of the scene: the per-episode
    quantities (object sizes, goals) match the node's, and the env's rng advances exactly as in-process.
    Reward and success are the inner task's, computed from the observations RosRobot assembles."""

    def __init__(self, inner: Task, shadow: Robot) -> None:
        self.inner = inner
        self.shadow = shadow
        self.name = inner.name
        self.instruction = inner.instruction

    def reset(self, rng: np.random.Generator, robot: Robot) -> None:
        """Reset the node's scene with this rng, then replay it on the shadow."""
        if not isinstance(robot, RosRobot):
            raise ConfigError(f"RemoteSimTask drives a sim node through RosRobot, got {type(robot).__name__}")
        robot.request_reset("task", {"rng": rng.bit_generator.state})
        self.inner.reset(rng, self.shadow)

    def reward(self, obs: Observation) -> float:
        """The inner task's reward."""
        return self.inner.reward(obs)

    def success(self, obs: Observation) -> bool:
        """The inner task's success."""
        return self.inner.success(obs)

    def terminated(self, obs: Observation) -> bool:
        """The inner task's termination."""
        return self.inner.terminated(obs)

    def evaluate(self, obs: Observation) -> tuple[float, bool, bool, dict[str, Any]]:
        """The inner task's evaluation."""
        return self.inner.evaluate(obs)

    def extra_observation(self) -> dict[str, np.ndarray]:
        """The inner task's extra keys (e.g. a goal)."""
        return self.inner.extra_observation()

    def info(self, obs: Observation) -> dict[str, Any]:
        """The inner task's diagnostics."""
        return self.inner.info(obs)

    def expert(self, **kwargs: Any) -> Policy:
        """The inner task's scripted expert (it reads only observations)."""
        return self.inner.expert(**kwargs)  # type: ignore[attr-defined]


class RemoteSimGoalTask(RemoteSimTask, GoalTask):
    """RemoteSimTask for goal-conditioned tasks (GoalEnv keys)."""

    def __init__(self, inner: GoalTask, shadow: Robot) -> None:
        super().__init__(inner, shadow)
        self.goal_dim = inner.goal_dim
        self._goal_inner = inner

    def achieved_goal(self, obs: Observation) -> np.ndarray:
        """The inner task's achieved goal."""
        return self._goal_inner.achieved_goal(obs)

    def desired_goal(self) -> np.ndarray:
        """The inner task's desired goal."""
        return self._goal_inner.desired_goal()

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """The inner task's GoalEnv reward."""
        return self._goal_inner.compute_reward(achieved_goal, desired_goal, info)


@dataclass(frozen=True)
class RemoteEnvConfig:
    """A RobotEnv whose robot is a sim node reached over ROS 2 (the same scene flags as the node's)."""

    env: str = "realrl/FrankaLift-v0"
    """The env id the sim node runs."""
    cameras: tuple[str, ...] = ()
    """Cameras (as given to the node)."""
    image_size: int = 84
    """Image size (as given to the node)."""
    action_mode: Literal["ee_delta", "joint_pos"] = "ee_delta"
    """Action mode (as given to the node)."""
    control_hz: float = 0.0
    """Control rate (as given to the node; 0: the env's own)."""
    robot: RosRobotConfig = field(default_factory=RosRobotConfig)
    """RosRobot settings (objects are filled in from the task)."""


def make_remote_env(config: RemoteEnvConfig) -> Any:
    """gymnasium env (TimeLimit-wrapped like gym.make's) = RobotEnv(RosRobot, RemoteSimTask) for a sim node."""
    import dataclasses

    from gymnasium.wrappers import TimeLimit

    kw = SimNodeConfig(env=config.env, cameras=config.cameras, image_size=config.image_size,
                       action_mode=config.action_mode, control_hz=config.control_hz).env_kwargs()
    shadow = make_sim_env(config.env, **kw)
    objects = tuple(o.name for o in getattr(shadow.task, "objects", ()))
    robot = RosRobot(shadow.robot.spec, dataclasses.replace(config.robot, objects=objects))
    task = (RemoteSimGoalTask(shadow.task, shadow.robot) if isinstance(shadow.task, GoalTask)
            else RemoteSimTask(shadow.task, shadow.robot))
    import gymnasium as gym

    env = RobotEnv(robot, task)
    max_steps = gym.spec(config.env).max_episode_steps  # the registry is loaded by make_sim_env
    return TimeLimit(env, max_steps) if max_steps else env


if __name__ == "__main__":
    main()
