"""`train base|head --device`: losses and training on each device torch sees, CPU checkpoints, early device errors."""

from pathlib import Path

import numpy as np
import pytest
import torch

from policies.base_policies import DiffusionPolicy, FlowPolicy, MipPolicy
from policies.chunk_policy import ChunkPolicy
from policies.config import (
    ChunkConfig,
    ConsistencyConfig,
    DiffusionConfig,
    FlowConfig,
    MeanFlowConfig,
    MipConfig,
    MipHeadConfig,
    MlpNet,
    ObsConfig,
    UnetNet,
)
from policies.device import resolve_device, to_device
from policies.heads import make_head
from policies.io import load_policy
from policies.normalize import Normalizer
from robot.core.errors import ConfigError
from robot.sessions.envs import make_env
from robot.sessions.train import TrainBaseConfig, TrainHeadConfig, train_base, train_head
from tests.conftest import record_expert_demos

ENV = "realrl/FrankaLift-v0"
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a machine without a GPU gives")

TINY = UnetNet(down_dims=(16, 32), step_embed_dim=16, n_groups=4)
OBS = ObsConfig(state_keys=("state/x",), state_dims=(3,))
STATS = {"state/x": {"min": -np.ones(3), "max": np.ones(3)}, "action": {"min": -np.ones(2), "max": np.ones(2)}}
B, H = 5, 8


def policy(kind: str) -> ChunkPolicy:
    algo = {"diffusion": DiffusionConfig(net=TINY), "flow": FlowConfig(net=TINY), "mip": MipConfig(net=TINY),
            "bc": MipConfig(two_step=False, net=MlpNet(hidden=(32,)))}[kind]
    cls = {"diffusion": DiffusionPolicy, "flow": FlowPolicy, "mip": MipPolicy, "bc": MipPolicy}[kind]
    torch.manual_seed(0)
    return cls(OBS, ChunkConfig(horizon=H, n_obs_steps=2, n_action_steps=4), 2, algo, Normalizer(STATS))


def cpu_batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"state/x": torch.rand(B, 2, 3, generator=g) * 2 - 1, "action": torch.rand(B, H, 2, generator=g) * 2 - 1,
            "noise": torch.randn(B, H, 2, generator=g), "teacher": torch.rand(B, H, 2, generator=g) * 2 - 1,
            "trajectory": torch.randn(B, 11, H, 2, generator=g),
            "timesteps": torch.arange(99, -1, -10).expand(B, 10)}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["diffusion", "flow", "mip", "bc", "consistency", "consistency-lcm", "meanflow",
                                  "mip_head"])
def test_every_loss_and_sampler_runs_where_its_model_is(device: str, kind: str) -> None:
    mlp = MlpNet(hidden=(32,))
    heads: dict[str, ConsistencyConfig | MeanFlowConfig | MipHeadConfig] = {
        "consistency": ConsistencyConfig(net=mlp), "consistency-lcm": ConsistencyConfig(lcm_weight=1.0, net=mlp),
        "meanflow": MeanFlowConfig(net=mlp), "mip_head": MipHeadConfig(net=mlp)}
    p = make_head(policy("diffusion"), heads[kind]) if kind in heads else policy(kind)
    dev = torch.device(device)
    p.model.to(dev)
    batch = to_device(cpu_batch(), dev)
    loss, metrics = p.loss(batch)
    loss.backward()
    assert loss.device.type == dev.type and np.isfinite(metrics["loss"])
    assert all(q.grad is not None and q.grad.device.type == dev.type for q in p.model.parameters() if q.requires_grad)
    with torch.no_grad():
        chunk = p.sample_normalized(p.model.condition(batch), batch["noise"])  # (B, H, Da)
    assert chunk.shape == (B, H, 2) and chunk.device.type == dev.type


def test_to_device_moves_nested_tensors_and_leaves_the_rest() -> None:
    x = torch.ones(2)
    moved = to_device({"a": x, "b": {"c": [x, (x, 3)]}, "d": "name"}, torch.device("cpu"))
    assert moved["a"] is x and moved["b"]["c"][0] is x and moved["b"]["c"][1] == (x, 3) and moved["d"] == "name"


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two scripted-expert episodes of FrankaLift."""
    return record_expert_demos(ENV, tmp_path_factory.mktemp("device") / "demos.zarr", 2)


def base_cfg(store: Path, out: Path, **kw: object) -> TrainBaseConfig:
    args: dict[str, object] = dict(store=store, out=out, policy="bc", down_dims=(16, 32), horizon=8, steps=4,
                                   batch_size=16, eval_every=0, eval_episodes=1, progress=False, threads=1,
                                   val_fraction=0.5)
    args.update(kw)
    return TrainBaseConfig(**args)  # type: ignore[arg-type]


def head_cfg(teacher: Path, out: Path, **kw: object) -> TrainHeadConfig:
    args: dict[str, object] = dict(teacher=teacher, out=out, kind="meanflow", mlp_hidden=(32,), per_window=1,
                                   rollout_episodes=0, steps=4, batch_size=16, eval_every=0, eval_episodes=1,
                                   progress=False, threads=1)
    args.update(kw)
    return TrainHeadConfig(**args)  # type: ignore[arg-type]


def assert_acts_on_the_cpu(run: Path, step: int) -> None:
    p = load_policy(run / "policy")  # safetensors are read onto the CPU: a GPU run must have written CPU tensors
    assert p.meta["train_step"] == step
    assert all(t.device.type == "cpu" for t in p.model.state_dict().values())
    env = make_env(ENV)
    obs, _ = env.reset(seed=7)
    p.reset()
    for _ in range(3):
        a = p.act(obs)
        assert a.shape == env.action_space.shape and np.isfinite(a).all() and np.abs(a).max() <= 1.0
        obs, *_ = env.step(a)
    env.close()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("algo", ["bc", "flow"])
def test_base_trains_on_the_device_saves_for_the_cpu_and_resumes(
    demos: Path, tmp_path: Path, device: str, algo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "base"
    train_base(base_cfg(demos, run, policy=algo, device=device))
    assert_acts_on_the_cpu(run, 4)
    out = train_base(base_cfg(demos, run, policy=algo, device=device, steps=6))
    assert f"resuming {run} at step 4" in capsys.readouterr().out and out["step"] == 6
    assert np.isfinite(out["val_loss"]) and 0.0 <= out["eval/success"] <= 1.0  # validated there, evaluated on a copy
    assert_acts_on_the_cpu(run, 6)


@pytest.mark.parametrize("device", DEVICES)
def test_head_trains_on_the_device_saves_for_the_cpu_and_resumes(
    demos: Path, tmp_path: Path, device: str, capsys: pytest.CaptureFixture[str]
) -> None:
    teacher = tmp_path / "teacher"
    train_base(base_cfg(demos, teacher, steps=2))  # any base will do: the head only has to copy it
    run = tmp_path / "head"
    train_head(head_cfg(teacher, run, device=device))
    assert_acts_on_the_cpu(run, 4)
    out = train_head(head_cfg(teacher, run, device=device, steps=6))
    assert f"resuming {run} at step 4" in capsys.readouterr().out and out["step"] == 6
    assert 0.0 <= out["eval/success"] <= 1.0
    assert_acts_on_the_cpu(run, 6)


@NO_GPU
def test_cuda_without_a_gpu_is_a_config_error_before_any_work(tmp_path: Path) -> None:
    # Neither the store nor the teacher exists: reaching them would raise something else.
    with pytest.raises(ConfigError, match="sees no CUDA GPU; use --device cpu"):
        train_base(base_cfg(tmp_path / "none.zarr", tmp_path / "base", device="cuda"))
    with pytest.raises(ConfigError, match="sees no CUDA GPU; use --device cpu"):
        train_head(head_cfg(tmp_path / "none", tmp_path / "head", device="cuda:0"))
    assert not (tmp_path / "base").exists() and not (tmp_path / "head").exists()


def test_unknown_device_names_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown torch device 'gpu0'"):
        train_base(base_cfg(tmp_path / "none.zarr", tmp_path / "base", device="gpu0"))
    with pytest.raises(ConfigError, match="unknown torch device 'gpu0'"):
        train_head(head_cfg(tmp_path / "none", tmp_path / "head", device="gpu0"))
    with pytest.raises(ConfigError, match="realrl runs on cpu or cuda"):
        resolve_device("meta")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_the_cli_has_a_device_flag_defaulting_to_the_cpu() -> None:
    import tyro

    cfg = tyro.cli(TrainHeadConfig, args=["--teacher", "t", "--out", "o", "--device", "cuda:1"])
    assert cfg.device == "cuda:1"
    assert tyro.cli(TrainBaseConfig, args=["--store", "s", "--out", "o"]).device == "cpu"
