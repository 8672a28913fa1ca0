"""The Unitree G1 over DDS with real processes on loopback: the sim node posing as a G1 (rt/lowstate, rt/lowcmd,
Dex3 topics, CRCs) below the humanoid node, RobotEnv on top. The scripted expert reaches its in-process success;
faults put the node into damping with a clear reason; nothing unsafe ever reaches rt/lowcmd (checked on the wire)."""

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from hardware.humanoid_robot import HumanoidRobot, HumanoidRobotConfig
from hardware.nodes.config import HumanoidNodeConfig
from hardware.nodes.g1_remote import RemoteG1EnvConfig, make_remote_g1_env
from hardware.ros import DEFAULT, LATCHED, Node, create_node, loopback_config
from hardware.ros.convert import float_array_msg
from hardware.ros.msgs import Float64MultiArray, JointState, String
from hardware.ros.unitree import HandCmd, LowCmd, LowState
from hardware.ros.unitree_crc import low_cmd_crc
from hardware.sessions import G1_ON_SIM_HUMANOID_ARGS, G1_ON_SIM_SIM_REMAPS
from hardware.unitree_g1 import ARMS, BODY_JOINTS, BODY_LIMITS, HAND_JOINTS, HAND_LIMITS
from robot.core.errors import SafetyError, TransportError
from robot.core.spec import ActionMode, ActionSpec, EmbodimentSpec, JointSpec
from tests.ros_util import fresh_domain, spawn, stop, wait_for

ENV = "realrl/G1BoxPickup-v0"
SIM = ["-m", "hardware.nodes.sim_node", "--env", ENV, "--pose-as", "g1", "--ros-args", "-r", "__node:=sim",
       *G1_ON_SIM_SIM_REMAPS]  # its resets sit behind the humanoid node (which homes itself in 'home' mode)
HUMANOID = ["-m", "hardware.nodes.humanoid_node", *G1_ON_SIM_HUMANOID_ARGS, "--ros-args", "-r", "__node:=humanoid"]
HZ, ARM_VMAX, HAND_VMAX, MARGIN, DAMPING_KD = 100.0, 8.0, 12.0, 0.02, 2.0  # the session's / node defaults
SEEDS = (0, 1, 2)


@dataclass
class Stack:
    domain: int
    logs: Path
    procs: dict[str, Any] = field(default_factory=dict)

    def start(self, name: str, args: list[str]) -> None:
        self.procs[name] = spawn(args, self.domain, self.logs / f"{name}.log")

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The g1-on-sim session's two nodes, shared by the tests of this module (each starts by re-arming)."""
    with pytest.MonkeyPatch.context() as mp:
        dom = fresh_domain()
        mp.setenv("CYCLONEDDS_URI", loopback_config())
        mp.setenv("ROS_DOMAIN_ID", str(dom))
        mp.setenv("REALRL_ROS_BACKEND", "cyclonedds")
        s = Stack(dom, tmp_path_factory.mktemp("g1"))
        s.start("sim", SIM)
        s.start("humanoid", HUMANOID)
        try:
            yield s
        finally:
            for name, proc in s.procs.items():
                code = stop(proc)
                assert code in (0, -9), f"{name} exited {code}:\n{s.log(name)}"


class Wire:
    """A listener on the robot's side of the humanoid node: every rt/lowcmd and Dex3 command, plus the node's
    status; it can also play a client (raw targets, re-arm requests)."""

    def __init__(self, name: str = "wire") -> None:
        self.node: Node = create_node(name)
        self.lock = threading.Lock()
        self.lowcmd: list[tuple[float, float, LowCmd]] = []  # (receipt time, send time, command)
        self.hands: dict[str, list[tuple[float, HandCmd]]] = {"left": [], "right": []}  # (send time, command)
        self.states: list[LowState] = []
        self.status: list[dict[str, Any]] = []
        self.joints: list[JointState] = []
        n = self.node
        lowcmd_sub = n.create_subscription(LowCmd, "/lowcmd", lambda m: self._put(self.lowcmd)(
            (time.monotonic(), lowcmd_sub.source_time, m)), DEFAULT)
        for side in ("left", "right"):
            self._listen_hand(side)
        n.create_subscription(LowState, "/lowstate", self._put(self.states), DEFAULT)
        n.create_subscription(String, "humanoid/status", lambda m: self._put(self.status)(json.loads(m.data)),
                              LATCHED)
        n.create_subscription(JointState, "joint_states", self._put(self.joints), DEFAULT)
        self.targets = n.create_publisher(Float64MultiArray, "joint_position_controller/commands")
        self.arm_pub = n.create_publisher(String, "humanoid/arm")
        n.spin_in_thread()

    def _listen_hand(self, side: str) -> None:
        put = self._put(self.hands[side])
        sub = self.node.create_subscription(HandCmd, f"/dex3/{side}/cmd", lambda m: put((sub.source_time, m)),
                                            DEFAULT)

    def _put(self, into: list[Any]) -> Any:
        def put(msg: Any) -> None:
            with self.lock:
                into.append(msg)
        return put

    def last_status(self) -> dict[str, Any]:
        with self.lock:
            return self.status[-1] if self.status else {}

    def commands_since(self, t0: float) -> list[LowCmd]:
        return [m for _, m in self.sent_since(t0)]

    def sent_since(self, t0: float) -> list[tuple[float, LowCmd]]:
        """(send time, command) pairs received from t0 (monotonic) on; send times are the node's wall clock."""
        with self.lock:
            return [(sent, m) for t, sent, m in self.lowcmd if t >= t0]

    def rearm(self, rid: int) -> None:
        """Re-arm the node (it may be in damping after the previous test) and wait until it holds."""
        end = time.monotonic() + 10
        while time.monotonic() < end:
            s = self.last_status()
            if s.get("armed_id") == rid and s.get("state") == "active":
                return
            self.arm_pub.publish(String(json.dumps({"id": rid})))
            time.sleep(0.1)
        raise AssertionError(f"the humanoid node did not re-arm: {self.last_status()}")

    def close(self) -> None:
        self.node.close()


def check_on_the_wire(msgs: list[LowCmd], max_kp: float = 300.0, max_kd: float = 20.0) -> None:
    """What the robot received: a valid CRC and mode_machine, finite values, stiff targets inside the limits, gains
    in bounds; only motors 0-28 enabled."""
    assert msgs, "nothing reached rt/lowcmd"
    for m in msgs:
        assert m.crc == low_cmd_crc(m) and m.mode_machine == 5
        v = np.array([[x.q, x.dq, x.tau, x.kp, x.kd] for x in m.motor_cmd], dtype=np.float64)
        assert np.all(np.isfinite(v)), v
        assert [x.mode for x in m.motor_cmd] == [1] * 29 + [0] * 6
        stiff = v[:29, 3] > 0
        q = v[:29, 0]
        assert np.all((q >= BODY_LIMITS[:, 0] + MARGIN - 1e-6)[stiff] & (q <= BODY_LIMITS[:, 1] - MARGIN + 1e-6)[stiff])
        assert np.all((v[:, 3] >= 0) & (v[:, 3] <= max_kp) & (v[:, 4] >= 0) & (v[:, 4] <= max_kd))


def run_episode(env: Any, seed: int) -> tuple[bool, int]:
    obs, _ = env.reset(seed=seed)
    policy = env.unwrapped.task.expert(seed=seed)
    policy.reset()
    done, n, success = False, 0, False
    while not done:
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        n += 1
        success = success or bool(info["success"])
        done = terminated or truncated
    return success, n


def test_expert_over_dds_matches_in_process(stack: Stack) -> None:
    local = gym.make(ENV)
    expected = [run_episode(local, seed) for seed in SEEDS]
    wire = Wire()
    env = make_remote_g1_env(RemoteG1EnvConfig(ENV))
    try:
        obs, _ = env.reset(seed=0)
        ref, _ = local.reset(seed=0)
        assert sorted(obs) == sorted(ref)  # the in-process keys, dtypes and shapes
        for k in ref:
            assert obs[k].dtype == ref[k].dtype and obs[k].shape == ref[k].shape, k
        np.testing.assert_allclose(obs["state/box_pose"], ref["state/box_pose"], atol=1e-5)  # the same scene
        np.testing.assert_allclose(obs["state/joint_pos"], ref["state/joint_pos"], atol=1e-6)  # homed alike
        np.testing.assert_allclose(obs["state/ee_pose"], ref["state/ee_pose"], atol=1e-5)  # FK on the shadow
        t0 = time.monotonic()
        got = [run_episode(env, seed) for seed in SEEDS]
        elapsed = time.monotonic() - t0
        # A client that pauses between episodes leaves the node in damping; the next reset re-arms that fault.
        assert wait_for(lambda: wire.last_status().get("fault_kind") == "client_silent", 3), wire.last_status()
        assert run_episode(env, SEEDS[0])[0] == expected[0][0]
    finally:
        env.close()
    assert [s for s, _ in got] == [s for s, _ in expected], (got, expected)
    assert sum(s for s, _ in expected) >= 2, expected
    steps = sum(n for _, n in got)
    assert elapsed < 2.5 * steps / 20.0, (elapsed, steps)  # real time at 20 Hz, resets included
    msgs = wire.commands_since(t0)
    wire.close()
    check_on_the_wire(msgs, max_kp=300.0)
    assert len(msgs) > 0.5 * HZ * elapsed  # a steady stream at the node's rate
    assert stack.procs["sim"].poll() is None and stack.procs["humanoid"].poll() is None


def test_targets_are_clipped_and_rate_limited_then_silence_damps(stack: Stack) -> None:
    wire = Wire()
    try:
        wire.rearm(101)
        joints = wire.last_status()["command_joints"]
        assert wait_for(lambda: bool(wire.joints), 5)
        measured = dict(zip(wire.joints[-1].name, wire.joints[-1].position, strict=True))
        target = np.array([measured[j] for j in joints])
        elbow, shoulder = joints.index("left_elbow_joint"), joints.index("right_shoulder_pitch_joint")
        thumb = joints.index("right_hand_thumb_2_joint")
        target[elbow] = 10.0  # far outside the limits
        target[shoulder] = -3.0  # inside, but a 3 rad jump
        target[thumb] = -5.0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:  # a client at 20 Hz
            wire.targets.publish(float_array_msg(target))
            time.sleep(0.05)
        t_stop = time.monotonic()
        assert wait_for(lambda: wire.last_status().get("state") == "damping", 3), wire.last_status()
        status = wire.last_status()
        assert status["fault_kind"] == "client_silent" and "client silent" in status["fault"]
        # (the status can overtake the first damping command on the wire)
        assert wait_for(lambda: wire.commands_since(t0)[-1].motor_cmd[15].kp == 0, 2)
        sent = wire.sent_since(t0)
    finally:
        wire.close()
    msgs = [m for _, m in sent]
    check_on_the_wire(msgs)
    q = np.array([[x.q for x in m.motor_cmd[:29]] for m in msgs])
    kp = np.array([[x.kp for x in m.motor_cmd[:29]] for m in msgs])
    active = kp[:, 15] > 0
    e, s = BODY_JOINTS.index("left_elbow_joint"), BODY_JOINTS.index("right_shoulder_pitch_joint")
    assert q[active, e].max() == pytest.approx(BODY_LIMITS[e, 1] - MARGIN, abs=1e-5)  # clipped, and reached
    assert q[active, s].min() == pytest.approx(-3.0, abs=1e-5)
    # Rate-limited, measured against the node's send times: a listener that falls behind on a loaded machine can
    # lose some of the 100 Hz commands, so consecutive received ones may be several ticks apart. One tick of slack
    # covers timer jitter; an unlimited 3 rad jump would still be a step of radians.
    t = np.array([st for st, _ in sent])[active]
    steps = np.abs(np.diff(q[active], axis=0)).max(1)
    bound = ARM_VMAX * np.diff(t) + ARM_VMAX / HZ + 1e-5
    assert np.all(steps <= bound), (steps.max(), np.diff(t)[steps.argmax()])
    assert steps.min() <= ARM_VMAX / HZ + 1e-5  # a tick's step is a tick's worth
    ramp = np.flatnonzero(np.abs(q[active, s] + 3.0) < 1e-5)[0]  # the time to cover the 3 rad jump at 8 rad/s
    assert t[ramp] - t[0] >= abs(q[active][0, s] + 3.0) / ARM_VMAX - 2 / HZ > 0.3
    # After the client went silent: damping, every motor kp = 0 and kd = the damping gain, within 0.5 s + a tick.
    damping = kp.max(axis=1) == 0
    assert damping[-1] and np.all(damping[np.argmax(damping):])
    last = msgs[-1]
    assert all(x.kd == DAMPING_KD for x in last.motor_cmd[:29])
    first_damping_at = next(t for t, _, m in wire.lowcmd if t >= t0 and m.motor_cmd[15].kp == 0)
    assert first_damping_at - t_stop < 0.5 + 0.3
    hands = [(st, h) for st, h in wire.hands["right"] if h.motor_cmd[2].kp > 0]
    hq = np.array([[x.q for x in h.motor_cmd] for _, h in hands])
    ht = np.array([st for st, _ in hands])
    assert np.all(hq >= HAND_LIMITS["right"][:, 0] - 1e-6) and np.all(hq <= HAND_LIMITS["right"][:, 1] + 1e-6)
    assert np.all(np.abs(np.diff(hq, axis=0)).max(1) <= HAND_VMAX * np.diff(ht) + HAND_VMAX / HZ + 1e-5)
    assert HAND_JOINTS["right"][2] == "right_hand_thumb_2_joint" and hq[:, 2].min() == pytest.approx(-1.74533, abs=1e-5)


def g1_link_spec() -> EmbodimentSpec:
    """The humanoid node's 28 commanded joints as a joint-position embodiment, from the wire tables alone."""
    names = [BODY_JOINTS[i] for i in (*ARMS["left"], *ARMS["right"])] + [*HAND_JOINTS["left"], *HAND_JOINTS["right"]]
    lims = np.concatenate([BODY_LIMITS[15:29], HAND_LIMITS["left"], HAND_LIMITS["right"]])
    joints = tuple(JointSpec(n, float(lo), float(hi)) for n, (lo, hi) in zip(names, lims, strict=True))
    action = ActionSpec(ActionMode.JOINT_POS, tuple(names), tuple(lims[:, 0]), tuple(lims[:, 1]))
    return EmbodimentSpec("g1_link", joints, action, control_hz=20.0)


def test_nan_command_damps_until_rearmed(stack: Stack) -> None:
    wire = Wire()
    robot = HumanoidRobot(g1_link_spec(), HumanoidRobotConfig(node_name="nan_client"))
    try:
        wire.rearm(202)
        robot.connect()
        obs = robot.observe()
        q = obs["state/joint_pos"].astype(np.float64)
        robot.command(q)
        with pytest.raises(SafetyError, match="non-finite"):  # the client's own check: nothing leaves it
            robot.command(np.full_like(q, np.nan))
        t_nan = time.monotonic()
        bad = q.copy()
        bad[3] = np.nan  # a raw client that does not check
        wire.targets.publish(float_array_msg(bad))
        assert wait_for(lambda: robot.status.get("state") == "damping", 3), robot.status
        assert robot.status["fault_kind"] == "command_invalid"
        assert "non-finite client command for ['left_elbow_joint']" in robot.status["fault"]
        with pytest.raises(SafetyError, match="damping mode: non-finite client command"):
            robot.command(q)
        with pytest.raises(SafetyError, match="re-arm"):  # a reset does not clear a real fault
            robot.reset()
        time.sleep(0.2)
        after = [m for m in wire.commands_since(t_nan)]
        check_on_the_wire(after)
        assert after and after[-1].motor_cmd[18].kp == 0 and after[-1].motor_cmd[18].kd == DAMPING_KD
        assert "DAMPING: non-finite client command" in stack.log("humanoid")
        robot.rearm()
        assert robot.status["state"] == "active"
        robot.command(robot.observe()["state/joint_pos"].astype(np.float64))
        t_armed = time.monotonic()
        assert wait_for(lambda: any(m.motor_cmd[18].kp == 150.0 for m in wire.commands_since(t_armed)), 2)
    finally:
        robot.disconnect()
        wire.close()


def test_stale_lowstate_damps_and_the_client_sees_transport_error(stack: Stack) -> None:
    wire = Wire()
    robot = HumanoidRobot(g1_link_spec(), HumanoidRobotConfig(node_name="stale_client", watchdog_s=0.3))
    try:
        wire.rearm(303)
        robot.connect()
        q = robot.observe()["state/joint_pos"].astype(np.float64)
        robot.command(q)
        stack.procs["sim"].kill()  # the robot vanishes mid-command, no goodbye
        stack.procs["sim"].wait()
        killed = time.monotonic()
        with pytest.raises(TransportError, match=r"watchdog|old"):
            for _ in range(20):
                robot.observe()
                robot.command(q)
        assert time.monotonic() - killed < 0.3 + 0.2
        assert wait_for(lambda: robot.status.get("state") == "damping", 2), robot.status
        fault = robot.status["fault"]
        assert robot.status["fault_kind"] == "state_timeout" and "no fresh robot state within 0.25 s" in fault
        assert re.search(r"/lowstate \d\.\d+ s old, /dex3/left/state \d\.\d+ s old", fault), fault
        with pytest.raises(TransportError, match="nothing was sent"):
            robot.command(q)
        time.sleep(0.3)
        after = wire.commands_since(killed + 0.25 + 0.05)
        check_on_the_wire(after)  # damping keeps going out, finite, with the last mode_machine
        assert len(after) > 10 and all(x.kp == 0 and x.kd == DAMPING_KD for m in after for x in m.motor_cmd[:29])
        assert "DAMPING: no fresh robot state" in stack.log("humanoid")
    finally:
        robot.disconnect()
        wire.close()


def lowcmd_holding(state: LowState, elbow: float, mode_machine: int = 5) -> LowCmd:
    """A SDK-style LowCmd: every body motor enabled at its measured position, the left elbow at `elbow`."""
    cmd = LowCmd(mode_machine=mode_machine)
    for i in range(29):
        m = cmd.motor_cmd[i]
        m.mode, m.q, m.kp, m.kd = 1, state.motor_state[i].q, 150.0, 8.0
    cmd.motor_cmd[18].q = elbow
    cmd.crc = low_cmd_crc(cmd)
    return cmd


def test_sim_posing_as_g1_drops_bad_lowcmds_then_homing_and_a_bad_state_crc(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    dom = fresh_domain()
    monkeypatch.setenv("CYCLONEDDS_URI", loopback_config())
    monkeypatch.setenv("ROS_DOMAIN_ID", str(dom))
    monkeypatch.setenv("REALRL_ROS_BACKEND", "cyclonedds")
    s = Stack(dom, tmp_path)
    s.start("sim", SIM)
    wire = Wire()
    stats: list[dict[str, Any]] = []
    wire.node.create_subscription(String, "/sim/stats", lambda m: stats.append(json.loads(m.data)), LATCHED)
    pub = wire.node.create_publisher(LowCmd, "/lowcmd", DEFAULT)
    state_pub = wire.node.create_publisher(LowState, "/lowstate", DEFAULT)

    def elbow() -> float:
        with wire.lock:
            return float(wire.states[-1].motor_state[18].q)

    def send(cmd: LowCmd, seconds: float = 0.6) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pub.publish(cmd)
            time.sleep(0.02)

    robot = HumanoidRobot(g1_link_spec(), HumanoidRobotConfig(node_name="home_client"))
    try:
        assert wait_for(lambda: bool(wire.states) and pub.matched_count() > 0, 30), s.log("sim")
        st = wire.states[-1]
        assert st.crc != 0 and st.mode_machine == 5
        e0 = elbow()
        send(lowcmd_holding(st, e0 + 0.5))  # a valid command moves the arm
        assert elbow() > e0 + 0.3
        e1 = elbow()
        bad_crc = lowcmd_holding(st, e0 - 0.5)
        bad_crc.crc ^= 1
        send(bad_crc)
        send(lowcmd_holding(st, e0 - 0.5, mode_machine=6))  # another robot's mode_machine
        nan = lowcmd_holding(st, float("nan"))
        send(nan)
        assert abs(elbow() - e1) < 0.05  # none of them was applied: the valid command still holds
        assert wait_for(lambda: bool(stats) and stats[-1]["bad_crc"] >= 10 and stats[-1]["wrong_mode_machine"] >= 10
                        and stats[-1]["invalid"] >= 10, 5), stats[-1:]
        assert stats[-1]["dropped"]["lowcmd"] >= 30 and s.procs["sim"].poll() is None

        # The humanoid node as on hardware (a robot reset homes the arms and hands, scene resets are refused).
        s.start("humanoid", ["-m", "hardware.nodes.humanoid_node", "--control-hz", "100", "--state-timeout-s",
                             "0.25", "--ros-args", "-r", "__node:=humanoid"])
        assert wait_for(lambda: wire.last_status().get("state") == "active", 20), s.log("humanoid")
        robot.connect()
        with pytest.raises(SafetyError, match="scene reset cannot be done by the robot's node"):
            robot.request_reset("task", {})
        t_home = time.monotonic()
        obs = robot.reset()
        home = HumanoidNodeConfig().home_arm
        np.testing.assert_allclose(obs["state/joint_pos"][:7], home, atol=0.05)  # the left arm
        np.testing.assert_allclose(obs["state/joint_pos"][7:14], np.array(home) * [1, -1, -1, 1, -1, 1, -1], atol=0.05)
        assert abs(obs["state/joint_pos"][15] + 0.7) < 0.05  # left thumb_1 back: the hand is open
        # the wire listener may still be a few states behind the client on a loaded machine
        assert wait_for(lambda: elbow() == pytest.approx(home[3], abs=0.05), 2), elbow()
        sent = wire.sent_since(t_home)
        check_on_the_wire([m for _, m in sent])
        t = np.array([s for s, _ in sent])
        q = np.array([[x.q for x in m.motor_cmd[:29]] for _, m in sent])
        # At the homing speed, 0.5 rad/s, measured against the node's send times (receipt times bunch when the
        # listener falls behind, and it may lose some of the 100 Hz commands, so consecutive ones can be several
        # periods apart; 15 mrad of slack is three periods of timer jitter). An unlimited move to home would be a
        # step of tenths of a radian in one period.
        step = np.abs(np.diff(q, axis=0)).max(1)
        assert np.all(step <= 0.5 * np.diff(t) + 0.015), (step.max(), np.diff(t)[step.argmax()])
        assert np.abs(q[-1] - q[0]).max() <= 0.5 * (t[-1] - t[0]) + 0.015
        assert np.abs(q[-1] - q[0]).max() > 0.1  # the arms did travel to home (the check above has a motion)
        forged = LowState(mode_machine=5, crc=1)  # a state that is not the robot's
        assert wait_for(lambda: state_pub.matched_count() > 0, 5)
        state_pub.publish(forged)
        assert wait_for(lambda: wire.last_status().get("state") == "damping", 3), wire.last_status()
        assert wire.last_status()["fault_kind"] == "state_crc" and "CRC mismatch" in wire.last_status()["fault"]
    finally:
        robot.disconnect()
        wire.close()
        for name, proc in s.procs.items():
            assert stop(proc) == 0, s.log(name)


def test_humanoid_node_config_bounds() -> None:
    from robot.core.errors import ConfigError

    with pytest.raises(ConfigError, match="hand-kp"):
        HumanoidNodeConfig(hand_kp=(500.0,))  # a real Dex3 bound; the sim session raises it deliberately
    with pytest.raises(ConfigError, match="one value or seven"):
        HumanoidNodeConfig(arm_kd=(1.0, 2.0))
    assert HumanoidNodeConfig(hand_kp=(500.0,), max_hand_kp=500.0).hand_kp == (500.0,)


def test_the_sim_and_the_wire_agree_on_every_motor_index() -> None:
    from hardware.unitree_g1 import BODY_JOINTS, HAND_JOINTS
    from sim.g1 import DEX3_MOTORS, G1_MOTORS

    assert tuple(name for _, name in G1_MOTORS) == tuple(BODY_JOINTS)
    for side in ("left", "right"):
        assert tuple(name for _, name in DEX3_MOTORS[side]) == HAND_JOINTS[side], side
