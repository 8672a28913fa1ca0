"""End-to-end CLI runs as a user types them (subprocesses, tiny budgets)."""

import subprocess
import sys
from pathlib import Path


def realrl(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robot.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_no_args_prints_usage() -> None:
    r = realrl()
    assert r.returncode == 2 and "usage: realrl" in r.stdout and "sim run" in r.stdout


def test_envs_lists_ids_with_rate() -> None:
    r = realrl("envs", "--no-third-party")
    assert r.returncode == 0, r.stderr
    assert "realrl/FrankaPickPlace-v0" in r.stdout and " 20 " in r.stdout


def test_sim_run_expert_prints_success_and_writes_video(tmp_path: Path) -> None:
    video = tmp_path / "run.mp4"
    r = realrl("sim", "run", "--env", "realrl/FrankaLift-v0", "--episodes", "2", "--noise", "0.05",
               "--render-video", str(video), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "realrl/FrankaLift-v0" in r.stdout and "100%" in r.stdout
    import av

    with av.open(str(video)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    assert frames > 10


def test_unknown_env_is_one_clear_line_not_a_traceback() -> None:
    r = realrl("sim", "run", "--env", "realrl/Nope-v0", "--episodes", "1")
    assert r.returncode == 2
    assert "unknown env id 'realrl/Nope-v0'" in r.stderr and "realrl/FrankaLift-v0" in r.stderr
    assert "Traceback" not in r.stderr


def test_malformed_flags_print_usage_not_traceback() -> None:
    for args in (["sim", "run", "--episodes", "abc"], ["sim", "run", "--bogus"], ["nonsense"],
                 ["sim", "run", "--episodes", "0"]):
        r = realrl(*args)
        assert r.returncode == 2, args
        assert "Traceback" not in r.stderr + r.stdout, args
        out = (r.stderr + r.stdout).lower()
        assert "usage" in out or "--help" in out or "error" in out, args


def test_demo_runs_the_whole_pipeline_and_reuses_finished_stages(tmp_path: Path) -> None:
    args = ("demo", "--preset", "smoke", "--out", str(tmp_path / "demo"), "--expert-episodes", "1", "--episodes", "2",
            "--no-progress")
    r = realrl(*args, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("FrankaLift", "FrankaPickPlace", "FrankaStack"):
        assert f"realrl/{name}-v0" in r.stdout  # the expert check covers every task
    for stage in ("1/4 demos", "2/4 base policy", "3/4 one-step head", "4/4 residual RL", "final evaluation"):
        assert stage in r.stdout
    table = r.stdout.split("final evaluation")[1]
    for row in ("base (diffusion, DDIM)", "one-step head (MIP)", "head + residual"):
        assert row in table
    for f in ("demos.zarr", "base/policy", "head/policy", "residual/policy/residual", "summary.json"):
        assert (tmp_path / "demo" / f).exists(), f
    again = realrl(*args[:-3], "--no-experts", "--episodes", "1", "--no-progress", timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("reusing") == 4
