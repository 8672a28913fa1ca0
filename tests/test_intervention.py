"""Intervention: an operator takes over from a running policy and hands back; e-stop and pause hold whatever anyone
asks; a collect run with a policy and scripted take-overs stores the human action and the intervened flag."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401 - registers realrl/*
from data import EpisodeStore, validate
from hardware.teleop.replay import ReplayStep, ReplayTeleop, save_stream
from robot.core.errors import ConfigError
from robot.core.types import TeleopEvent
from robot.wrappers import Intervention, InterventionConfig, SafetyLimits
from tests.teleop_util import ENV, realrl

E = TeleopEvent
HUMAN = np.array([0, 0, 0.4, 0, 0, 0, -1], np.float32)


def reading(*events: TeleopEvent, action: np.ndarray = HUMAN, active: bool = True) -> ReplayStep:
    return ReplayStep(action, frozenset(events), active)


def run(steps: list[ReplayStep], takeover: str = "toggle") -> tuple[list[dict], np.ndarray]:
    env = Intervention(SafetyLimits(gym.make("realrl/FrankaLift-v0")), ReplayTeleop(steps),
                       InterventionConfig(takeover=takeover))  # type: ignore[arg-type]
    obs, _ = env.reset(seed=0)
    expert = env.unwrapped.task.expert(seed=0)
    expert.reset()
    infos = []
    for _ in steps:
        obs, _, _, _, info = env.step(expert.act(obs))
        infos.append(info)
    hold = env.unwrapped.hold_action()
    env.close()
    return infos, hold


def test_take_over_and_hand_back_at_any_step() -> None:
    steps = [reading()] * 3 + [reading(E.INTERVENE)] + [reading()] * 4 + [reading(E.INTERVENE)] + [reading()] * 3
    infos, _ = run(steps)
    flags = [i["intervened"] for i in infos]
    assert flags == [False] * 3 + [True] * 5 + [False] * 4
    for i in infos:
        expected = i["human_action"] if i["intervened"] else i["agent_action"]
        np.testing.assert_array_equal(i["applied_action"], expected)
        np.testing.assert_array_equal(i["human_action"], HUMAN)
        assert i["operator_hold"] == ""
    assert not np.allclose(infos[0]["agent_action"], HUMAN)  # the expert does something else
    assert infos[3]["teleop_events"] == {E.INTERVENE}


def test_estop_holds_until_start_and_pause_toggles() -> None:
    steps = ([reading(E.INTERVENE)] + [reading(E.ESTOP)] + [reading()] * 3 + [reading(E.PAUSE)]  # pause under e-stop
             + [reading(E.START)] + [reading()] + [reading(E.PAUSE)] + [reading()])
    infos, hold = run(steps)
    held = [i["operator_hold"] for i in infos]
    assert held == ["", "estop", "estop", "estop", "estop", "estop", "pause", "pause", "", ""]
    for i in infos:
        if i["operator_hold"]:
            np.testing.assert_allclose(i["applied_action"], hold, atol=1e-6)  # neither human nor policy moves it
            assert not i["intervened"]
    assert infos[-1]["intervened"]  # take-over survives the e-stop; START re-armed it


def test_deadman_mode_drives_only_while_held() -> None:
    steps = [reading(active=False)] * 2 + [reading()] * 3 + [reading(active=False)]
    infos, hold = run(steps, takeover="deadman")
    assert [i["intervened"] for i in infos] == [False, False, True, True, True, False]
    steps = [reading(E.INTERVENE), reading(active=False), reading()]  # toggle mode, deadman released: hold
    infos, hold = run(steps)
    np.testing.assert_allclose(infos[1]["applied_action"], hold, atol=1e-6)
    assert infos[1]["intervened"]


def test_a_device_of_the_wrong_size_is_refused_at_construction() -> None:
    env = gym.make("realrl/FrankaLift-v0", action_mode="joint_pos")
    with pytest.raises(ConfigError, match="7-D actions but the env takes"):
        Intervention(env, ReplayTeleop([reading()]))
    env.close()


def test_policy_run_with_scripted_interventions_stores_human_actions_and_flags(tmp_path: Path) -> None:
    idle = np.zeros(7, np.float32)
    steps = ([reading(E.START, action=idle)] + [reading(action=idle)] * 4 + [reading(E.INTERVENE)]
             + [reading()] * 9 + [reading(E.INTERVENE, action=idle)] + [reading(action=idle)] * 100
             + [reading(E.STOP, action=idle)])
    stream = save_stream(tmp_path / "takeover.jsonl", steps)
    out = tmp_path / "iv.zarr"
    r = realrl("collect", "--env", ENV, "--policy", "expert", "--device", "replay", "--replay.path", str(stream),
               "--out", str(out), "--hz", "100", "--episodes", "1", "--no-status")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "(10 intervened)" in r.stdout
    assert validate(out) == []
    with EpisodeStore.open(out) as store:
        assert len(store) == 1
        meta = store.episode_meta(0)
        assert meta["source"] == "intervention" and meta["meta"]["intervened_steps"] == 10
        ep = store.episode(0, ["action", "info/intervened"])
    flags = ep["info/intervened"]
    assert flags.dtype == bool and flags.sum() == 10
    assert np.flatnonzero(flags).tolist() == list(range(5, 15))  # the steps between the two INTERVENE readings
    np.testing.assert_array_equal(ep["action"][flags], np.tile(HUMAN, (10, 1)))  # the human action is the action
    assert not np.any(np.all(ep["action"][~flags] == HUMAN, axis=1))  # the expert's own steps are its actions
