"""Appends deterministic episodes to a store until told count or killed; the crash tests run it as a subprocess.

Usage: python store_writer_proc.py STORE TOTAL_EPISODES STALL_SECONDS
Prints "ready N" once open (N episodes already there), then "committed N" after each append. With
STALL_SECONDS > 0 it sleeps after every array write inside an append, so a SIGKILL lands mid-episode.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from data.store import EpisodeStore


def expected_episode(k: int) -> dict[str, np.ndarray]:
    """Episode k's content: a pure function of k, so a test can check what survived a kill byte for byte."""
    rng = np.random.default_rng(1000 + k)
    t = 3 + k % 4
    return {
        "state/joint_pos": rng.standard_normal((t, 7)).astype(np.float32),
        "state/gripper": rng.uniform(0, 1, (t, 1)).astype(np.float32),
        "action": rng.uniform(-1, 1, (t, 4)).astype(np.float32),
        "reward": rng.standard_normal(t).astype(np.float32),
        "image/front": rng.integers(0, 256, (t, 24, 32, 3), dtype=np.uint8),
        "image/wrist": rng.integers(0, 256, (t, 16, 16, 3), dtype=np.uint8),
        "time/obs": 1.7e9 + 10.0 * k + 0.05 * np.arange(t) + 1e-7,
    }


def expected_meta(k: int) -> dict[str, Any]:
    """Keyword arguments of append_episode for episode k."""
    return {"task": f"task{k % 3}", "success": k % 2 == 0, "source": "expert", "meta": {"k": k}}


def main(argv: list[str]) -> int:
    path, total, stall = argv[1], int(argv[2]), float(argv[3])
    store = EpisodeStore.open(path, "a")
    if stall > 0:
        store._after_write = lambda key: time.sleep(stall)
    print(f"ready {len(store)}", flush=True)
    while len(store) < total:
        k = len(store)
        store.append_episode(expected_episode(k), **expected_meta(k))
        print(f"committed {len(store)}", flush=True)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
