"""The humanoid node: realrl joint targets -> a Unitree G1's rt/lowcmd and Dex3 commands, limited, with damping on
any fault. Nothing reaches the robot before the position, velocity and gain limits."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np

from hardware.nodes.config import HumanoidNodeConfig
from hardware.nodes.entry import run_cli, serve
from hardware.ros import DEFAULT, LATCHED, SENSOR_DATA, Node, Publisher, create_node
from hardware.ros.convert import float_array, joint_state_msg
from hardware.ros.msgs import Float64MultiArray, JointState, String
from hardware.ros.unitree import G1_NUM_MOTORS, HandCmd, HandState, LowCmd, LowState, MotorCmd
from hardware.ros.unitree_crc import low_cmd_crc, low_state_crc
from hardware.unitree_g1 import (
    ARM_MIRROR,
    ARMS,
    BODY_JOINTS,
    BODY_LIMITS,
    HAND_JOINTS,
    HAND_LIMITS,
    MOTOR_ENABLE,
    SIDES,
    WAIST,
    G1Topics,
    HumanoidTopics,
    dex3_mode,
    mirror_hand,
)
from robot.core.errors import ConfigError

N_BODY = len(BODY_JOINTS)
"""Body motors the G1 uses (the first 29 of LowCmd's 35 slots)."""


FAULTS = ("state_timeout", "state_crc", "state_invalid", "command_invalid", "client_silent", "reset_timeout")
"""Fault kinds humanoid/status reports (`fault_kind`); `fault` says what happened in words."""


class Phase:
    """The node's states (the `state` field of humanoid/status)."""

    WAITING = "waiting"
    """No rt/lowstate (and hand states) yet: nothing is written."""
    ACTIVE = "active"
    """Writing commands: held joints at their anchor, commanded joints toward the client's targets."""
    RESETTING = "resetting"
    """A reset was forwarded to the robot: nothing is written until its first state after the reset."""
    HOMING = "homing"
    """A robot reset on hardware: arms and hands move to the home pose at the homing speed; targets are ignored."""
    DAMPING = "damping"
    """A fault is latched: kp = 0 and a damping kd on every motor until re-armed."""


def _gains(values: tuple[float, ...], n: int = 7) -> np.ndarray:
    return np.broadcast_to(np.asarray(values, dtype=np.float64), (n,)).copy()


class HumanoidNode:
    """Between realrl clients and the G1's low-level DDS.

    In: rt/lowstate and rt/dex3/<side>/state from the robot; joint targets (Float64MultiArray, in the order
    humanoid/status lists) from a client. Out, at `control_hz`: rt/lowcmd (CRC, mode_machine echoed) and the Dex3
    commands; joint_states (29 body + 14 hand joints) on every robot state; humanoid/status (latched JSON).

    Every written target is clipped into the joint limits and moves at most `*_max_velocity / control_hz` per tick
    toward the client's target; legs (and the waist unless `waist`) hold the pose measured when the node armed;
    gains are the configured ones, bounded. A fault (stale state, a state with a bad CRC or a non-finite value, a
    misshapen or non-finite client command, a client that stops sending) latches damping mode (kp = 0, kd =
    `damping_kd` on every motor), reported in the log and on humanoid/status, until a re-arm request arrives on
    humanoid/arm while the robot's state is fresh.

    Resets (realrl/reset, answered on realrl/reset_done): with reset_mode 'home' a robot reset drives the arms and
    hands to the home pose at `home_velocity` (client targets are ignored meanwhile) and is answered once they are
    there; scene resets are refused (the operator's job). With 'forward' every request goes on to the robot (the
    sim node posing as a G1), nothing is written while a robot reset is under way, and the node re-anchors at the
    robot's first state after it. A refused or failed reset is answered with an `error`.
    """

    def __init__(self, config: HumanoidNodeConfig, node: Node | None = None) -> None:
        self.config = c = config
        self.node = node or create_node("humanoid", namespace=c.namespace, args=c.ros_args)
        n = self.node
        self.g1, self.t = G1Topics(), HumanoidTopics()
        self.dt = 1.0 / c.control_hz
        # Commanded body motors: [waist,] left arm, right arm; every other body motor is held.
        self.cmd_body = np.array(([*WAIST] if c.waist else []) + [*ARMS["left"], *ARMS["right"]], dtype=np.intp)
        self.held_body = np.array([i for i in range(N_BODY) if i not in set(self.cmd_body.tolist())], dtype=np.intp)
        self.sides = SIDES if c.hands else ()
        self.command_joints = [BODY_JOINTS[i] for i in self.cmd_body] + [j for s in self.sides
                                                                          for j in HAND_JOINTS[s]]
        self.state_joints = list(BODY_JOINTS) + [j for s in self.sides for j in HAND_JOINTS[s]]
        self._lo = BODY_LIMITS[:, 0] + c.limit_margin
        self._hi = BODY_LIMITS[:, 1] - c.limit_margin
        kp = np.full(N_BODY, c.hold_kp)
        kd = np.full(N_BODY, c.hold_kd)
        for side in SIDES:
            kp[list(ARMS[side])] = _gains(c.arm_kp)
            kd[list(ARMS[side])] = _gains(c.arm_kd)
        self.kp = np.clip(kp, 0.0, c.max_kp)  # validated in the config; clipped again so no path bypasses it
        self.kd = np.clip(kd, 0.0, c.max_kd)
        self.hand_kp = np.clip(_gains(c.hand_kp), 0.0, c.max_hand_kp)
        self.hand_kd = np.clip(_gains(c.hand_kd), 0.0, c.max_hand_kd)
        self.body_step = c.arm_max_velocity * self.dt
        self.hand_step = c.hand_max_velocity * self.dt
        left = np.asarray(c.home_arm, dtype=np.float64)
        self.home = {"left": left, "right": ARM_MIRROR * left}
        self.home_hand = {"left": np.asarray(c.home_hand, dtype=np.float64), "right": mirror_hand(c.home_hand)}
        for side in SIDES:
            idx = list(ARMS[side])
            if np.any(self.home[side] < self._lo[idx]) or np.any(self.home[side] > self._hi[idx]) or np.any(
                    self.home_hand[side] < HAND_LIMITS[side][:, 0]) or np.any(self.home_hand[side] >
                                                                           HAND_LIMITS[side][:, 1]):
                raise ConfigError(f"--home-arm {c.home_arm} / --home-hand {c.home_hand} put the {side} side outside "
                                  "its joint limits (less --limit-margin)")
        self._homing: dict[str, Any] | None = None
        self.phase = Phase.WAITING
        self.fault: str | None = None
        self.fault_kind: str | None = None
        self.armed_id: int | None = None
        self.mode_machine: int | None = None
        self.q = np.zeros(N_BODY)
        self.dq = np.zeros(N_BODY)
        self.tau = np.zeros(N_BODY)
        self.hand_q = {s: np.zeros(7) for s in SIDES}
        self.hand_dq = {s: np.zeros(7) for s in SIDES}
        self.target = np.zeros(N_BODY)  # what was last written
        self.goal = np.zeros(N_BODY)  # where the written target is headed
        self.hand_target = {s: np.zeros(7) for s in SIDES}
        self.hand_goal = {s: np.zeros(7) for s in SIDES}
        self.stamp = 0.0  # of the newest robot state
        self._state_rx = -math.inf  # time.monotonic() of the newest valid rt/lowstate
        self._hand_rx = {s: -math.inf for s in SIDES}
        self._cmd_rx: float | None = None  # newest client command since the node (re)armed
        self._reset: dict[str, Any] | None = None  # a forwarded reset in flight
        self._last_reset: tuple[int, dict[str, Any]] | None = None
        self.counts = {"states": 0, "bad_state_crc": 0, "commands": 0, "ignored_commands": 0, "clipped": 0,
                       "rate_limited": 0, "lowcmd": 0, "hand_cmd": 0, "faults": 0}

        # Unused slots (29..34) stay disabled with zero gains.
        self._lowcmd = LowCmd(mode_pr=c.mode_pr, motor_cmd=[MotorCmd() for _ in range(G1_NUM_MOTORS)])
        self._hand_cmd = {s: HandCmd(motor_cmd=[MotorCmd(mode=dex3_mode(i)) for i in range(7)]) for s in SIDES}

        self.pub_lowcmd: Publisher[LowCmd] = n.create_publisher(LowCmd, self.g1.lowcmd, DEFAULT)
        self.pub_hand = {s: n.create_publisher(HandCmd, self.g1.hand(s)[0], DEFAULT) for s in self.sides}
        self.pub_js: Publisher[JointState] = n.create_publisher(JointState, self.t.joint_states, DEFAULT)
        self.pub_status: Publisher[String] = n.create_publisher(String, self.t.status, LATCHED)
        self.pub_ack: Publisher[String] = n.create_publisher(String, self.t.reset_done, LATCHED)
        self.pub_driver_reset: Publisher[String] = n.create_publisher(String, self.t.driver_reset, DEFAULT)
        # Hand states before rt/lowstate: within one spin the hands of a tick are taken before its body state.
        self.sub_hands = {s: n.create_subscription(HandState, self.g1.hand(s)[1], self._hand_cb(s), SENSOR_DATA)
                          for s in self.sides}
        self.sub_state = n.create_subscription(LowState, self.g1.lowstate, self._on_state, SENSOR_DATA)
        self.sub_cmd = n.create_subscription(Float64MultiArray, self.t.joint_command, self._on_command, DEFAULT)
        n.create_subscription(String, self.t.arm, self._on_arm, DEFAULT)
        n.create_subscription(String, self.t.reset, self._on_reset, DEFAULT)
        n.create_subscription(String, self.t.driver_reset_done, self._on_driver_ack, LATCHED)
        self.tick_timer = n.create_timer(self.dt, self.tick)
        n.create_timer(1.0, self.publish_status)
        self.publish_status()

    # -- faults ------------------------------------------------------------------------------------------------
    def trip(self, kind: str, reason: str) -> None:
        """Latch damping mode (`kind` from FAULTS, `reason` for people; logged once, reported on humanoid/status)."""
        if self.phase == Phase.DAMPING:
            return
        self.phase, self.fault, self.fault_kind = Phase.DAMPING, reason, kind
        self.counts["faults"] += 1
        for pending in (self._reset, self._homing):  # a client waiting on a reset hears why it will not finish
            if pending is not None:
                self._ack(pending["id"], self.stamp, error=f"the humanoid node went to damping: {reason}")
        self._reset = self._homing = None
        self.node.logger.error("DAMPING: %s. Every motor gets kp = 0, kd = %g until a re-arm request on %s.",
                               reason, self.config.damping_kd, self.node.resolve(self.t.arm))
        self.publish_status()
        self.tick()  # the first damping command goes out now, not a tick later

    def _fresh(self, now: float) -> str | None:
        """Why the robot's state is not fresh (None when it is): every source's age once one is too old."""
        limit = self.config.state_timeout_s
        ages = {self.g1.lowstate: now - self._state_rx}
        ages.update({self.g1.hand(s)[1]: now - self._hand_rx[s] for s in self.sides})
        if max(ages.values()) <= limit:
            return None
        listed = ", ".join(f"{self.node.resolve(t)} {'never received' if math.isinf(a) else f'{a:.3f} s old'}"
                           for t, a in ages.items())
        return f"no fresh robot state within {limit:g} s: {listed}"

    # -- robot state in ------------------------------------------------------------------------------------------
    def _hand_cb(self, side: str) -> Any:
        def on_hand(msg: HandState) -> None:
            motors = msg.motor_state
            if len(motors) < 7:
                raise ValueError(f"Dex3 {side} state has {len(motors)} motors, expected 7")
            q = np.array([m.q for m in motors[:7]])
            dq = np.array([m.dq for m in motors[:7]])
            if not (np.all(np.isfinite(q)) and np.all(np.isfinite(dq))):
                self.trip("state_invalid", f"non-finite Dex3 {side} state {q.tolist()}")
                return
            self.hand_q[side], self.hand_dq[side] = q, dq
            self._hand_rx[side] = time.monotonic()
        return on_hand

    def _on_state(self, msg: LowState) -> None:
        c = self.config
        if c.check_state_crc:
            crc = low_state_crc(msg)
            if crc != msg.crc:
                self.counts["bad_state_crc"] += 1
                self.trip("state_crc", f"rt/lowstate CRC mismatch (carries {msg.crc:#010x}, computed {crc:#010x}): "
                          "a corrupted or foreign state; check the robot's firmware / run with --no-check-state-crc "
                          "for a simulator that leaves it 0")
                return
        motors = msg.motor_state[:N_BODY]
        q = np.array([m.q for m in motors])
        dq = np.array([m.dq for m in motors])
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(dq))):
            bad = [BODY_JOINTS[i] for i in np.flatnonzero(~(np.isfinite(q) & np.isfinite(dq)))]
            self.trip("state_invalid", f"non-finite rt/lowstate for {bad}")
            return
        now = time.monotonic()
        self.q, self.dq = q, dq
        self.tau = np.array([m.tau_est for m in motors])
        self.mode_machine = int(msg.mode_machine)
        self._state_rx = now
        self.stamp = msg.tick * 1e-3 if c.stamp == "tick" else self.node.now()
        self.counts["states"] += 1
        if self.phase == Phase.WAITING and self._fresh(now) is None:
            self.arm(None)
        elif self.phase == Phase.RESETTING and self._reset is not None and self._after_reset(self._reset):
            done = self._reset  # this is the robot's first state after its reset
            self.arm(None)
            self._ack(done["id"], done["stamp"])
        self.publish_joint_states()

    def publish_joint_states(self) -> None:
        """joint_states: the 29 body joints then each hand's 7, stamped with the robot state's time."""
        pos = np.concatenate([self.q, *(self.hand_q[s] for s in self.sides)])
        vel = np.concatenate([self.dq, *(self.hand_dq[s] for s in self.sides)])
        self.pub_js.publish(joint_state_msg(self.state_joints, pos, vel, stamp=self.stamp))

    # -- client commands in ----------------------------------------------------------------------------------------
    def _on_command(self, msg: Float64MultiArray) -> None:
        if self.phase != Phase.ACTIVE:
            self.counts["ignored_commands"] += 1
            return
        q = float_array(msg)
        n_cmd = len(self.command_joints)
        if q.shape != (n_cmd,):
            self.trip("command_invalid",
                      f"client command has {q.size} targets, expected {n_cmd} ({', '.join(self.command_joints)})")
            return
        bad = ~np.isfinite(q)
        if bad.any():
            names = [self.command_joints[i] for i in np.flatnonzero(bad)]
            self.trip("command_invalid", f"non-finite client command for {names}")
            return
        self.counts["commands"] += 1
        nb = self.cmd_body.size
        body = q[:nb]
        lo, hi = self._lo[self.cmd_body], self._hi[self.cmd_body]
        clipped = np.clip(body, lo, hi)
        n_clipped = int(np.count_nonzero(clipped != body))
        self.goal[self.cmd_body] = clipped
        for k, side in enumerate(self.sides):
            h = q[nb + 7 * k : nb + 7 * k + 7]
            hc = np.clip(h, HAND_LIMITS[side][:, 0], HAND_LIMITS[side][:, 1])
            n_clipped += int(np.count_nonzero(hc != h))
            self.hand_goal[side] = hc
        self.counts["clipped"] += n_clipped
        self._cmd_rx = time.monotonic()

    def arm(self, request_id: int | None) -> str | None:
        """Hold the measured pose and take client targets again; refused (returns why) without a fresh state."""
        why = self._fresh(time.monotonic())
        if why is not None:
            return why
        self.target = np.clip(self.q, self._lo, self._hi)
        self.goal = self.target.copy()
        for s in self.sides:
            self.hand_target[s] = np.clip(self.hand_q[s], HAND_LIMITS[s][:, 0], HAND_LIMITS[s][:, 1])
            self.hand_goal[s] = self.hand_target[s].copy()
        self._cmd_rx = None
        self._reset = None
        self._homing = None
        was = self.phase
        self.phase, self.fault, self.fault_kind = Phase.ACTIVE, None, None
        if request_id is not None:
            self.armed_id = request_id
        if was in (Phase.WAITING, Phase.DAMPING):
            self.node.logger.info("armed (%s): holding the measured pose, taking targets for %d joints", was,
                                  len(self.command_joints))
        self.publish_status()
        return None

    def _on_arm(self, msg: String) -> None:
        req = json.loads(msg.data) if msg.data.strip() else {}
        rid = int(req.get("id", 0))
        why = self.arm(rid)
        if why is not None:
            self.node.logger.warning("re-arm %d refused: %s", rid, why)
            self.publish_status(refused={"id": rid, "reason": why})

    # -- the realrl reset protocol ---------------------------------------------------------------------------------
    def _on_reset(self, msg: String) -> None:
        req = json.loads(msg.data)
        rid, kind = int(req["id"]), str(req["kind"])
        if self._last_reset is not None and self._last_reset[0] == rid:  # a resend: answer again
            self.pub_ack.publish(String(json.dumps(self._last_reset[1])))
            return
        if self._reset is not None and self._reset["id"] == rid:
            return  # in flight
        if kind not in ("robot", "task"):
            raise ValueError(f"unknown reset kind {kind!r}; use 'robot' or 'task'")
        if self.phase in (Phase.DAMPING, Phase.WAITING):
            why = self.fault if self.phase == Phase.DAMPING else "no robot state yet"
            self._ack(rid, self.stamp, error=f"the humanoid node is {self.phase} ({why}); re-arm it first")
            return
        if self.config.reset_mode == "home":
            if kind != "robot":
                self._ack(rid, self.stamp, error="a scene reset cannot be done by the robot's node: on hardware the "
                                                 "operator resets the scene")
            elif "joint_pos" in req:
                self._ack(rid, self.stamp, error="the humanoid node homes to --home-arm/--home-hand; a joint_pos "
                                                 "reset is not supported on hardware")
            else:
                self._start_homing(rid)
            return
        self._reset = {"id": rid, "kind": kind, "msg": msg.data, "sent": -math.inf, "since": time.monotonic()}
        if kind == "robot":
            self.phase = Phase.RESETTING  # nothing more is written until the robot's first state after the reset
            self._cmd_rx = None
            self.publish_status()
        self._forward_reset()

    def _start_homing(self, rid: int) -> None:
        self._homing = {"id": rid, "since": time.monotonic()}
        self.phase = Phase.HOMING
        self._cmd_rx = None
        for side in SIDES:
            self.goal[list(ARMS[side])] = self.home[side]
        for s in self.sides:
            self.hand_goal[s] = self.home_hand[s].copy()
        self.node.logger.info("homing (request %d) at %g rad/s", rid, self.config.home_velocity)
        self.publish_status()

    def _home_step(self, now: float) -> None:
        """One control period of homing: done (ack) when every arm and hand joint is home, abandoned at timeout."""
        h, c = self._homing, self.config
        assert h is not None
        arms = [*ARMS["left"], *ARMS["right"]]
        err = [np.abs(self.q[arms] - self.goal[arms]).max()] + [
            np.abs(self.hand_q[s] - self.hand_goal[s]).max() for s in self.sides]
        gaps = [np.abs(self.target[arms] - self.goal[arms]).max()] + [
            np.abs(self.hand_target[s] - self.hand_goal[s]).max() for s in self.sides]
        arrived = max(gaps) < 1e-9  # the setpoints are home (the measured joints within tolerance of them)
        if arrived and max(err) <= c.home_tolerance:
            self._homing, self.phase = None, Phase.ACTIVE
            self.node.logger.info("homed (request %d)", h["id"])
            self.publish_status()
            self._ack(h["id"], self.stamp)
        elif now - h["since"] > c.home_timeout_s:
            self._homing, self.phase = None, Phase.ACTIVE
            self.goal = self.target.copy()  # hold where it got to
            for s in self.sides:
                self.hand_goal[s] = self.hand_target[s].copy()
            why = (f"homing abandoned after {c.home_timeout_s:g} s, {max(err):.3f} rad from home: the robot holds "
                   "where it is; check for an obstacle, then reset again")
            self.node.logger.error(why)
            self.publish_status()
            self._ack(h["id"], self.stamp, error=why)

    def _forward_reset(self) -> None:
        r = self._reset
        if r is not None and "stamp" not in r and time.monotonic() - r["sent"] > 0.5:
            self.pub_driver_reset.publish(String(r["msg"]))  # volatile: resend until the robot answers
            r["sent"] = time.monotonic()

    def _on_driver_ack(self, msg: String) -> None:
        d = json.loads(msg.data)
        r = self._reset
        if r is None or int(d["id"]) != r["id"] or "stamp" in r:
            return
        r["stamp"] = float(d["stamp"])
        if r["kind"] == "task":
            self._reset = None
            self._ack(r["id"], r["stamp"])
        elif self._after_reset(r):  # its first state after the reset is already here
            self.arm(None)
            self._ack(r["id"], r["stamp"])

    def _after_reset(self, r: dict[str, Any]) -> bool:
        """Whether the newest state is the robot's after the forwarded reset (its stamps are in ms)."""
        return "stamp" in r and self.stamp >= r["stamp"] - 5e-4

    def _ack(self, rid: int, stamp: float, error: str | None = None) -> None:
        ack: dict[str, Any] = {"id": rid, "stamp": stamp}
        if error is not None:
            ack["error"] = error
        self._last_reset = (rid, ack)
        self.pub_ack.publish(String(json.dumps(ack)))

    # -- commands out ----------------------------------------------------------------------------------------------
    def tick(self) -> None:
        """One control period: watchdogs, then rt/lowcmd and the Dex3 commands (targets or damping)."""
        now = time.monotonic()
        if self.phase in (Phase.ACTIVE, Phase.RESETTING, Phase.HOMING):
            why = self._fresh(now)
            if why is not None:
                self.trip("state_timeout", why)
                return
            if self._cmd_rx is not None and now - self._cmd_rx > self.config.command_timeout_s:
                self.trip("client_silent", f"client silent for {now - self._cmd_rx:.3f} s (limit "
                          f"{self.config.command_timeout_s:g} s) on {self.node.resolve(self.t.joint_command)}")
                return
        if self._reset is not None:
            self._forward_reset()
        if self.phase == Phase.RESETTING:
            if self._reset is not None and now - self._reset["since"] > 10.0 and "stamp" not in self._reset:
                self.trip("reset_timeout", f"the robot did not acknowledge reset {self._reset['id']} on "
                          f"{self.node.resolve(self.t.driver_reset_done)} within 10 s")
            return
        if self.phase == Phase.HOMING:
            step = self.config.home_velocity * self.dt
            self._step_targets(step, step)
            self._write(self.target, self.kp, self.kd, {s: (self.hand_target[s], self.hand_kp, self.hand_kd)
                                                          for s in self.sides})
            self._home_step(now)
        elif self.phase == Phase.ACTIVE:
            self._step_targets(self.body_step, self.hand_step)
            self._write(self.target, self.kp, self.kd, {s: (self.hand_target[s], self.hand_kp, self.hand_kd)
                                                          for s in self.sides})
        elif self.phase == Phase.DAMPING and self.mode_machine is not None:
            zero = np.zeros(N_BODY)
            hz = np.zeros(7)
            hd = np.full(7, self.config.hand_damping_kd)
            self._write(self.q, zero, np.full(N_BODY, self.config.damping_kd),
                        {s: (self.hand_q[s], hz, hd) for s in self.sides})

    def _step_targets(self, body_step: float, hand_step: float) -> None:
        """Move each written target toward its goal by at most one tick's worth of the velocity limit."""
        step = np.clip(self.goal - self.target, -body_step, body_step)
        if np.any(step != self.goal - self.target):
            self.counts["rate_limited"] += 1
        self.target = np.clip(self.target + step, self._lo, self._hi)
        self.target[self.held_body] = self.goal[self.held_body]
        for s in self.sides:
            d = self.hand_goal[s] - self.hand_target[s]
            self.hand_target[s] = self.hand_target[s] + np.clip(d, -hand_step, hand_step)

    def _write(self, q: np.ndarray, kp: np.ndarray, kd: np.ndarray,
               hands: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        cmd = self._lowcmd
        assert self.mode_machine is not None
        cmd.mode_machine = self.mode_machine
        qs, kps, kds = q.tolist(), kp.tolist(), kd.tolist()
        for i in range(N_BODY):
            m = cmd.motor_cmd[i]
            m.mode, m.q, m.dq, m.tau, m.kp, m.kd = MOTOR_ENABLE, qs[i], 0.0, 0.0, kps[i], kds[i]
        cmd.crc = low_cmd_crc(cmd)
        self.pub_lowcmd.publish(cmd)
        self.counts["lowcmd"] += 1
        for s, (hq, hkp, hkd) in hands.items():
            hc = self._hand_cmd[s]
            for i, (qi, kpi, kdi) in enumerate(zip(hq.tolist(), hkp.tolist(), hkd.tolist(), strict=True)):
                m = hc.motor_cmd[i]
                m.q, m.dq, m.tau, m.kp, m.kd = qi, 0.0, 0.0, kpi, kdi
            self.pub_hand[s].publish(hc)
            self.counts["hand_cmd"] += 1

    def publish_status(self, refused: dict[str, Any] | None = None) -> None:
        """humanoid/status (latched JSON): state, fault, the command order, counters."""
        status: dict[str, Any] = {
            "state": self.phase, "fault": self.fault, "fault_kind": self.fault_kind, "armed_id": self.armed_id,
            "stamp": self.stamp, "command_joints": self.command_joints, "mode_machine": self.mode_machine,
            "control_hz": self.config.control_hz,
            "counts": {**self.counts, "dropped_states": self.sub_state.dropped,
                       "dropped_commands": self.sub_cmd.dropped},
        }
        if refused is not None:
            status["refused"] = refused
        self.pub_status.publish(String(json.dumps(status)))

    def spin(self) -> None:
        """Run until Ctrl-C / SIGTERM (the robot keeps its last command: stop in damping or a safe pose)."""
        c = self.config
        self.node.logger.info("humanoid node up: %s -> %s at %g Hz, %d commanded joints (waist %s, hands %s)",
                              self.node.resolve(self.t.joint_command), self.node.resolve(self.g1.lowcmd),
                              c.control_hz, len(self.command_joints), "on" if c.waist else "held",
                              "on" if c.hands else "off")
        self.node.spin()
        self.node.close()


def run(config: HumanoidNodeConfig) -> None:
    """Entry point of `realrl node humanoid`."""
    serve(lambda: HumanoidNode(config))


def main(argv: list[str] | None = None) -> None:
    """`python -m hardware.nodes.humanoid_node [flags] [--ros-args ...]`."""
    run_cli(HumanoidNodeConfig, run, "humanoid_node", argv)


if __name__ == "__main__":
    main()
