"""`realrl collect --device keyboard` in a pseudo-terminal: keys typed, an episode recorded, the terminal restored."""

import os
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np

from data import EpisodeStore, validate
from tests.teleop_util import ROOT


def test_keyboard_collect_session_in_a_pty(tmp_path: Path) -> None:
    out = tmp_path / "kb.zarr"
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    log = tmp_path / "collect.log"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = subprocess.Popen([sys.executable, "-m", "robot.cli", "collect", "--env", "realrl/FrankaLift-v0",
                             "--device", "keyboard", "--out", str(out), "--episodes", "1", "--operator", "pty"],
                            cwd=ROOT, env=env, stdin=slave, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 90
        while "start to record" not in log.read_text() and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.1)
        assert proc.poll() is None, log.read_text()
        assert not termios.tcgetattr(slave)[3] & termios.ICANON  # the session put its terminal in cbreak mode
        os.write(master, b"\r")
        time.sleep(0.3)
        os.write(master, b"g")  # close the gripper
        t_end = time.monotonic() + 1.0
        while time.monotonic() < t_end:  # hold f (-z) with a 30 Hz autorepeat
            os.write(master, b"f")
            time.sleep(0.033)
        time.sleep(0.3)
        os.write(master, b"n")  # FAILURE: label, end, save; --episodes 1 ends the session
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert proc.returncode == 0, text
    assert "keyboard keys:" in text and "E-STOP space" in text  # the key map is shown to the operator
    assert termios.tcgetattr(slave) == before  # restored on the way out
    os.close(master)
    os.close(slave)
    assert validate(out) == []
    with EpisodeStore.open(out) as store:
        m = store.episode_meta(0)
        assert not m["success"] and m["meta"]["label_by"] == "operator" and m["operator"] == "pty"
        ep = store.episode(0, ["action", "state/ee_pose"])
    a = ep["action"]
    assert (a[:, 2] < 0).sum() >= 15  # -z while f was held
    assert a[-1, 6] == 1.0 and a[0, 6] == -1.0  # gripper opened at start, closed by g
    np.testing.assert_allclose(a[a[:, 2] < 0][:, 2], -0.4, atol=1e-6)  # the keyboard's default speed
    assert ep["state/ee_pose"][-1, 2] < ep["state/ee_pose"][0, 2] - 0.05
