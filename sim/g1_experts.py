"""Scripted bimanual experts for the G1 tasks, with noise and skill knobs and DART-style clean labels."""

from __future__ import annotations

import enum
import math

import numpy as np

from robot.core.spec import ActionMode
from robot.core.types import Observation
from sim.experts import ScriptedExpert
from sim.g1 import G1Robot
from sim.tasks.franka_tasks import yaw_of
from sim.tasks.g1_tasks import G1TableTask

PALM = 0.02
"""Distance (m) from a G1 palm site (the grasp centre) back to the palm surface."""


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw])


def rotation_to(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World-frame rotation vector taking wxyz orientation `current` to `target`."""
    q = _quat_mul(target, current * np.array([1.0, -1.0, -1.0, -1.0]))
    if q[0] < 0:
        q = -q
    s = math.sqrt(float(q[1:] @ q[1:]))
    if s < 1e-9:
        return np.zeros(3)
    return q[1:] * (2.0 * math.atan2(s, float(q[0])) / s)


def _yaw_quat(yaw: float) -> np.ndarray:
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


class G1Expert(ScriptedExpert[G1TableTask]):
    """A scripted expert in the normalized 14-D ee-delta space of the G1 (left and right wrist poses, then the two
    hand closures); the execution noise goes to the 12 wrist-pose dimensions. On a JOINT_POS G1 the actions are the
    joint targets (28/31-D) that the robot's IK gives for the planned ee deltas.
    """

    noisy_dims = 12

    def _turn(self, quat: np.ndarray, target: np.ndarray) -> np.ndarray:
        return np.clip(rotation_to(quat, target) / self.max_r, -1.0, 1.0)

    def _for_robot(self, a: np.ndarray) -> np.ndarray:
        robot = self.task.robot
        if isinstance(robot, G1Robot) and robot.spec.action.mode is ActionMode.JOINT_POS:
            # The plan is made in the ee-delta space; a joint-position robot gets the targets its own IK
            # would have set for it (noise included, so DART labels stay clean in joint space too).
            return robot.spec.action.to_normalized(robot.joint_command_for(robot.ee_action.to_physical(a)))
        return a


class BoxPhase(enum.IntEnum):
    """BoxPickupExpert phases."""

    APPROACH = 0
    SQUEEZE = 1
    GRIP = 2
    LIFT = 3
    HOLD = 4


class BoxPickupExpert(G1Expert):
    """Palms to either side of the box (fingers along its depth, thumbs behind it), squeeze in, flatten the
    fingers, lift. The squeeze is open loop on the joint targets: a P-controller on the measured palm would
    wind the soft arms up against the box instead of holding a bounded grip.

    `skill` < 1 draws a placement error along the box (std (1 - skill) * 4 cm), a shallower or deeper squeeze,
    with probability (1 - skill) / 2 a lift that starts before the fingers have settled, a faster lift, a
    finger closure off by up to (1 - skill) x 100 %, and with probability 1 - skill no second attempt after a drop.
    """

    gap = 0.03
    """Clearance (m) between each palm and the box before the squeeze."""
    squeeze = 0.012
    """How far (m) past the box faces the palm targets are driven."""
    squeeze_steps = 4
    """Control steps the squeeze is spread over."""
    grip_closure = 0.25
    """Synergy closure while holding: fingers flat on the box, thumb still back."""
    back = 0.025
    """The palm sites sit this far (m) behind the box centre: the thumbs, which stick out of the palm, stay
    clear of the box's back face and the palm plus fingers span the box's centre of mass."""
    lift_to = 0.1
    """Target lift of the box centre (m)."""

    def _plan(self, err: float) -> None:
        self.phase = BoxPhase.APPROACH
        self.x_err = float(self.rng.normal(0.0, 0.04 * err))
        self.sq = self.squeeze * float(np.clip(1.0 + self.rng.normal(0.0, 1.2 * err), 0.0, 2.0))
        self.grip_wait = 1 if self.rng.random() < err / 2 else 5
        self.retry = bool(self.rng.random() >= err)
        self.lift_speed = 0.5 + 0.5 * err * float(self.rng.random())
        self.closure = self.grip_closure * float(np.clip(1.0 + self.rng.normal(0.0, err), 0.0, 2.0))

    def act(self, obs: Observation) -> np.ndarray:
        """One normalized action: left (6), right (6), left and right hand closure."""
        ee = np.asarray(obs["state/ee_pose"], dtype=np.float64)
        box = np.asarray(obs["state/box_pose"], dtype=np.float64)
        half = self.task.half_size
        yaw = yaw_of(box[3:])
        ex = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        ey = np.array([-math.sin(yaw), math.cos(yaw), 0.0])
        centre = box[:3] + ex * (-self.back + self.x_err)
        centre[2] = max(centre[2], 0.055)  # the hands' lower edge must clear the table
        side = half[1] - PALM + self.gap
        pre = (centre + ey * side, centre - ey * side)
        want = _yaw_quat(yaw)
        a = np.zeros(14)
        self.timer += 1
        closure = self.closure if self.phase >= BoxPhase.GRIP else 0.0
        if self.phase == BoxPhase.APPROACH:
            for i in range(2):
                a[6 * i : 6 * i + 3] = self._to(ee[7 * i : 7 * i + 3], pre[i])
            close = max(np.linalg.norm(ee[0:3] - pre[0]), np.linalg.norm(ee[7:10] - pre[1]))
            if (close < 0.01 and self._aligned(ee, want)) or self.timer > 40:
                self.phase, self.timer = BoxPhase.SQUEEZE, 0
        elif self.phase == BoxPhase.SQUEEZE:
            step = (self.gap + self.sq) / self.squeeze_steps / self.max_t
            a[0:3], a[6:9] = -ey * step, ey * step
            if self.timer >= self.squeeze_steps:
                self.phase, self.timer = BoxPhase.GRIP, 0
        elif self.phase >= BoxPhase.GRIP:
            # A hand that has come off its face (pushed by noise, or slipping) is sent back in by the gap plus
            # the squeeze depth; a hand on its face gets no lateral command, so the grip never winds up.
            for i, sign in ((0, 1.0), (1, -1.0)):
                off_face = sign * float((ee[7 * i : 7 * i + 3] - box[:3]) @ ey) - (half[1] - PALM)
                if off_face > 0.003:
                    a[6 * i : 6 * i + 3] = -sign * ey * min(off_face + self.sq, 0.01) / self.max_t
            lifted = box[2] - half[2]
            palms_z = 0.5 * (ee[2] + ee[9])
            if self.phase == BoxPhase.GRIP and self.timer >= self.grip_wait:
                self.phase, self.timer = BoxPhase.LIFT, 0
            elif self.phase == BoxPhase.LIFT:
                if lifted < self.lift_to:
                    a[2] = a[8] = self.lift_speed  # 1.5 cm per step: a gentle lift keeps the box from slipping
                else:
                    self.phase, self.timer = BoxPhase.HOLD, 0
            if self.retry and self.phase >= BoxPhase.LIFT and lifted < 0.01 and palms_z > box[2] + 0.04:
                self.phase, self.timer = BoxPhase.APPROACH, 0  # dropped it: open up and start over
        for i in range(2):
            a[6 * i + 3 : 6 * i + 6] = self._turn(ee[7 * i + 3 : 7 * i + 7], want)
        a[12] = a[13] = 2.0 * closure - 1.0
        return self._finish(a)

    @staticmethod
    def _aligned(ee: np.ndarray, want: np.ndarray) -> bool:
        err = max(np.linalg.norm(rotation_to(ee[3:7], want)), np.linalg.norm(rotation_to(ee[10:14], want)))
        return bool(err < 0.05)


class HandoverPhase(enum.IntEnum):
    """HandoverExpert phases."""

    REACH_LEFT = 0
    INSERT_LEFT = 1
    CLOSE_LEFT = 2
    CARRY = 3
    REACH_RIGHT = 4
    INSERT_RIGHT = 5
    CLOSE_RIGHT = 6
    RELEASE_LEFT = 7
    RETREAT_LEFT = 8


class HandoverExpert(G1Expert):
    """The left hand grasps the bar low (thumb behind it, fingers wrapping its front), lifts it to the middle;
    the right hand grasps it high from the other side; the left hand opens and moves away. A bar lost on the
    way is picked up again.

    `skill` < 1 draws grasp offsets (std (1 - skill) * 2 cm), with probability (1 - skill) / 2 a left hand
    that lets go before the right hand has closed, and with probability 1 - skill no second attempt.
    """

    gap = 0.06
    """How far (m) to the side of its grasp point a palm site waits before moving onto the bar."""
    ahead = 0.015
    """The palm site sits this far (m) ahead of the bar's centre along the fingers: the bar stays clear of the
    thumb (behind the site) and of the finger roots (in front)."""
    inset = 0.006
    """...and this far (m) off the bar's centre toward its own palm, so the palm surface just touches it."""
    grasp_low = 0.055
    """Left grasp height above the bar's bottom (m): the hand's lower edge clears the table."""
    grasp_high = 0.05
    """Right grasp depth below the bar's top (m)."""
    carry_to = np.array([0.32, 0.0])
    """Where the bar is held for the pass (m, table frame)."""
    lift = 0.08
    """How high the bar's bottom is carried above the table (m)."""
    reach_speed = 0.02
    """Largest palm motion (m per step) while reaching; inserting onto the bar goes at insert_speed."""
    insert_speed = 0.008
    """A slow insertion: the soft arms overshoot a fast one and knock the bar over."""

    def _plan(self, err: float) -> None:
        self.phase = HandoverPhase.REACH_LEFT
        self.left_err = np.append(self.rng.normal(0.0, 0.02 * err, 2), 0.0)
        self.right_err = np.append(self.rng.normal(0.0, 0.02 * err, 2), 0.0)
        self.early_release = bool(self.rng.random() < err / 2)
        self.retry = bool(self.rng.random() >= err)
        self.hand_yaw = 0.0
        self.latched = np.zeros(3)

    def act(self, obs: Observation) -> np.ndarray:
        """One normalized action: left (6), right (6), left and right hand closure."""
        P = HandoverPhase  # noqa: N806 - a short alias keeps the phase table readable
        ee = np.asarray(obs["state/ee_pose"], dtype=np.float64)
        left, right = ee[0:3], ee[7:10]
        bar = np.asarray(obs["state/bar_pose"], dtype=np.float64)
        half = self.task.half_size
        bottom = bar[2] - half[2]
        self.timer += 1
        if self.phase <= P.INSERT_LEFT:
            # A square bar looks the same every quarter turn: turn the hands to the nearest face.
            q = math.pi / 2
            self.hand_yaw = (yaw_of(bar[3:]) + q / 2) % q - q / 2
        ex = np.array([math.cos(self.hand_yaw), math.sin(self.hand_yaw), 0.0])
        ey = np.array([-math.sin(self.hand_yaw), math.cos(self.hand_yaw), 0.0])
        left_grasp = bar[:3] + self.left_err + ex * self.ahead + ey * self.inset
        left_grasp[2] = bottom + self.grasp_low
        right_grasp = bar[:3] + self.right_err + ex * self.ahead - ey * self.inset
        right_grasp[2] = bottom + 2 * half[2] - self.grasp_high
        lt, rt = left.copy(), right.copy()  # targets: hold by default
        ls = rs = self.reach_speed
        if self.phase == P.REACH_LEFT:
            lt = left_grasp + ey * self.gap
            rt = right  # the right hand waits where it is
            if np.linalg.norm(left - lt) < 0.01 or self.timer > 40:
                # Latched: chasing a bar that the palm nudges would push it over.
                self.phase, self.timer, self.latched = P.INSERT_LEFT, 0, left_grasp
        elif self.phase in (P.INSERT_LEFT, P.CLOSE_LEFT):
            lt, ls = self.latched, self.insert_speed
            if self.phase == P.INSERT_LEFT and (np.linalg.norm(left - lt) < 0.006 or self.timer > 20):
                self.phase, self.timer = P.CLOSE_LEFT, 0
            elif self.phase == P.CLOSE_LEFT and self.timer >= 8:
                self.phase, self.timer = P.CARRY, 0
        elif self.phase == P.CARRY:
            # Carry so that the *bar* (not the palm) ends at the pass position.
            lt = np.array([*self.carry_to, half[2] + self.lift]) + (left - bar[:3])
            there = np.linalg.norm(bar[:2] - self.carry_to) < 0.01 and abs(bottom - self.lift) < 0.01
            if there or self.timer > 50:
                self.phase, self.timer = P.REACH_RIGHT, 0
        elif self.phase == P.REACH_RIGHT:
            rt = right_grasp - ey * self.gap
            if np.linalg.norm(right - rt) < 0.01 or self.timer > 40:
                self.phase, self.timer, self.latched = P.INSERT_RIGHT, 0, right_grasp
        elif self.phase in (P.INSERT_RIGHT, P.CLOSE_RIGHT):
            rt, rs = self.latched, self.insert_speed
            if self.phase == P.INSERT_RIGHT and (np.linalg.norm(right - rt) < 0.006 or self.timer > 20):
                self.phase, self.timer = (P.RELEASE_LEFT if self.early_release else P.CLOSE_RIGHT), 0
            elif self.phase == P.CLOSE_RIGHT and self.timer >= 8:
                self.phase, self.timer = P.RELEASE_LEFT, 0
        elif self.phase == P.RELEASE_LEFT:
            if self.timer >= 6:
                self.phase, self.timer = P.RETREAT_LEFT, 0
        elif self.phase == P.RETREAT_LEFT and float((left - bar[:3]) @ ey) < 0.12:
            lt = left + ey * 0.03
        if self.phase >= P.RELEASE_LEFT:
            rt = right + np.array([0.0, 0.0, self.lift - bottom])  # a bar that slid in the grasp is raised again
        if P.CARRY <= self.phase < P.RELEASE_LEFT and self.retry and _norm(left - bar[:3]) > 0.08:
            self.phase, self.timer = P.REACH_LEFT, 0  # the bar left the hand: pick it up again
        closure = (1.0 if P.CLOSE_LEFT <= self.phase < P.RELEASE_LEFT else 0.0,
                   1.0 if self.phase >= P.CLOSE_RIGHT and self.phase != P.INSERT_RIGHT else 0.0)
        if self.phase == P.RELEASE_LEFT and self.early_release:
            closure = (0.0, 0.0)
        a = np.zeros(14)
        a[0:3] = self._to(left, lt, ls)
        a[6:9] = self._to(right, rt, rs)
        want = _yaw_quat(self.hand_yaw)
        a[3:6] = self._turn(ee[3:7], want)
        a[9:12] = self._turn(ee[10:14], want)
        a[12], a[13] = 2.0 * closure[0] - 1.0, 2.0 * closure[1] - 1.0
        return self._finish(a)


def _norm(v: np.ndarray) -> float:
    return math.sqrt(float(v @ v))
