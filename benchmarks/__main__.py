"""Run every benchmark in one command: `python -m benchmarks [--quick]` (each prints its own ratios)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE: list[tuple[str, list[str], list[str]]] = [
    # (script, full arguments, quick arguments)
    ("env_overhead.py", [], ["--steps", "100", "--repeats", "2", "--frames", "10"]),
    ("data_io.py", ["--seconds", "120"], ["--seconds", "10", "--reads", "50", "--batches", "2"]),
    ("policy_latency.py", ["--calls", "200"], ["--calls", "30"]),
    ("ros_loop.py", ["--seconds", "10", "--lift-episodes", "20"], ["--seconds", "2", "--lift-episodes", "2"]),
    ("teleop_loop.py", ["--seconds", "20"], ["--seconds", "2", "--rates", "50"]),
]


def main() -> int:
    """Run the suite; a failing benchmark is reported and the rest still run."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="small budgets (a smoke run, not numbers to report)")
    p.add_argument("--only", nargs="*", help="script names to run (default: all)")
    args = p.parse_args()
    failed = []
    for script, full, quick in SUITE:
        if args.only and script not in args.only:
            continue
        print(f"\n=== {script} ===", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(HERE / script), *(quick if args.quick else full)])
        print(f"=== {script}: exit {rc}, {time.perf_counter() - t0:.0f} s ===", flush=True)
        if rc:
            failed.append(script)
    if failed:
        print(f"failed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
