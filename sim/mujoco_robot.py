"""MujocoRobot: the in-process sim implementation of Robot (model, physics stepping, objects, cameras)."""

from __future__ import annotations

import abc
import math
from collections import deque
from dataclasses import dataclass

import mujoco
import numpy as np

from robot.core.errors import ConfigError, SafetyError
from robot.core.interfaces import Robot
from robot.core.spec import CameraSpec, EmbodimentSpec
from robot.core.types import Observation


@dataclass(frozen=True)
class ObjectSpec:
    """A free box on the table; observed as state/<name>_pose (position + wxyz quaternion) and, for robots
    with a TCP, state/<name>_rel (object position minus TCP position)."""

    name: str
    """Body name and observation key stem."""
    half_size: tuple[float, float, float] = (0.02, 0.02, 0.02)
    """Box half extents (m)."""
    rgba: tuple[float, float, float, float] = (0.85, 0.2, 0.2, 1.0)
    """Colour."""
    mass: float = 0.05
    """Mass (kg)."""
    friction: float = 1.0
    """Sliding friction coefficient."""


@dataclass(frozen=True)
class MarkerSpec:
    """A visual-only sphere (no collision), e.g. a goal position."""

    name: str
    """Site name."""
    radius: float = 0.02
    """Sphere radius (m)."""
    rgba: tuple[float, float, float, float] = (0.1, 0.8, 0.2, 0.4)
    """Colour (translucent by default)."""


@dataclass(frozen=True)
class Randomization:
    """Per-episode physical randomization of task objects (multipliers drawn uniformly)."""

    size_scale: tuple[float, float] = (1.0, 1.0)
    """Object size multiplier range."""
    friction_scale: tuple[float, float] = (1.0, 1.0)
    """Object friction multiplier range."""
    mass_scale: tuple[float, float] = (1.0, 1.0)
    """Object mass multiplier range."""

    def __post_init__(self) -> None:
        for name in ("size_scale", "friction_scale", "mass_scale"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ConfigError(f"Randomization.{name} must satisfy 0 < low <= high, got {(lo, hi)}")


def _copy(obs: Observation) -> Observation:
    return {k: v.copy() for k, v in obs.items()}


def look_at_quat(pos: np.ndarray, target: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """wxyz quaternion of a MuJoCo camera at `pos` looking at `target` (cameras look along their -z)."""
    up = np.array([0.0, 0.0, 1.0]) if up is None else up
    f = target - pos
    f = f / np.linalg.norm(f)
    x = np.cross(f, up)
    x = x / np.linalg.norm(x)
    y = np.cross(x, f)
    mat = np.stack([x, y, -f], axis=1)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mat.ravel())
    return quat


def fast_render_settings(model: mujoco.MjModel) -> None:
    """Shadows, reflections and multisampling off: ~10x faster offscreen rendering on CPU (Mesa)."""
    model.light_castshadow[:] = 0
    model.mat_reflectance[:] = 0.0
    model.vis.quality.offsamples = 0


class MujocoRobot(Robot):
    """Base of the in-process MuJoCo robots: subclasses build the scene and map commands to ctrl."""

    def __init__(
        self,
        *,
        objects: tuple[ObjectSpec, ...] = (),
        markers: tuple[MarkerSpec, ...] = (),
        cameras: tuple[CameraSpec, ...] = (),
        physics_dt: float = 0.002,
        control_hz: float = 20.0,
        fast_render: bool = True,
        render_size: tuple[int, int] = (240, 320),
    ) -> None:
        n = round(1.0 / (control_hz * physics_dt))
        if n < 1 or not math.isclose(n * physics_dt * control_hz, 1.0, rel_tol=1e-6):
            raise ConfigError(
                f"control_hz {control_hz} must divide the physics rate {1 / physics_dt:g} Hz into whole substeps"
            )
        self.objects = objects
        self.markers = markers
        self.cameras = cameras
        self.physics_dt = physics_dt
        self.control_hz = control_hz
        self.n_substeps = n
        self.fast_render = fast_render
        self.render_size = render_size
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._nominal: dict[str, tuple[np.ndarray, np.ndarray, float, float, np.ndarray]] = {}
        self._obj_qadr: dict[str, tuple[int, int, int, int]] = {}
        # Injected latency (sim-to-real checks; see set_latency). Zero costs nothing on the hot path.
        self._obs_lag = 0  # substeps
        self._act_lag = 0  # substeps
        self._snaps: deque[Observation] = deque()
        self._ctrl_hist: deque[np.ndarray] = deque()
        self._first_obs: Observation | None = None
        self._last_time = -math.inf
        self._gains0: tuple[np.ndarray, np.ndarray] | None = None

    # -- scene ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def build_spec(self) -> mujoco.MjSpec:
        """The robot's MjSpec before task objects, markers and cameras are added."""

    @abc.abstractmethod
    def _robot_state(self, obs: Observation) -> None:
        """Fill state/* keys of the robot itself."""

    @abc.abstractmethod
    def _on_compiled(self) -> None:
        """Resolve ids and indices after compilation."""

    def add_scene_camera(self, spec: mujoco.MjSpec, cam: CameraSpec) -> None:
        """Add a camera the robot does not define itself (default: a fixed front view)."""
        pos = np.array([1.05, 0.0, 0.45])
        spec.worldbody.add_camera(name=cam.name, pos=pos, quat=look_at_quat(pos, np.array([0.5, 0.0, 0.05])),
                                  fovy=45)

    def _build(self) -> None:
        spec = self.build_spec()
        spec.option.timestep = self.physics_dt
        wb = spec.worldbody
        for o in self.objects:
            body = wb.add_body(name=o.name, pos=[0.5, 0.0, o.half_size[2]])
            body.add_freejoint(name=f"{o.name}_joint")
            body.add_geom(
                name=f"{o.name}_geom", type=mujoco.mjtGeom.mjGEOM_BOX, size=list(o.half_size),
                rgba=list(o.rgba), mass=o.mass, friction=[o.friction, 0.005, 0.0001], condim=4,
            )
        for mk in self.markers:
            wb.add_site(name=mk.name, type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[mk.radius, 0, 0], rgba=list(mk.rgba),
                        pos=[0.5, 0.0, 0.0], group=1)
        existing = {c.name for c in spec.cameras}
        for cam in self.cameras:
            if cam.name not in existing:
                self.add_scene_camera(spec, cam)
        if "_render" not in existing:
            pos = np.array([1.2, 0.55, 0.55])
            wb.add_camera(name="_render", pos=pos, quat=look_at_quat(pos, np.array([0.4, 0.0, 0.15])), fovy=50)
        try:
            model = spec.compile()
        except ValueError as e:
            raise ConfigError(f"MuJoCo could not compile the scene for {type(self).__name__}: {e}") from e
        if self.fast_render:
            fast_render_settings(model)
        self.model = model
        self.data = mujoco.MjData(model)
        for o in self.objects:
            jid = model.joint(f"{o.name}_joint").id
            gid = model.geom(f"{o.name}_geom").id
            bid = model.body(o.name).id
            self._obj_qadr[o.name] = (model.jnt_qposadr[jid], model.jnt_dofadr[jid], gid, bid)
            self._nominal[o.name] = (
                model.geom_size[gid].copy(), model.geom_friction[gid].copy(),
                float(model.body_mass[bid]), float(model.geom_rbound[gid]), model.body_inertia[bid].copy(),
            )
        self._on_compiled()

    # -- Robot contract ------------------------------------------------------------------------
    def connect(self) -> None:
        """Compile the model (once)."""
        if self.model is None:
            self._build()

    def disconnect(self) -> None:
        """Free the renderers (the model stays for inspection)."""
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()

    @property
    def is_connected(self) -> bool:
        """Whether the model is compiled."""
        return self.model is not None

    def _require(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        if self.model is None or self.data is None:
            raise ConfigError(f"{type(self).__name__} is not connected: call connect() or use it as a context manager")
        return self.model, self.data

    def now(self) -> float:
        """Simulation time (s); observations are stamped with it."""
        return float(self._require()[1].time)

    def step_physics(self) -> None:
        """Advance one control period (with injected latency: the previous command acts first, and the state the
        next observe() returns is snapshotted part-way)."""
        model, data = self._require()
        if not (self._obs_lag or self._act_lag):
            mujoco.mj_step(model, data, nstep=self.n_substeps)
            return
        self._sync_episode()
        n = self.n_substeps
        # The command sent q periods + r substeps ago is the one acting now: until substep r of this period the
        # command before it still acts.
        q, r = divmod(self._act_lag, n)
        hist = self._ctrl_hist
        hist.append(data.ctrl.copy())
        while len(hist) > q + 2:
            hist.popleft()
        newest = hist[max(0, len(hist) - 1 - q)]
        older = hist[max(0, len(hist) - 2 - q)]
        snap_at = n - self._obs_lag % n if self._obs_lag else -1
        cuts = sorted({c for c in (r, snap_at) if 0 < c < n} | {n})
        done = 0
        data.ctrl[:] = older if r > 0 else newest
        for cut in cuts:
            mujoco.mj_step(model, data, nstep=cut - done)
            done = cut
            if cut == r:
                data.ctrl[:] = newest
            if cut == snap_at:
                self._snaps.append(self._observe_now())
        data.ctrl[:] = hist[-1]  # what the robot was commanded, as its own bookkeeping expects
        self._last_time = float(data.time)

    def _sync_episode(self) -> None:
        """Forget the latency buffers when a reset has rewound the clock (or on first use): the previous
        episode's commands and states must not leak into this one."""
        _, data = self._require()
        t = float(data.time)
        if t < self._last_time or self._last_time == -math.inf:
            self._snaps.clear()
            self._first_obs = None
            self._ctrl_hist.clear()
            self._ctrl_hist.append(data.ctrl.copy())  # the reset's hold command acts until the first one lands
        self._last_time = t

    def set_latency(self, observation_s: float = 0.0, action_s: float = 0.0) -> None:
        """Inject sensing and actuation latency, rounded to physics substeps: observe() returns the state as it was
        `observation_s` ago (stamped with that time), and each command starts acting `action_s` after it is sent."""
        if observation_s < 0 or action_s < 0 or not (math.isfinite(observation_s) and math.isfinite(action_s)):
            raise ConfigError(f"latencies must be finite and >= 0, got observation {observation_s}, action {action_s}")
        self._obs_lag = round(observation_s / self.physics_dt)
        self._act_lag = round(action_s / self.physics_dt)
        self._snaps.clear()
        self._ctrl_hist.clear()
        self._first_obs = None
        self._last_time = -math.inf

    @property
    def latency(self) -> tuple[float, float]:
        """Injected (observation, action) latency in seconds."""
        return self._obs_lag * self.physics_dt, self._act_lag * self.physics_dt

    def scale_actuator_gains(self, scale: float | np.ndarray) -> None:
        """Scale every affine (position-servo) actuator's stiffness and damping from its nominal value: 1 restores
        the model's gains. A per-actuator array gives each its own factor."""
        model, _ = self._require()
        if self._gains0 is None:
            self._gains0 = (model.actuator_gainprm.copy(), model.actuator_biasprm.copy())
        k = np.broadcast_to(np.asarray(scale, dtype=np.float64), (model.nu,))
        if not np.all(np.isfinite(k)) or np.any(k <= 0):
            raise ConfigError(f"actuator gain scales must be finite and > 0, got {np.asarray(scale).tolist()}")
        gain0, bias0 = self._gains0
        servo = model.actuator_biastype == mujoco.mjtBias.mjBIAS_AFFINE
        model.actuator_gainprm[servo, 0] = gain0[servo, 0] * k[servo]
        model.actuator_biasprm[servo, 1:3] = bias0[servo, 1:3] * k[servo, None]

    def observe(self) -> Observation:
        """State (robot + objects) stamped with sim time; camera images when configured (with injected observation
        latency: the snapshot from that long ago, or the episode's first state when the episode is younger)."""
        if not (self._obs_lag or self._act_lag):
            return self._observe_now()
        self._sync_episode()
        if not self._obs_lag:
            return self._observe_now()
        _, data = self._require()
        t = float(data.time)
        if not self._snaps and (self._first_obs is None or t <= float(self._first_obs["time/state"])):
            # Nothing has been stepped since the reset: the live state is the one to show (tasks move objects
            # after the robot's reset, so take it anew each time).
            self._first_obs = self._observe_now()
            return _copy(self._first_obs)
        want = t - self._obs_lag * self.physics_dt + 0.5 * self.physics_dt
        while len(self._snaps) > 1 and float(self._snaps[1]["time/state"]) <= want:
            self._snaps.popleft()
        # Copies: the env adds task keys to the dict it is given, and a snapshot may be returned again.
        if self._snaps and float(self._snaps[0]["time/state"]) <= want:
            return _copy(self._snaps[0])
        assert self._first_obs is not None
        return _copy(self._first_obs)

    def _observe_now(self) -> Observation:
        _, data = self._require()
        obs: Observation = {}
        self._robot_state(obs)
        ee = obs.get("state/ee_pose")
        for name, (qadr, _, _, _) in self._obj_qadr.items():
            obs[f"state/{name}_pose"] = data.qpos[qadr : qadr + 7].astype(np.float32)
            if ee is not None:
                # Object relative to the TCP (as robosuite's cube_to_eef_pos): grasp precision is far easier
                # to learn from this difference than from two absolute positions.
                obs[f"state/{name}_rel"] = (data.qpos[qadr : qadr + 3] - ee[:3]).astype(np.float32)
        obs["time/state"] = np.array(data.time, dtype=np.float64)
        for cam in self.cameras:
            obs[f"image/{cam.name}"] = self._render(cam.name, cam.height, cam.width)
            obs[f"time/{cam.name}"] = np.array(data.time, dtype=np.float64)
        return obs

    def render(self, camera: str | None = None) -> np.ndarray:
        """A viewing frame (render_size) from `camera` or the overview camera."""
        h, w = self.render_size
        return self._render(camera or "_render", h, w)

    def _render(self, camera: str, height: int, width: int) -> np.ndarray:
        model, data = self._require()
        r = self._renderers.get((height, width))
        if r is None:
            if height > model.vis.global_.offheight or width > model.vis.global_.offwidth:
                model.vis.global_.offheight = max(height, model.vis.global_.offheight)
                model.vis.global_.offwidth = max(width, model.vis.global_.offwidth)
            r = mujoco.Renderer(model, height, width)
            if self.fast_render:
                r.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
                r.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
                r.scene.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = 0
            self._renderers[(height, width)] = r
        r.update_scene(data, camera=camera)
        return r.render()

    # -- object helpers for tasks ------------------------------------------------------------
    def set_object_pose(self, name: str, pos: np.ndarray, quat: np.ndarray | None = None) -> None:
        """Place a free object (and zero its velocity)."""
        _, data = self._require()
        qadr, dadr, _, _ = self._object(name)
        data.qpos[qadr : qadr + 3] = pos
        data.qpos[qadr + 3 : qadr + 7] = (1.0, 0.0, 0.0, 0.0) if quat is None else quat
        data.qvel[dadr : dadr + 6] = 0.0

    def object_pose(self, name: str) -> np.ndarray:
        """Position + wxyz quaternion of a free object."""
        _, data = self._require()
        qadr = self._object(name)[0]
        return data.qpos[qadr : qadr + 7].copy()

    def object_half_size(self, name: str) -> np.ndarray:
        """Current (possibly randomized) half extents."""
        model, _ = self._require()
        return model.geom_size[self._object(name)[2]].copy()

    def set_marker(self, name: str, pos: np.ndarray) -> None:
        """Move a visual marker."""
        model, _ = self._require()
        model.site_pos[model.site(name).id] = pos

    def randomize_object(self, name: str, rng: np.random.Generator, rand: Randomization) -> None:
        """Scale size, friction and mass of an object from its nominal values."""
        model, _ = self._require()
        _, _, gid, bid = self._object(name)
        size0, fric0, mass0, rb0, inertia0 = self._nominal[name]
        s = rng.uniform(*rand.size_scale)
        model.geom_size[gid] = size0 * s
        model.geom_rbound[gid] = rb0 * s
        model.geom_aabb[gid, 3:] = size0 * s
        model.geom_friction[gid] = fric0 * np.array([rng.uniform(*rand.friction_scale), 1.0, 1.0])
        k = rng.uniform(*rand.mass_scale) * s**3
        model.body_mass[bid] = mass0 * k
        model.body_inertia[bid] = inertia0 * k * s**2

    def _object(self, name: str) -> tuple[int, int, int, int]:
        try:
            return self._obj_qadr[name]
        except KeyError:
            raise ConfigError(f"no object {name!r} in the scene; objects: {sorted(self._obj_qadr)}") from None

    def forward(self) -> None:
        """Recompute derived quantities after editing the state."""
        model, data = self._require()
        mujoco.mj_forward(model, data)

    @staticmethod
    def check_finite(cmd: np.ndarray, spec: EmbodimentSpec) -> np.ndarray:
        """Reject a non-finite command before it can reach the actuators."""
        cmd = np.asarray(cmd, dtype=np.float64)
        if cmd.shape != (spec.action.dim,):
            raise ConfigError(f"command shape {cmd.shape} != ({spec.action.dim},) for {spec.name}")
        bad = ~np.isfinite(cmd)
        if bad.any():
            dims = [spec.action.names[i] for i in np.flatnonzero(bad)]
            raise SafetyError(f"non-finite command in dimensions {dims}; nothing was sent, the robot holds")
        return cmd
