"""Shared fixtures: offscreen rendering, the list of realrl sim ids, the CLI runner, scripted-expert demos and a tiny
trained policy."""

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest

import sim  # noqa: F401 - registers realrl/* ids

REALRL_IDS = ["realrl/FrankaLift-v0", "realrl/FrankaPickPlace-v0", "realrl/FrankaStack-v0"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=REALRL_IDS)
def env_id(request: pytest.FixtureRequest) -> str:
    return request.param


def realrl(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m robot.cli <args>` from the repository root."""
    return subprocess.run([sys.executable, "-m", "robot.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def record_expert_demos(env_id: str, path: Path, episodes: int, seed: int = 0) -> Path:
    """`episodes` clean scripted-expert episodes of `env_id` in a new episode store at `path` (every one succeeds)."""
    from robot.sessions.envs import make_env
    from robot.sessions.rollouts import record_rollouts

    env = make_env(env_id)
    expert = env.unwrapped.task.expert()  # type: ignore[attr-defined]
    env.close()
    record_rollouts(expert, env_id, path, episodes, seed=seed)
    return path


@pytest.fixture(scope="session")
def policy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deterministic BC policy for FrankaLift on 20 noisy expert demos, 300 steps of a small U-Net (about a minute
    on 2 cores): trained once per test session, shared by the deploy and evaluation tests."""
    d = tmp_path_factory.mktemp("tiny_policy")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = realrl("data", "collect", "--env", "realrl/FrankaLift-v0", "--episodes", "20", "--noise", "0.1", "--out",
               str(d / "demos.zarr"), "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    r = realrl("train", "base", "--store", str(d / "demos.zarr"), "--out", str(d / "bc"), "--policy", "bc",
               "--steps", "300", "--batch-size", "64", "--down-dims", "16", "32", "64", "--eval-every", "0",
               "--eval-episodes", "1", "--threads", "1", "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    return d / "bc"
