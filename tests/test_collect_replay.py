"""`realrl collect` driven by the replay device in sim: a valid store whose episodes replay (seed + recorded actions)
to the recorded success, resume appending, labels from the episode keys, and the device errors of the CLI."""

from pathlib import Path

import numpy as np
import pytest

from data import EpisodeStore, validate
from hardware.teleop.replay import ReplayStep, save_stream, stream_from_actions, stream_from_episode
from robot.core.types import TeleopEvent
from tests.teleop_util import ENV, expert_actions, realrl, replay_success


@pytest.fixture(scope="module")
def expert_stream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    steps: list[ReplayStep] = []
    episodes = []
    for seed in (0, 1):
        actions, ok = expert_actions(seed)
        assert ok
        episodes.append(actions)
        steps += stream_from_actions(actions)
        steps += [ReplayStep(np.zeros(7, np.float32))] * 3  # the operator idles between episodes
    path = save_stream(tmp_path_factory.mktemp("stream") / "expert.jsonl", steps)
    return path, episodes


def test_collect_replays_into_a_valid_store_that_replays_to_the_same_success(
        expert_stream: tuple[Path, list[np.ndarray]], tmp_path: Path) -> None:
    stream, episodes = expert_stream
    out = tmp_path / "demos.zarr"
    r = realrl("collect", "--env", ENV, "--device", "replay", "--replay.path", str(stream), "--out", str(out),
               "--hz", "100", "--operator", "ci")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "saved 2 episodes (2 successful)" in r.stdout
    assert validate(out) == []
    with EpisodeStore.open(out) as store:
        assert len(store) == 2 and store.env_id == ENV
        assert store.schema["info/intervened"].dtype == "bool"
        for i, expected in enumerate(episodes):
            meta = store.episode_meta(i)
            assert meta["success"] and meta["source"] == "teleop" and meta["operator"] == "ci"
            assert meta["meta"]["seed"] == i and meta["meta"]["device"] == "replay"
            assert meta["meta"]["dropped_steps"] == 0
            ep = store.episode(i, ["action", "info/intervened", "time/state"])
            np.testing.assert_array_equal(ep["action"], expected)  # the stream's actions, every one, in order
            assert ep["info/intervened"].all()  # a human drove every step of a teleop episode
            assert np.all(np.diff(ep["time/state"]) > 0)
            assert replay_success(ENV, meta["meta"]["seed"], ep["action"]) == meta["success"]

    # Resume: the same command appends; seeds continue after the stored episodes.
    r = realrl("collect", "--env", ENV, "--device", "replay", "--replay.path", str(stream), "--out", str(out),
               "--hz", "100")
    assert r.returncode == 0, r.stdout + r.stderr
    assert validate(out) == []
    with EpisodeStore.open(out) as store:
        assert len(store) == 4
        assert [store.episode_meta(i)["meta"]["seed"] for i in range(4)] == [0, 1, 2, 3]
        for i in (2, 3):
            m = store.episode_meta(i)
            assert replay_success(ENV, m["meta"]["seed"], store.episode(i, ["action"])["action"]) == m["success"]
        # A stored episode is itself a replayable stream.
        again = stream_from_episode(store, 0)
    assert again[0].events == {TeleopEvent.START} and again[-1].events == {TeleopEvent.STOP}
    np.testing.assert_array_equal(np.stack([s.action for s in again[:-1]]), episodes[0])


def test_episode_keys_label_discard_and_stop_after_n(tmp_path: Path) -> None:
    hold = np.array([0, 0, 0, 0, 0, 0, -1], np.float32)
    up = np.array([0, 0, 0.5, 0, 0, 0, -1], np.float32)

    def ep(n: int, end: TeleopEvent) -> list[ReplayStep]:
        return ([ReplayStep(up, frozenset({TeleopEvent.START}))] + [ReplayStep(up)] * (n - 1)
                + [ReplayStep(hold, frozenset({end}))])

    steps = (ep(5, TeleopEvent.SUCCESS) + ep(4, TeleopEvent.DISCARD) + ep(6, TeleopEvent.FAILURE)
             # paused steps hold and are not recorded; the episode goes on after the second PAUSE
             + [ReplayStep(up, frozenset({TeleopEvent.START}))] + [ReplayStep(up)] * 2
             + [ReplayStep(up, frozenset({TeleopEvent.PAUSE}))] + [ReplayStep(up)] * 4
             + [ReplayStep(up, frozenset({TeleopEvent.PAUSE}))] + [ReplayStep(up)]
             + [ReplayStep(hold, frozenset({TeleopEvent.STOP}))]
             + ep(3, TeleopEvent.SUCCESS) + ep(2, TeleopEvent.SUCCESS))  # the last is never reached: --episodes 4
    stream = save_stream(tmp_path / "keys.jsonl", steps)
    out = tmp_path / "labels.zarr"
    r = realrl("collect", "--env", ENV, "--device", "replay", "--replay.path", str(stream), "--out", str(out),
               "--hz", "100", "--episodes", "4", "--no-status")
    assert r.returncode == 0, r.stdout + r.stderr
    with EpisodeStore.open(out) as store:
        assert len(store) == 4
        metas = [store.episode_meta(i) for i in range(4)]
        assert [m["success"] for m in metas] == [True, False, False, True]
        assert [m["meta"]["label_by"] for m in metas] == ["operator", "operator", "task", "operator"]
        assert [m["length"] for m in metas] == [5, 6, 5, 3]
        assert [m["meta"]["seed"] for m in metas] == [0, 2, 3, 4]  # the discarded episode used seed 1
        z = store.episode(0, ["state/ee_pose"])["state/ee_pose"][:, 2]
        assert z[-1] > z[0] + 0.02  # +z commands moved the TCP up


def test_absent_devices_and_bad_streams_are_one_clear_line(tmp_path: Path) -> None:
    out = tmp_path / "x.zarr"
    r = realrl("collect", "--device", "spacemouse", "--spacemouse.path", str(tmp_path / "hidraw9"), "--out", str(out))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "hidraw9 does not exist" in r.stderr
    r = realrl("collect", "--device", "keyboard", "--out", str(out), stdin=open("/dev/null"))  # noqa: SIM115
    assert r.returncode == 2 and "not a tty" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"action": [0, 0, 0, 0, 0, 0, 0]}\n{"action": [0, 1], "events": ["launch"]}\n')
    r = realrl("collect", "--device", "replay", "--replay.path", str(bad), "--out", str(out))
    assert r.returncode == 2 and "bad.jsonl:2" in r.stderr and "launch" in r.stderr
    r = realrl("collect", "--device", "replay", "--out", str(out))
    assert r.returncode == 2 and "--replay.path" in r.stderr
    assert not out.exists()  # nothing was created by a session that could not start
