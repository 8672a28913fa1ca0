"""Deploy loop over ROS 2 against a sim node process: loop rate, overruns and end-to-end action latency (observation
arrival to its command on the topic) at 10, 50 and 100 Hz for the base alone (DDIM-10), the one-step head and head +
residual; the baseline, measured in the same run, is the policy stack's own compute time per step."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hardware.ros import create_node, loopback_config  # noqa: E402
from hardware.ros.convert import from_stamp  # noqa: E402
from hardware.ros.msgs import JointState, TwistStamped  # noqa: E402
from hardware.topics import ArmTopics  # noqa: E402

STACKS = {"base": "base", "head": "head", "head+residual": "residual"}
"""Label -> run subdirectory of a `realrl demo` run."""


class Wire:
    """Arrival times of joint states (by stamp) and of commands (with the stamp of the state they answer)."""

    def __init__(self) -> None:
        self.node = create_node("deploy_bench_wire")
        self.lock = threading.Lock()
        self.state_rx: dict[int, float] = {}
        self.cmd: list[tuple[int, float]] = []
        t = ArmTopics()
        self.node.create_subscription(JointState, t.joint_states, self._on_state)
        self.node.create_subscription(TwistStamped, t.twist_command, self._on_cmd)
        self.node.spin_in_thread()

    @staticmethod
    def _key(msg: Any) -> int:
        return round(from_stamp(msg.header.stamp) * 1e6)

    def _on_state(self, msg: JointState) -> None:
        with self.lock:
            self.state_rx[self._key(msg)] = time.monotonic()

    def _on_cmd(self, msg: TwistStamped) -> None:
        with self.lock:
            self.cmd.append((self._key(msg), time.monotonic()))

    def latencies_ms(self) -> np.ndarray:
        """Per command: its arrival minus the arrival of the state it was computed from."""
        with self.lock:
            out = [(rx - self.state_rx[k]) * 1e3 for k, rx in self.cmd if k in self.state_rx]
            self.cmd.clear()
            self.state_rx.clear()
        return np.asarray(out)

    def close(self) -> None:
        self.node.close()


def ensure_run(run: Path) -> None:
    """A `realrl demo` run with base, head and residual; the smoke preset when none is given (timings depend on
    network sizes, which are the defaults in every preset, not on how well they were trained)."""
    if all((run / sub / "policy").exists() for sub in STACKS.values()):
        return
    print(f"making {run} with `realrl demo --preset smoke` (untrained networks of the default sizes) ...", flush=True)
    subprocess.run([sys.executable, "-m", "robot.cli", "demo", "--preset", "smoke", "--out", str(run), "--no-experts",
                    "--episodes", "1", "--threads", "1", "--no-progress"], check=True, cwd=ROOT)


def measure(run: Path, label: str, hz: float, seconds: float, env: dict[str, str], wire: Wire,
            workdir: Path) -> dict[str, Any]:
    """One sim node at `hz` and one deploy session of about `seconds`."""
    sim = subprocess.Popen([sys.executable, "-m", "hardware.nodes.sim_node", "--env", "realrl/FrankaLift-v0",
                            "--control-hz", str(hz)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        # FrankaLift episodes run at most 100 steps (a trained policy ends them sooner): enough to fill the time.
        episodes = max(3, int(np.ceil(seconds * hz / 100)))
        out = workdir / f"{label}_{hz:g}.json"
        wire.latencies_ms()
        r = subprocess.run([sys.executable, "-m", "robot.cli", "deploy", "--policy", str(run / STACKS[label]),
                            "--robot", "ros", "--control-hz", str(hz), "--episodes", str(episodes), "--keys", "off",
                            "--no-status", "--json-out", str(out)], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
        if r.returncode:
            raise RuntimeError(f"deploy failed: {r.stderr[-2000:]}")
        s = json.loads(out.read_text())
        lat = wire.latencies_ms()
    finally:
        sim.send_signal(2)
        sim.wait(20)
    s["e2e_ms_p50"] = float(np.percentile(lat, 50)) if lat.size else float("nan")
    s["e2e_ms_p99"] = float(np.percentile(lat, 99)) if lat.size else float("nan")
    s["commands"] = int(lat.size)
    return s


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--run", type=Path, default=ROOT / "runs" / "deploy_bench",
                   help="a `realrl demo` run directory (base/, head/, residual/); made with the smoke preset if absent")
    p.add_argument("--rates", type=float, nargs="+", default=[10.0, 50.0, 100.0])
    p.add_argument("--stacks", nargs="+", default=list(STACKS), choices=list(STACKS))
    p.add_argument("--seconds", type=float, default=10.0, help="deploy time per (stack, rate)")
    p.add_argument("--domain-id", type=int, default=61)
    args = p.parse_args()
    env = {**os.environ, "CYCLONEDDS_URI": loopback_config(), "ROS_DOMAIN_ID": str(args.domain_id),
           "REALRL_ROS_BACKEND": "cyclonedds", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    os.environ.update({k: env[k] for k in ("CYCLONEDDS_URI", "ROS_DOMAIN_ID", "REALRL_ROS_BACKEND")})
    ensure_run(args.run)
    workdir = args.run / "deploy_bench"
    workdir.mkdir(parents=True, exist_ok=True)
    wire = Wire()
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    hdr = (f"{'stack':<14} {'hz':>5} {'loop hz':>8} {'overruns':>9} {'steps':>6} {'policy p50/p99 ms':>18} "
           f"{'obs->cmd p50/p99 ms':>20} {'p50 - policy':>12} {'p99/period':>10} {'plan p50':>9} {'skipped':>8} "
           f"{'starved':>8}")
    print(hdr)
    rows = []
    try:
        for label in args.stacks:
            for hz in args.rates:
                s = measure(args.run, label, hz, args.seconds, env, wire, workdir)
                rows.append({"stack": label, "hz": hz, **s})
                # The baseline of this run: the stack's own compute per step; what the loop and DDS add is the rest.
                overhead = s["e2e_ms_p50"] - s["policy_ms_p50"]
                budget = s["e2e_ms_p99"] / (1e3 / hz)
                print(f"{label:<14} {hz:>5g} {s['loop_hz']:>8.1f} {s['overruns']:>9d} {s['steps']:>6d} "
                      f"{s['policy_ms_p50']:>8.2f} / {s['policy_ms_p99']:>6.2f} {s['e2e_ms_p50']:>9.2f} / "
                      f"{s['e2e_ms_p99']:>7.2f} {overhead:>9.2f} ms {budget:>9.2f}x {s['plan_ms_p50']:>8.1f} "
                      f"{s['skipped_actions']:>8d} {s['starved_steps']:>8d}", flush=True)
    finally:
        wire.close()
    (workdir / "results.json").write_text(json.dumps(rows, indent=1))
    print(f"load average at end: {os.getloadavg()[0]:.1f}; rows in {workdir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
