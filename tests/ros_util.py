"""Helpers for the ROS tests: a fresh ROS_DOMAIN_ID per test on loopback, and child-process nodes."""

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
_ids = itertools.count()


def fresh_domain() -> int:
    """A domain id no other test of this run (or a concurrent run, most likely) uses."""
    return 20 + (os.getpid() * 7 + next(_ids)) % 200


def loopback_domain(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Body of each test module's `ros_domain` fixture: loopback Cyclone config (no multicast here) and a
    distinct ROS_DOMAIN_ID for the test."""
    from hardware.ros import loopback_config

    dom = fresh_domain()
    monkeypatch.setenv("CYCLONEDDS_URI", loopback_config())
    monkeypatch.setenv("ROS_DOMAIN_ID", str(dom))
    monkeypatch.setenv("REALRL_ROS_BACKEND", "cyclonedds")
    yield dom


def spawn(args: list[str], domain: int, log: Path) -> subprocess.Popen[bytes]:
    """Start `python <args>` in the test's domain, output to `log`."""
    from hardware.ros import loopback_config

    env = {**os.environ, "CYCLONEDDS_URI": loopback_config(), "ROS_DOMAIN_ID": str(domain),
           "REALRL_ROS_BACKEND": "cyclonedds", "PYTHONUNBUFFERED": "1", "MUJOCO_GL": "egl"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGINT (as Ctrl-C), then kill if it does not exit in time; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(2)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout)


def wait_for(cond: Callable[[], bool], timeout: float, spin: Callable[[], None] | None = None) -> bool:
    """Poll cond (spinning between polls) until true or timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        if spin is not None:
            spin()
        else:
            time.sleep(0.01)
    return cond()


def expert_succeeds(env: Any, seed: int, max_steps: int = 60) -> bool:
    """Run the task's scripted expert for one seeded episode; whether it succeeded."""
    obs, _ = env.reset(seed=seed)
    policy = env.unwrapped.task.expert(seed=seed)
    policy.reset()
    for _ in range(max_steps):
        obs, _, terminated, _, info = env.step(policy.act(obs))
        if info["success"]:
            return True
        if terminated:
            break
    return False
