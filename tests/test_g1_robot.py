"""G1 + Dex3 sim robot: model steps cleanly, env checker, Unitree motor order, bimanual IK, hand synergy."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from robot.core import ActionMode, ConfigError, SafetyError
from robot.core.spec import EmbodimentSpec
from sim.g1 import DEX3_MOTORS, G1_MOTORS, G1Config, G1Robot, hand_pose
from sim.tasks import TASKS

G1_IDS = ["realrl/G1BoxPickup-v0", "realrl/G1Handover-v0"]


@pytest.mark.parametrize("task_name", ["G1BoxPickup", "G1Handover"])
@pytest.mark.parametrize("mode", [ActionMode.EE_DELTA, ActionMode.JOINT_POS])
def test_model_steps_one_second_of_random_control_without_warnings(task_name: str, mode: ActionMode) -> None:
    task = TASKS.get(task_name)()
    robot = G1Robot(G1Config(action_mode=mode), objects=task.objects)
    with robot:
        for seed in range(3):  # random joint targets slam hands into the table and the box: the hard case
            rng = np.random.default_rng(seed)
            robot.reset()
            task.reset(rng, robot)
            spec = robot.spec.action
            for _ in range(int(robot.control_hz)):  # 1 s of simulated time
                robot.command(spec.to_physical(rng.uniform(-1, 1, spec.dim)))
            assert robot.data.time == pytest.approx(1.0)
            warnings = {mujoco.mjtWarning(i).name: int(w.number) for i, w in enumerate(robot.data.warning) if w.number}
            assert not warnings, f"MuJoCo warnings (seed {seed}): {warnings}"
            assert np.all(np.isfinite(robot.data.qpos)) and np.all(np.isfinite(robot.data.qvel))


@pytest.mark.parametrize("env_id", G1_IDS)
@pytest.mark.parametrize("mode", ["ee_delta", "joint_pos"])
def test_check_env_passes(env_id: str, mode: str) -> None:
    env = gym.make(env_id, action_mode=mode)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.action_space.shape == ((14,) if mode == "ee_delta" else (28,))
    env.close()


def test_cameras_render_and_bad_camera_names_are_config_errors() -> None:
    env = gym.make("realrl/G1BoxPickup-v0", cameras=("head", "front", "left_wrist"), image_size=(48, 64))
    obs, _ = env.reset(seed=0)
    for cam in ("head", "front", "left_wrist"):
        img = obs[f"image/{cam}"]
        assert img.shape == (48, 64, 3) and img.dtype == np.uint8 and img.std() > 1.0, cam
    assert not np.array_equal(obs["image/head"], obs["image/front"])
    env.close()
    with pytest.raises(ConfigError, match="unknown cameras"):
        gym.make("realrl/G1BoxPickup-v0", cameras=("wrist",))


def test_observation_layout() -> None:
    env = gym.make("realrl/G1Handover-v0")
    obs, _ = env.reset(seed=0)
    assert obs["state/joint_pos"].shape == (28,) and obs["state/joint_vel"].shape == (28,)
    assert obs["state/ee_pose"].shape == (14,) and obs["state/hand"].shape == (2,)
    pose = obs["state/ee_pose"]
    np.testing.assert_allclose(np.linalg.norm(pose[3:7]), 1.0, atol=1e-5)
    np.testing.assert_allclose(obs["state/bar_rel_left"], obs["state/bar_pose"][:3] - pose[0:3], atol=1e-6)
    np.testing.assert_allclose(obs["state/bar_rel_right"], obs["state/bar_pose"][:3] - pose[7:10], atol=1e-6)
    assert pose[1] > 0 > pose[8], "left palm on the left (+y), right palm on the right"
    assert all(v.dtype == np.float32 for k, v in obs.items() if k.startswith("state/"))


def test_unitree_motor_order_and_joint_layout() -> None:
    assert [i for i, _ in G1_MOTORS] == list(range(29))
    names = dict(G1_MOTORS)
    assert names[0] == "left_hip_pitch_joint" and names[11] == "right_ankle_roll_joint"
    assert [names[i] for i in (12, 13, 14)] == ["waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint"]
    assert names[15] == "left_shoulder_pitch_joint" and names[21] == "left_wrist_yaw_joint"
    assert names[22] == "right_shoulder_pitch_joint" and names[28] == "right_wrist_yaw_joint"
    # Unitree's Dex3-1 order: the left hand's middle finger comes before its index finger, the mirrored right
    # hand's index finger first.
    order = {"left": ("thumb_0", "thumb_1", "thumb_2", "middle_0", "middle_1", "index_0", "index_1"),
             "right": ("thumb_0", "thumb_1", "thumb_2", "index_0", "index_1", "middle_0", "middle_1")}
    for side in ("left", "right"):
        assert [n for _, n in DEX3_MOTORS[side]] == [f"{side}_hand_{f}_joint" for f in order[side]]
    robot = G1Robot()
    # Body joints are the arm motors 15..28 in order, then the two Dex3 hands in their motor order.
    arm = [n for i, n in G1_MOTORS if i >= 15]
    hands = [n for _, n in DEX3_MOTORS["left"]] + [n for _, n in DEX3_MOTORS["right"]]
    assert robot.spec.joint_names == (*arm, *hands)
    assert robot.spec.ee_frames == ("left_palm", "right_palm")
    waist = G1Robot(G1Config(freeze_waist=False, action_mode=ActionMode.JOINT_POS))
    assert waist.spec.joint_names[:3] == ("waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint")
    assert waist.spec.action.dim == 31


def test_motor_state_reports_29_body_motors_in_unitree_order() -> None:
    with G1Robot() as robot:
        robot.reset()
        q, dq, tau = robot.motor_state()
        assert q.shape == dq.shape == tau.shape == (29,)
        assert np.all(q[:15] == 0.0)  # legs removed, waist welded
        np.testing.assert_allclose(q[15:], robot.observe()["state/joint_pos"][:14], atol=1e-6)
        hq, _, _ = robot.hand_state("right")
        np.testing.assert_allclose(hq, robot.observe()["state/joint_pos"][21:28], atol=1e-6)
        with pytest.raises(ConfigError):
            robot.hand_state("middle")


def test_spec_round_trips_through_dict() -> None:
    spec = G1Robot().spec
    assert EmbodimentSpec.from_dict(spec.to_dict()) == spec


def test_bimanual_ik_moves_each_palm_by_its_own_delta_and_holds_still() -> None:
    with G1Robot() as robot:
        obs = robot.reset()
        start = obs["state/ee_pose"].copy()
        cmd = np.zeros(14)
        cmd[0] = 0.01  # left palm forward 1 cm per step
        cmd[8] = 0.01  # right palm up 1 cm per step
        for _ in range(5):
            robot.command(cmd)
        for _ in range(10):
            robot.command(np.zeros(14))
        pose = robot.observe()["state/ee_pose"]
        np.testing.assert_allclose(pose[0:3] - start[0:3], [0.05, 0.0, 0.0], atol=0.004)
        np.testing.assert_allclose(pose[7:10] - start[7:10], [0.0, 0.0, 0.05], atol=0.004)
        # Zero deltas hold: the null-space pull toward home must not creep the palms.
        for _ in range(40):
            robot.command(np.zeros(14))
        np.testing.assert_allclose(robot.observe()["state/ee_pose"], pose, atol=0.002)


def test_unfrozen_waist_joins_the_ik() -> None:
    with G1Robot(G1Config(freeze_waist=False)) as robot:
        robot.reset()
        for _ in range(10):
            robot.command(np.array([0.0, 0.0, -0.02, 0, 0, 0] * 2 + [0.0, 0.0]))
        assert np.abs(robot.observe()["state/joint_pos"][:3]).max() > 1e-3  # the waist moved


def test_hand_synergy_and_closure_observation() -> None:
    with G1Robot() as robot:
        robot.reset()
        for _ in range(15):
            sent = robot.command(np.array([0.0] * 12 + [1.0, 0.5]))
        np.testing.assert_allclose(sent[12:], [1.0, 0.5])
        closure = robot.observe()["state/hand"]
        np.testing.assert_allclose(closure, [1.0, 0.5], atol=0.05)
        np.testing.assert_allclose(robot.hold_command(), [0.0] * 12 + [1.0, 0.5])
    # The right hand mirrors the left: the same closure bends its fingers the opposite way about z.
    np.testing.assert_allclose(hand_pose("right", 0.8)[1:], -hand_pose("left", 0.8)[1:])


def test_non_finite_command_is_refused_before_it_reaches_the_actuators() -> None:
    with G1Robot() as robot:
        robot.reset()
        ctrl = robot.data.ctrl.copy()
        bad = np.zeros(14)
        bad[3] = np.nan
        with pytest.raises(SafetyError, match="left_drx"):
            robot.command(bad)
        np.testing.assert_array_equal(robot.data.ctrl, ctrl)


def test_damping_mode_gains_stop_tracking() -> None:
    with G1Robot(G1Config(action_mode=ActionMode.JOINT_POS)) as robot:
        obs = robot.reset()
        q0 = obs["state/joint_pos"].astype(np.float64)
        robot.set_gains(np.zeros(28), np.full(28, 2.0))  # kp 0: the servos only damp
        target = q0.copy()
        target[3] += 0.5  # left elbow
        for _ in range(10):
            robot.command(target)
        assert abs(robot.observe()["state/joint_pos"][3] - q0[3]) < 0.05
        with pytest.raises(ConfigError):
            robot.set_gains(np.full(28, -1.0), np.zeros(28))
