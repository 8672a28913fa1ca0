"""Policy configuration: observation layout, chunking, networks and algorithms as frozen dataclasses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from robot.core.errors import CheckpointError, ConfigError


@dataclass(frozen=True)
class ObsConfig:
    """Which observation keys a policy reads and how images are encoded."""

    state_keys: tuple[str, ...] = ("state/ee_pose", "state/gripper")
    """Low-dim keys (concatenated after normalization)."""
    state_dims: tuple[int, ...] = (7, 1)
    """Size of each state key."""
    image_keys: tuple[str, ...] = ()
    """Camera keys (uint8 H x W x 3)."""
    image_shape: tuple[int, int] = (84, 84)
    """(H, W) of every camera."""
    encoder: Literal["tiny", "resnet18"] = "tiny"
    """Image encoder, one per camera."""
    feature_dim: int = 64
    """Per-camera feature size."""
    crop: float | None = 0.9
    """Random-crop fraction during training (center crop at inference); None disables."""

    def __post_init__(self) -> None:
        if len(self.state_keys) != len(self.state_dims):
            raise ConfigError(f"state_keys {self.state_keys} and state_dims {self.state_dims} differ in length")
        if not self.state_keys and not self.image_keys:
            raise ConfigError("a policy needs at least one state or image key")


@dataclass(frozen=True)
class ChunkConfig:
    """Temporal layout: To observations in, H actions out, Ta executed before re-planning."""

    horizon: int = 16
    """H: predicted action steps (starting at the first observation step)."""
    n_obs_steps: int = 2
    """To: observation steps fed to the policy."""
    n_action_steps: int = 8
    """Ta: actions executed open loop per chunk (from index To-1)."""

    def __post_init__(self) -> None:
        if (
            not 1 <= self.n_obs_steps <= self.horizon
            or not 1 <= self.n_action_steps <= self.horizon - self.n_obs_steps + 1
        ):
            raise ConfigError(
                f"need 1 <= To <= H and 1 <= Ta <= H - To + 1, got H={self.horizon}, To={self.n_obs_steps}, "
                f"Ta={self.n_action_steps}"
            )


@dataclass(frozen=True)
class UnetNet:
    """ConditionalUnet1D denoiser (diffusion_policy design)."""

    down_dims: tuple[int, ...] = (32, 64, 128)
    """Channels per level (DiffusionPolicy uses (256, 512, 1024); this CPU default is ~50x cheaper)."""
    kernel_size: int = 5
    """Temporal kernel size."""
    n_groups: int = 8
    """GroupNorm groups."""
    step_embed_dim: int = 64
    """Timestep embedding size."""


@dataclass(frozen=True)
class MlpNet:
    """MLP denoiser over the flattened chunk: the light student for one-step heads."""

    hidden: tuple[int, ...] = (256, 256)
    """Hidden widths."""
    step_embed_dim: int = 32
    """Timestep embedding size."""


Net = UnetNet | MlpNet


@dataclass(frozen=True)
class DiffusionConfig:
    """DDPM training (epsilon prediction), DDIM sampling with trailing timestep spacing."""

    train_steps: int = 100
    """DDPM timesteps."""
    beta_schedule: str = "squaredcos_cap_v2"
    """diffusers beta schedule."""
    inference_steps: int = 10
    """DDIM steps at inference (NFE)."""
    net: Net = field(default_factory=UnetNet)
    """Denoiser."""


@dataclass(frozen=True)
class FlowConfig:
    """Rectified-flow matching, Euler sampling with FlowMatchEulerDiscreteScheduler."""

    inference_steps: int = 10
    """Euler steps (NFE)."""
    net: Net = field(default_factory=UnetNet)
    """Velocity network."""


@dataclass(frozen=True)
class MipConfig:
    """Minimal iterative policy: two regression passes (or one: plain regression BC)."""

    two_step: bool = True
    """False gives one-step regression BC."""
    t_star: float = 0.9
    """Interpolation time of the second pass."""
    train_noise: float = 0.1
    """Noise on the ground-truth chunk fed to the second pass in training (covers first-pass error)."""
    net: Net = field(default_factory=UnetNet)
    """Network."""


@dataclass(frozen=True)
class ConsistencyConfig:
    """One-step head distilled from a DDIM teacher: same-noise output regression (+ optional LCM loss)."""

    lcm_weight: float = 0.0
    """Weight of the LCM-style consistency / boundary-condition loss between adjacent teacher steps."""
    net: Net | None = None
    """Student network; None copies the teacher's (and its weights)."""


@dataclass(frozen=True)
class MeanFlowConfig:
    """One-step head trained with the MeanFlow average-velocity identity (torch.func.jvp).

    Times: t and r are drawn from their own logit-normals and swapped where r > t (MeanFlow draws both from
    one logit-normal; equal means and stds here give exactly that), and a fraction of the batch has r = t
    (plain flow matching).
    """

    r_equals_t_fraction: float = 0.25
    """Fraction of samples with r = t (plain flow matching)."""
    t_mean: float = -0.4
    """Mean of the logit-normal that t is drawn from."""
    t_std: float = 1.0
    """Standard deviation of that logit-normal."""
    r_mean: float = -0.4
    """Mean of the logit-normal that r is drawn from."""
    r_std: float = 1.0
    """Standard deviation of that logit-normal."""
    adaptive_power: float = 1.0
    """p of the per-sample loss weight 1 / (squared error + adaptive_eps)^p (no gradient); 0: plain MSE."""
    adaptive_eps: float = 1e-3
    """c of the adaptive weight (keeps it finite at zero error)."""
    x_prediction: bool = True
    """The network predicts the clean chunk D and u = (z - D) / max(t, x_prediction_t_min) (x-prediction): on
    straight teacher paths D is the chunk at every (r, t), and the one-step chunk D(noise, 0, 1) needs no copy of
    the noise through the network, which a velocity output u = noise - chunk does."""
    x_prediction_t_min: float = 0.05
    """Floor on t in the x-prediction division (keeps u and its time derivative bounded near the data)."""
    net: Net | None = None
    """Student network (gets a second time input); None copies the teacher's architecture."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.r_equals_t_fraction <= 1.0:
            raise ConfigError(f"r_equals_t_fraction must be in [0, 1], got {self.r_equals_t_fraction}")
        if min(self.t_std, self.r_std) <= 0 or self.adaptive_power < 0 or self.adaptive_eps <= 0:
            raise ConfigError(
                f"need t_std, r_std > 0, adaptive_power >= 0, adaptive_eps > 0; got {self.t_std}, {self.r_std}, "
                f"{self.adaptive_power}, {self.adaptive_eps}"
            )


@dataclass(frozen=True)
class MipHeadConfig:
    """Two-step MIP head distilled from the teacher's samples (the cheap baseline)."""

    t_star: float = 0.9
    """Interpolation time of the second pass."""
    net: Net | None = None
    """Student network; None copies the teacher's."""


Algo = DiffusionConfig | FlowConfig | MipConfig | ConsistencyConfig | MeanFlowConfig | MipHeadConfig
ALGO_NAMES: dict[type, str] = {
    DiffusionConfig: "diffusion",
    FlowConfig: "flow",
    MipConfig: "mip",
    ConsistencyConfig: "consistency",
    MeanFlowConfig: "meanflow",
    MipHeadConfig: "mip_head",
}
_NETS: dict[str, type] = {"unet": UnetNet, "mlp": MlpNet}
_BEFORE_FIELD: dict[type, dict[str, Any]] = {MeanFlowConfig: {"x_prediction": False}}
"""Fields whose default differs from the behaviour before they existed: a checkpoint written without the field
gets the old behaviour (MeanFlow heads were velocity-output until x_prediction was added)."""


def to_json(obj: Any) -> Any:
    """Dataclass tree -> JSON (unions tagged with `kind`)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        d: dict[str, Any] = {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        if isinstance(obj, UnetNet | MlpNet):
            d["kind"] = "unet" if isinstance(obj, UnetNet) else "mlp"
        return d
    if isinstance(obj, tuple | list):
        return [to_json(v) for v in obj]
    return obj


def _build(cls: type, d: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {k: v for k, v in _BEFORE_FIELD.get(cls, {}).items() if k not in d}
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(names) - {"kind"}
    if unknown:
        raise CheckpointError(f"{cls.__name__}: unknown fields {sorted(unknown)} in checkpoint config")
    for k, v in d.items():
        if k == "kind":
            continue
        if k == "net":
            kwargs[k] = None if v is None else net_from_json(v)
        elif isinstance(v, list):
            kwargs[k] = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        else:
            kwargs[k] = v
    return cls(**kwargs)


def net_from_json(d: dict[str, Any]) -> Net:
    """Tagged JSON -> UnetNet | MlpNet."""
    kind = d.get("kind")
    if kind not in _NETS:
        raise CheckpointError(f"unknown network kind {kind!r}; known: {sorted(_NETS)}")
    net: Net = _build(_NETS[kind], d)
    return net


def algo_from_json(name: str, d: dict[str, Any]) -> Algo:
    """Algorithm config by its registered name."""
    by_name = {v: k for k, v in ALGO_NAMES.items()}
    if name not in by_name:
        raise CheckpointError(f"unknown policy algorithm {name!r}; known: {sorted(by_name)}")
    algo: Algo = _build(by_name[name], d)
    return algo


def obs_from_json(d: dict[str, Any]) -> ObsConfig:
    """ObsConfig from JSON."""
    cfg: ObsConfig = _build(ObsConfig, d)
    return cfg


def chunk_from_json(d: dict[str, Any]) -> ChunkConfig:
    """ChunkConfig from JSON."""
    cfg: ChunkConfig = _build(ChunkConfig, d)
    return cfg
