"""The sim node posing as a Unitree G1: the MuJoCo G1 behind rt/lowstate, rt/lowcmd and the Dex3 topics, with CRCs.

`realrl node sim --env realrl/G1BoxPickup-v0 --pose-as g1` runs it. It stands in for the real robot in tests and
in the `g1-on-sim` session, below the humanoid node.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from hardware.nodes.config import SimNodeConfig
from hardware.nodes.entry import serve
from hardware.nodes.sim_node import make_sim_env
from hardware.nodes.sim_reset import SimResets
from hardware.ros import CLOCK, DEFAULT, LATCHED, SENSOR_DATA, Node, Publisher, create_node
from hardware.ros.convert import pose_msg, to_stamp
from hardware.ros.msgs import Clock, PoseStamped, String
from hardware.ros.unitree import HandCmd, HandState, LowCmd, LowState, MotorState
from hardware.ros.unitree_crc import low_cmd_crc, low_state_crc
from hardware.topics import ArmTopics
from hardware.unitree_g1 import BODY_JOINTS, HAND_JOINTS, MOTOR_ENABLE, SIDES, G1Topics
from robot.core.errors import ConfigError
from sim.mujoco_robot import MujocoRobot

DEFAULT_MODE_MACHINE = 5
"""LowState.mode_machine the sim reports (a G1 29-DoF; set with `-p mode_machine:=N`)."""


@dataclass
class _Held:
    """The newest accepted command for a group of joints (spec-order indices)."""

    q: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    tau: np.ndarray


class G1SimNode:
    """Steps a MuJoCo G1 once per control period and speaks the G1's low-level DDS.

    Out: Dex3 states, tracked object poses (`objects/<name>/pose`), /clock, then rt/lowstate (with its CRC; `tick`
    is the node clock in ms), every tick. In: rt/lowcmd and the Dex3 commands, applied at the next tick: q as the
    servo setpoint, kp/kd as the servo gains (kp = 0: damping), tau as a joint torque; a disabled motor (mode 0 /
    Dex3 status 0) gets no torque. A LowCmd with a wrong CRC or mode_machine, or any non-finite or negative-gain
    command, is dropped and counted in ~/stats, never applied. Joints the model lacks (legs, a frozen waist) read 0.
    The realrl reset protocol (`realrl/reset`) homes the robot (and forgets the held commands) or resets the scene.
    """

    def __init__(self, config: SimNodeConfig, node: Node | None = None) -> None:
        if config.cameras:
            raise ConfigError("--pose-as g1 publishes no cameras yet; run a RealSense node or drop --cameras")
        self.config = config
        kw = config.env_kwargs()
        kw["action_mode"] = "joint_pos"  # the robot takes joint setpoints on the wire; IK runs on the client
        self.env = make_sim_env(config.env, **kw)
        robot = self.env.robot
        if not isinstance(robot, MujocoRobot) or not hasattr(robot, "set_gains"):
            raise ConfigError(f"--pose-as g1 needs a G1 env (realrl/G1*), got {config.env}")
        self.robot: Any = robot
        robot.connect()
        assert robot.model is not None and robot.data is not None
        self.model, self.data = robot.model, robot.data
        model = self.model
        self.task = self.env.task
        self.spec = robot.spec
        self.dt = 1.0 / self.spec.control_hz
        joint_names = {model.joint(i).name for i in range(model.njnt)}
        missing = [j for j in (*BODY_JOINTS[15:], *HAND_JOINTS["left"], *HAND_JOINTS["right"]) if j not in joint_names]
        if missing:
            raise ConfigError(f"{config.env} is not a G1 with Dex3 hands: the model lacks {missing}")
        spec_index = {name: k for k, name in enumerate(self.spec.joint_names)}

        def adr(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            """(wire index, qpos address, dof address, spec index) of the named joints the model has."""
            rows = [(i, model.jnt_qposadr[model.joint(n).id], model.jnt_dofadr[model.joint(n).id], spec_index[n])
                    for i, n in enumerate(names) if n in joint_names and n in spec_index]
            cols = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
            return tuple(np.array(c, dtype=np.intp) for c in cols)  # type: ignore[return-value]

        self._body = adr(BODY_JOINTS)
        self._hands = {s: adr(HAND_JOINTS[s]) for s in SIDES}
        act = np.array([model.actuator(n).id for n in self.spec.joint_names], dtype=np.intp)
        self._act = act
        self._dof = np.array([model.jnt_dofadr[model.joint(n).id] for n in self.spec.joint_names], dtype=np.intp)
        self._kp0 = model.actuator_gainprm[act, 0].copy()
        self._kd0 = -model.actuator_biasprm[act, 2].copy()

        self.node = node or create_node("sim", namespace=config.namespace, args=config.ros_args)
        n, g1, t = self.node, G1Topics(), ArmTopics()
        mode_machine = n.declare_parameter("mode_machine", DEFAULT_MODE_MACHINE)
        assert isinstance(mode_machine, int)  # declare_parameter keeps the default's type
        self.mode_machine = mode_machine
        self.frame_id = str(n.declare_parameter("frame_id", "world"))
        self.pub_state: Publisher[LowState] = n.create_publisher(LowState, g1.lowstate, DEFAULT)
        self.pub_hands = {s: n.create_publisher(HandState, g1.hand(s)[1], DEFAULT) for s in SIDES}
        self.pub_objects = {o.name: n.create_publisher(PoseStamped, t.object(o.name), DEFAULT)
                            for o in robot.objects}
        self.pub_clock: Publisher[Clock] = n.create_publisher(Clock, t.clock, CLOCK)
        self.pub_stats: Publisher[String] = n.create_publisher(String, "~/stats", LATCHED)
        self.pub_spec: Publisher[String] = n.create_publisher(String, "~/spec", LATCHED)
        self.subs = {
            "lowcmd": n.create_subscription(LowCmd, g1.lowcmd, self._on_lowcmd, SENSOR_DATA),
            **{f"{s}_hand": n.create_subscription(HandCmd, g1.hand(s)[0], self._hand_cb(s), SENSOR_DATA)
               for s in SIDES},
        }
        self.resets = SimResets(n, robot, self.task, on_home=self._forget_commands, on_done=self._restart)
        self.subs["reset"] = self.resets.subscription
        self._held_body: _Held | None = None
        self._held_hand: dict[str, _Held | None] = {s: None for s in SIDES}
        self.counts = {"ticks": 0, "lowcmd": 0, "hand_cmd": 0, "bad_crc": 0, "wrong_mode_machine": 0,
                       "invalid": 0}
        self._state = LowState(version=[1, 0], mode_machine=self.mode_machine)
        self._state.imu_state.quaternion = [1.0, 0.0, 0.0, 0.0]  # the pelvis is welded upright
        self._state.imu_state.accelerometer = [0.0, 0.0, 9.81]
        self._hand_state = {s: HandState(motor_state=[MotorState(mode=1) for _ in range(7)], power_v=24.0)
                            for s in SIDES}
        robot.reset()
        self.pub_spec.publish(String(json.dumps({"env": config.env, "pose_as": "g1", "spec": self.spec.to_dict()})))
        self.tick_timer = n.create_timer(self.dt / config.realtime_factor, self.tick)
        n.create_timer(config.stats_period_s, self.publish_stats)
        self.publish_state()

    def sim_time(self) -> float:
        """Node clock (s): simulated time since start, strictly increasing across resets."""
        return self.resets.sim_time()

    # -- commands in ---------------------------------------------------------------------------------------------
    def _reject(self, counter: str, why: str) -> None:
        self.counts[counter] += 1
        raise ValueError(why)  # the subscription drops and counts it, with a rate-limited log line

    def _on_lowcmd(self, msg: LowCmd) -> None:
        crc = low_cmd_crc(msg)
        if crc != msg.crc:
            self._reject("bad_crc", f"LowCmd CRC {msg.crc:#010x} != {crc:#010x}: not applied")
        if msg.mode_machine != self.mode_machine:
            self._reject("wrong_mode_machine", f"LowCmd mode_machine {msg.mode_machine} != the robot's "
                                               f"{self.mode_machine}: not applied")
        wire, _, _, _ = self._body
        self._held_body = self._held(msg.motor_cmd, wire, lambda m: m.mode == MOTOR_ENABLE, "LowCmd")
        self.counts["lowcmd"] += 1

    def _hand_cb(self, side: str) -> Any:
        def on_hand(msg: HandCmd) -> None:
            if len(msg.motor_cmd) != 7:
                self._reject("invalid", f"Dex3 {side} command has {len(msg.motor_cmd)} motors, expected 7")
            wire, _, _, _ = self._hands[side]
            self._held_hand[side] = self._held(msg.motor_cmd, wire, lambda m: (m.mode >> 4) & 0x07 == 1,
                                               f"Dex3 {side} command")
            self.counts["hand_cmd"] += 1
        return on_hand

    def _held(self, motors: Any, wire: np.ndarray, enabled: Any, what: str) -> _Held:
        sel = [motors[i] for i in wire.tolist()]
        q = np.array([m.q for m in sel], dtype=np.float64)
        on = np.array([enabled(m) for m in sel], dtype=bool)
        kp = np.where(on, [m.kp for m in sel], 0.0)
        kd = np.where(on, [m.kd for m in sel], 0.0)
        tau = np.where(on, [m.tau for m in sel], 0.0)
        values = np.concatenate([q, kp, kd, tau])
        if not np.all(np.isfinite(values)):
            self._reject("invalid", f"non-finite {what}: not applied")
        if np.any(kp < 0) or np.any(kd < 0):
            self._reject("invalid", f"negative gains in the {what}: not applied")
        return _Held(q, kp, kd, tau)

    def _forget_commands(self) -> None:
        """After a robot reset: a command from before it must not drag the robot back."""
        self._held_body = None
        self._held_hand = {s: None for s in SIDES}
        self.robot.set_gains(self._kp0, self._kd0)

    def _restart(self) -> None:
        """After a reset: the new state goes out at once, then a full control period before the next step."""
        self.tick_timer.reset()
        self.publish_state()

    # -- physics and state out -----------------------------------------------------------------------------------
    def tick(self) -> None:
        """One control period: the held commands become setpoints and gains, physics steps, state goes out."""
        q = self.robot.hold_command()
        kp, kd = self._kp0.copy(), self._kd0.copy()
        tau = np.zeros(len(q))
        groups = [(self._held_body, self._body)] + [(self._held_hand[s], self._hands[s]) for s in SIDES]
        for held, (_, _, _, idx) in groups:
            if held is not None:
                q[idx], kp[idx], kd[idx], tau[idx] = held.q, held.kp, held.kd, held.tau
        self.robot.set_gains(kp, kd)
        self.data.qfrc_applied[self._dof] = tau
        self.robot.command(q)
        self.counts["ticks"] += 1
        self.publish_state()

    def publish_state(self) -> None:
        """Hands, objects and clock, then rt/lowstate last (whoever sees the body state has the rest of the tick)."""
        t = self.sim_time()
        data = self.data
        for s in SIDES:
            _, qadr, dadr, idx = self._hands[s]
            hs = self._hand_state[s]
            for m, qv, dv, tv in zip(hs.motor_state, data.qpos[qadr].tolist(), data.qvel[dadr].tolist(),
                                     data.actuator_force[self._act[idx]].tolist(), strict=True):
                m.q, m.dq, m.tau_est = qv, dv, tv
            self.pub_hands[s].publish(hs)
        obs = self.robot.observe()
        for name, pub in self.pub_objects.items():
            pub.publish(pose_msg(obs[f"state/{name}_pose"], stamp=t, frame_id=self.frame_id))
        self.pub_clock.publish(Clock(clock=to_stamp(t)))
        st = self._state
        st.tick = round(t * 1000) & 0xFFFFFFFF
        wire, qadr, dadr, idx = self._body
        q, dq, tau = np.zeros(len(BODY_JOINTS)), np.zeros(len(BODY_JOINTS)), np.zeros(len(BODY_JOINTS))
        q[wire], dq[wire], tau[wire] = data.qpos[qadr], data.qvel[dadr], data.actuator_force[self._act[idx]]
        for i, (qv, dv, tv) in enumerate(zip(q.tolist(), dq.tolist(), tau.tolist(), strict=True)):
            m = st.motor_state[i]
            m.mode, m.q, m.dq, m.tau_est = 1, qv, dv, tv
        st.crc = low_state_crc(st)
        self.pub_state.publish(st)

    def publish_stats(self) -> None:
        """~/stats: ticks, applied commands, drops by cause (bad CRC, wrong mode_machine, invalid)."""
        skipped = int(getattr(self.tick_timer, "skipped", 0))
        self.pub_stats.publish(String(json.dumps({
            **self.counts, "skipped_ticks": skipped, "sim_time": self.sim_time(),
            "dropped": {k: s.dropped for k, s in self.subs.items()},
            "received": {k: s.received for k, s in self.subs.items()},
        })))

    def spin(self) -> None:
        """Run until Ctrl-C / SIGTERM."""
        self.node.logger.info("sim node up as a G1: %s at %g Hz, %d objects, mode_machine %d", self.config.env,
                              self.spec.control_hz, len(self.pub_objects), self.mode_machine)
        self.node.spin()
        self.node.close()


def run(config: SimNodeConfig) -> None:
    """Entry point of `realrl node sim --pose-as g1`."""
    serve(lambda: G1SimNode(config))
