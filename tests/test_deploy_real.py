"""`realrl deploy --task operator`, the real-robot path, against the Franka node with the sim node standing in for
franka_ros2 (its own reset service moved aside, as the real driver has none): the node homes the arm, the operator
starts episodes with Enter and labels them with y / n, and the labels land in the store."""

import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from data import EpisodeStore, validate
from tests.ros_util import ROOT, loopback_domain, spawn, stop, wait_for


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    yield from loopback_domain(monkeypatch)


def test_operator_labels_episodes_on_a_real_robot_stack(policy_run: Path, ros_domain: int,
                                                        tmp_path: Path) -> None:
    sim = spawn(["-m", "hardware.nodes.sim_node", "--env", "realrl/FrankaLift-v0", "--ros-args",
                 "-r", "servo_node/delta_twist_cmds:=/driver/unused", "-r", "realrl/reset:=/driver/unused_reset",
                 "-r", "realrl/reset_done:=/driver/unused_reset_done"], ros_domain, tmp_path / "sim.log")
    franka = spawn(["-m", "hardware.nodes.franka_node"], ros_domain, tmp_path / "franka.log")
    store_path, log = tmp_path / "real.zarr", tmp_path / "deploy.log"
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "robot.cli", "deploy", "--policy", str(policy_run), "--robot", "ros", "--task",
         "operator", "--episodes", "2", "--record", str(store_path), "--no-status", "--json-out",
         str(tmp_path / "s.json")], stdin=slave, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
        env=dict(os.environ))
    os.close(slave)
    try:
        for key, word in ((b"y", "success"), (b"n", "failure")):
            assert wait_for(lambda: "waiting" in log.read_text() or proc.poll() is not None, 60), log.read_text()
            time.sleep(0.5)
            os.write(master, b"\r")  # the operator has reset the scene: start
            time.sleep(1.5)  # the policy runs for a while (an operator task never ends by itself)
            os.write(master, key)
            assert wait_for(lambda w=word: f": {w} after" in log.read_text(), 30), log.read_text()
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
        assert stop(franka) == 0, (tmp_path / "franka.log").read_text()
        stop(sim)
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["episodes"] == 2 and s["successes"] == 1 and not s["faults"]
    assert validate(store_path) == []
    store = EpisodeStore.open(store_path)
    metas = [store.episode_meta(i) for i in range(len(store))]
    assert [m["success"] for m in metas] == [True, False]
    assert all(m["meta"]["labelled_by"] == "operator" for m in metas)
    assert all(store.episode_slice(i).stop - store.episode_slice(i).start > 10 for i in range(2))
    assert "homed" in (tmp_path / "franka.log").read_text()
