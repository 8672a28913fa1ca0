"""The G1 loop through the humanoid node on loopback DDS: a fake G1 publishes rt/lowstate + Dex3 states (with CRCs)
at 500 Hz, a client answers every joint state with targets, the node writes rt/lowcmd at its own 500 Hz.

Prints the rt/lowcmd rate and inter-arrival jitter, and the round trip robot state -> joint_states -> client
targets -> rt/lowcmd carrying them (includes waiting for the node's next tick, up to one period).

    python benchmarks/humanoid_loop.py --seconds 10 --hz 500
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--hz", type=float, default=500.0, help="robot state rate and the node's control rate")
    args = p.parse_args()

    from hardware.ros import loopback_config

    os.environ.update(CYCLONEDDS_URI=loopback_config(), ROS_DOMAIN_ID=str(100 + os.getpid() % 100),
                      REALRL_ROS_BACKEND="cyclonedds")
    import json
    import subprocess

    from hardware.ros import DEFAULT, LATCHED, SENSOR_DATA, create_node
    from hardware.ros.convert import float_array_msg, joint_state_arrays
    from hardware.ros.msgs import Float64MultiArray, JointState, String
    from hardware.ros.unitree import HandState, LowCmd, LowState, MotorState
    from hardware.ros.unitree_crc import low_state_crc
    from hardware.unitree_g1 import BODY_JOINTS

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    node_proc = subprocess.Popen(
        [sys.executable, "-m", "hardware.nodes.humanoid_node", "--control-hz", str(args.hz), "--stamp", "tick",
         "--command-timeout-s", "5", "--ros-args", "-r", "__node:=humanoid"], cwd=ROOT, env=env)
    robot = create_node("fake_g1")
    client = create_node("bench_client")
    pub_state = robot.create_publisher(LowState, "/lowstate", DEFAULT)
    pub_hands = {s: robot.create_publisher(HandState, f"/dex3/{s}/state", DEFAULT) for s in ("left", "right")}
    state = LowState(mode_machine=5)
    hand = HandState(motor_state=[MotorState() for _ in range(7)])
    sent_at: dict[int, float] = {}
    round_trips: list[float] = []
    lowcmd_rx: list[float] = []
    lock = threading.Lock()
    wy = BODY_JOINTS.index("left_wrist_yaw_joint")

    def publish_state() -> None:
        tick = int(time.monotonic() * 1000) & 0xFFFFFFFF
        state.tick = tick
        state.crc = low_state_crc(state)
        for pub in pub_hands.values():
            pub.publish(hand)
        with lock:
            sent_at[tick] = time.monotonic()
        pub_state.publish(state)

    def on_lowcmd(msg: LowCmd) -> None:
        now = time.monotonic()
        marker = round(msg.motor_cmd[wy].q * 1e4)  # the client echoes the state's tick (mod 1000) here
        with lock:
            lowcmd_rx.append(now)
            hits = [t for k, t in sent_at.items() if k % 1000 == marker]
            if hits:
                round_trips.append(now - max(hits))
                for k in [k for k in sent_at if k % 1000 == marker]:
                    del sent_at[k]

    robot.create_subscription(LowCmd, "/lowcmd", on_lowcmd, SENSOR_DATA)
    robot.create_timer(1.0 / args.hz, publish_state)
    cmd_pub = client.create_publisher(Float64MultiArray, "joint_position_controller/commands", DEFAULT)
    order: list[str] = []

    def on_joints(msg: JointState) -> None:
        if not order:
            return
        pos, _, _ = joint_state_arrays(msg)
        names = list(msg.name)
        target = np.array([pos[names.index(j)] for j in order])
        tick = round(msg.header.stamp.sec * 1000 + msg.header.stamp.nanosec / 1e6)
        target[order.index("left_wrist_yaw_joint")] = (tick % 1000) * 1e-4  # within the limits, < 1 tick's step
        cmd_pub.publish(float_array_msg(target))

    def on_status(msg: String) -> None:
        if not order:
            order.extend(json.loads(msg.data)["command_joints"])

    client.create_subscription(JointState, "joint_states", on_joints, SENSOR_DATA)
    client.create_subscription(String, "humanoid/status", on_status, LATCHED)
    robot.spin_in_thread()
    client.spin_in_thread()
    try:
        time.sleep(3.0)  # discovery, arming, the wrist ramping onto the marker
        with lock:
            round_trips.clear()
            lowcmd_rx.clear()
        time.sleep(args.seconds)
        with lock:
            rt = np.array(round_trips) * 1e3
            rx = np.diff(np.array(lowcmd_rx)) * 1e3
    finally:
        robot.close()
        client.close()
        node_proc.send_signal(2)
        node_proc.wait(10)
    print(f"rt/lowcmd: {len(rx) / args.seconds:.1f} Hz (target {args.hz:g}); inter-arrival "
          f"p50 {np.percentile(rx, 50):.2f} ms, p99 {np.percentile(rx, 99):.2f} ms, max {rx.max():.2f} ms")
    print(f"round trip state -> joint_states -> targets -> rt/lowcmd: n={len(rt)}, "
          f"p50 {np.percentile(rt, 50):.2f} ms, p99 {np.percentile(rt, 99):.2f} ms "
          f"(includes up to one {1e3 / args.hz:.1f} ms tick of the node)")


if __name__ == "__main__":
    main()
