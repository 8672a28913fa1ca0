"""`realrl up <session>`: start a session's nodes as supervised processes where ROS 2 (and `ros2 launch`) is absent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import tyro

from robot.core.errors import ConfigError


@dataclass(frozen=True)
class UpConfig:
    """Start a session's nodes (see `--list`), supervise them, stop them all on Ctrl-C."""

    session: tyro.conf.Positional[str] = "sim-lift"
    """Session name."""
    domain_id: int | None = None
    """ROS_DOMAIN_ID for every node (default: inherited, else 0)."""
    loopback: bool = False
    """Configure Cyclone DDS for this host only (interface lo, no multicast): for machines without a network."""
    list: bool = False
    """List the sessions and exit."""
    stop_timeout_s: float = 10.0
    """How long nodes get to exit after Ctrl-C before they are killed."""

    def __post_init__(self) -> None:
        if self.domain_id is not None and not 0 <= self.domain_id <= 232:
            raise ConfigError(f"--domain-id must be in 0-232, got {self.domain_id}")


def _describe(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def run(cfg: UpConfig) -> int:
    """Run the session until Ctrl-C (exit 0 when every node stopped cleanly) or until a node without respawn
    exits (reported, the rest stopped, exit 1)."""
    from hardware.ros.loopback import apply_dds_options
    from hardware.sessions import SESSIONS, get_session

    if cfg.list:
        for known in SESSIONS.values():
            print(f"{known.name:<20} {known.description}")
        return 0
    session = get_session(cfg.session)
    env = dict(apply_dds_options(dict(os.environ), loopback=cfg.loopback, domain_id=cfg.domain_id))
    env.setdefault("PYTHONUNBUFFERED", "1")
    stopping = False

    def on_signal(signum: int, _: Any) -> None:
        nonlocal stopping
        stopping = True

    old = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    failed: list[str] = []
    try:
        for node in session.nodes:
            procs[node.name] = subprocess.Popen(node.command(sys.executable), env=env)
            print(f"[up] started {node.name} (pid {procs[node.name].pid}): {' '.join(node.command('python'))}",
                  flush=True)
        by_name = {n.name: n for n in session.nodes}
        while not stopping:
            time.sleep(0.1)
            for name, proc in list(procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                if by_name[name].respawn:
                    print(f"[up] node {name} exited ({_describe(code)}); respawning", file=sys.stderr, flush=True)
                    procs[name] = subprocess.Popen(by_name[name].command(sys.executable), env=env)
                    continue
                print(f"[up] node {name} died ({_describe(code)}); stopping the session. Robot clients hold "
                      "on their watchdog; see the node's log above.", file=sys.stderr, flush=True)
                failed.append(name)
                stopping = True
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        end = time.monotonic() + cfg.stop_timeout_s
        for name, proc in procs.items():
            try:
                code = proc.wait(max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
                print(f"[up] node {name} did not stop in {cfg.stop_timeout_s:g} s; killed", file=sys.stderr)
                failed.append(name)
                continue
            if code not in (0, -signal.SIGINT) and name not in failed:
                print(f"[up] node {name} stopped with {_describe(code)}", file=sys.stderr)
                failed.append(name)
        for signum, handler in old.items():
            signal.signal(signum, handler)
    print(f"[up] session {session.name} stopped" + (f"; failed: {failed}" if failed else " cleanly"), flush=True)
    return 1 if failed else 0
