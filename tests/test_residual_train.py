"""Residual RL training loop: demo relabelling, exact resume, a SIGKILLed run resuming its buffers, CLI eval."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from data import EpisodeStore
from policies.io import load_policy
from policies.residual.demos import demo_replay, load_demos
from policies.residual.policy import Features, ResidualPolicy, load_residual_policy
from robot.core.errors import CheckpointError, ConfigError
from robot.sessions.evaluate import evaluate_policy
from robot.sessions.residual import ResidualTrainer, TrainResidualConfig
from robot.sessions.train import TrainBaseConfig, train_base
from tests.conftest import record_expert_demos

ENV = "realrl/FrankaLift-v0"
REALRL = [sys.executable, "-c", "import sys; from robot.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def lift(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(demo store, base run): 3 clean expert demos and a BC base trained for a few steps (weak on purpose)."""
    root = tmp_path_factory.mktemp("lift")
    demos = record_expert_demos(ENV, root / "demos.zarr", 3)  # clean: every episode succeeds
    base = root / "base"
    train_base(TrainBaseConfig(store=demos, out=base, policy="bc", down_dims=(16, 32), steps=20, batch_size=32,
                               eval_every=0, eval_episodes=1, progress=False, threads=1))
    return demos, base


def small(out: Path, base: Path, **kw: object) -> TrainResidualConfig:
    args: dict[str, object] = dict(out=out, base=base, steps=240, num_envs=2, warmup_steps=40, critic_warmup_steps=40,
                                   hidden=(32, 32), n_heads=3, batch_size=16, eval_every=0, eval_episodes=1,
                                   checkpoint_every=120, log_every=40, progress=False)
    args.update(kw)
    return TrainResidualConfig(**args)  # type: ignore[arg-type]


def test_demos_are_relabelled_with_the_reset_base_and_get_sparse_rewards(lift: tuple[Path, Path]) -> None:
    demos, base_run = lift
    base = load_policy(base_run / "policy")
    keys = base.obs_cfg.state_keys
    with EpisodeStore.open(demos, "r") as store:
        d = load_demos(store, base, keys)
        ep0 = store.episode(0)
    assert len(d.ends) == 3 and d.success.all()
    # The first episode's base actions are what a freshly reset base outputs along the demo's observations.
    base.reset()
    expected = np.stack([base.act({k: ep0[k][t] for k in keys}) for t in range(len(ep0["action"]))])
    np.testing.assert_allclose(d.base_actions[: d.ends[0]], expected, atol=1e-6)
    feats = Features.fit(keys, d.states, base.action_dim)
    buf = demo_replay(d, feats, n_step=1, gamma=0.99, seed=0)
    assert len(buf) == d.ends[-1]
    assert buf.reward[:, 0].sum() == 3 and buf.terminated[d.ends - 1, 0].all()  # one success step per episode
    assert np.allclose(buf.obs[0, 0, -base.action_dim:], d.base_actions[0])  # base action in the last columns


def test_fresh_residual_policy_acts_exactly_like_its_base(lift: tuple[Path, Path], tmp_path: Path) -> None:
    _, base_run = lift
    tr = ResidualTrainer(small(tmp_path / "r", base_run))
    policy = tr.policy()
    assert isinstance(policy, ResidualPolicy)
    base = load_policy(base_run / "policy")
    a = evaluate_policy(policy, ENV, 2, seed=7)
    b = evaluate_policy(base, ENV, 2, seed=7)
    assert (a.successes, a.mean_length) == (b.successes, b.mean_length)


def test_gripper_scale_reaches_learner_env_and_saved_policy(lift: tuple[Path, Path], tmp_path: Path) -> None:
    _, base_run = lift
    tr = ResidualTrainer(small(tmp_path / "r", base_run, steps=80, scale=0.1, gripper_scale=0.8))
    expected = [0.1] * 6 + [0.8]  # FrankaLift actions: dx dy dz drx dry drz gripper
    np.testing.assert_allclose(tr.learner.scales.numpy(), expected)
    np.testing.assert_allclose(tr.envs[0].scale, expected)
    feats = torch.zeros(2, tr.features.dim)
    combined = tr.learner.combine(feats, torch.ones(2, 7))
    np.testing.assert_allclose(combined.numpy(), np.tile(expected, (2, 1)), atol=1e-6)  # base 0 + scales * 1
    tr.train()
    np.testing.assert_allclose(load_residual_policy(tmp_path / "r" / "policy").scale, expected)
    with pytest.raises(ConfigError, match="no gripper dimension"):
        from robot.sessions.residual import learner_config
        learner_config(small(tmp_path / "x", base_run, gripper_scale=0.5), ("q1", "q2"))


def test_extra_state_keys_reach_the_features_and_the_saved_policy(lift: tuple[Path, Path], tmp_path: Path) -> None:
    _, base_run = lift
    base_keys = tuple(load_policy(base_run / "policy").obs_cfg.state_keys)
    assert "state/joint_vel" not in base_keys
    tr = ResidualTrainer(small(tmp_path / "r", base_run, steps=40, extra_state_keys=("state/joint_vel",)))
    assert tr.features.state_keys == (*base_keys, "state/joint_vel")
    tr.train()
    assert load_residual_policy(tmp_path / "r" / "policy").features.state_keys[-1] == "state/joint_vel"
    with pytest.raises(ConfigError, match="no keys \\['state/nope'\\]"):
        ResidualTrainer(small(tmp_path / "x", base_run, extra_state_keys=("state/nope",)))


def test_gripper_noise_scales_only_the_gripper_noise_of_td3(lift: tuple[Path, Path], tmp_path: Path) -> None:
    from robot.sessions.residual import learner_config

    _, base_run = lift
    tr = ResidualTrainer(small(tmp_path / "r", base_run, steps=80, gripper_scale=2.0, gripper_noise=0.25))
    np.testing.assert_allclose(tr.learner.noise_scales.numpy(), [1.0] * 6 + [0.25])
    r = tr.learner.act(np.zeros((400, tr.features.dim), np.float32), explore=True)
    assert 0.2 < r[:, -1].std() / r[:, :-1].std() < 0.3
    with pytest.raises(ConfigError, match="no gripper dimension"):
        learner_config(small(tmp_path / "x", base_run, gripper_noise=0.5), ("q1", "q2"))
    for bad in ({"gripper_noise": 1.5}, {"gripper_noise": 0.5, "algo": "sac"}):
        with pytest.raises(ConfigError, match="--gripper-noise"):
            small(tmp_path / "x", base_run, **bad)


def test_correlated_exploration_keeps_a_direction_and_independent_noise_does_not(lift: tuple[Path, Path],
                                                                                  tmp_path: Path) -> None:
    _, base_run = lift

    def lag1(corr: float) -> tuple[float, float]:
        # The actor is not trained (critic warm-up) and its last layer starts at zero, so residual = noise.
        tr = ResidualTrainer(small(tmp_path / f"c{corr}", base_run, warmup_steps=0, critic_warmup_steps=10_000,
                                   explore_corr=corr, explore_std=0.3))
        for _ in range(60):
            tr.collect()
        da = tr.features.action_dim
        base, done = tr.online.obs[:60, 0, -da:], tr.online.action[:60, 0]
        noise = (done - base)[:, :3] / 0.1  # x, y, z translation: scale 0.1, far from the clip at +-1
        assert tr.episodes == 0 and np.all(np.abs(noise) <= 0.6 + 1e-4)  # one episode; truncated at 2 std
        return float(np.mean([np.corrcoef(n[:-1], n[1:])[0, 1] for n in noise.T])), float(noise.std())

    corr, std = lag1(0.9)
    assert corr > 0.6 and 0.15 < std < 0.4
    corr, std = lag1(0.0)
    assert abs(corr) < 0.35 and 0.15 < std < 0.4
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match="--explore-corr must be in"):
            small(tmp_path / "x", base_run, explore_corr=bad)
    with pytest.raises(ConfigError, match="--algo sac samples from its own policy"):
        small(tmp_path / "x", base_run, explore_corr=0.5, algo="sac")


def test_critic_gripper_episodes_execute_one_of_the_three_gripper_commands(lift: tuple[Path, Path],
                                                                        tmp_path: Path) -> None:
    _, base_run = lift
    tr = ResidualTrainer(small(tmp_path / "g", base_run, warmup_steps=0, critic_gripper=1.0, gripper_scale=2.0))
    assert tr.gripper_dims == (6,)
    for _ in range(30):
        tr.collect()
    base, done = tr.online.obs[:30, :, -7:], tr.online.action[:30]
    grip = done[..., 6]
    is_choice = np.isclose(grip, -1) | np.isclose(grip, 1) | np.isclose(grip, base[..., 6], atol=1e-5)
    assert is_choice.all() and tr._critic_grip.all()
    np.testing.assert_allclose(done[..., :3], base[..., :3], atol=0.1 * 0.6 + 1e-5)  # the arm explores as usual
    for bad in (-0.1, 1.5):
        with pytest.raises(ConfigError, match="--critic-gripper is a share of episodes"):
            small(tmp_path / "x", base_run, critic_gripper=bad)


@pytest.mark.parametrize("device", ["cpu", *(["cuda"] if torch.cuda.is_available() else [])])
def test_resume_makes_the_same_next_update_as_the_uninterrupted_run(lift: tuple[Path, Path], tmp_path: Path,
                                                                    device: str) -> None:
    _, base_run = lift
    cfg = small(tmp_path / "r", base_run, device=device)
    first = ResidualTrainer(cfg)
    first.train(stop_at=120)  # checkpoint at 120 env steps, then "dies"
    assert first.env_steps == 120 and first.learner.updates > 0
    assert next(first.learner.actor.parameters()).device.type == device
    second = ResidualTrainer(small(tmp_path / "r", base_run, resume=True, device=device))
    assert second.resumed and second.env_steps == 120 and len(second.online) == len(first.online)
    m1, m2 = first.update(), second.update()
    assert m1 == m2
    for p1, p2 in zip(first.learner.critic.parameters(), second.learner.critic.parameters(), strict=True):
        torch.testing.assert_close(p1, p2, rtol=0, atol=0)
    for p1, p2 in zip(first.learner.actor.parameters(), second.learner.actor.parameters(), strict=True):
        torch.testing.assert_close(p1, p2, rtol=0, atol=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a machine without a GPU gives")
def test_cuda_learner_without_a_gpu_is_a_clear_error_before_any_work(lift: tuple[Path, Path], tmp_path: Path) -> None:
    _, base_run = lift
    r = subprocess.run([*REALRL, "train", "residual", "--base", str(base_run), "--out", str(tmp_path / "g"),
                        "--device", "cuda", "--no-progress"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "sees no CUDA GPU; use --device cpu" in r.stderr + r.stdout
    assert not (tmp_path / "g").exists()


def test_existing_run_needs_resume_and_resume_checks_features(lift: tuple[Path, Path], tmp_path: Path) -> None:
    _, base_run = lift
    tr = ResidualTrainer(small(tmp_path / "r", base_run, steps=120))
    tr.train()
    with pytest.raises(ConfigError, match="--resume"):
        ResidualTrainer(small(tmp_path / "r", base_run, steps=120))
    state = tmp_path / "r" / "checkpoint" / "state.json"
    s = json.loads(state.read_text())
    s["features"]["mean"][0] += 1.0  # as if trained on other demos
    state.write_text(json.dumps(s))
    with pytest.raises(CheckpointError, match="other observation features"):
        ResidualTrainer(small(tmp_path / "r", base_run, steps=240, resume=True))


def test_rlpd_from_scratch_runs_without_a_base(lift: tuple[Path, Path], tmp_path: Path) -> None:
    demos, _ = lift
    with pytest.raises(ConfigError, match="--env and --demos"):
        TrainResidualConfig(out=tmp_path / "x", algo="rlpd")
    tr = ResidualTrainer(small(tmp_path / "r", None, algo="rlpd", env=ENV, demos=demos, steps=120, eval_every=120))
    row = tr.train()
    assert row["env_steps"] == 120 and "eval/success" in row and tr.rcfg.scale == 1.0
    policy = load_residual_policy(tmp_path / "r" / "policy")
    assert policy.base.nfe == 0 and policy.nfe == 0


def test_killed_run_resumes_with_its_buffer_and_evaluates_from_the_cli(lift: tuple[Path, Path],
                                                                       tmp_path: Path) -> None:
    _, base_run = lift
    out = tmp_path / "res"
    args = ["train", "residual", "--base", str(base_run), "--out", str(out), "--num-envs", "2", "--warmup-steps",
            "40", "--critic-warmup-steps", "40", "--hidden", "32", "32", "--n-heads", "3", "--batch-size", "16",
            "--eval-every", "0", "--eval-episodes", "1", "--checkpoint-every", "60", "--log-every", "60",
            "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*REALRL, *args, "--steps", "100000"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    state = out / "checkpoint" / "state.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if state.exists() and json.loads(state.read_text())["env_steps"] >= 180:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    ck = out / "checkpoint" if (out / "checkpoint").exists() else out / "checkpoint.old"
    saved = json.loads((ck / "state.json").read_text())
    with np.load(ck / "online.npz") as z:
        saved_obs, saved_act = z["obs"].copy(), z["action"].copy()
    steps = saved["env_steps"] + 60
    r = subprocess.run([*REALRL, *args, "--steps", str(steps), "--resume"], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"resuming {out} at env step {saved['env_steps']}" in r.stdout
    with np.load(out / "checkpoint" / "online.npz") as z:
        assert len(z["obs"]) == steps // 2
        np.testing.assert_array_equal(z["obs"][: len(saved_obs)], saved_obs)  # nothing before the kill was lost
        np.testing.assert_array_equal(z["action"][: len(saved_act)], saved_act)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["env_steps"] == steps and (out / "curves.png").stat().st_size > 1000
    e = subprocess.run([*REALRL, "eval", "--policy", str(out), "--episodes", "2", "--no-progress"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert e.returncode == 0, e.stdout + e.stderr
    assert "residual-td3+mip" in e.stdout and "success" in e.stdout
