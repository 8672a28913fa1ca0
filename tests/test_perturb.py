"""Injected sim latency (exact against a shifted nominal run) and the perturbation families of `eval --randomize`."""

import gymnasium as gym
import numpy as np
import pytest

from robot.core.errors import ConfigError
from robot.sessions.perturb import FAMILIES, Perturb, Perturbation, perturbations

DT = 0.05  # FrankaLift control period


def joint_env() -> gym.Env:
    return gym.make("realrl/FrankaLift-v0", action_mode="joint_pos").unwrapped


def actions(env: gym.Env, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    hold = env.hold_action()
    return [np.clip(hold + rng.normal(0, 0.05, hold.shape), -1, 1).astype(np.float32) for _ in range(n)]


def test_observation_latency_of_one_period_returns_the_previous_periods_state_exactly() -> None:
    nominal, lagged = joint_env(), joint_env()
    lagged.robot.set_latency(observation_s=DT)
    o_nom, _ = nominal.reset(seed=3)
    o_lag, _ = lagged.reset(seed=3)
    assert np.array_equal(o_nom["state/joint_pos"], o_lag["state/joint_pos"])
    prev = o_nom
    for a in actions(nominal, 12):
        o_nom = nominal.step(a)[0]
        o_lag = lagged.step(a)[0]
        for k in ("state/joint_pos", "state/cube_pose", "state/ee_pose", "time/state"):
            assert np.array_equal(o_lag[k], prev[k]), k
        assert lagged.robot.now() - float(o_lag["time/state"]) == pytest.approx(DT)
        prev = o_nom


def test_observation_latency_within_a_period_is_stamped_with_its_age() -> None:
    env = joint_env()
    env.robot.set_latency(observation_s=0.03)
    env.reset(seed=0)
    for a in actions(env, 5):
        obs = env.step(a)[0]
        assert env.robot.now() - float(obs["time/state"]) == pytest.approx(0.03)


def test_action_latency_of_one_period_equals_the_nominal_run_with_commands_one_step_later() -> None:
    nominal, lagged, unshifted = joint_env(), joint_env(), joint_env()
    lagged.robot.set_latency(action_s=DT)
    nominal.reset(seed=1)
    lagged.reset(seed=1)
    unshifted.reset(seed=1)
    acts = actions(nominal, 10)
    gaps = [np.abs(lagged.step(a)[0]["state/joint_pos"] - unshifted.step(a)[0]["state/joint_pos"]).max()
            for a in acts]
    assert max(gaps) > 1e-3  # the latency does change the motion
    lagged.reset(seed=1)
    shifted = [nominal.hold_action(), *acts[:-1]]
    for a, b in zip(acts, shifted, strict=True):
        o_lag = lagged.step(a)[0]
        o_nom = nominal.step(b)[0]
        # Not bit-exact only because the nominal run's first "hold" went through normalize/unnormalize.
        assert np.allclose(o_lag["state/joint_pos"], o_nom["state/joint_pos"], atol=1e-6)


def test_latency_buffers_do_not_leak_across_resets_and_zero_restores_the_nominal_robot() -> None:
    env, ref = joint_env(), joint_env()
    env.robot.set_latency(observation_s=0.03, action_s=0.03)
    env.reset(seed=0)
    for a in actions(env, 5):
        env.step(a)
    obs, _ = env.reset(seed=2)
    ref_obs, _ = ref.reset(seed=2)
    assert np.array_equal(obs["state/cube_pose"], ref_obs["state/cube_pose"])  # the new scene, not a stale one
    env.robot.set_latency(0.0, 0.0)
    env.reset(seed=2)
    for a in actions(env, 4):
        assert np.array_equal(env.step(a)[0]["state/joint_pos"], ref.step(a)[0]["state/joint_pos"])
    with pytest.raises(ConfigError, match="latencies"):
        env.robot.set_latency(observation_s=-0.01)


def test_every_family_changes_the_sim_and_keeps_the_scene_layout() -> None:
    assert [p.family for p in perturbations("medium")] == list(FAMILIES)
    assert [p.family for p in perturbations("medium", cameras=False)] == list(FAMILIES[:-1])
    nominal = gym.make("realrl/FrankaLift-v0")
    o_nom, _ = nominal.reset(seed=5)
    robot = nominal.unwrapped.robot
    kp0 = robot.model.actuator_gainprm[:, 0].copy()
    for p in perturbations("heavy", cameras=False):
        env = Perturb(gym.make("realrl/FrankaLift-v0"), p)
        obs, _ = env.reset(seed=5)
        r = env.unwrapped.robot
        # the scene's layout comes from the env's rng, which no family touches
        assert np.allclose(obs["state/cube_pose"][:2], o_nom["state/cube_pose"][:2], atol=0.02), p.family
        if p.family == "object":
            assert not np.allclose(r.object_half_size("cube"), robot.object_half_size("cube"))
        if p.family == "actuator":
            k = r.model.actuator_gainprm[:, 0] / kp0
            assert np.all((k >= 0.5) & (k <= 1.5)) and np.std(k) > 0.01
        if p.family == "obs_noise":
            assert not np.array_equal(obs["state/joint_pos"], o_nom["state/joint_pos"])
        if p.family in ("obs_latency", "action_latency"):
            assert r.latency == ((0.06, 0.0) if p.family == "obs_latency" else (0.0, 0.06))
        env.close()
        assert r.latency == (0.0, 0.0) and np.array_equal(r.model.actuator_gainprm[:, 0], kp0)


def test_frame_drop_repeats_the_previous_frame_with_its_old_stamp() -> None:
    env = Perturb(gym.make("realrl/FrankaLift-v0", cameras=("front",), image_size=32),
                  Perturbation("frame_drop", frame_drop=0.5))
    obs, _ = env.reset(seed=0)
    repeats = 0
    for _ in range(20):
        prev = obs
        obs = env.step(np.zeros(7, np.float32))[0]
        if obs["time/front"] < obs["time/state"]:
            repeats += 1
            assert float(obs["time/front"]) <= float(prev["time/state"])
    assert 3 <= repeats <= 17
    env.close()


def test_bad_perturbations_are_refused() -> None:
    with pytest.raises(ConfigError, match="frame_drop"):
        Perturbation(frame_drop=1.0)
    with pytest.raises(ConfigError, match="actuator_gain"):
        Perturbation(actuator_gain=(0.0, 1.0))
    with pytest.raises(ConfigError, match="level"):
        perturbations("extreme")  # type: ignore[arg-type]


def test_eval_randomize_reports_every_family_on_the_same_seeds(policy_run, tmp_path) -> None:
    import json

    from tests.conftest import realrl

    r = realrl("eval", "--policy", str(policy_run), "--randomize", "heavy", "--episodes", "3", "--no-progress",
               "--json-out", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "r.json").read_text())["families"]
    assert [row["family"] for row in rows] == ["nominal", *FAMILIES[:-1]]  # no cameras: no frame drops
    assert rows[0]["delta"] == 0.0 and all(row["level"] == "heavy" for row in rows[1:])
    assert all(0.0 <= row["success"] <= 1.0 and row["mean_length"] > 0 for row in rows)
    assert "obs_latency" in r.stdout and "vs nominal" in r.stdout and "frame_drop" in r.stdout
