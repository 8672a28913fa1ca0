"""Damped least-squares differential IK for one or more end-effector sites over a chosen set of joints."""

from __future__ import annotations

import mujoco
import numpy as np

from robot.core.errors import ConfigError


class MultiSiteIK:
    """One damped least-squares step that moves several sites by world-frame pose deltas at once.

    The sites share one stacked Jacobian (6 rows per site) over the controlled dofs, so joints that move
    more than one site (a humanoid's waist) are solved jointly, and independent chains (two arms on a fixed
    torso) come out as two independent solutions. A pull toward a home posture acts in the damped null space
    so redundant joints (a 7-DoF arm's elbow) do not drift. Everything is preallocated: at this size numpy's
    per-call overhead, not the math, is what a control step pays.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        sites: tuple[str, ...],
        joints: tuple[str, ...],
        *,
        damping: float = 0.05,
        home_gain: float = 0.05,
    ) -> None:
        if not sites:
            raise ConfigError("MultiSiteIK needs at least one site")
        for j in joints:
            jid = model.joint(j).id
            if model.jnt_type[jid] not in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
                raise ConfigError(f"MultiSiteIK controls 1-dof joints only; {j!r} is not one")
        self.model = model
        self.data = mujoco.MjData(model)  # a scratch copy: solving never touches the simulated state
        self.site_ids = np.array([model.site(s).id for s in sites], dtype=np.int64)
        jids = [model.joint(j).id for j in joints]
        self.qadr = np.array([model.jnt_qposadr[j] for j in jids], dtype=np.int64)
        self.dadr = np.array([model.jnt_dofadr[j] for j in jids], dtype=np.int64)
        self.lower = model.jnt_range[jids, 0].copy()
        self.upper = model.jnt_range[jids, 1].copy()
        self.home_gain = home_gain
        k, n = len(sites), len(joints)
        self._site_list = [int(i) for i in self.site_ids]
        self._jac_full = np.zeros((6 * k, model.nv))  # (6k, nv): row blocks are C-contiguous, as mj_jacSite needs
        self._jac = np.zeros((6 * k, n))
        self._err = np.zeros(6 * k)
        self._x = np.zeros(6 * k)
        self._damp = damping**2 * np.eye(6 * k)
        self._eps = 1e-6 * np.eye(6 * k)

    def site_positions(self, q: np.ndarray) -> np.ndarray:
        """(k, 3) world positions of the sites at joint configuration `q` (controlled joints, in order)."""
        d = self.data
        d.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, d)
        return d.site_xpos[self.site_ids].copy()

    def step(
        self,
        q: np.ndarray,
        delta: np.ndarray,
        home: np.ndarray,
        ws_low: np.ndarray,
        ws_high: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """New joint configuration moving each site by `delta` (k x 6: dx dy dz drx dry drz, world frame).

        Each site's target position is clipped into [ws_low, ws_high] first; returns (q_new clipped to the
        joint limits, the position deltas actually asked for after that clip, shape (k, 3)).
        """
        model, d = self.model, self.data
        d.qpos[self.qadr] = q
        mujoco.mj_kinematics(model, d)
        mujoco.mj_comPos(model, d)  # the Jacobian needs the com-based frames
        pos0 = d.site_xpos[self.site_ids]  # (k, 3), a contiguous copy
        target = pos0 + delta[:, :3]
        np.maximum(target, ws_low, out=target)
        np.minimum(target, ws_high, out=target)
        target -= pos0
        err = self._err.reshape(-1, 6)
        err[:, :3] = target
        # The target orientation is the commanded world-frame rotation applied to the current one, so the
        # orientation error is exactly that rotation vector.
        err[:, 3:] = delta[:, 3:]
        full = self._jac_full
        for i, sid in enumerate(self._site_list):
            mujoco.mj_jacSite(model, d, full[6 * i : 6 * i + 3], full[6 * i + 3 : 6 * i + 6], sid)
        jac = self._jac
        np.take(full, self.dadr, axis=1, out=jac)
        # dq = J^T (J J^T + l^2 I)^-1 err + (I - J^T (J J^T + e I)^-1 J) b, with b the pull toward home. The
        # projector uses a tiny e, not the task damping l^2: with l^2 a fraction l^2 / (s^2 + l^2) of the pull
        # leaks into the task along weak directions (s small), and a held grasp creeps open step by step.
        # MuJoCo's small dense Cholesky costs less than numpy's solve, whose call overhead dominates here.
        jjt = jac @ jac.T
        m = jjt + self._damp
        mujoco.mju_cholFactor(m, 0.0)
        mujoco.mju_cholSolve(self._x, m, self._err)
        q_new = q + jac.T @ self._x
        bias = self.home_gain * (home - q)
        jjt += self._eps
        mujoco.mju_cholFactor(jjt, 0.0)
        mujoco.mju_cholSolve(self._x, jjt, jac @ bias)
        bias -= jac.T @ self._x
        q_new += bias
        np.maximum(q_new, self.lower, out=q_new)
        np.minimum(q_new, self.upper, out=q_new)
        return q_new, target
