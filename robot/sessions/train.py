"""`realrl train base|head` and `realrl eval`: store -> base policy -> one-step head -> evaluation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from robot.core.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class RunBudget:
    """Optimization budget and evaluation cadence shared by the train commands."""

    steps: int = 3000
    """Gradient steps."""
    batch_size: int = 128
    """Batch size."""
    lr: float = 1e-3
    """Peak learning rate."""
    eval_every: int = 1000
    """Sim evaluation every N steps (0: only at the end)."""
    eval_episodes: int = 20
    """Episodes per evaluation."""
    seed: int = 0
    """Seed."""
    threads: int = 2
    """torch threads."""
    progress: bool = True
    """Progress bars."""
    device: str = "cpu"
    """Where the network trains: cpu, cuda, cuda:N or auto (cuda when torch sees one). The network, its EMA, the
    optimizer and the validation loss run there; envs, sim evaluation (on a CPU copy), teacher targets and the saved
    policy/ and train_state/ stay on the CPU, so a run trained on a GPU resumes or deploys on a CPU-only machine.
    A missing GPU is an error before any data is read."""


@dataclass(frozen=True)
class TrainBaseConfig(RunBudget):
    """Train a base policy (diffusion, flow or MIP/BC) on an episode store."""

    store: Path
    """Episode store with demos (realrl data collect ...)."""
    out: Path
    """Run directory (policy/, train_state/, metrics.jsonl, curves.png); an existing one is resumed."""
    policy: Literal["diffusion", "flow", "mip", "bc"] = "diffusion"
    """Algorithm (bc = one-step regression)."""
    cameras: str = ""
    """Comma-separated cameras to use as image observations (e.g. 'front,wrist'); empty: state only."""
    state_keys: str = ""
    """Comma-separated state keys; empty: every state/* key except joint velocities."""
    only_success: bool = True
    """Train on successful episodes only."""
    down_dims: tuple[int, ...] = (32, 64, 128)
    """U-Net channels per level (CPU default; DiffusionPolicy uses 256, 512, 1024)."""
    horizon: int = 16
    """H."""
    n_obs_steps: int = 2
    """To."""
    n_action_steps: int = 4
    """Ta: actions executed open loop per chunk. 4 at 20 Hz (0.2 s): with 3 cm steps, 8 open-loop steps let
    grasp errors compound (measured on FrankaLift: 20% at Ta=8 vs 50% at Ta=2 for the same checkpoint)."""
    val_fraction: float = 0.1
    """Episodes held out for the validation loss."""


@dataclass(frozen=True)
class TrainHeadConfig(RunBudget):
    """Distil a trained base policy (the teacher) into a one-step head."""

    teacher: Path
    """Teacher run directory (or its policy/ checkpoint)."""
    out: Path
    """Run directory for the head."""
    kind: Literal["consistency", "meanflow", "mip"] = "consistency"
    """Head type."""
    student: Literal["mlp", "teacher"] = "mlp"
    """Student network: a light MLP (fast) or a copy of the teacher's network (initialized from it)."""
    mlp_hidden: tuple[int, ...] | None = None
    """MLP student widths; default 1024x3 for MeanFlow (its one-step average-velocity map needs the width: 512x3
    kept 87% of a FrankaPickPlace teacher, 1024x3 100%), 512x3 for the others."""
    lcm_weight: float = 0.0
    """Consistency head: weight of the LCM boundary-condition loss."""
    per_window: int | None = None
    """Teacher samples (noises) per training window; default 16 for consistency and MeanFlow (a map from noise to
    chunk needs many noises per state), 2 for MIP (deterministic: it regresses onto their mean)."""
    rollout_episodes: int | None = None
    """Episodes of the rollout policy (default: the teacher) whose visited states join the demo states, labelled
    with the teacher's chunks (seeds from 5000, apart from demo and evaluation seeds; 0: demo states only);
    default 100 for consistency and MeanFlow, 0 for MIP."""
    rollout_noise: float = 0.0
    """Gaussian noise (std, normalized units) on the rollout policy's executed actions: spreads the states."""
    rollout_policy: Path | None = None
    """Policy (run directory or checkpoint) to roll out instead of the teacher: a head, for a DAgger round."""
    rollout_store: Path | None = None
    """Episode store of the rollouts, reused when it holds as many episodes of the same policy and noise (share
    one between head runs); default: <out>/rollouts.zarr."""
    extra_states: tuple[Path, ...] = ()
    """More episode stores whose states join the distillation set, labelled by the teacher like the rollouts
    (e.g. an earlier head run's rollouts.zarr, so a DAgger round keeps the teacher's states as well)."""
    targets: Path | None = None
    """Directory of precomputed teacher targets, reused when made for the same teacher, windows and options
    (share one between head runs); default: <out>/targets."""
    steps: int = field(default=6000, kw_only=True)
    """Gradient steps (an MLP student step is cheap)."""
    batch_size: int = field(default=256, kw_only=True)
    """Batch size (the MLP student is cheap: larger batches)."""

    def student_hidden(self) -> tuple[int, ...]:
        """MLP student widths with the per-kind default filled in."""
        if self.mlp_hidden is not None:
            return self.mlp_hidden
        return (1024, 1024, 1024) if self.kind == "meanflow" else (512, 512, 512)

    def sampling(self) -> tuple[int, int]:
        """(per_window, rollout_episodes) with the per-kind defaults filled in."""
        one_step = self.kind in ("consistency", "meanflow")
        per_window = self.per_window if self.per_window is not None else (16 if one_step else 2)
        rollouts = self.rollout_episodes if self.rollout_episodes is not None else (100 if one_step else 0)
        return per_window, rollouts


@dataclass(frozen=True)
class EvalConfig:
    """Evaluate a trained policy in sim: success rate with a 95% interval and latency per action."""

    policy: Path
    """Run directory or policy checkpoint."""
    env: str = ""
    """Env id; empty: the one the policy was trained on."""
    episodes: int = 50
    """Episodes (seeds seed .. seed + episodes - 1)."""
    seed: int = 1000
    """First seed (held out from the demo seeds by default)."""
    threads: int = 1
    """torch threads (latency is reported for this many)."""
    progress: bool = True
    """Progress bar."""
    json_out: Path | None = None
    """Also write the metrics as JSON here."""
    randomize: Literal["none", "light", "medium", "heavy"] = "none"
    """Sim-to-real check: evaluate nominal and then each perturbation family (object mass/friction/size, actuator
    gains, observation noise, observation and action latency, dropped camera frames) at this strength, on the same
    seeds, and report success per family."""


def _policy_dir(path: Path) -> Path:
    return path / "policy" if (path / "policy").exists() or (path / "policy.old").exists() else path


def _env_kwargs(meta: dict[str, Any]) -> dict[str, Any]:
    cams = meta.get("cameras") or []
    return {"cameras": tuple(cams), "image_size": tuple(meta["image_size"])} if cams else {}


def _evaluator(env_id: str, episodes: int, env_kwargs: dict[str, Any]) -> Any:
    from robot.sessions.evaluate import evaluate_policy

    def run(policy: Any) -> dict[str, float]:
        return evaluate_policy(policy, env_id, episodes, env_kwargs=env_kwargs).as_dict()

    return run


def train_base(cfg: TrainBaseConfig) -> dict[str, Any]:
    """Build datasets and the policy, train (resuming if the run exists), return the final metrics."""
    import torch

    from data import EpisodeStore
    from data.dataset import WindowConfig, WindowDataset, split_episodes
    from data.stats import compute_stats
    from policies.base_policies import DiffusionPolicy, FlowPolicy, MipPolicy
    from policies.config import ChunkConfig, DiffusionConfig, FlowConfig, MipConfig, ObsConfig, UnetNet
    from policies.device import resolve_device
    from policies.normalize import Normalizer
    from policies.train import TrainConfig, Trainer

    device = resolve_device(cfg.device)  # a missing GPU fails here, before the store is read
    store = EpisodeStore.open(cfg.store, "r")
    if not store.env_id:
        raise ConfigError(f"{cfg.store} does not record its env id; it cannot be evaluated in sim")
    episodes = [i for i in range(len(store)) if store.episode_meta(i)["success"] or not cfg.only_success]
    if not episodes:
        raise ConfigError(f"{cfg.store} has no successful episodes to train on (pass --no-only-success to use all)")
    cams = tuple(f"image/{c.strip()}" for c in cfg.cameras.split(",") if c.strip())
    if cfg.state_keys:
        state_keys = tuple(k.strip() for k in cfg.state_keys.split(",") if k.strip())
    else:
        state_keys = tuple(k for k in store.keys if k.startswith("state/") and k != "state/joint_vel")
    missing = [k for k in (*state_keys, *cams) if k not in store.keys]
    if missing:
        raise ConfigError(f"{cfg.store} has no keys {missing}; stored keys: {list(store.keys)}")
    image_shape = store.schema[cams[0]].shape[:2] if cams else (84, 84)
    chunk = ChunkConfig(cfg.horizon, cfg.n_obs_steps, cfg.n_action_steps)
    wcfg = WindowConfig(state_keys=state_keys, image_keys=cams, n_obs_steps=chunk.n_obs_steps, horizon=chunk.horizon)
    train_eps, val_eps = split_episodes(len(episodes), cfg.val_fraction, cfg.seed)
    train_set = WindowDataset(store, wcfg, [episodes[i] for i in train_eps])
    val_set = WindowDataset(store, wcfg, [episodes[i] for i in val_eps]) if val_eps else None
    stats = compute_stats(store, [*state_keys, "action"], [episodes[i] for i in train_eps])
    obs = ObsConfig(state_keys=state_keys, state_dims=tuple(int(store.schema[k].shape[0]) for k in state_keys),
                    image_keys=cams, image_shape=(int(image_shape[0]), int(image_shape[1])))
    net = UnetNet(down_dims=cfg.down_dims)
    algo: Any = {"diffusion": DiffusionConfig(net=net), "flow": FlowConfig(net=net), "mip": MipConfig(net=net),
                 "bc": MipConfig(two_step=False, net=net)}[cfg.policy]
    cls: Any = {"diffusion": DiffusionPolicy, "flow": FlowPolicy, "mip": MipPolicy, "bc": MipPolicy}[cfg.policy]
    meta = {"env_id": store.env_id, "store": str(Path(cfg.store).resolve()), "spec": store.spec,
            "cameras": [c.split("/", 1)[1] for c in cams], "image_size": list(image_shape),
            "train_episodes": len(train_eps)}
    torch.manual_seed(cfg.seed)
    policy = cls(obs, chunk, int(store.schema["action"].shape[0]), algo, Normalizer(stats), meta=meta)
    tc = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, eval_every=cfg.eval_every or cfg.steps,
                     checkpoint_every=max(1, min(500, cfg.steps)), seed=cfg.seed, threads=cfg.threads,
                     progress=cfg.progress, device=str(device))
    trainer = Trainer(policy, train_set, cfg.out, tc, val_set=val_set,
                      evaluator=_evaluator(store.env_id, cfg.eval_episodes, _env_kwargs(meta)))
    if trainer.resume():
        print(f"resuming {cfg.out} at step {trainer.step}")
    result = trainer.fit()
    (Path(cfg.out) / "config.json").write_text(json.dumps({"command": "train base", **_jsonable(cfg)}, indent=1))
    return result


def _rollout_windows(cfg: TrainHeadConfig, teacher: Any, wcfg: Any, episodes: int) -> Any:
    """Windows over the rollout policy's own episodes (recorded once into the rollout store, then reused)."""
    from data import EpisodeStore
    from data.dataset import WindowDataset
    from policies.io import load_policy
    from robot.sessions.rollouts import record_rollouts

    meta = teacher.meta
    source = cfg.rollout_policy or cfg.teacher
    path = cfg.rollout_store or Path(cfg.out) / "rollouts.zarr"
    want = {"policy": str(Path(source).resolve()), "action_noise": cfg.rollout_noise}
    if path.exists():
        store = EpisodeStore.open(path, "r")
        done = [{k: store.episode_meta(i)["meta"].get(k) for k in want} for i in range(len(store))]
        if len(store) == episodes and all(d == want for d in done):
            return WindowDataset(store, wcfg)
        store.close()
    policy = load_policy(_policy_dir(source)) if cfg.rollout_policy else teacher
    res = record_rollouts(policy, meta["env_id"], path, episodes, action_noise=cfg.rollout_noise,
                          keys=(*teacher.obs_cfg.state_keys, *teacher.obs_cfg.image_keys),
                          env_kwargs=_env_kwargs(meta), progress=cfg.progress, meta={"policy": want["policy"]})
    print(f"rollouts of {source}: {res['episodes']} episodes, {res['steps']} states, success {res['success']:.0%}")
    return WindowDataset(EpisodeStore.open(path, "r"), wcfg)


def train_head(cfg: TrainHeadConfig) -> dict[str, Any]:
    """Distil the teacher into a one-step head with precomputed teacher targets on demo (+ rollout) states."""
    import torch
    from torch.utils.data import ConcatDataset

    from data import EpisodeStore
    from data.dataset import WindowConfig, WindowDataset
    from policies.config import ConsistencyConfig, MeanFlowConfig, MipHeadConfig, MlpNet
    from policies.device import resolve_device
    from policies.distill import TeacherTargets
    from policies.heads import make_head
    from policies.io import load_policy
    from policies.train import TrainConfig, Trainer

    device = resolve_device(cfg.device)  # a missing GPU fails here, before rollouts and teacher targets
    torch.set_num_threads(cfg.threads)  # the teacher targets are computed before the trainer sets it
    per_window, rollout_episodes = cfg.sampling()
    if rollout_episodes < 0 or cfg.rollout_noise < 0:
        raise ConfigError(f"rollout_episodes and rollout_noise must be >= 0, got {rollout_episodes}, "
                          f"{cfg.rollout_noise}")
    teacher = load_policy(_policy_dir(cfg.teacher))
    meta = teacher.meta
    if "store" not in meta or not Path(meta["store"]).exists():
        raise ConfigError(f"the teacher's demo store {meta.get('store')!r} is not available; heads distil on it")
    store = EpisodeStore.open(meta["store"], "r")
    episodes = [i for i in range(len(store)) if store.episode_meta(i)["success"]] or list(range(len(store)))
    wcfg = WindowConfig(state_keys=teacher.obs_cfg.state_keys, image_keys=teacher.obs_cfg.image_keys,
                        n_obs_steps=teacher.chunk_cfg.n_obs_steps, horizon=teacher.chunk_cfg.horizon)
    windows: Any = WindowDataset(store, wcfg, episodes)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    extra = []
    for path in cfg.extra_states:
        more = EpisodeStore.open(path, "r")
        if more.env_id != meta["env_id"]:
            raise ConfigError(f"{path} holds episodes of {more.env_id!r}; the teacher acts in {meta['env_id']!r}")
        extra.append(WindowDataset(more, wcfg))
    if rollout_episodes:
        extra.append(_rollout_windows(cfg, teacher, wcfg, rollout_episodes))
    if extra:
        windows = ConcatDataset([windows, *extra])
    student = MlpNet(hidden=cfg.student_hidden()) if cfg.student == "mlp" else None
    algo: Any = {"consistency": ConsistencyConfig(lcm_weight=cfg.lcm_weight, net=student),
                 "meanflow": MeanFlowConfig(net=student), "mip": MipHeadConfig(net=student)}[cfg.kind]
    head = make_head(teacher, algo)
    head.meta["teacher"] = str(Path(cfg.teacher).resolve())
    targets = TeacherTargets(teacher, windows, per_window=per_window, trajectories=cfg.lcm_weight > 0,
                             seed=cfg.seed, progress=cfg.progress, cache=cfg.targets or Path(cfg.out) / "targets")
    tc = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, eval_every=cfg.eval_every or cfg.steps,
                     checkpoint_every=max(1, min(500, cfg.steps)), seed=cfg.seed, threads=cfg.threads,
                     progress=cfg.progress, val_every=0, device=str(device))
    trainer = Trainer(head, targets, cfg.out, tc,
                      evaluator=_evaluator(meta["env_id"], cfg.eval_episodes, _env_kwargs(meta)))
    if trainer.resume():
        print(f"resuming {cfg.out} at step {trainer.step}")
    result = trainer.fit()
    (Path(cfg.out) / "config.json").write_text(json.dumps({"command": "train head", **_jsonable(cfg)}, indent=1))
    return result


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Load a policy and evaluate it; prints and returns the metrics."""
    import torch

    from policies.io import load_policy
    from policies.residual.policy import is_residual_policy, load_residual_policy
    from robot.sessions.evaluate import evaluate_policy

    torch.set_num_threads(cfg.threads)
    path = _policy_dir(cfg.policy)
    policy: Any = load_residual_policy(path) if is_residual_policy(path) else load_policy(path)
    env_id = cfg.env or policy.meta.get("env_id", "")
    if not env_id:
        raise ConfigError("the policy does not record its env; pass --env")
    kwargs = _env_kwargs(policy.meta) if env_id.startswith("realrl/") else {}
    if cfg.randomize != "none":
        from robot.sessions.evaluate import evaluate_perturbed

        rows = evaluate_perturbed(policy, env_id, cfg.episodes, cfg.randomize, seed=cfg.seed, env_kwargs=kwargs,
                                  progress=cfg.progress)
        out_rows = {"policy": str(cfg.policy), "algo": policy.name, "nfe": policy.nfe, "randomize": cfg.randomize,
                    "families": rows}
        if cfg.json_out:
            cfg.json_out.write_text(json.dumps(out_rows, indent=1))
        return out_rows
    res = evaluate_policy(policy, env_id, cfg.episodes, seed=cfg.seed, env_kwargs=kwargs, progress=cfg.progress)
    out = {"policy": str(cfg.policy), "algo": policy.name, "nfe": policy.nfe, **res.as_dict()}
    if cfg.json_out:
        cfg.json_out.write_text(json.dumps(out, indent=1))
    return out


def _jsonable(cfg: Any) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        return [plain(x) for x in v] if isinstance(v, tuple | list) else v

    return {k: plain(v) for k, v in cfg.__dict__.items()}



