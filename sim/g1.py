"""Unitree G1 with two Dex3 hands in MuJoCo (Menagerie model), fixed base at a table: bimanual ee-delta or joints."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import mujoco
import numpy as np

from robot.core.errors import ConfigError
from robot.core.spec import ActionMode, ActionSpec, CameraSpec, EmbodimentSpec, JointSpec
from robot.core.types import Observation
from sim.assets import menagerie_dir
from sim.ik import MultiSiteIK
from sim.mujoco_robot import MarkerSpec, MujocoRobot, ObjectSpec, look_at_quat

SIDES = ("left", "right")

G1_MOTORS: tuple[tuple[int, str], ...] = tuple(enumerate((
    "left_hip_pitch_joint", "left_hip_roll_joint", "left_hip_yaw_joint", "left_knee_joint",
    "left_ankle_pitch_joint", "left_ankle_roll_joint",
    "right_hip_pitch_joint", "right_hip_roll_joint", "right_hip_yaw_joint", "right_knee_joint",
    "right_ankle_pitch_joint", "right_ankle_roll_joint",
    "waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint",
    "left_shoulder_pitch_joint", "left_shoulder_roll_joint", "left_shoulder_yaw_joint", "left_elbow_joint",
    "left_wrist_roll_joint", "left_wrist_pitch_joint", "left_wrist_yaw_joint",
    "right_shoulder_pitch_joint", "right_shoulder_roll_joint", "right_shoulder_yaw_joint", "right_elbow_joint",
    "right_wrist_roll_joint", "right_wrist_pitch_joint", "right_wrist_yaw_joint",
)))
"""Unitree G1 29-DoF body motors as (rt/lowcmd / rt/lowstate motor index, MJCF joint name)."""

# Unitree's Dex3-1 motor order: the left hand lists its middle finger before its index finger, the right hand (its
# mirror image) the index finger first. hardware/unitree_g1.py holds the same table for the wire (a test checks).
DEX3_FINGERS = {"left": ("thumb_0", "thumb_1", "thumb_2", "middle_0", "middle_1", "index_0", "index_1"),
                "right": ("thumb_0", "thumb_1", "thumb_2", "index_0", "index_1", "middle_0", "middle_1")}
DEX3_MOTORS: dict[str, tuple[tuple[int, str], ...]] = {
    side: tuple(enumerate(f"{side}_hand_{f}_joint" for f in DEX3_FINGERS[side])) for side in SIDES
}
"""Dex3-1 motors per hand as (rt/dex3/<side>/cmd / state motor index, MJCF joint name)."""

LEG_JOINTS = tuple(name for i, name in G1_MOTORS if i < 12)
WAIST_JOINTS = tuple(name for i, name in G1_MOTORS if 12 <= i < 15)
ARM_JOINTS = {"left": tuple(name for i, name in G1_MOTORS if 15 <= i < 22),
              "right": tuple(name for i, name in G1_MOTORS if 22 <= i < 29)}
HAND_JOINTS = {side: tuple(name for _, name in DEX3_MOTORS[side]) for side in SIDES}

# Arm posture at reset (shoulder pitch, roll, yaw, elbow, wrist roll, pitch, yaw), solved once by IK: palm
# sites at (0.27, +-0.18, 0.14) in the table frame, fingers pointing forward, palms facing each other.
HOME_ARM = {
    "left": (0.176, 0.288, 0.202, -0.361, -0.326, 0.234, -0.129),
    "right": (0.176, -0.288, -0.202, -0.361, 0.326, 0.234, 0.129),
}
# Dex3 synergy: closure 0 -> HAND_OPEN (fingers straight, thumb swung back out of the palm's way), 1 ->
# HAND_CLOSED (fingers curled onto the thumb); the fingers follow the closure linearly, the thumb after
# THUMB_DELAY. Left hand; the right hand is its mirror image: joints about the finger z axes change sign, the
# thumb's first joint (about the palm normal, y) does not.
HAND_OPEN_LEFT = (0.0, -0.7, 0.0, 0.0, 0.0, 0.0, 0.0)
HAND_CLOSED_LEFT = (0.0, 0.5, 1.1, -1.0, -1.0, -1.0, -1.0)
_MIRROR = np.array([1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0])
# The ee site: the grasp centre between thumb and fingers, in the wrist-yaw link frame (left hand; y mirrors).
EE_OFFSET_LEFT = (0.11, -0.04, 0.0)


THUMB_DELAY = 0.3
"""The thumb stays back until the closure passes this value, then closes over the rest of the range: small
closures flatten the fingers against a surface (a squeeze) without the thumb sweeping into it."""


def hand_pose(side: str, closure: float) -> np.ndarray:
    """The seven Dex3 joint targets of `side` for a synergy closure in [0, 1]."""
    sign = 1.0 if side == "left" else _MIRROR
    q_open, q_closed = np.asarray(HAND_OPEN_LEFT) * sign, np.asarray(HAND_CLOSED_LEFT) * sign
    c = float(closure)
    w = np.full(7, c)
    w[:3] = max(0.0, c - THUMB_DELAY) / (1.0 - THUMB_DELAY)
    return q_open + w * (q_closed - q_open)


@dataclass(frozen=True)
class G1Config:
    """G1 table-top sim settings."""

    action_mode: ActionMode = ActionMode.EE_DELTA
    """EE_DELTA: left (dx dy dz drx dry drz), right (same), left hand, right hand closure (14-D);
    JOINT_POS: absolute targets of [waist,] left arm, right arm, left hand, right hand joints (28-D or 31-D)."""
    control_hz: float = 20.0
    """Control rate (the physics runs at 500 Hz)."""
    max_translation: float = 0.03
    """Largest wrist translation per step (m) at action +-1."""
    max_rotation: float = 0.2
    """Largest wrist rotation per step (rad) at action +-1."""
    cameras: tuple[CameraSpec, ...] = ()
    """Policy cameras: 'head' (in the head), 'front' (across the table), 'left_wrist', 'right_wrist'."""
    fast_render: bool = True
    """Shadows/reflections/multisampling off (about 10x faster on CPU)."""
    ik_damping: float = 0.02
    """Damped least-squares damping for the bimanual IK (the G1's short arms have small Jacobian singular
    values: 0.05 leaves a fifth of each commanded step undone)."""
    workspace_low: tuple[float, float, float] = (0.12, -0.5, 0.005)
    """Each hand's IK target is clipped into this box (m, world frame, table top at z = 0) before sending."""
    workspace_high: tuple[float, float, float] = (0.7, 0.5, 0.5)
    """Upper corner of the IK target box (m)."""
    freeze_waist: bool = True
    """Weld the waist (yaw, roll, pitch) at zero; False makes it part of the IK and of the joint action."""
    self_collision: bool = False
    """False: the robot collides with the scene and hand with hand only (faster); True: every robot geom."""
    arm_kp: float = 150.0
    """Position gain (Nm/rad) of the arm (and waist) servos, critically damped; Menagerie's 500 makes any
    squeeze against an object a stiff spring (millimetres decide between no grip and tens of newtons)."""
    gravity_compensation: bool = True
    """Cancel gravity on the robot's links (as the G1's feed-forward torque does) so softer arms do not sag."""
    base_pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Pelvis position (m) relative to the table-top frame (x toward the table, z up from its surface)."""
    table_height: float = 0.79
    """Table height (m): the floor lies this far below the table top (visual only; nothing rests on it)."""

    def __post_init__(self) -> None:
        if self.max_translation <= 0 or self.max_rotation <= 0:
            raise ConfigError("G1Config: max_translation and max_rotation must be > 0")
        if not all(lo < hi for lo, hi in zip(self.workspace_low, self.workspace_high, strict=True)):
            raise ConfigError(f"G1Config: workspace_low {self.workspace_low} must be < {self.workspace_high}")
        if self.arm_kp <= 0 or self.ik_damping <= 0:
            raise ConfigError(f"G1Config: arm_kp ({self.arm_kp}) and ik_damping ({self.ik_damping}) must be > 0")


class G1Robot(MujocoRobot):
    """Menagerie G1 + Dex3 hands with the pelvis welded in front of a table; legs removed, waist optional.

    Joint order (state/joint_pos, JOINT_POS actions): [waist yaw, roll, pitch,] left arm 7, right arm 7 (G1
    motor order 15-28), left hand 7, right hand 7 (Dex3 motor order). `G1_MOTORS` and `DEX3_MOTORS` give the
    Unitree motor index of every joint; `motor_state()` reports all 29 body motors as rt/lowstate would.
    """

    def __init__(
        self,
        config: G1Config | None = None,
        *,
        objects: tuple[ObjectSpec, ...] = (),
        markers: tuple[MarkerSpec, ...] = (),
    ) -> None:
        self.config = c = config or G1Config()
        super().__init__(objects=objects, markers=markers, cameras=c.cameras, control_hz=c.control_hz,
                         fast_render=c.fast_render)
        self.body_joints = (() if c.freeze_waist else WAIST_JOINTS) + ARM_JOINTS["left"] + ARM_JOINTS["right"]
        self.hand_joints = HAND_JOINTS["left"] + HAND_JOINTS["right"]
        self.joint_names = self.body_joints + self.hand_joints
        lim = _joint_limits()
        joints = tuple(JointSpec(n, *lim[n]) for n in self.joint_names)
        t, r = c.max_translation, c.max_rotation
        names = tuple(f"{s}_{d}" for s in SIDES for d in ("dx", "dy", "dz", "drx", "dry", "drz"))
        self.ee_action = ActionSpec(ActionMode.EE_DELTA, (*names, "left_hand", "right_hand"),
                                    (-t, -t, -t, -r, -r, -r) * 2 + (0.0, 0.0), (t, t, t, r, r, r) * 2 + (1.0, 1.0))
        """The 14-D ee-delta layout, whatever the action mode (experts plan in it; see joint_command_for)."""
        if c.action_mode is ActionMode.EE_DELTA:
            action = self.ee_action
        elif c.action_mode is ActionMode.JOINT_POS:
            action = ActionSpec(ActionMode.JOINT_POS, self.joint_names, tuple(j.lower for j in joints),
                                tuple(j.upper for j in joints))
        else:
            raise ConfigError(f"G1Robot supports ee_delta and joint_pos actions, not {c.action_mode.value!r}")
        groups = {"left_arm": ARM_JOINTS["left"], "right_arm": ARM_JOINTS["right"],
                  "left_hand": HAND_JOINTS["left"], "right_hand": HAND_JOINTS["right"]}
        if not c.freeze_waist:
            groups["waist"] = WAIST_JOINTS
        self._spec = EmbodimentSpec(
            name="unitree_g1_dex3", joints=joints, action=action, groups=groups,
            ee_frames=("left_palm", "right_palm"), cameras=c.cameras, control_hz=c.control_hz,
        )
        self._home_body = np.concatenate([np.zeros(0 if c.freeze_waist else 3), HOME_ARM["left"], HOME_ARM["right"]])
        self._body_target = self._home_body.copy()
        self._closure = np.zeros(2)
        self._hand_target = np.concatenate([hand_pose(s, 0.0) for s in SIDES])

    @property
    def spec(self) -> EmbodimentSpec:
        """The G1 + Dex3 embodiment."""
        return self._spec

    # -- scene ---------------------------------------------------------------------------------
    def build_spec(self) -> mujoco.MjSpec:
        """Menagerie g1_with_hands.xml edited: fixed pelvis, no legs, table, palm sites and cameras."""
        c = self.config
        spec = mujoco.MjSpec.from_file(str(menagerie_dir("unitree_g1") / "g1_with_hands.xml"))
        spec.delete(spec.key("stand"))  # its qpos has the free base and the legs
        for s in list(spec.sensors):  # IMU sensors of a floating base: meaningless on a welded pelvis
            spec.delete(s)
        spec.delete(spec.joint("floating_base_joint"))
        spec.body("pelvis").pos = list(c.base_pos)
        # MuJoCo's multi-point convex collisions turn a hand wedged between the table and a box into NaN
        # accelerations within a few steps of random joint targets; one point per convex pair stays stable.
        spec.option.disableflags |= mujoco.mjtDisableBit.mjDSBL_MULTICCD
        frozen = set(LEG_JOINTS) | (set(WAIST_JOINTS) if c.freeze_waist else set())
        for side in SIDES:
            spec.delete(spec.body(f"{side}_hip_pitch_link"))  # the leg subtree; the base is welded anyway
        if c.freeze_waist:
            for j in WAIST_JOINTS:
                spec.delete(spec.joint(j))
        for a in list(spec.actuators):
            if a.name in frozen:
                spec.delete(a)
        body_set = set(self.body_joints)
        for a in spec.actuators:
            if a.name in body_set:
                a.gainprm[0] = c.arm_kp
                a.biasprm[1] = -c.arm_kp  # biasprm[2] keeps Menagerie's dampratio 1
        if c.gravity_compensation:
            for b in spec.bodies:
                if b.name != "world":
                    b.gravcomp = 1.0
        if not c.self_collision:
            self._collision_bits(spec)
        wb = spec.worldbody
        wb.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.35, 0.6, 0.02], pos=[0.5, 0.0, -0.02],
                    rgba=[0.6, 0.5, 0.4, 1.0])
        wb.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05], pos=[0, 0, -c.table_height],
                    rgba=[0.45, 0.45, 0.45, 1.0])
        wb.add_light(name="key", pos=[0.6, 0.0, 1.5], dir=[0, 0, -1], type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
                     diffuse=[0.6, 0.6, 0.6])
        for side in SIDES:
            off = np.array(EE_OFFSET_LEFT) * (1.0 if side == "left" else np.array([1.0, -1.0, 1.0]))
            hand = spec.body(f"{side}_wrist_yaw_link")
            hand.add_site(name=f"{side}_palm", pos=off.tolist(), size=[0.005, 0, 0], rgba=[1, 1, 0, 0], group=4)
            if any(cam.name == f"{side}_wrist" for cam in self.cameras):
                # Above the back of the hand looking along the fingers at the grasp centre.
                pos = np.array([0.02, 0.0, 0.06])
                look = off + np.array([0.06, 0.0, 0.0])
                hand.add_camera(name=f"{side}_wrist", pos=pos.tolist(), quat=look_at_quat(pos, look), fovy=90)
        if any(cam.name == "head" for cam in self.cameras):
            # Where the G1's head camera sits, pitched down at the table.
            torso = spec.body("torso_link")
            pos = np.array([0.08, 0.0, 0.44])
            torso.add_camera(name="head", pos=pos.tolist(), quat=look_at_quat(pos, np.array([0.45, 0.0, -0.05])),
                             fovy=75)
        pos = np.array([0.85, 0.75, 0.6])
        wb.add_camera(name="_render", pos=pos, quat=look_at_quat(pos, np.array([0.2, 0.0, 0.15])), fovy=50)
        spec.visual.global_.offwidth = 640
        spec.visual.global_.offheight = 480
        return spec

    @staticmethod
    def _collision_bits(spec: mujoco.MjSpec) -> None:
        """Robot geoms touch the scene (contype 1) and the other hand, never their own robot otherwise.

        Bits: scene 1; left hand 2; right hand 4; the rest of the robot 8. A pair collides when one's contype
        meets the other's conaffinity, so hands see each other and the scene, the torso sees only the scene.
        """
        for g in spec.geoms:
            if g.contype == 0 and g.conaffinity == 0:
                continue  # visual-only meshes
            body = g.parent.name
            if body.startswith("left_hand") or body == "left_wrist_yaw_link":
                g.contype, g.conaffinity = 2, 1 | 4
            elif body.startswith("right_hand") or body == "right_wrist_yaw_link":
                g.contype, g.conaffinity = 4, 1 | 2
            else:
                g.contype, g.conaffinity = 8, 1

    def add_scene_camera(self, spec: mujoco.MjSpec, cam: CameraSpec) -> None:
        """'front': across the table, facing the robot."""
        if cam.name != "front":
            raise ConfigError(
                f"unknown G1 camera {cam.name!r}; the G1 scene has 'head', 'front', 'left_wrist', 'right_wrist'"
            )
        pos = np.array([1.0, 0.0, 0.45])
        spec.worldbody.add_camera(name="front", pos=pos, quat=look_at_quat(pos, np.array([0.25, 0.0, 0.05])),
                                  fovy=50)

    def _on_compiled(self) -> None:
        model = self.model
        assert model is not None
        c = self.config

        def adr(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            jids = [model.joint(n).id for n in names]
            return (np.array([model.jnt_qposadr[j] for j in jids]), np.array([model.jnt_dofadr[j] for j in jids]),
                    np.array([model.actuator(n).id for n in names]))

        self._qadr, self._dadr, self._act = adr(self.joint_names)
        self._nb = len(self.body_joints)
        self._ik = MultiSiteIK(model, ("left_palm", "right_palm"), self.body_joints, damping=c.ik_damping)
        self._sites = self._ik.site_ids
        self._ws_lo = np.asarray(c.workspace_low, dtype=np.float64)
        self._ws_hi = np.asarray(c.workspace_high, dtype=np.float64)
        self._jlo = np.array([j.lower for j in self._spec.joints])
        self._jhi = np.array([j.upper for j in self._spec.joints])
        h_open = np.concatenate([hand_pose(s, 0.0) for s in SIDES])
        h_span = np.concatenate([hand_pose(s, 1.0) for s in SIDES]) - h_open
        self._h_open, self._h_span = h_open, h_span
        # Closure is read from the four finger joints of each hand, which follow it linearly (the thumb waits).
        self._finger = np.zeros(14)
        self._finger[[3, 4, 5, 6, 10, 11, 12, 13]] = 1.0
        fs = h_span * self._finger
        self._h_inv = 1.0 / np.array([fs[:7] @ fs[:7], fs[7:] @ fs[7:]])
        self._w = np.zeros(14)
        self._ctrl = np.zeros(len(self.joint_names))
        self._quat = np.zeros(4)
        self._delta = np.zeros((2, 6))
        sim_motors = [(i, model.joint(n).id) for i, n in G1_MOTORS if n in self.body_joints]
        self._motor_idx = np.array([i for i, _ in sim_motors])
        self._motor_qadr = np.array([model.jnt_qposadr[j] for _, j in sim_motors])
        self._motor_dadr = np.array([model.jnt_dofadr[j] for _, j in sim_motors])
        self._motor_act = np.array([model.actuator(model.joint(j).name).id for _, j in sim_motors])

    # -- state ---------------------------------------------------------------------------------
    def _robot_state(self, obs: Observation) -> None:
        data = self.data
        assert data is not None
        jp = data.qpos[self._qadr].astype(np.float32)
        obs["state/joint_pos"] = jp
        obs["state/joint_vel"] = data.qvel[self._dadr].astype(np.float32)
        pose = np.empty(14, np.float32)
        for i, sid in enumerate(self._sites):
            mujoco.mju_mat2Quat(self._quat, data.site_xmat[sid])
            pose[7 * i : 7 * i + 3] = data.site_xpos[sid]
            pose[7 * i + 3 : 7 * i + 7] = self._quat
        obs["state/ee_pose"] = pose
        obs["state/hand"] = self._closure_of(jp[self._nb :]).astype(np.float32)

    def _closure_of(self, q_hands: np.ndarray) -> np.ndarray:
        """Per-hand synergy closure that best explains 14 hand joint positions (least squares on the synergy)."""
        d = (q_hands - self._h_open) * self._h_span * self._finger
        return np.array([d[:7].sum(), d[7:].sum()]) * self._h_inv

    def _hand_targets(self, closure: np.ndarray) -> np.ndarray:
        """14 Dex3 joint targets for two synergy closures (the same map as hand_pose, without allocation churn)."""
        w = self._w
        w[0:7] = closure[0]
        w[7:14] = closure[1]
        w[0:3] = max(0.0, closure[0] - THUMB_DELAY) / (1.0 - THUMB_DELAY)
        w[7:10] = max(0.0, closure[1] - THUMB_DELAY) / (1.0 - THUMB_DELAY)
        return self._h_open + w * self._h_span

    def _observe_now(self) -> Observation:
        """Robot state, objects (pose and position relative to each palm), images; stamped with sim time."""
        _, data = self._require()
        obs: Observation = {}
        self._robot_state(obs)
        ee = obs["state/ee_pose"]
        left, right = ee[0:3], ee[7:10]
        for name, (qadr, _, _, _) in self._obj_qadr.items():
            p = data.qpos[qadr : qadr + 7].astype(np.float32)
            obs[f"state/{name}_pose"] = p
            # Object minus palm, per hand: what a grasp needs, easier to learn than two absolute positions.
            obs[f"state/{name}_rel_left"] = p[:3] - left
            obs[f"state/{name}_rel_right"] = p[:3] - right
        obs["time/state"] = np.array(data.time, dtype=np.float64)
        for cam in self.cameras:
            obs[f"image/{cam.name}"] = self._render(cam.name, cam.height, cam.width)
            obs[f"time/{cam.name}"] = np.array(data.time, dtype=np.float64)
        return obs

    def motor_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q, dq, tau) of the 29 G1 body motors in Unitree order; removed or welded joints read 0."""
        _, data = self._require()
        q, dq, tau = (np.zeros(len(G1_MOTORS)) for _ in range(3))
        q[self._motor_idx] = data.qpos[self._motor_qadr]
        dq[self._motor_idx] = data.qvel[self._motor_dadr]
        tau[self._motor_idx] = data.actuator_force[self._motor_act]
        return q, dq, tau

    def hand_state(self, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q, dq, tau) of one Dex3 hand's 7 motors in Unitree order."""
        if side not in SIDES:
            raise ConfigError(f"hand side must be 'left' or 'right', got {side!r}")
        _, data = self._require()
        k = self._nb + (0 if side == "left" else 7)
        return (data.qpos[self._qadr[k : k + 7]].copy(), data.qvel[self._dadr[k : k + 7]].copy(),
                data.actuator_force[self._act[k : k + 7]].copy())

    def set_gains(self, kp: np.ndarray, kd: np.ndarray) -> None:
        """Per-joint PD gains (spec.joints order) of the position servos; kp = 0 with kd > 0 is damping mode."""
        model, _ = self._require()
        kp, kd = np.broadcast_to(kp, self._act.shape), np.broadcast_to(kd, self._act.shape)
        if np.any(kp < 0) or np.any(kd < 0) or not (np.all(np.isfinite(kp)) and np.all(np.isfinite(kd))):
            raise ConfigError("G1Robot.set_gains: kp and kd must be finite and >= 0")
        model.actuator_gainprm[self._act, 0] = kp
        model.actuator_biasprm[self._act, 1] = -kp
        model.actuator_biasprm[self._act, 2] = -kd

    def reset(self, state: dict[str, np.ndarray] | None = None) -> Observation:
        """Home posture (or state['joint_pos'] in spec.joints order), hands open, objects at rest."""
        model, data = self._require()
        mujoco.mj_resetData(model, data)
        if state is not None and "joint_pos" in state:
            q = np.asarray(state["joint_pos"], dtype=np.float64)
            if q.shape != (len(self.joint_names),):
                raise ConfigError(f"reset joint_pos has shape {q.shape}, expected ({len(self.joint_names)},)")
            data.qpos[self._qadr] = q
            self._body_target = q[: self._nb].copy()
            self._hand_target = q[self._nb :].copy()
            self._closure = np.clip(self._closure_of(q[self._nb :]), 0.0, 1.0)
        else:
            self._body_target = self._home_body.copy()
            self._hand_target = self._h_open.copy()
            self._closure = np.zeros(2)
            data.qpos[self._qadr[: self._nb]] = self._body_target
            data.qpos[self._qadr[self._nb :]] = self._hand_target
        self._apply_ctrl()
        mujoco.mj_forward(model, data)
        return self.observe()

    # -- commands ------------------------------------------------------------------------------
    def hold_command(self) -> np.ndarray:
        """Zero wrist deltas with the hands as commanded (ee mode), or the current joint targets."""
        if self._spec.action.mode is ActionMode.EE_DELTA:
            return np.concatenate([np.zeros(12), self._closure])
        return np.concatenate([self._body_target, self._hand_target])

    def command(self, cmd: np.ndarray) -> np.ndarray:
        """Clip to the action bounds (and workspace), solve the bimanual IK (ee mode), set targets, step."""
        a = self._spec.action
        cmd = np.minimum(np.maximum(self.check_finite(cmd, self._spec), a.low_array), a.high_array)
        if a.mode is ActionMode.EE_DELTA:
            sent = self._ee_delta(cmd)
        else:
            q = np.minimum(np.maximum(cmd, self._jlo), self._jhi)
            self._body_target = q[: self._nb]
            self._hand_target = q[self._nb :]
            sent = q
        self._apply_ctrl()
        self.step_physics()
        return sent

    def _apply_ctrl(self) -> None:
        _, data = self._require()
        ctrl = self._ctrl
        ctrl[: self._nb] = self._body_target
        ctrl[self._nb :] = self._hand_target
        data.ctrl[self._act] = ctrl

    def target_positions(self) -> np.ndarray:
        """(2, 3) palm positions of the current joint targets (where the arms are driven, not where they are)."""
        self._require()
        return self._ik.site_positions(self._body_target)

    def solve_ee_delta(self, cmd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Body joint targets and clipped position deltas (2, 3) for a physical ee-delta command, no side effects.

        The IK runs on the joint *targets* (not the measured pose), so a zero delta holds exactly and residual
        tracking error is not integrated; the target never leads the measured joints by more than 0.3 rad
        (no wind-up against contact).
        """
        _, data = self._require()
        delta = self._delta
        delta[0] = cmd[0:6]
        delta[1] = cmd[6:12]
        q_new, dpos = self._ik.step(self._body_target, delta, self._home_body, self._ws_lo, self._ws_hi)
        meas = data.qpos[self._qadr[: self._nb]]
        np.maximum(q_new, meas - 0.3, out=q_new)
        np.minimum(q_new, meas + 0.3, out=q_new)
        return q_new, dpos

    def joint_command_for(self, ee_cmd: np.ndarray) -> np.ndarray:
        """The joint-position command (spec.joints order) that a physical ee-delta command would set now.

        No side effects: scripted experts plan in the ee-delta space and use this to act on a JOINT_POS robot.
        """
        cmd = np.minimum(np.maximum(np.asarray(ee_cmd, dtype=np.float64), self.ee_action.low_array),
                         self.ee_action.high_array)
        q_body, _ = self.solve_ee_delta(cmd)
        return np.concatenate([q_body, self._hand_targets(cmd[12:14])])

    def _ee_delta(self, cmd: np.ndarray) -> np.ndarray:
        q_new, dpos = self.solve_ee_delta(cmd)
        self._body_target = q_new
        self._closure = cmd[12:14].copy()
        self._hand_target = self._hand_targets(self._closure)
        sent = cmd.copy()
        sent[0:3] = dpos[0]
        sent[6:9] = dpos[1]
        return sent


@functools.cache
def _joint_limits() -> dict[str, tuple[float, float, float, float]]:
    """(lower, upper, max velocity, max effort) of every G1 + Dex3 hinge, read from the Menagerie model.

    The MJCF states no velocity limits, so none are claimed here (inf); the hardware node sets its own.
    """
    spec = mujoco.MjSpec.from_file(str(menagerie_dir("unitree_g1") / "g1_with_hands.xml"))
    return {
        j.name: (float(j.range[0]), float(j.range[1]), float("inf"), float(j.actfrcrange[1]))
        for j in spec.joints
        if j.type == mujoco.mjtJoint.mjJNT_HINGE
    }
