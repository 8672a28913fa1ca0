"""Tiny-budget end to end on a G1 task through the CLI: demos, BC base, one-step head, residual RL, eval."""

import json
import os
import subprocess
import sys
from pathlib import Path

from data import EpisodeStore
from policies.io import load_policy

REALRL = [sys.executable, "-c", "import sys; from robot.cli import main; sys.exit(main())"]
ENV = "realrl/G1BoxPickup-v0"


def realrl(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*REALRL, *args], capture_output=True, text=True, timeout=300, env=env)


def test_base_head_and_residual_run_unchanged_on_the_bimanual_humanoid(tmp_path: Path) -> None:
    demos = tmp_path / "demos.zarr"
    r = realrl("data", "collect", "--env", ENV, "--source", "expert", "--episodes", "2", "--noise", "0.1",
               "--out", str(demos), "--no-progress")
    assert r.returncode == 0, r.stderr
    store = EpisodeStore.open(demos)
    assert len(store) == 2 and store.episode(0)["action"].shape[1] == 14
    assert {"state/box_rel_left", "state/box_rel_right", "state/hand"} <= set(store.keys)

    r = realrl("train", "base", "--store", str(demos), "--out", str(tmp_path / "base"), "--policy", "bc",
               "--steps", "20", "--batch-size", "16", "--down-dims", "16", "32", "--eval-episodes", "1",
               "--threads", "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    base = load_policy(tmp_path / "base" / "policy")
    assert base.action_dim == 14 and "state/joint_pos" in base.obs_cfg.state_keys  # sizes come from the spec

    r = realrl("train", "head", "--teacher", str(tmp_path / "base"), "--kind", "mip", "--out", str(tmp_path / "head"),
               "--steps", "3", "--batch-size", "8", "--eval-episodes", "1", "--mlp-hidden", "32", "--no-progress")
    assert r.returncode == 0, r.stderr

    r = realrl("train", "residual", "--base", str(tmp_path / "head"), "--out", str(tmp_path / "res"), "--steps", "240",
               "--num-envs", "2", "--warmup-steps", "60", "--critic-warmup-steps", "60", "--hidden", "32", "32",
               "--n-heads", "3", "--batch-size", "16", "--eval-every", "0", "--eval-episodes", "1",
               "--checkpoint-every", "240", "--log-every", "120", "--no-progress")
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [json.loads(x) for x in (tmp_path / "res" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["env_steps"] == 240

    r = realrl("eval", "--policy", str(tmp_path / "res"), "--episodes", "1", "--json-out", str(tmp_path / "e.json"),
               "--no-progress")
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads((tmp_path / "e.json").read_text())
    assert 0.0 <= res["success"] <= 1.0 and res["act_ms_mean"] > 0
