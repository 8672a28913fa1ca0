"""`realrl train residual`: finetune a frozen base policy with a residual actor from sparse success in sim."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from robot.core.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from policies.residual.replay import NStepBatch, ReplayBuffer

CHECKPOINT = "checkpoint"


@dataclass(frozen=True)
class TrainResidualConfig:
    """Train a residual actor + critic ensemble on top of a frozen base (ResFiT), or RLPD from scratch."""

    out: Path
    """Run directory: policy/ (deployable base + residual), checkpoint/, metrics.jsonl, curves.png."""
    base: Path | None = None
    """Base policy run directory or checkpoint (a one-step head is the fast choice). Unused with --algo rlpd."""
    algo: Literal["td3", "sac", "rlpd"] = "td3"
    """td3: deterministic residual (ResFiT default); sac: Gaussian residual; rlpd: SAC from scratch, no base."""
    env: str = ""
    """Env id; empty: the base policy's env."""
    demos: Path | None = None
    """Demo episode store; default: the store the base was trained on."""
    steps: int = 50_000
    """Env steps (summed over the parallel envs)."""
    num_envs: int = 4
    """Parallel env instances (stepped in turn; each has its own base policy state)."""
    preset: Literal["cpu", "gpu"] = "cpu"
    """cpu: 128-wide nets, 5 critic heads, UTD 1 (fits 50k env steps in ~15 min on 2 cores); gpu: ResFiT size
    (1024-wide, 10 heads, UTD 4)."""
    scale: float = 0.1
    """Residual scale in the normalized action range (rlpd always uses 1: the 'residual' is the action)."""
    gripper_scale: float | None = None
    """Residual scale of the gripper dimensions (action names containing 'gripper'; unused with rlpd); default:
    --scale. A position-commanded gripper holding a cube needs most of its range to let go, beyond 0.1 of it."""
    residual_l2: float = 0.01
    """Actor penalty on |residual|^2 (not applied with rlpd). Without it the actor drives the residual to its
    +-1 corners (measured: mean |residual| 0.9 after 3k steps) and a constant delta-action offset drifts; 0.05
    held FrankaLift at 65-85%, 0.01 let it reach 90-100% (benchmarks/RESULTS.md)."""
    explore_std: float = 0.2
    """Exploration noise std in residual units (x scale in the action range), truncated at 2 std."""
    gripper_noise: float | None = None
    """TD3 only: factor in [0, 1] on the exploration and target-smoothing noise of the gripper dimensions (default
    1). Noise is in residual units, so at --gripper-scale 2 the gripper gets 2 x 0.2 = 0.4 of it per step: enough to
    drop a held cube at random. The critic then learns the value of a policy whose noise lets go, and a deterministic
    actor that hovers over the goal looks as good as one that places the cube."""
    explore_corr: float = 0.0
    """TD3 only: step-to-step correlation of the exploration noise (an AR(1) process per env, restarted each
    episode, with the same std). 0: independent noise every step. With delta actions independent noise averages
    out within a few steps; 0.9 keeps a direction for ~10 steps, so the arm explores offsets of centimetres."""
    critic_gripper: float = 0.0
    """Share of training episodes (drawn per episode) whose gripper command is chosen each step by the critic
    ensemble among the actor's, fully open and fully closed (mean Q over heads); the arm explores as usual.
    A position gripper's hold/drop threshold is a step in Q that the actor's gradient does not cross; this puts
    both sides of it into the replay. Evaluation and the saved policy always use the actor alone. Pair it with
    --gripper-scale 2, so that fully open and fully closed are reachable from any base command."""
    her: int = 0
    """Hindsight goal relabelling (goal-conditioned tasks): every finished training episode is also stored up to
    this many times more, each with a goal it reached at some step (one the task could have set: on FrankaPickPlace
    a cube position resting on the table) as its goal, cut at the first step that reaches it, with the base
    re-run on the relabelled observations. The online half of each batch draws relabelled transitions in
    proportion to their count, at most her/(her+1) of it. 0: off."""
    extra_state_keys: tuple[str, ...] = ()
    """Observation keys the residual reads besides the base's own state keys (they must be in the demo store), e.g.
    state/joint_vel. A base that re-plans from two frames sees motion; one frame of positions does not, so a critic
    on it cannot tell an arm that has stalled above the goal from one passing through the same place, and values
    the stall like the pass."""
    goal_delta: bool = False
    """Goal-conditioned tasks whose goals are in the state: also give actor and critic the goal offset (achieved -
    desired) and its norm as inputs. A sparse goal reward is a step in that distance."""
    bc_weight: float = 0.0
    """Weight of a behaviour-cloning term on the demo rows of each batch in the actor loss, Q-filtered: only where
    the critic values the demo's action above the actor's (Nair et al. 2018). The demos show precise placements; a
    sparse reward gives the critic little to tell a 1 mm/step lateral correction from its opposite. 0: off."""
    bc_anneal_updates: int = 0
    """Learner updates over which --bc-weight falls linearly to 0 (0: constant). With the CPU preset (UTD 1) one
    update is made per env step after --warmup-steps, so 20000 ends the demo term about 21k env steps in."""
    q_bounds: tuple[float, float] | None = None
    """Clamp the critics' TD targets into [LO, HI] (--q-bounds 0 1 for a sparse 0/1 reward that ends the episode on
    success, every realrl task's). Default: unbounded. Without it the critic extrapolates below 0 where no data
    continues (FrankaPickPlace after an off-target release: -0.1 to -0.4) and bootstraps that into its neighbours."""
    hidden: tuple[int, ...] | None = None
    """Actor/critic widths (default: the preset's)."""
    n_heads: int | None = None
    """Critic ensemble size (default: the preset's)."""
    utd: int | None = None
    """Critic updates per env step (default: the preset's)."""
    lr: float | None = None
    """Adam learning rate of actor and critics (default: the preset's, 3e-4)."""
    batch_size: int = 256
    """Batch size (half demo, half online by default: see demo_fraction)."""
    demo_fraction: float = 0.5
    """Share of every batch drawn from the demo replay (RLPD symmetric sampling: 0.5; 0: online only)."""
    n_step: int = 3
    """n-step returns."""
    gamma: float = 0.99
    """Discount."""
    warmup_steps: int = 2000
    """Env steps acting with base + uniform noise before any update."""
    warmup_noise: float = 0.5
    """Std of the warm-up residual noise (residual units)."""
    critic_warmup_steps: int = 2000
    """Env steps after the warm-up in which only the critics learn (the actor starts from a useful Q)."""
    phase_features: bool = False
    """Give the residual the base's chunk phase (episode step mod the base's Ta) as a one-hot input."""
    only_success_demos: bool = True
    """Use only successful demo episodes."""
    eval_every: int = 5000
    """Evaluate base + residual every N env steps (0: only at the end)."""
    eval_episodes: int = 20
    """Episodes per evaluation (fixed seeds eval_seed ..)."""
    eval_seed: int = 1000
    """First evaluation seed."""
    checkpoint_every: int = 5000
    """Atomic checkpoint (weights, optimizers, buffers, RNG, counters) every N env steps."""
    log_every: int = 1000
    """Metrics row every N env steps."""
    resume: bool = False
    """Continue the run in --out from its last checkpoint."""
    seed: int = 0
    """Seed (networks, exploration, env episode seeds)."""
    threads: int = 1
    """torch threads."""
    device: str = "cpu"
    """Where the learner (actor, critics, updates) runs: cpu, cuda, cuda:N or auto. The envs and the frozen base
    stay on the CPU; the ResFiT-size --preset gpu needs a GPU to be practical (~4 updates/s on 2 CPU threads)."""
    progress: bool = True
    """Progress bar."""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.num_envs < 1:
            raise ConfigError(f"need --steps >= 1 and --num-envs >= 1, got {self.steps}, {self.num_envs}")
        if self.algo != "rlpd" and self.base is None:
            raise ConfigError("--base is required (a trained base policy run), or use --algo rlpd for no base")
        if self.algo == "rlpd" and (not self.env or self.demos is None):
            raise ConfigError("--algo rlpd has no base to take the env and demos from: pass --env and --demos")
        if self.batch_size < 2:
            raise ConfigError(f"--batch-size must be >= 2, got {self.batch_size}")
        if not 0.0 <= self.critic_gripper <= 1.0:
            raise ConfigError(f"--critic-gripper is a share of episodes in [0, 1], got {self.critic_gripper}")
        if not 0.0 <= self.explore_corr < 1.0:
            raise ConfigError(f"--explore-corr must be in [0, 1) (0: independent noise), got {self.explore_corr}")
        if self.gripper_noise is not None and not (0.0 <= self.gripper_noise <= 1.0 and self.algo == "td3"):
            raise ConfigError(f"--gripper-noise is a factor in [0, 1] on TD3's gripper noise, got {self.gripper_noise} "
                              f"with --algo {self.algo}")
        if self.explore_corr and self.algo != "td3":
            raise ConfigError(f"--explore-corr shapes TD3's exploration noise; --algo {self.algo} samples from its "
                              "own policy (leave --explore-corr out)")
        if self.her < 0:
            raise ConfigError(f"--her is a number of relabelled goals per episode (0: off), got {self.her}")
        if not 0.0 <= self.demo_fraction < 1.0:
            raise ConfigError(f"--demo-fraction must be in [0, 1) (online data is always sampled), got "
                              f"{self.demo_fraction}")
        if self.bc_weight > 0 and self.demo_fraction == 0:
            raise ConfigError("--bc-weight clones the demo rows of each batch, and --demo-fraction 0 draws none: "
                              "give the demos a share of the batch, or leave --bc-weight out")


def learner_config(cfg: TrainResidualConfig, action_names: tuple[str, ...] = ()) -> Any:
    """The ResidualConfig for a run: preset, then explicit overrides (`action_names` place the gripper scale)."""
    from policies.residual.learner import ResidualConfig, gpu_preset

    algo: Literal["td3", "sac"] = "td3" if cfg.algo == "td3" else "sac"
    c = gpu_preset(algo) if cfg.preset == "gpu" else ResidualConfig(algo=algo)
    over: dict[str, Any] = {"scale": 1.0 if cfg.algo == "rlpd" else cfg.scale, "batch_size": cfg.batch_size,
                            "n_step": cfg.n_step, "gamma": cfg.gamma,
                            "residual_l2": 0.0 if cfg.algo == "rlpd" else cfg.residual_l2,
                            "explore_std": cfg.explore_std}
    if cfg.gripper_scale is not None and cfg.algo != "rlpd":
        if not any("gripper" in n for n in action_names):
            raise ConfigError(f"--gripper-scale: the env's actions {action_names} have no gripper dimension")
        over["action_scale"] = tuple(cfg.gripper_scale if "gripper" in n else cfg.scale for n in action_names)
    if cfg.gripper_noise is not None:
        if not any("gripper" in n for n in action_names):
            raise ConfigError(f"--gripper-noise: the env's actions {action_names} have no gripper dimension")
        over["noise_scale"] = tuple(cfg.gripper_noise if "gripper" in n else 1.0 for n in action_names)
    for k in ("hidden", "n_heads", "utd", "lr", "q_bounds", "bc_weight", "bc_anneal_updates"):
        if getattr(cfg, k) is not None:
            over[k] = getattr(cfg, k)
    return replace(c, **over)


def _action_names(env_id: str) -> tuple[str, ...]:
    """The env's action dimension names (from its embodiment)."""
    from robot.env import RobotEnv
    from robot.sessions.envs import make_env

    env = make_env(env_id)
    try:
        inner = env.unwrapped
        if not isinstance(inner, RobotEnv):
            raise ConfigError(f"--gripper-scale and --critic-gripper need a realrl env with named actions; {env_id} "
                              f"is a {type(inner).__name__}: leave them out")
        return tuple(inner.embodiment.action.names)
    finally:
        env.close()


def _goal_delta(env_id: str, state_keys: tuple[str, ...]) -> tuple[str, str, int]:
    """(achieved key, desired key, goal_dim) of the env's goal task, for Features.goal_delta."""
    from robot.env import GoalTask
    from robot.sessions.envs import make_env

    env = make_env(env_id)
    try:
        task = getattr(env.unwrapped, "task", None)
        keys = task.goal_state_keys if isinstance(task, GoalTask) else None
        if keys is None or not isinstance(task, GoalTask):
            raise ConfigError(f"--goal-delta needs a goal-conditioned task with its goals in the state; {env_id} "
                              f"({type(task).__name__}) has none: leave --goal-delta out")
        missing = [k for k in keys if k not in state_keys]
        if missing:
            raise ConfigError(f"--goal-delta: the residual's state keys {list(state_keys)} lack {missing}")
        return keys[0], keys[1], int(task.goal_dim)
    finally:
        env.close()


def _base_dir(path: Path) -> Path:
    return path / "policy" if (path / "policy").exists() or (path / "policy.old").exists() else path


class ResidualTrainer:
    """Owns the envs, the base copies, the learner, both replays, counters and the run directory."""

    def __init__(self, cfg: TrainResidualConfig) -> None:
        import torch

        from data import EpisodeStore
        from policies.io import load_policy
        from policies.residual.demos import demo_replay, load_demos
        from policies.residual.learner import ResidualLearner, resolve_device
        from policies.residual.policy import Features, ZeroBase
        from policies.residual.replay import ReplayBuffer

        self.cfg = cfg
        torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)  # a missing GPU fails here, before the demos are relabelled
        self.out = Path(cfg.out)
        if ((self.out / CHECKPOINT).exists() or (self.out / (CHECKPOINT + ".old")).exists()) and not cfg.resume:
            raise ConfigError(f"{self.out} already holds a run: pass --resume to continue it, or another --out")
        self.base_dir = None if cfg.algo == "rlpd" else _base_dir(Path(cfg.base))  # type: ignore[arg-type]
        probe = None if self.base_dir is None else load_policy(self.base_dir)
        meta: dict[str, Any] = dict(probe.meta) if probe is not None else {}
        self.env_id = cfg.env or meta.get("env_id", "")
        if not self.env_id:
            raise ConfigError("the base does not record its env; pass --env")
        names = (_action_names(self.env_id) if cfg.gripper_scale is not None or cfg.critic_gripper
                 or cfg.gripper_noise is not None else ())
        self.rcfg = learner_config(cfg, names)
        self.gripper_dims = tuple(i for i, n in enumerate(names) if "gripper" in n) if cfg.critic_gripper else ()
        if cfg.critic_gripper and not self.gripper_dims:
            raise ConfigError(f"--critic-gripper: the env's actions {names} have no gripper dimension")
        demos_path = cfg.demos or (Path(meta["store"]) if meta.get("store") else None)
        if demos_path is None or not Path(demos_path).exists():
            raise ConfigError(f"demo store {demos_path} not found; pass --demos STORE (realrl data collect ...)")
        self.env_kwargs: dict[str, Any] = ({"cameras": tuple(meta["cameras"]), "image_size": tuple(meta["image_size"])}
                                           if meta.get("cameras") else {})
        store = EpisodeStore.open(demos_path, "r")
        try:
            if store.env_id and store.env_id != self.env_id:
                raise ConfigError(f"{demos_path} holds {store.env_id} episodes, the run is on {self.env_id}")
            da = int(store.schema["action"].shape[0])
            if probe is not None:
                state_keys = tuple(probe.obs_cfg.state_keys)
            else:
                state_keys = tuple(k for k in store.keys if k.startswith("state/") and k != "state/joint_vel")
            state_keys = tuple(dict.fromkeys((*state_keys, *cfg.extra_state_keys)))

            def make_base() -> Any:
                return ZeroBase(da, {"env_id": self.env_id}) if self.base_dir is None else load_policy(self.base_dir)

            self.make_base = make_base
            demo_base = probe if probe is not None else make_base()  # the probe is a fresh base: no reload
            demos = load_demos(store, demo_base, state_keys, only_success=cfg.only_success_demos,
                               base_keys=tuple(getattr(getattr(demo_base, "obs_cfg", None), "state_keys", ())),
                               seed=cfg.seed, progress=cfg.progress)
        finally:
            store.close()
        ta = int(getattr(getattr(probe, "chunk_cfg", None), "n_action_steps", 1))
        self.features = Features.fit(state_keys, demos.states, da, phase_dim=ta if cfg.phase_features and ta > 1 else 0,
                                     goal_delta=_goal_delta(self.env_id, state_keys) if cfg.goal_delta else None)
        self.n_demo_steps = len(demos.actions)
        self.n_demo_episodes = len(demos.ends)
        self.demo = demo_replay(demos, self.features, n_step=self.rcfg.n_step, gamma=self.rcfg.gamma,
                                seed=cfg.seed + 1)
        e = cfg.num_envs
        self.online = ReplayBuffer(math.ceil(cfg.steps / e) + 1, e, self.features.dim, da, n_step=self.rcfg.n_step,
                                   gamma=self.rcfg.gamma, seed=cfg.seed + 2)
        self.learner = ResidualLearner(self.features.dim, da, self.rcfg, seed=cfg.seed, device=self.device)
        self.rng = np.random.default_rng(cfg.seed + 3)
        self.envs = [self._make_env() for _ in range(e)]
        # Hindsight relabelling: a one-stream replay of relabelled episodes, the base that is re-run on them and
        # each env's episode so far (the observation keys features, base and goals need, and the actions).
        self.her: ReplayBuffer | None = None
        self._trace: list[tuple[list[dict[str, np.ndarray]], list[np.ndarray], int]] = [([], [], 0) for _ in range(e)]
        if cfg.her:
            from robot.env import GoalTask

            task = self.envs[0].unwrapped.task
            if not isinstance(task, GoalTask):
                raise ConfigError(f"--her relabels goals; {self.env_id} ({type(task).__name__}) is not a "
                                  "goal-conditioned task: leave --her out")
            self.her = ReplayBuffer(cfg.steps * cfg.her + 1, 1, self.features.dim, da, n_step=self.rcfg.n_step,
                                    gamma=self.rcfg.gamma, seed=cfg.seed + 4)
            self.her_base = make_base()
            base_cfg = getattr(self.her_base, "obs_cfg", None)
            self._trace_keys = tuple(dict.fromkeys((*state_keys, *getattr(base_cfg, "state_keys", ()),
                                                    *getattr(base_cfg, "image_keys", ()), "achieved_goal")))
        self.eval_base = make_base()
        self.env_steps = 0
        self.episodes = 0
        self.wall_s = 0.0  # training wall time before this process (resumed runs add theirs)
        self.next_seed = 100_000 * (cfg.seed + 1)  # far from demo seeds (0..) and eval seeds (1000..)
        self.recent: deque[float] = deque(maxlen=50)
        self.history: list[dict[str, Any]] = []
        self.base_eval: dict[str, float] | None = None
        self._obs: list[dict[str, np.ndarray]] = []
        self._t = np.zeros(e, np.int64)  # each env's step in its episode (the base's chunk phase)
        self._noise = np.zeros((e, da))  # each env's correlated exploration noise (explore_corr > 0)
        self._critic_grip = np.zeros(e, bool)  # whether env i's episode lets the critic pick the gripper command
        self._t0: float | None = None  # perf_counter at the start of train() in this process
        self._batches: Iterator[NStepBatch] | None = None
        self.resumed = False
        if cfg.resume:
            ck = self.out / CHECKPOINT
            if ck.exists() or ck.with_name(CHECKPOINT + ".old").exists():
                self.load(ck)
                self.resumed = True

    # -- envs -------------------------------------------------------------------------------
    def _make_env(self) -> Any:
        from robot.sessions.envs import make_env
        from robot.sessions.episodes import check_policy_env
        from robot.wrappers import ResidualAction, SafetyLimits

        env = ResidualAction(SafetyLimits(make_env(self.env_id, **self.env_kwargs)), self.make_base(),
                             scale=self.learner.scales.cpu().numpy())
        check_policy_env(env.base, env.env)
        return env

    def _reset(self, i: int) -> dict[str, np.ndarray]:
        obs, _ = self.envs[i].reset(seed=self.next_seed)
        if self.her is not None:
            self._trace[i] = ([self._keep(obs)], [], self.next_seed)
        self.next_seed += 1
        self._t[i] = 0
        if self.cfg.explore_corr:  # a fresh draw from the stationary distribution
            self._noise[i] = self.rng.normal(0.0, self.cfg.explore_std, self._noise.shape[1])
        if self.cfg.critic_gripper:
            self._critic_grip[i] = self.rng.random() < self.cfg.critic_gripper
        return obs

    def _feats(self, obs: dict[str, np.ndarray], step: int) -> np.ndarray:
        return self.features(obs, obs["base_action"], step)

    def _keep(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: np.array(obs[k]) for k in self._trace_keys}

    def _hindsight(self, i: int) -> None:
        """Store env i's finished episode again with up to cfg.her goals it reached (before the env resets: the
        task still holds the episode's scene)."""
        from policies.residual.hindsight import pick_goals, relabel

        assert self.her is not None
        observations, actions, seed = self._trace[i]
        task = self.envs[i].unwrapped.task
        for goal in pick_goals(task, observations, self.cfg.her, self.rng):
            ep = relabel(observations, np.stack(actions), goal, task, self.her_base, self.features, seed=seed)
            if ep is not None:
                self.her.add_episode(ep[0], ep[1], True)

    # -- one vector step ----------------------------------------------------------------------
    def collect(self) -> None:
        """Step every env once (warm-up noise or the exploring actor) and store the transitions."""
        if not self._obs:
            self._obs = [self._reset(i) for i in range(len(self.envs))]
        feats = np.stack([self._feats(o, int(t)) for o, t in zip(self._obs, self._t, strict=True)])
        if self.env_steps < self.cfg.warmup_steps:
            residual = np.clip(self.rng.normal(0.0, self.cfg.warmup_noise, (len(self.envs), self.features.action_dim)),
                               -1.0, 1.0)
        elif self.cfg.explore_corr:
            r, sd = self.cfg.explore_corr, self.cfg.explore_std
            self._noise = r * self._noise + math.sqrt(1.0 - r * r) * self.rng.normal(0.0, sd, self._noise.shape)
            k = self.learner.noise_scales.cpu().numpy()
            residual = np.clip(self.learner.act(feats) + k * np.clip(self._noise, -2 * sd, 2 * sd), -1.0, 1.0)
        else:
            residual = self.learner.act(feats, explore=True)
        if self.env_steps >= self.cfg.warmup_steps and self._critic_grip.any():
            rows = np.ix_(self._critic_grip, np.asarray(self.gripper_dims, np.intp))
            residual[rows] = self.learner.act_choosing(feats, self.gripper_dims)[rows]
        n = len(self.envs)
        actions = np.empty((n, self.features.action_dim), np.float32)
        rewards, nxt = np.zeros(n, np.float32), np.empty_like(feats)
        term, trunc = np.zeros(n, bool), np.zeros(n, bool)
        for i, env in enumerate(self.envs):
            obs, _, terminated, truncated, info = env.step(residual[i])
            success = bool(info.get("success", False))
            actions[i] = info["combined_action"]
            rewards[i] = float(success)  # sparse binary reward, whatever the task's shaped reward says
            term[i], trunc[i] = terminated or success, truncated and not success
            self._t[i] += 1
            nxt[i] = self._feats(obs, int(self._t[i]))
            if self.her is not None:
                self._trace[i][0].append(self._keep(obs))
                self._trace[i][1].append(actions[i].copy())
            if term[i] or trunc[i]:
                self.episodes += 1
                self.recent.append(float(success))
                if self.her is not None:
                    self._hindsight(i)
                obs = self._reset(i)
            self._obs[i] = obs
        self.online.add(feats, actions, rewards, nxt, term, trunc)
        self.env_steps += n

    def update(self) -> dict[str, float]:
        """One learner.update (UTD critic updates) on 50/50 demo/online batches; actor off in critic warm-up."""
        from policies.residual.learner import mix

        if self._batches is None:
            n_demo = round(self.rcfg.batch_size * self.cfg.demo_fraction)
            n_online = self.rcfg.batch_size - n_demo
            online = (self.online.sampler(n_online) if self.her is None
                      else self._online_with_hindsight(n_online))
            self._batches = mix(online, self.demo.sampler(n_demo) if n_demo else None)
        actor = self.env_steps >= self.cfg.warmup_steps + self.cfg.critic_warmup_steps
        return self.learner.update(self._batches, actor=actor)

    def _online_with_hindsight(self, n: int) -> Iterator[NStepBatch]:
        """Online batches of n whose relabelled share follows the two replays' sizes, capped at her/(her+1) (HER's
        'future' ratio); deterministic in the sizes, so a resumed run draws the same batches."""
        from policies.residual.learner import concat

        assert self.her is not None
        cap = self.cfg.her / (self.cfg.her + 1)
        while True:
            h, o = len(self.her), len(self.online)
            n_her = min(round(n * h / max(h + o, 1)), round(n * cap))
            if n_her == 0:
                yield self.online.sample(n)
            else:
                yield concat(self.online.sample(n - n_her), self.her.sample(n_her))

    # -- evaluation ---------------------------------------------------------------------------
    def policy(self) -> Any:
        """The current deterministic base + residual (sharing the learner's actor)."""
        from policies.residual.policy import ResidualPolicy

        return ResidualPolicy(self.eval_base, self.learner.actor, self.features, self.learner.scales.cpu().numpy(),
                              self.cfg.algo, meta={**getattr(self.eval_base, "meta", {}), "env_id": self.env_id})

    def evaluate(self) -> dict[str, float]:
        """Success of base + residual (and, once, of the base alone) on the fixed evaluation seeds."""
        from robot.sessions.evaluate import evaluate_policy

        def run(policy: Any) -> dict[str, float]:
            return evaluate_policy(policy, self.env_id, self.cfg.eval_episodes, seed=self.cfg.eval_seed,
                                   env_kwargs=self.env_kwargs).as_dict()

        if self.base_eval is None:
            self.base_eval = run(self.eval_base) if self.cfg.algo != "rlpd" else {"success": 0.0}
        self.learner.actor.train(False)
        r = run(self.policy())
        self.learner.actor.train(True)
        return {"eval/success": r["success"], "eval/success_ci_low": r["success_ci_low"],
                "eval/success_ci_high": r["success_ci_high"], "eval/mean_length": r["mean_length"],
                "eval/base_success": self.base_eval["success"]}

    # -- checkpoints --------------------------------------------------------------------------
    def save(self, path: Path | None = None) -> Path:
        """Atomically write weights, optimizers, both replays, RNG states and counters (tmp dir + renames)."""
        import torch
        from safetensors.torch import save_file

        from policies.checkpoint import swap_in

        out = path or self.out / CHECKPOINT
        tmp = out.with_name(out.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        save_file({k: v.detach().contiguous().clone() for k, v in self.learner.state_dict().items()},
                  str(tmp / "learner.safetensors"))
        rng_state = {"torch_rng": torch.get_rng_state()}
        if self.learner.device.type == "cuda":  # the SAC actor samples with the device's default generator
            rng_state["cuda_rng"] = torch.cuda.get_rng_state(self.learner.device)
        torch.save({**self.learner.training_state(), **rng_state}, tmp / "training.pt")
        replay_meta = {}
        for name, buf in self._replays():
            st = buf.state_dict()
            np.savez(tmp / f"{name}.npz", **st["arrays"])
            replay_meta[name] = st["meta"]
        state = {"env_steps": self.env_steps, "episodes": self.episodes, "next_seed": self.next_seed,
                 "wall_s": self._wall(),
                 "recent": list(self.recent), "history": self.history, "base_eval": self.base_eval,
                 "rng": self.rng.bit_generator.state, "replay": replay_meta, "env_id": self.env_id,
                 "features": self.features.to_json(), "config": _jsonable(asdict(self.cfg))}
        (tmp / "state.json").write_text(json.dumps(state))
        return swap_in(tmp, out)

    def load(self, path: Path) -> None:
        """Restore everything `save` wrote; in-flight episodes are not resumed (each env starts a new one)."""
        import torch
        from safetensors.torch import load_file

        if not path.exists() and path.with_name(path.name + ".old").exists():
            path = path.with_name(path.name + ".old")  # a save died between its two renames
        need = ("learner.safetensors", "training.pt", *(f"{name}.npz" for name, _ in self._replays()), "state.json")
        missing = [f for f in need if not (path / f).is_file()]
        if missing:
            raise CheckpointError(f"{path} is not a complete residual checkpoint (missing {missing}); nothing to "
                                  "resume")
        state = json.loads((path / "state.json").read_text())
        if state["features"] != self.features.to_json():
            raise CheckpointError(f"{path} was trained with other observation features (different demos or base); "
                                  "resume with the same --base and --demos")
        self.learner.load_state_dict(load_file(str(path / "learner.safetensors")))
        training = torch.load(path / "training.pt", weights_only=True, map_location="cpu")
        torch.set_rng_state(training.pop("torch_rng"))
        cuda_rng = training.pop("cuda_rng", None)
        if cuda_rng is not None and self.learner.device.type == "cuda":
            torch.cuda.set_rng_state(cuda_rng, self.learner.device)
        self.learner.load_training_state(training)
        for name, buf in self._replays():
            with np.load(path / f"{name}.npz") as z:
                buf.load_state_dict({"arrays": {k: z[k] for k in z.files}, "meta": state["replay"][name]})
        self.online.mark_truncated()
        self.env_steps, self.episodes, self.next_seed = state["env_steps"], state["episodes"], state["next_seed"]
        self.wall_s = float(state.get("wall_s", 0.0))
        self.recent = deque(state["recent"], maxlen=50)
        self.history, self.base_eval = state["history"], state["base_eval"]
        self.rng.bit_generator.state = state["rng"]
        self._obs, self._batches = [], None

    def _replays(self) -> list[tuple[str, ReplayBuffer]]:
        return [("online", self.online), ("demo", self.demo), *([("her", self.her)] if self.her is not None else [])]

    def save_policy(self) -> Path:
        """The deployable base + residual in out/policy."""
        from policies.residual.policy import save_residual_policy

        return save_residual_policy(self.policy(), self.out / "policy", self.base_dir, self.rcfg.hidden)

    # -- the loop -----------------------------------------------------------------------------
    def _wall(self) -> float:
        """Training wall time so far (s), over every process of a resumed run."""
        return self.wall_s + (time.perf_counter() - self._t0 if self._t0 is not None else 0.0)

    def _log(self, row: dict[str, Any]) -> None:
        row["wall_s"] = round(self._wall(), 1)
        self.history.append(row)
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def train(self, stop_at: int | None = None) -> dict[str, Any]:
        """Run to cfg.steps env steps (or stop after the checkpoint at `stop_at`, for tests); returns the last row."""
        from tqdm import tqdm

        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps({"command": "train residual", **_jsonable(asdict(cfg))},
                                                         indent=1))
        bar = tqdm(total=cfg.steps, initial=self.env_steps, desc=f"residual {cfg.algo} {self.env_id}", unit="step",
                   disable=not cfg.progress, smoothing=0.05)
        metrics: dict[str, float] = {}
        last_eval: dict[str, float] = {}
        t0, updates0 = time.perf_counter(), self.learner.updates
        self._t0 = t0
        if self.env_steps == 0 and cfg.eval_every:
            last_eval = self.evaluate()
            self._log({"env_steps": 0, "episodes": 0, **last_eval})
        try:
            while self.env_steps < cfg.steps:
                before = self.env_steps
                self.collect()
                if self.env_steps >= cfg.warmup_steps:
                    for _ in range(len(self.envs)):
                        metrics = self.update()
                bar.update(self.env_steps - before)

                def crossed(every: int, before: int = before) -> bool:
                    return every > 0 and self.env_steps // every > before // every

                done = self.env_steps >= cfg.steps
                row: dict[str, Any] = {}
                if crossed(cfg.log_every) or done:
                    dt = time.perf_counter() - t0
                    row = {"env_steps": self.env_steps, "episodes": self.episodes, "updates": self.learner.updates,
                           "updates_per_s": (self.learner.updates - updates0) / max(dt, 1e-9),
                           "train_success": float(np.mean(self.recent)) if self.recent else 0.0, **metrics}
                    if self.her is not None:
                        row["her_transitions"] = len(self.her)
                    t0, updates0 = time.perf_counter(), self.learner.updates
                if crossed(cfg.eval_every) or done:
                    last_eval = self.evaluate()
                    row = {"env_steps": self.env_steps, "episodes": self.episodes, **row, **last_eval}
                if row:
                    self._log(row)
                    bar.set_postfix(train=f"{row.get('train_success', 0):.0%}" if "train_success" in row else None,
                                    eval=f"{last_eval['eval/success']:.0%}" if last_eval else "-",
                                    ups=f"{row.get('updates_per_s', 0):.0f}")
                if crossed(cfg.checkpoint_every) or done:
                    self.save()
                    self.save_policy()
                    self.plot()
                    if stop_at is not None and self.env_steps >= stop_at:
                        break
        finally:
            bar.close()
            for env in self.envs:
                env.close()
        return self.history[-1] if self.history else {}

    def plot(self) -> Path | None:
        """curves.png: evaluation success (and the base's) and training success vs env steps."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ev = [r for r in self.history if "eval/success" in r]
        tr = [r for r in self.history if "train_success" in r]
        if not ev and not tr:
            return None
        fig, ax = plt.subplots(figsize=(6, 3.5))
        if ev:
            ax.plot([r["env_steps"] for r in ev], [r["eval/success"] for r in ev], "o-", label="eval: base + residual")
            ax.axhline(ev[-1]["eval/base_success"], ls="--", c="gray", label="eval: base alone")
        if tr:
            ax.plot([r["env_steps"] for r in tr], [r["train_success"] for r in tr], alpha=0.6,
                    label="train (exploring, last 50 episodes)")
        ax.set(xlabel="env steps", ylabel="success", ylim=(-0.02, 1.02), title=f"{self.cfg.algo} on {self.env_id}")
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        path = self.out / "curves.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def train_residual(cfg: TrainResidualConfig) -> dict[str, Any]:
    """Build the trainer (resuming when asked) and run it; returns the final metrics row."""
    trainer = ResidualTrainer(cfg)
    if trainer.resumed:
        print(f"resuming {cfg.out} at env step {trainer.env_steps}")
    elif cfg.resume:
        print(f"{cfg.out} has no checkpoint yet: starting from scratch")
    return trainer.train()


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}
