"""Franka Panda in MuJoCo (Menagerie model): ee-delta actions through differential IK, or joint targets."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from robot.core.errors import ConfigError
from robot.core.spec import ActionMode, ActionSpec, CameraSpec, EmbodimentSpec, JointSpec
from robot.core.types import Observation
from sim.assets import menagerie_dir
from sim.mujoco_robot import MarkerSpec, MujocoRobot, ObjectSpec

ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 8))
HOME_Q = np.array([0.0, 0.1, 0.0, -2.2, 0.0, 2.3, 0.785398])
FINGER_OPEN = 0.04
_ARM_LOW = (-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973)
_ARM_HIGH = (2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973)
_ARM_VEL = (2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61)
_ARM_EFFORT = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)


@dataclass(frozen=True)
class FrankaConfig:
    """Franka Panda sim settings."""

    action_mode: ActionMode = ActionMode.EE_DELTA
    """EE_DELTA: (dx, dy, dz, drx, dry, drz, gripper); JOINT_POS: (q1..q7, gripper). Gripper 0 open, 1 closed."""
    control_hz: float = 20.0
    """Control rate (the physics runs at 500 Hz)."""
    max_translation: float = 0.03
    """Largest end-effector translation per step (m) at action +-1."""
    max_rotation: float = 0.2
    """Largest end-effector rotation per step (rad) at action +-1."""
    cameras: tuple[CameraSpec, ...] = ()
    """Policy cameras: 'front' (fixed) and/or 'wrist' (on the hand)."""
    fast_render: bool = True
    """Shadows/reflections/multisampling off (about 10x faster on CPU)."""
    ik_damping: float = 0.05
    """Damped least-squares damping for the IK."""
    workspace_low: tuple[float, float, float] = (0.15, -0.5, 0.005)
    """The IK target is clipped into this box (m) before anything is sent."""
    workspace_high: tuple[float, float, float] = (0.85, 0.5, 0.7)
    """Upper corner of the IK target box (m)."""


class FrankaRobot(MujocoRobot):
    """Menagerie Panda with the hand; TCP site `ee` between the fingertips."""

    def __init__(
        self,
        config: FrankaConfig | None = None,
        *,
        objects: tuple[ObjectSpec, ...] = (),
        markers: tuple[MarkerSpec, ...] = (),
    ) -> None:
        self.config = config or FrankaConfig()
        super().__init__(
            objects=objects, markers=markers, cameras=self.config.cameras, control_hz=self.config.control_hz,
            fast_render=self.config.fast_render,
        )
        c = self.config
        arm = [
            JointSpec(n, lo, hi, v, e)
            for n, lo, hi, v, e in zip(ARM_JOINTS, _ARM_LOW, _ARM_HIGH, _ARM_VEL, _ARM_EFFORT, strict=True)
        ]
        joints = (*arm, JointSpec("finger_joint1", 0.0, FINGER_OPEN, 0.2, 100.0))
        if c.action_mode is ActionMode.EE_DELTA:
            t, r = c.max_translation, c.max_rotation
            action = ActionSpec(
                ActionMode.EE_DELTA, ("dx", "dy", "dz", "drx", "dry", "drz", "gripper"),
                (-t, -t, -t, -r, -r, -r, 0.0), (t, t, t, r, r, r, 1.0),
            )
        else:
            action = ActionSpec(
                ActionMode.JOINT_POS, (*ARM_JOINTS, "gripper"),
                (*_ARM_LOW, 0.0), (*_ARM_HIGH, 1.0),
            )
        self._spec = EmbodimentSpec(
            name="franka_panda", joints=joints, action=action,
            groups={"arm": ARM_JOINTS, "gripper": ("finger_joint1",)}, ee_frames=("ee",),
            cameras=c.cameras, control_hz=c.control_hz,
        )
        self._q_target = HOME_Q.copy()
        self._grip = 0.0

    @property
    def spec(self) -> EmbodimentSpec:
        """The Panda embodiment."""
        return self._spec

    def build_spec(self) -> mujoco.MjSpec:
        """Menagerie panda.xml + floor, light, TCP site and wrist camera."""
        spec = mujoco.MjSpec.from_file(str(menagerie_dir("franka_emika_panda") / "panda.xml"))
        spec.delete(spec.key("home"))  # its qpos has no room for task objects; homing is done in reset()
        wb = spec.worldbody
        wb.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05], rgba=[0.55, 0.55, 0.5, 1])
        wb.add_light(name="key", pos=[0.5, 0.0, 1.5], dir=[0, 0, -1], type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
                     diffuse=[0.6, 0.6, 0.6])
        hand = spec.body("hand")
        hand.add_site(name="ee", pos=[0.0, 0.0, 0.1034], size=[0.005, 0, 0], rgba=[1, 1, 0, 0], group=4)
        if any(c.name == "wrist" for c in self.cameras):
            # Behind the fingers, looking along the hand's +z (cameras look down their -z).
            hand.add_camera(name="wrist", pos=[0.07, 0.0, 0.02], quat=[0.0, 0.9848, 0.0, 0.1736], fovy=80)
        spec.visual.global_.offwidth = 640
        spec.visual.global_.offheight = 480
        return spec

    def _on_compiled(self) -> None:
        model = self.model
        assert model is not None
        qadr = [int(model.jnt_qposadr[model.joint(n).id]) for n in ARM_JOINTS]
        dadr = [int(model.jnt_dofadr[model.joint(n).id]) for n in ARM_JOINTS]
        # The arm joints are contiguous in Menagerie's panda; slices are much cheaper than fancy indexing.
        if qadr != list(range(qadr[0], qadr[0] + 7)) or dadr != list(range(dadr[0], dadr[0] + 7)):
            raise ConfigError("panda arm joints are not contiguous in the compiled model; check the MJCF")
        self._qadr = slice(qadr[0], qadr[0] + 7)
        self._dadr = slice(dadr[0], dadr[0] + 7)
        self._f1 = model.jnt_qposadr[model.joint("finger_joint1").id]
        self._f2 = model.jnt_qposadr[model.joint("finger_joint2").id]
        self._f1d = model.jnt_dofadr[model.joint("finger_joint1").id]
        self._site = model.site("ee").id
        self._lo = model.jnt_range[[model.joint(n).id for n in ARM_JOINTS], 0].copy()
        self._hi = model.jnt_range[[model.joint(n).id for n in ARM_JOINTS], 1].copy()
        self._ik = mujoco.MjData(model)
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self._jac = np.zeros((6, 7))
        self._quat = np.zeros(4)
        self._x = np.zeros(6)
        self._err = np.zeros(6)
        self._damp_eye = self.config.ik_damping**2 * np.eye(6)
        self._ws_lo = np.asarray(self.config.workspace_low, dtype=np.float64)
        self._ws_hi = np.asarray(self.config.workspace_high, dtype=np.float64)

    # -- state ---------------------------------------------------------------------------------
    def _robot_state(self, obs: Observation) -> None:
        data = self.data
        assert data is not None
        qpos, qvel = data.qpos, data.qvel
        jp, jv, pose = np.empty(8, np.float32), np.empty(8, np.float32), np.empty(7, np.float32)
        jp[:7], jp[7] = qpos[self._qadr], qpos[self._f1]
        jv[:7], jv[7] = qvel[self._dadr], qvel[self._f1d]
        mujoco.mju_mat2Quat(self._quat, data.site_xmat[self._site])
        pose[:3], pose[3:] = data.site_xpos[self._site], self._quat
        obs["state/joint_pos"], obs["state/joint_vel"], obs["state/ee_pose"] = jp, jv, pose
        obs["state/gripper"] = np.array([1.0 - (qpos[self._f1] + qpos[self._f2]) / (2 * FINGER_OPEN)], np.float32)

    def reset(self, state: dict[str, np.ndarray] | None = None) -> Observation:
        """Home (or state['joint_pos']), gripper open, objects at rest."""
        model, data = self._require()
        mujoco.mj_resetData(model, data)
        q = HOME_Q if state is None or "joint_pos" not in state else np.asarray(state["joint_pos"])[:7]
        data.qpos[self._qadr] = q
        data.qpos[self._f1] = data.qpos[self._f2] = FINGER_OPEN
        self._q_target = np.array(q, dtype=np.float64)
        self._grip = 0.0
        self._apply_ctrl()
        mujoco.mj_forward(model, data)
        return self.observe()

    # -- commands ------------------------------------------------------------------------------
    def hold_command(self) -> np.ndarray:
        """Zero delta (ee mode) or the current joint targets, with the gripper as it is."""
        if self._spec.action.mode is ActionMode.EE_DELTA:
            return np.array([0.0] * 6 + [self._grip])
        return np.append(self._q_target, self._grip)

    def command(self, cmd: np.ndarray) -> np.ndarray:
        """Clip to the action bounds and the workspace, solve IK (ee mode), set actuator targets, step."""
        a = self._spec.action
        cmd = np.minimum(np.maximum(self.check_finite(cmd, self._spec), a.low_array), a.high_array)
        if a.mode is ActionMode.EE_DELTA:
            sent = self._ee_delta(cmd)
        else:
            self._q_target = np.clip(cmd[:7], self._lo, self._hi)
            sent = np.append(self._q_target, cmd[7])
        self._grip = float(sent[-1])
        self._apply_ctrl()
        self.step_physics()
        return sent

    def _apply_ctrl(self) -> None:
        _, data = self._require()
        data.ctrl[:7] = self._q_target
        data.ctrl[7] = 255.0 * (1.0 - self._grip)

    def target_position(self) -> np.ndarray:
        """TCP position of the current joint targets (where the arm is being driven, not where it is)."""
        model, _ = self._require()
        self._ik.qpos[self._qadr] = self._q_target
        mujoco.mj_kinematics(model, self._ik)
        return self._ik.site_xpos[self._site].copy()

    def _ee_delta(self, cmd: np.ndarray) -> np.ndarray:
        """Move the commanded TCP pose by the delta with one damped least-squares IK step.

        The IK runs on the joint *targets* (not the measured pose), so a zero delta holds exactly, the arm
        does not sag further under gravity between steps, and any residual IK error is corrected next step.
        This runs every control step: it works in place on preallocated arrays, since numpy's per-call
        overhead, not the 7-DoF math, is what it costs.
        """
        model, data = self._require()
        d, q = self._ik, self._q_target
        d.qpos[self._qadr] = q
        mujoco.mj_kinematics(model, d)
        mujoco.mj_comPos(model, d)  # the Jacobian needs the com-based frames
        pos0 = d.site_xpos[self._site]
        err = self._err
        pos_err = err[:3]
        np.add(pos0, cmd[:3], out=pos_err)
        np.maximum(pos_err, self._ws_lo, out=pos_err)
        np.minimum(pos_err, self._ws_hi, out=pos_err)
        pos_err -= pos0
        # The target orientation is the commanded world-frame rotation applied to the current target, so
        # the world-frame orientation error is exactly that rotation vector.
        err[3:] = cmd[3:6]
        mujoco.mj_jacSite(model, d, self._jacp, self._jacr, self._site)
        jac = self._jac
        jac[:3] = self._jacp[:, self._dadr]
        jac[3:] = self._jacr[:, self._dadr]
        # dq = J^T (J J^T + l^2 I)^-1 (err - J b) + b: damped least squares toward the target, with a pull b
        # toward home in the (damped) null space so the elbow does not drift. MuJoCo's 6x6 Cholesky costs
        # less than numpy's solve, whose call overhead dominates at this size.
        m = jac @ jac.T
        m += self._damp_eye
        mujoco.mju_cholFactor(m, 0.0)
        bias = 0.05 * (HOME_Q - q)
        x = self._x
        mujoco.mju_cholSolve(x, m, err - jac @ bias)
        q_new = q + jac.T @ x
        q_new += bias
        np.maximum(q_new, self._lo, out=q_new)
        np.minimum(q_new, self._hi, out=q_new)
        # Never let the target run more than 0.3 rad ahead of the measured joints (no wind-up after contact).
        meas = data.qpos[self._qadr]
        np.maximum(q_new, meas - 0.3, out=q_new)
        np.minimum(q_new, meas + 0.3, out=q_new)
        self._q_target = q_new
        sent = cmd.copy()
        sent[:3] = pos_err
        return sent
