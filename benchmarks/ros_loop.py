"""ROS 2 loop over Cyclone DDS on loopback: state-out/command-back round trip at 500 Hz, 224x224 images at 30 Hz,
and FrankaLift success through a sim node vs in-process, each against an in-process baseline measured in the run."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hardware.ros import LATCHED, create_node, loopback_config  # noqa: E402
from hardware.ros.convert import from_stamp, image_msg, to_stamp  # noqa: E402
from hardware.ros.msgs import Header, Image, JointState, String  # noqa: E402

JOINTS = [f"joint{i}" for i in range(1, 8)] + ["finger_joint1", "finger_joint2"]


def controller(state: JointState) -> JointState:
    """The "policy" on the far side: command = position targets, echoing the state's stamp."""
    return JointState(header=state.header, name=state.name, position=[p + 0.01 for p in state.position])


def realtime(priority: int) -> str:
    """SCHED_FIFO at `priority` for this process (how robot control loops run); returns what was done."""
    if priority <= 0:
        return "normal scheduling"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError) as e:
        return f"normal scheduling (SCHED_FIFO refused: {e})"
    return f"SCHED_FIFO priority {priority}"


def peer(duration_s: float, rt_priority: int) -> None:
    """Child process: answers states with commands, receives images, prints a JSON report when told to stop."""
    realtime(rt_priority)
    node = create_node("bench_peer")
    cmd = node.create_publisher(JointState, "bench/command")
    node.create_subscription(JointState, "bench/state", lambda m: cmd.publish(controller(m)))
    frames: list[tuple[int, float]] = []

    def on_image(m: Image) -> None:
        frames.append((int(m.header.frame_id), time.time() - from_stamp(m.header.stamp)))

    node.create_subscription(Image, "bench/image", on_image)
    done: list[bool] = []
    node.create_subscription(String, "bench/stop", lambda m: done.append(True), LATCHED)
    ready = node.create_publisher(String, "bench/ready", LATCHED)
    ready.publish(String("ready"))
    node.spin(until=lambda: bool(done), timeout_s=duration_s)
    ids = [i for i, _ in frames]
    lat = np.array([x for _, x in frames]) * 1e3
    print(json.dumps({"frames": len(frames), "ids": ids, "lat_ms": lat.tolist()}), flush=True)
    node.close()


def pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q))


def in_process_baseline(n: int) -> dict[str, float]:
    """The same controller as a plain call, and with CDR serialize/deserialize of both messages added."""
    state = JointState(name=JOINTS, position=[0.1] * 9, velocity=[0.2] * 9, effort=[0.3] * 9)
    call, cdr = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        controller(state)
        t1 = time.perf_counter()
        JointState.deserialize(controller(JointState.deserialize(state.serialize())).serialize())
        t2 = time.perf_counter()
        call.append(t1 - t0)
        cdr.append(t2 - t1)
    c, s = np.array(call) * 1e3, np.array(cdr) * 1e3
    return {"call_p50": pct(c, 50), "call_p99": pct(c, 99), "cdr_p50": pct(s, 50), "cdr_p99": pct(s, 99)}


def round_trip(node: Any, seconds: float, hz: float) -> dict[str, Any]:
    """Publish a JointState every 1/hz s; wait for the matching command; RTT per message."""
    replies: dict[float, float] = {}
    node.create_subscription(JointState, "bench/command",
                             lambda m: replies.__setitem__(from_stamp(m.header.stamp), time.perf_counter()))
    state_pub = node.create_publisher(JointState, "bench/state")
    period = 1.0 / hz
    warm = time.monotonic() + 1.0
    while time.monotonic() < warm:  # warm up the path (both directions matched)
        state_pub.publish(JointState(name=JOINTS, position=[0.0] * 9))
        node.spin_once(0.01)
    replies.clear()
    rtt, lost, late = [], 0, 0
    n = int(seconds * hz)
    t_next = time.perf_counter()
    for k in range(n):
        t_next += period
        stamp = 1000.0 + k * 1e-3  # a unique id, exact in sec/nanosec
        t0 = time.perf_counter()
        state_pub.publish(JointState(header=Header(stamp=to_stamp(stamp)), name=JOINTS,
                                     position=[0.1] * 9, velocity=[0.2] * 9, effort=[0.3] * 9))
        while stamp not in replies and time.perf_counter() - t0 < 0.1:
            node.spin_once(0.05)
        if stamp in replies:
            rtt.append(replies.pop(stamp) - t0)
        else:
            lost += 1
        now = time.perf_counter()
        if now > t_next:
            late += 1  # this cycle overran its 2 ms slot
            t_next = now
        else:
            time.sleep(max(0.0, t_next - time.perf_counter()))
    r = np.array(rtt) * 1e3
    return {"n": n, "lost": lost, "overran": late, "p50": pct(r, 50), "p90": pct(r, 90), "p99": pct(r, 99),
            "max": float(r.max())}


def images(node: Any, seconds: float, hz: float, size: int) -> int:
    """Publish size x size RGB frames at hz on a reliable topic; returns how many were sent."""
    pub = node.create_publisher(Image, "bench/image")
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    n = int(seconds * hz)
    t_next = time.perf_counter()
    for k in range(n):
        msg = image_msg(frame, stamp=time.time(), frame_id=str(k))
        pub.publish(msg)
        node.spin_once(0.0)
        t_next += 1.0 / hz
        time.sleep(max(0.0, t_next - time.perf_counter()))
    return n


def lift(episodes: int, domain: int, env_vars: dict[str, str]) -> dict[str, Any]:
    """FrankaLift with the scripted expert: in-process, then through a sim node process (RobotEnv(RosRobot))."""
    import gymnasium as gym

    import sim  # noqa: F401 - registers realrl/*
    from hardware.nodes.sim_node import RemoteEnvConfig, make_remote_env

    def run(env: Any) -> tuple[list[bool], list[int], float]:
        succ, lens = [], []
        t0 = time.perf_counter()
        for seed in range(episodes):
            obs, _ = env.reset(seed=seed)
            policy = env.unwrapped.task.expert(seed=seed)
            policy.reset()
            done, n, ok = False, 0, False
            while not done:
                obs, _, term, trunc, info = env.step(policy.act(obs))
                n, ok, done = n + 1, ok or bool(info["success"]), term or trunc
            succ.append(ok)
            lens.append(n)
        return succ, lens, time.perf_counter() - t0

    local = run(gym.make("realrl/FrankaLift-v0"))
    node = subprocess.Popen([sys.executable, "-m", "hardware.nodes.sim_node", "--env", "realrl/FrankaLift-v0"],
                            cwd=ROOT, env=env_vars, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        env = make_remote_env(RemoteEnvConfig("realrl/FrankaLift-v0"))
        remote = run(env)
        env.close()
    finally:
        node.send_signal(2)
        node.wait(10)
    return {"episodes": episodes, "in_process": local, "ros": remote}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--role", default="bench", choices=["bench", "peer"], help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=10.0, help="duration of each DDS measurement")
    p.add_argument("--hz", type=float, default=500.0, help="state/command loop rate")
    p.add_argument("--image-hz", type=float, default=30.0)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--lift-episodes", type=int, default=20, help="0 skips the FrankaLift comparison")
    p.add_argument("--domain", type=int, default=140 + os.getpid() % 60)
    p.add_argument("--rt-priority", type=int, default=0,
                   help="run both processes SCHED_FIFO at this priority (needs root or CAP_SYS_NICE); 0: normal")
    args = p.parse_args()
    if args.role == "peer":
        peer(args.seconds * 3 + 30, args.rt_priority)
        return
    env_vars = {**os.environ, "CYCLONEDDS_URI": os.environ.get("CYCLONEDDS_URI", loopback_config()),
                "ROS_DOMAIN_ID": str(args.domain), "REALRL_ROS_BACKEND": "cyclonedds", "PYTHONPATH": str(ROOT)}
    os.environ.update({k: env_vars[k] for k in ("CYCLONEDDS_URI", "ROS_DOMAIN_ID", "REALRL_ROS_BACKEND")})
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores); ROS_DOMAIN_ID={args.domain}, "
          f"loopback; {realtime(args.rt_priority)}")
    base = in_process_baseline(20000)
    proc = subprocess.Popen([sys.executable, __file__, "--role", "peer", "--seconds", str(args.seconds),
                             "--rt-priority", str(args.rt_priority)], cwd=ROOT,
                            env=env_vars, stdout=subprocess.PIPE, text=True)
    node = create_node("bench")
    ready: list[bool] = []
    node.create_subscription(String, "bench/ready", lambda m: ready.append(True), LATCHED)
    node.spin(until=lambda: bool(ready), timeout_s=30)
    rt = round_trip(node, args.seconds, args.hz)
    sent = images(node, args.seconds, args.image_hz, args.image_size)
    time.sleep(1.0)
    stop = node.create_publisher(String, "bench/stop", LATCHED)
    stop.publish(String("stop"))
    out, _ = proc.communicate(timeout=60)
    node.close()
    report = json.loads(out.strip().splitlines()[-1])
    ids = set(report["ids"])
    missing = sorted(set(range(sent)) - ids)
    lat = np.array(report["lat_ms"])
    print(f"\nstate out / command back, JointState (9 joints) at {args.hz:g} Hz for {args.seconds:g} s, "
          "two processes, reliable QoS:")
    print(f"  round trip p50 {rt['p50']:.3f} ms, p90 {rt['p90']:.3f} ms, p99 {rt['p99']:.3f} ms, max {rt['max']:.2f} "
          f"ms; no reply within 100 ms: {rt['lost']} of {rt['n']}; cycles over their 2 ms slot: {rt['overran']}"
          "  (target p99 <= 2 ms)")
    print(f"  in-process baseline: controller call p50 {base['call_p50'] * 1e3:.1f} us, p99 "
          f"{base['call_p99'] * 1e3:.1f} us; + CDR encode/decode of both messages p50 {base['cdr_p50'] * 1e3:.1f} "
          f"us, p99 {base['cdr_p99'] * 1e3:.1f} us")
    print(f"  ratio round trip / in-process call (p50): {rt['p50'] / base['call_p50']:.0f}x")
    print(f"\nimages {args.image_size}x{args.image_size} RGB (rgb8, {args.image_size ** 2 * 3 / 1e3:.0f} kB) at "
          f"{args.image_hz:g} Hz for {args.seconds:g} s, reliable keep-last 10:")
    print(f"  sent {sent}, received {report['frames']}, missing {len(missing)}; out-of-order "
          f"{sum(1 for a, b in zip(report['ids'], report['ids'][1:], strict=False) if b < a)}; latency p50 "
          f"{pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms  (target: zero loss)")
    if args.lift_episodes:
        r = lift(args.lift_episodes, args.domain, env_vars)
        (ls, ll, lt), (rs, rl, rtm) = r["in_process"], r["ros"]
        print(f"\nFrankaLift, scripted expert, {r['episodes']} episodes (seeds 0..{r['episodes'] - 1}):")
        print(f"  in-process: success {np.mean(ls):.0%}, mean length {np.mean(ll):.1f}, {lt:.1f} s (as fast as "
              "it runs)")
        print(f"  sim node + RobotEnv(RosRobot): success {np.mean(rs):.0%}, mean length {np.mean(rl):.1f}, "
              f"{rtm:.1f} s (real time, 20 Hz)")
        same = sum(a == b for a, b in zip(ll, rl, strict=True))
        print(f"  episodes of identical length: {same}/{len(ll)}; success per seed identical: {ls == rs}")


if __name__ == "__main__":
    main()
