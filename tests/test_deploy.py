"""`realrl deploy`: a policy trained on a tiny budget runs in-process and against the sim node in another process over
DDS with the same success; the e-stop key stops every command within one control period; NaN and saturated
policies never put an unsafe command on the wire; every episode is recorded."""

import json
import os
import pty
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from data import EpisodeStore, validate
from tests.conftest import realrl
from tests.ros_util import ROOT, loopback_domain, spawn, stop, wait_for

ENV = "realrl/FrankaLift-v0"
DT = 0.05
SIM = ["-m", "hardware.nodes.sim_node", "--env", ENV]


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    yield from loopback_domain(monkeypatch)


def test_deploy_in_process_records_every_episode_with_its_label(policy_run: Path, tmp_path: Path) -> None:
    store_path = tmp_path / "deploy.zarr"
    r = realrl("deploy", "--policy", str(policy_run), "--robot", "sim", "--episodes", "3", "--record", str(store_path),
               "--keys", "off", "--json-out", str(tmp_path / "s.json"))
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["episodes"] == 3 and s["robot"] == "sim"
    assert 15.0 < s["loop_hz"] < 25.0  # paced at the robot's 20 Hz, not as fast as the CPU goes
    assert validate(store_path) == []
    store = EpisodeStore.open(store_path)
    assert len(store) == 3 and store.env_id == ENV
    metas = [store.episode_meta(i) for i in range(3)]
    assert sum(m["success"] for m in metas) == s["successes"]
    assert [m["meta"]["seed"] for m in metas] == [1000, 1001, 1002]
    assert all(m["source"] == "policy" and m["meta"]["labelled_by"] == "task" for m in metas)
    assert "successful" in r.stdout


def test_deploy_over_ros_matches_the_in_process_success(policy_run: Path, ros_domain: int, tmp_path: Path) -> None:
    from policies.io import load_policy
    from robot.sessions.evaluate import evaluate_policy

    episodes = 20
    local = evaluate_policy(load_policy(policy_run / "policy"), ENV, episodes, seed=1000)
    node = spawn(SIM, ros_domain, tmp_path / "sim.log")
    try:
        # Inline planning: the in-process evaluation plans inline too, so both see the same actions.
        r = realrl("deploy", "--policy", str(policy_run), "--robot", "ros", "--episodes", str(episodes), "--keys",
                   "off", "--executor.no-background", "--json-out", str(tmp_path / "s.json"), env=dict(os.environ))
        assert r.returncode == 0, r.stderr + (tmp_path / "sim.log").read_text()
    finally:
        stop(node)
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["episodes"] == episodes and not s["faults"]
    assert abs(s["successes"] - local.successes) <= 1, (s["successes"], local.successes)  # 5 points of 20
    assert abs(s["mean_length"] - local.mean_length) <= 3.0, (s["mean_length"], local.mean_length)


class TwistLog:
    """Every TwistStamped the robot node receives, with its arrival time (monotonic)."""

    def __init__(self) -> None:
        from hardware.ros import create_node
        from hardware.ros.msgs import TwistStamped
        from hardware.topics import ArmTopics

        self.node = create_node("twist_log")
        self.times: list[float] = []
        self.values: list[np.ndarray] = []
        self.lock = threading.Lock()
        self.node.create_subscription(TwistStamped, ArmTopics().twist_command, self._on)
        self.node.spin_in_thread()

    def _on(self, msg: object) -> None:
        t = msg.twist  # type: ignore[attr-defined]
        with self.lock:
            self.times.append(time.monotonic())
            self.values.append(np.array([t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z]))

    def count(self) -> int:
        with self.lock:
            return len(self.times)

    def close(self) -> None:
        self.node.close()


def test_estop_key_stops_every_command_within_one_control_period(policy_run: Path, ros_domain: int,
                                                                  tmp_path: Path) -> None:
    node = spawn(SIM, ros_domain, tmp_path / "sim.log")
    log = TwistLog()
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "robot.cli", "deploy", "--policy", str(policy_run), "--robot", "ros", "--episodes", "5",
         "--keys", "on", "--json-out", str(tmp_path / "s.json")],
        stdin=slave, stdout=(tmp_path / "deploy.log").open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
        env=dict(os.environ))
    os.close(slave)
    try:
        time.sleep(2.0)
        assert log.count() == 0  # keys on: nothing moves before the operator presses Enter
        os.write(master, b"\r")
        assert wait_for(lambda: log.count() >= 10, 60), (tmp_path / "deploy.log").read_text()
        t_key = time.monotonic()
        os.write(master, b" ")
        time.sleep(1.0)
        with log.lock:
            after = [t - t_key for t in log.times if t > t_key]
        assert not after or max(after) <= DT, after  # at most the command already on its way
        n_stopped = log.count()
        time.sleep(0.5)
        assert log.count() == n_stopped  # and nothing while e-stopped
        os.write(master, b"\r")  # re-arm
        assert wait_for(lambda: log.count() >= n_stopped + 5, 20)
    finally:
        proc.send_signal(2)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        os.close(master)
        log.close()
        stop(node)
    text = (tmp_path / "deploy.log").read_text()
    assert "E-STOP" in text and "re-armed" in text


def _tampered(policy_run: Path, out: Path, how: str) -> Path:
    """A copy of the policy checkpoint whose action un-normalization is NaN ("nan") or pushes every action far past
    its bounds ("saturate")."""
    import shutil

    shutil.copytree(policy_run / "policy", out)
    tensors = load_file(str(out / "model.safetensors"))
    key = "normalizer.action__offset"
    tensors[key] = np.full_like(tensors[key], np.nan if how == "nan" else 1e3)
    save_file(tensors, str(out / "model.safetensors"))
    return out


def test_nan_and_saturated_policies_never_reach_the_robot_node(policy_run: Path, ros_domain: int,
                                                               tmp_path: Path) -> None:
    node = spawn(SIM, ros_domain, tmp_path / "sim.log")
    log = TwistLog()
    try:
        nan = _tampered(policy_run, tmp_path / "nan", "nan")
        r = realrl("deploy", "--policy", str(nan), "--robot", "ros", "--episodes", "2", "--keys", "off",
                   "--json-out", str(tmp_path / "nan.json"), env=dict(os.environ))
        assert r.returncode == 0, r.stderr
        s = json.loads((tmp_path / "nan.json").read_text())
        assert len(s["faults"]) == 2 and all("non-finite" in f for f in s["faults"]), s["faults"]
        assert s["successes"] == 0
        n_nan = log.count()
        sat = _tampered(policy_run, tmp_path / "sat", "saturate")
        r = realrl("deploy", "--policy", str(sat), "--robot", "ros", "--episodes", "1", "--keys", "off",
                   "--json-out", str(tmp_path / "sat.json"), env=dict(os.environ))
        assert r.returncode == 0, r.stderr
        assert wait_for(lambda: log.count() > n_nan + 20, 10)
    finally:
        log.close()
        stop(node)
    values = np.stack(log.values)
    assert np.all(np.isfinite(values))
    # the robot's bounds: 3 cm and 0.2 rad per 50 ms period
    assert np.abs(values[:, :3]).max() <= 0.03 / DT + 1e-9 and np.abs(values[:, 3:]).max() <= 0.2 / DT + 1e-9
    assert np.abs(values[n_nan:, :3]).max() > 0.5 * 0.03 / DT  # the saturated policy did push to the bound
    assert np.all(np.abs(values[:n_nan]) == 0.0)  # while NaN: only the hold (zero twist) was sent
