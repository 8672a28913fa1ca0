"""Unitree G1 + Dex3-1 wire facts (motor order, joint names, limits, mode bytes) and the humanoid node's topics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIDES = ("left", "right")

BODY_JOINTS: tuple[str, ...] = (
    "left_hip_pitch_joint", "left_hip_roll_joint", "left_hip_yaw_joint", "left_knee_joint",
    "left_ankle_pitch_joint", "left_ankle_roll_joint",
    "right_hip_pitch_joint", "right_hip_roll_joint", "right_hip_yaw_joint", "right_knee_joint",
    "right_ankle_pitch_joint", "right_ankle_roll_joint",
    "waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint",
    "left_shoulder_pitch_joint", "left_shoulder_roll_joint", "left_shoulder_yaw_joint", "left_elbow_joint",
    "left_wrist_roll_joint", "left_wrist_pitch_joint", "left_wrist_yaw_joint",
    "right_shoulder_pitch_joint", "right_shoulder_roll_joint", "right_shoulder_yaw_joint", "right_elbow_joint",
    "right_wrist_roll_joint", "right_wrist_pitch_joint", "right_wrist_yaw_joint",
)
"""The G1 29-DoF body: joint name (Unitree URDF / Menagerie) of rt/lowcmd and rt/lowstate motor index i."""

LEGS = range(0, 12)
"""Leg motor indices (held at their measured pose: the node is for fixed-base, table-top work)."""
WAIST = range(12, 15)
"""Waist motor indices (yaw, roll, pitch)."""
ARMS = {"left": range(15, 22), "right": range(22, 29)}
"""Arm motor indices per side (shoulder pitch, roll, yaw, elbow, wrist roll, pitch, yaw)."""

HAND_JOINTS: dict[str, tuple[str, ...]] = {
    # Unitree's Dex3-1 motor order (xr_teleoperate's Dex3_1_{Left,Right}_JointIndex): the left hand lists its
    # middle finger before its index finger, the right hand (its mirror image) the index finger first.
    "left": tuple(f"left_hand_{f}_joint" for f in ("thumb_0", "thumb_1", "thumb_2", "middle_0", "middle_1",
                                                   "index_0", "index_1")),
    "right": tuple(f"right_hand_{f}_joint" for f in ("thumb_0", "thumb_1", "thumb_2", "index_0", "index_1",
                                                     "middle_0", "middle_1")),
}
"""Joint name of rt/dex3/<side>/cmd and /state motor index i."""

# Position limits (rad) from Unitree's g1_29dof_with_hand URDF (as the Menagerie model carries them).
_LEG = ((-2.5307, 2.8798), (-0.5236, 2.9671), (-2.7576, 2.7576), (-0.087267, 2.8798), (-0.87267, 0.5236),
        (-0.2618, 0.2618))
_ARM_LEFT = ((-3.0892, 2.6704), (-1.5882, 2.2515), (-2.618, 2.618), (-1.0472, 2.0944), (-1.97222, 1.97222),
             (-1.61443, 1.61443), (-1.61443, 1.61443))
_HAND_LEFT = ((-1.0472, 1.0472), (-0.724312, 1.0472), (0.0, 1.74533), (-1.5708, 0.0), (-1.74533, 0.0),
              (-1.5708, 0.0), (-1.74533, 0.0))


def _mirror(lo_hi: tuple[float, float], flip: bool) -> tuple[float, float]:
    return (-lo_hi[1], -lo_hi[0]) if flip else lo_hi


BODY_LIMITS: np.ndarray = np.array(
    list(_LEG)
    + [_mirror(r, i in (1,)) for i, r in enumerate(_LEG)]  # the right hip roll mirrors the left one
    + [(-2.618, 2.618), (-0.52, 0.52), (-0.52, 0.52)]
    + list(_ARM_LEFT)
    + [_mirror(r, i == 1) for i, r in enumerate(_ARM_LEFT)],  # the right shoulder roll mirrors the left one
    dtype=np.float64,
)
"""(29, 2) lower/upper position limit of every body motor, in motor order."""

HAND_LIMITS: dict[str, np.ndarray] = {
    "left": np.array(_HAND_LEFT, dtype=np.float64),
    # The right hand mirrors the left: thumb_0 is symmetric, every other joint flips sign.
    "right": np.array([_HAND_LEFT[0]] + [_mirror(_HAND_LEFT[i], True) for i in (1, 2, 5, 6, 3, 4)],
                      dtype=np.float64),
}
"""(7, 2) position limits per Dex3 hand, in its motor order."""

ARM_MIRROR = np.array([1.0, -1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
"""Right arm = ARM_MIRROR * left arm, joint by joint: the roll and yaw axes flip across the sagittal plane."""


def mirror_hand(left: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """The right Dex3's motor values mirroring the left's: thumb_0 keeps its sign, the rest flip, and the right hand
    lists its index finger before its middle finger."""
    q = np.asarray(left, dtype=np.float64)
    return np.array([q[0], -q[1], -q[2], -q[5], -q[6], -q[3], -q[4]])


MOTOR_ENABLE = 1
"""MotorCmd.mode of an enabled G1 body motor (0 disables it)."""


def dex3_mode(motor: int, status: int = 1, timeout: bool = False) -> int:
    """The Dex3 MotorCmd.mode byte: motor id (bits 0-3), status (bits 4-6; 1 = enabled), timeout flag (bit 7)."""
    return (motor & 0x0F) | ((status & 0x07) << 4) | (int(timeout) << 7)


@dataclass(frozen=True)
class G1Topics:
    """The Unitree G1's own DDS topics (absolute: a node namespace never moves the robot's topics)."""

    lowstate: str = "/lowstate"
    """unitree_hg LowState on rt/lowstate (the robot publishes it at 500 Hz, with a CRC)."""
    lowcmd: str = "/lowcmd"
    """unitree_hg LowCmd on rt/lowcmd (with the CRC, mode_machine echoed from the state)."""
    hand_cmd: str = "/dex3/{side}/cmd"
    """unitree_hg HandCmd of one Dex3 hand (rt/dex3/left/cmd, rt/dex3/right/cmd)."""
    hand_state: str = "/dex3/{side}/state"
    """unitree_hg HandState of one Dex3 hand."""

    def hand(self, side: str) -> tuple[str, str]:
        """(command, state) topics of one hand."""
        return self.hand_cmd.format(side=side), self.hand_state.format(side=side)


@dataclass(frozen=True)
class HumanoidTopics:
    """Topics between the humanoid node and its clients (relative: a namespace or remap moves them)."""

    joint_states: str = "joint_states"
    """sensor_msgs/JointState of the 29 body and 14 hand joints, named as in the URDF."""
    joint_command: str = "joint_position_controller/commands"
    """std_msgs/Float64MultiArray joint targets (rad) of the commanded joints, in the order ~/status lists."""
    object_pose: str = "objects/{name}/pose"
    """geometry_msgs/PoseStamped of a tracked object (a mocap or vision tracker; the sim node in sim)."""
    status: str = "humanoid/status"
    """std_msgs/String JSON (latched): state, fault, commanded joints, counters."""
    arm: str = "humanoid/arm"
    """std_msgs/String JSON {"id"}: re-arm after a fault (hold the measured pose, take targets again)."""
    reset: str = "realrl/reset"
    """std_msgs/String JSON reset request {"id", "kind": "robot"|"task", ...} (realrl's reset protocol)."""
    reset_done: str = "realrl/reset_done"
    """std_msgs/String JSON {"id", "stamp"[, "error"]} (latched): the request is done."""
    driver_reset: str = "driver/realrl/reset"
    """Where the node forwards reset requests to a robot that can reset itself (the sim node posing as a G1)."""
    driver_reset_done: str = "driver/realrl/reset_done"
    """Where that robot acknowledges them."""

    def object(self, name: str) -> str:
        """The pose topic of one tracked object."""
        return self.object_pose.format(name=name)
