"""SafetyLimits on the bimanual G1: every wrist gets the workspace check, holds and joint-step limits apply."""

import gymnasium as gym
import numpy as np
import pytest

from robot.core import SafetyError
from robot.wrappers import SafetyConfig, SafetyLimits


def make(**kwargs) -> SafetyLimits:
    cfg = kwargs.pop("config", None)
    return SafetyLimits(gym.make("realrl/G1BoxPickup-v0", **kwargs).unwrapped, cfg)


def test_each_wrist_is_stopped_at_its_own_face_of_the_box() -> None:
    cfg = SafetyConfig(workspace_low=(0.2, -0.2, 0.05), workspace_high=(0.6, 0.3, 0.2))
    env = make(config=cfg)
    obs, _ = env.reset(seed=0)
    push = np.zeros(14, dtype=np.float32)
    push[2] = 1.0  # left wrist straight up: must stop at z = 0.2
    push[7] = -1.0  # right wrist outward (-y): must stop at y = -0.2
    push[12:] = -1.0
    limited = []
    for _ in range(30):
        obs, _, _, _, info = env.step(push)
        limited.append(info["safety"]["limited"])
    pose = obs["state/ee_pose"]
    # The guard works on the measured pose; the commanded target may lead it by one step (3 cm).
    assert pose[2] <= 0.2 + 0.03 + 0.005
    assert pose[8] >= -0.2 - 0.03 - 0.005
    assert pose[9] < 0.2, "the right wrist was never pushed up"
    assert max(limited) >= 2  # both wrists' dimensions were limited in the same step
    assert env.totals["limited"] > 0


def test_a_wrist_inside_the_box_is_left_alone() -> None:
    env = make(config=SafetyConfig(workspace_low=(0.2, -0.45, 0.0), workspace_high=(0.8, 0.45, 0.16)))
    obs, _ = env.reset(seed=0)
    assert obs["state/ee_pose"][2] < 0.16 and obs["state/ee_pose"][9] < 0.16
    a = np.zeros(14, dtype=np.float32)
    a[2] = 1.0  # left up: limited near the top of the box
    a[6] = 0.5  # right forward: free
    limited, _ = env._limit(a.astype(np.float64))
    assert limited[2] < 1.0 and limited[6] == pytest.approx(0.5)


def test_nan_action_holds_both_arms_and_keeps_the_hands() -> None:
    env = make()
    env.reset(seed=0)
    close = np.zeros(14, dtype=np.float32)
    close[12:] = 0.0  # closure 0.5 each
    for _ in range(5):
        env.step(close)
    ctrl = env.unwrapped.robot.data.ctrl.copy()
    bad = close.copy()
    bad[9] = np.nan
    _, _, _, _, info = env.step(bad)
    assert info["safety"]["held"] and "right_drx" in info["safety"]["reason"]
    np.testing.assert_allclose(env.unwrapped.robot.data.ctrl, ctrl, atol=1e-9)  # nothing moved, hands included
    with pytest.raises(SafetyError, match="fault 2 of 2"):
        env.step(bad)


def test_joint_mode_limits_every_joint_step() -> None:
    env = make(action_mode="joint_pos", config=SafetyConfig(max_joint_step=0.1))
    obs, _ = env.reset(seed=0)
    far = np.ones(28, dtype=np.float32)  # every joint to its upper limit
    _, _, _, _, info = env.step(far)
    assert info["safety"]["limited"] >= 20
    sent = env.unwrapped.embodiment.action.to_physical(info["sent_action"].astype(np.float64))
    assert np.all(np.abs(sent - obs["state/joint_pos"]) <= 0.1 + 1e-5)
