"""SIGKILL the collect session in the middle of an episode: every saved episode is intact and the store opens."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from data import EpisodeStore, validate
from hardware.teleop.replay import ReplayStep, save_stream, stream_from_actions
from robot.core.errors import StoreError
from robot.core.types import TeleopEvent
from tests.teleop_util import ENV, ROOT, expert_actions, replay_success


def committed(out: Path) -> int:
    try:
        with EpisodeStore.open(out, "r") as s:
            return len(s)
    except StoreError:
        return -1


def test_sigkill_mid_episode_keeps_every_saved_episode(tmp_path: Path) -> None:
    episodes = [expert_actions(seed)[0] for seed in (0, 1)]
    steps: list[ReplayStep] = []
    for a in episodes:
        steps += stream_from_actions(a)
    slow = np.array([0, 0, 0.05, 0, 0, 0, -1], np.float32)
    steps += [ReplayStep(slow, frozenset({TeleopEvent.START}))] + [ReplayStep(slow)] * 5000  # never finishes
    stream = save_stream(tmp_path / "s.jsonl", steps)
    out = tmp_path / "demos.zarr"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = subprocess.Popen([sys.executable, "-m", "robot.cli", "collect", "--env", ENV, "--device", "replay",
                             "--replay.path", str(stream), "--out", str(out), "--hz", "50"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 120
        while committed(out) < 2 and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.1)
        assert committed(out) == 2, proc.stdout.read().decode() if proc.poll() is not None else "timeout"
        time.sleep(1.5)  # the third episode is open with ~75 steps handed to the writer
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        output = proc.stdout.read().decode()
        assert "episode 2 started" in output
    finally:
        if proc.poll() is None:
            proc.kill()
    # The recorder's writer process outlives its parent for a moment: it commits what was ended and lets go.
    store = None
    end = time.monotonic() + 60
    while store is None:
        try:
            store = EpisodeStore.open(out, "a")
        except StoreError:
            assert time.monotonic() < end, "the store stayed locked after the kill"
            time.sleep(0.2)
    with store:
        assert len(store) == 2
        for i, expected in enumerate(episodes):
            np.testing.assert_array_equal(store.episode(i, ["action"])["action"], expected)
    assert validate(out) == []
    with EpisodeStore.open(out) as s:
        for i in range(2):
            m = s.episode_meta(i)
            assert m["success"] and replay_success(ENV, m["meta"]["seed"], s.episode(i, ["action"])["action"])
