"""Latency compensation in the deploy loop: success of one policy deployed in-process in real time, without and with
injected observation latency, with the latency-aware executor and with the naive one (chunks played from their first
action). The no-latency run is the baseline measured in the same run."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from robot.sessions.deploy import DeployConfig, Deployment  # noqa: E402
from robot.sessions.evaluate import wilson_interval  # noqa: E402
from robot.sessions.executor import ExecutorConfig  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--policy", type=Path, required=True, help="run directory or checkpoint (a base, head or residual)")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--latency-ms", type=float, default=30.0, help="injected observation latency")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--inline", action="store_true", help="plan inline instead of in the background")
    p.add_argument("--json-out", type=Path)
    args = p.parse_args()
    lat = args.latency_ms / 1e3
    runs = [("no latency, latency-aware", 0.0, True), (f"{args.latency_ms:g} ms, latency-aware", lat, True),
            (f"{args.latency_ms:g} ms, naive", lat, False), ("no latency, naive", 0.0, False)]
    print(f"policy {args.policy}, {args.episodes} episodes per row (seeds {args.seed}..), real time in-process, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'executor':<28} {'success':>8} {'95% CI':>10} {'vs baseline':>11} {'mean len':>8} {'plan p50':>9} "
          f"{'skipped':>8} {'starved':>8} {'overruns':>8}")
    rows = []
    base_rate = None
    for label, obs_lat, aware in runs:
        cfg = DeployConfig(policy=args.policy, robot="sim", episodes=args.episodes, seed=args.seed, keys="off",
                           status=False, obs_latency_s=obs_lat,
                           executor=ExecutorConfig(latency_aware=aware, background=not args.inline))
        s = Deployment(cfg).run()
        lo, hi = wilson_interval(s["successes"], s["kept"])
        base_rate = s["success_rate"] if base_rate is None else base_rate
        delta = (s["success_rate"] - base_rate) * 100
        print(f"{label:<28} {s['success_rate']:>8.0%} {lo:>4.0%}-{hi:<4.0%} {delta:>+9.0f} pt {s['mean_length']:>8.1f} "
              f"{s['plan_ms_p50']:>7.1f}ms {s['skipped_actions']:>8d} {s['starved_steps']:>8d} {s['overruns']:>8d}",
              flush=True)
        rows.append({"executor": label, **s})
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
