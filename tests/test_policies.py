"""Policies: scheduler round trips, losses and gradients, checkpoints, normalization, resume."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from policies.base_policies import DiffusionPolicy, FlowPolicy, MipPolicy
from policies.chunk_policy import TIME_SCALE
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
from policies.heads import MEANFLOW_TIME_SCALE, MeanFlowHead, make_head
from policies.io import check_compatible, load_policy, save_policy
from policies.normalize import Normalizer
from robot.core import CheckpointError

TINY = UnetNet(down_dims=(16, 32), step_embed_dim=16, n_groups=4)
OBS = ObsConfig(state_keys=("state/ee_pose", "state/gripper"), state_dims=(7, 1))
CHUNK = ChunkConfig(horizon=8, n_obs_steps=2, n_action_steps=4)
STATS = {"state/ee_pose": {"min": -np.ones(7), "max": np.ones(7)}, "state/gripper": {"min": [0.0], "max": [1.0]},
         "action": {"min": -np.ones(7), "max": np.ones(7)}}
B = 6


def batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"state/ee_pose": torch.rand(B, 2, 7, generator=g) * 2 - 1,
            "state/gripper": torch.rand(B, 2, 1, generator=g),
            "action": torch.rand(B, 8, 7, generator=g) * 2 - 1}


def base(kind: str):
    algo = {"diffusion": DiffusionConfig(net=TINY), "flow": FlowConfig(net=TINY), "mip": MipConfig(net=TINY),
            "bc": MipConfig(two_step=False, net=MlpNet(hidden=(32,)))}[kind]
    cls = {"diffusion": DiffusionPolicy, "flow": FlowPolicy, "mip": MipPolicy, "bc": MipPolicy}[kind]
    torch.manual_seed(0)
    return cls(OBS, CHUNK, 7, algo, Normalizer(STATS), meta={"env_id": "realrl/FrankaLift-v0"})


HEADS = [ConsistencyConfig(), ConsistencyConfig(lcm_weight=1.0, net=MlpNet(hidden=(32,))), MeanFlowConfig(),
         MeanFlowConfig(net=MlpNet(hidden=(32,))), MipHeadConfig(net=MlpNet(hidden=(32,)))]


def head_batch(with_traj: bool = False) -> dict[str, torch.Tensor]:
    b = batch()
    b["noise"] = torch.randn(B, 8, 7)
    b["teacher"] = torch.rand(B, 8, 7) * 2 - 1
    if with_traj:
        b["trajectory"] = torch.randn(B, 11, 8, 7)
        b["timesteps"] = torch.arange(99, -1, -10).expand(B, 10)
    return b


def assert_grads(model: torch.nn.Module) -> None:
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0


@pytest.mark.parametrize("kind", ["diffusion", "flow", "mip", "bc"])
def test_base_loss_is_scalar_with_gradient_flow_and_samples_have_chunk_shape(kind: str) -> None:
    p = base(kind)
    loss, metrics = p.loss(batch())
    assert loss.shape == () and torch.isfinite(loss) and metrics["loss"] > 0
    loss.backward()
    assert_grads(p.model.net)
    out = p.sample(batch(), torch.randn(B, 8, 7))
    assert out.shape == (B, 8, 7)
    assert p.nfe == {"diffusion": 10, "flow": 10, "mip": 2, "bc": 1}[kind]


@pytest.mark.parametrize("algo", HEADS, ids=lambda a: f"{type(a).__name__}-{type(a.net).__name__}-{a}"[:40])
def test_head_loss_gradients_and_one_call(algo) -> None:
    head = make_head(base("diffusion"), algo)
    lcm = isinstance(algo, ConsistencyConfig) and algo.lcm_weight > 0
    loss, metrics = head.loss(head_batch(lcm))
    assert loss.shape == () and torch.isfinite(loss)
    if lcm:
        assert metrics["loss_lcm"] > 0
    loss.backward()
    assert_grads(head.model.net)
    calls = []
    head.model.net.register_forward_hook(lambda *a: calls.append(1))
    head.sample(batch(), torch.randn(B, 8, 7))
    assert len(calls) == head.nfe == (2 if isinstance(algo, MipHeadConfig) else 1)


def test_heads_start_from_the_teachers_weights() -> None:
    teacher = base("diffusion")
    head = make_head(teacher, ConsistencyConfig())
    for k, v in teacher.model.state_dict().items():
        torch.testing.assert_close(head.model.state_dict()[k], v)
    light = make_head(teacher, ConsistencyConfig(net=MlpNet(hidden=(32,))))
    torch.testing.assert_close(light.model.normalizer.state_dict()["action__scale"],
                               teacher.model.normalizer.state_dict()["action__scale"])
    with pytest.raises(Exception, match="DDIM"):
        make_head(base("flow"), ConsistencyConfig())


class Oracle:
    """Exact predictions for a point-mass data distribution at x0 (what a perfect network would output)."""

    def __init__(self, x0: torch.Tensor, kind: str, sched=None, scale: float = TIME_SCALE) -> None:
        self.x0, self.kind, self.sched, self.scale = x0, kind, sched, scale

    def __call__(self, x, t, cond, t2=None):
        if self.kind == "eps":
            ab = self.sched.alphas_cumprod[t.long()][:, None, None]
            return (x - ab.sqrt() * self.x0) / (1 - ab).sqrt()
        s = (t / self.scale)[:, None, None]
        return (x - self.x0) / s  # flow velocity eps - x0 == (x_t - x0) / t; also MeanFlow's average velocity


def test_ddim_flow_and_meanflow_samplers_recover_the_data_point_with_oracle_networks() -> None:
    x0 = torch.rand(B, 8, 7) * 1.6 - 0.8
    noise = torch.randn(B, 8, 7)
    diff = base("diffusion")
    out = diff.sample_normalized(None, noise, Oracle(x0, "eps", diff.train_scheduler))
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)
    traj: list[torch.Tensor] = []
    diff.ddim(None, noise, Oracle(x0, "eps", diff.train_scheduler), trajectory=traj)
    assert len(traj) == 11 and list(diff.scheduler.timesteps[:2]) == [99, 89]  # trailing spacing
    flow = base("flow")
    torch.testing.assert_close(flow.sample_normalized(None, noise, Oracle(x0, "v")), x0, atol=1e-4, rtol=0)
    mf = make_head(base("flow"), MeanFlowConfig(x_prediction=False))
    assert isinstance(mf, MeanFlowHead)
    oracle = Oracle(x0, "v", scale=MEANFLOW_TIME_SCALE)
    torch.testing.assert_close(mf.sample_normalized(None, noise, oracle), x0, atol=1e-5, rtol=0)
    xp = make_head(base("flow"), MeanFlowConfig())  # x-prediction: a perfect network outputs the data point
    assert xp.algo.x_prediction
    torch.testing.assert_close(xp.sample_normalized(None, noise, lambda *a: x0), x0, atol=1e-6, rtol=0)
    z, r, t = (1 - 0.6) * x0 + 0.6 * noise, torch.full((B,), 0.2), torch.full((B,), 0.6)
    torch.testing.assert_close(xp.velocity(lambda *a: x0, z, r, t, None), noise - x0)  # straight path: eps - x0


def test_ddpm_add_noise_matches_the_closed_form() -> None:
    p = base("diffusion")
    x0, eps, t = torch.randn(B, 8, 7), torch.randn(B, 8, 7), torch.randint(0, 100, (B,))
    ab = p.train_scheduler.alphas_cumprod[t][:, None, None]
    torch.testing.assert_close(p.train_scheduler.add_noise(x0, eps, t), ab.sqrt() * x0 + (1 - ab).sqrt() * eps)


@pytest.mark.parametrize("x_prediction", [False, True])
def test_meanflow_jvp_matches_finite_differences(x_prediction: bool) -> None:
    head = make_head(base("flow"), MeanFlowConfig(net=MlpNet(hidden=(32,)), x_prediction=x_prediction))
    assert isinstance(head, MeanFlowHead)
    m = head.model.double()  # float64: the time embedding has high frequencies, float32 differences are too noisy
    cond = m.condition({k: v.double() for k, v in batch().items()})
    z, v = torch.randn(B, 8, 7, dtype=torch.float64), torch.randn(B, 8, 7, dtype=torch.float64)
    r, t = torch.rand(B, dtype=torch.float64) * 0.3, 0.5 + torch.rand(B, dtype=torch.float64) * 0.4

    def u(z_, r_, t_):
        return head.velocity(m, z_, r_, t_, cond)  # what the loss differentiates, x-prediction division included

    _, dudt = torch.func.jvp(u, (z, r, t), (v, torch.zeros_like(r), torch.ones_like(t)))
    h = 1e-6
    fd = (u(z + h * v, r, t + h) - u(z - h * v, r, t - h)) / (2 * h)
    torch.testing.assert_close(dudt, fd, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["diffusion", "flow", "mip"])
def test_checkpoint_round_trip_gives_bitwise_identical_actions(tmp_path: Path, kind: str) -> None:
    p = base(kind)
    p.loss(batch())[0].backward()  # weights are whatever they are; only equality matters
    save_policy(p, tmp_path / "ck")
    q = load_policy(tmp_path / "ck")
    assert q.name == p.name and q.meta["env_id"] == "realrl/FrankaLift-v0"
    obs = {"state/ee_pose": np.linspace(-1, 1, 7).astype(np.float32), "state/gripper": np.ones(1, np.float32)}
    for policy in (p, q):
        policy.reset()
        policy.seed(7)
    np.testing.assert_array_equal(p.act_chunk(obs), q.act_chunk(obs))
    assert not (tmp_path / "ck" / "config.json").read_text().count("pickle")


def test_head_checkpoint_round_trip(tmp_path: Path) -> None:
    for algo in HEADS[2:]:
        h = make_head(base("diffusion"), algo)
        save_policy(h, tmp_path / "h")
        g = load_policy(tmp_path / "h")
        obs = {"state/ee_pose": np.zeros(7, np.float32), "state/gripper": np.zeros(1, np.float32)}
        h.seed(3)
        g.seed(3)
        np.testing.assert_array_equal(h.act_chunk(obs), g.act_chunk(obs))


def test_broken_checkpoints_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a realrl checkpoint"):
        load_policy(tmp_path)
    save_policy(base("mip"), tmp_path / "ck")
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="damaged"):
        load_policy(tmp_path / "ck")


def test_normalizer_is_strict_and_invertible() -> None:
    n = Normalizer({"a": {"min": np.array([0.0, 5.0]), "max": np.array([2.0, 5.0])}})
    x = torch.tensor([[0.0, 5.0], [2.0, 5.0], [1.0, 5.0]])
    y = n.normalize("a", x)
    torch.testing.assert_close(y, torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]))  # constant dim -> 0
    torch.testing.assert_close(n.unnormalize("a", y), x)
    with pytest.raises(CheckpointError, match="no normalization statistics for 'b'"):
        n.normalize("b", x)
    p = base("mip")
    p.reset()
    with pytest.raises(CheckpointError, match="observation has no key 'state/gripper'"):
        p.act({"state/ee_pose": np.zeros(7, np.float32)})


def test_policy_for_another_layout_is_refused() -> None:
    import sim  # noqa: F401

    p = base("mip")
    check_compatible(p, gym.make("realrl/FrankaLift-v0"))  # ee_pose (7) and gripper (1) exist, 7-D actions
    with pytest.raises(CheckpointError, match="action space"):
        check_compatible(p, gym.make("realrl/FrankaLift-v0", action_mode="joint_pos"))
    img = base("mip")
    img.obs_cfg = ObsConfig(state_keys=OBS.state_keys, state_dims=OBS.state_dims, image_keys=("image/front",))
    with pytest.raises(CheckpointError, match="missing camera 'image/front'"):
        check_compatible(img, gym.make("realrl/FrankaLift-v0"))


def test_act_replans_every_ta_steps() -> None:
    p = base("mip")
    p.reset()
    calls = []
    p.model.net.register_forward_hook(lambda *a: calls.append(1))
    obs = {"state/ee_pose": np.zeros(7, np.float32), "state/gripper": np.zeros(1, np.float32)}
    for _ in range(9):
        a = p.act(obs)
        assert a.shape == (7,) and np.all(np.abs(a) <= 1)
    assert len(calls) == 3 * p.nfe  # steps 0, 4, 8


def test_meanflow_times_are_ordered_logit_normal_draws_with_a_share_of_r_equal_t() -> None:
    from policies.heads import meanflow_times

    torch.manual_seed(0)
    r, t = meanflow_times(20000, MeanFlowConfig(r_equals_t_fraction=0.25))
    assert r.shape == t.shape == (20000,)
    assert bool(((r > 0) & (r <= t) & (t < 1)).all())
    assert abs(float((r == t).float().mean()) - 0.25) < 0.02
    # logit(t) is the larger of two N(-0.4, 1) draws: E[max] = mu + sigma / sqrt(pi)
    assert abs(float(torch.logit(t).mean()) - (-0.4 + 1 / np.sqrt(np.pi))) < 0.03
    r, t = meanflow_times(20000, MeanFlowConfig(r_equals_t_fraction=0.0, t_mean=2.0, r_mean=-2.0, t_std=0.5,
                                                r_std=0.5))
    assert abs(float(torch.logit(t).mean()) - 2.0) < 0.02 and abs(float(torch.logit(r).mean()) + 2.0) < 0.02
    with pytest.raises(Exception, match="r_equals_t_fraction"):
        MeanFlowConfig(r_equals_t_fraction=1.5)


def test_adaptive_mse_is_plain_mse_at_power_0_and_scale_free_at_power_1() -> None:
    from policies.heads import adaptive_mse

    pred = torch.randn(B, 8, 7, requires_grad=True)
    target = torch.randn(B, 8, 7)
    loss, mse = adaptive_mse(pred, target, 0.0, 1e-3)
    torch.testing.assert_close(loss, torch.nn.functional.mse_loss(pred, target))
    torch.testing.assert_close(mse, loss.detach())
    # power 1: every sample contributes e / (e + eps) ~ 1 whatever its scale, and its gradient is that of e
    # times the frozen weight 1 / (e + eps).
    loss1, _ = adaptive_mse(pred, target, 1.0, 1e-6)
    assert abs(float(loss1.detach()) - 1.0) < 1e-3
    loss1.backward()
    err = (pred.detach() - target).pow(2).flatten(1).mean(1)
    expected = 2 * (pred.detach() - target) / (err[:, None, None] + 1e-6) / (B * 8 * 7)
    torch.testing.assert_close(pred.grad, expected)


def test_meanflow_loss_reports_plain_mse_and_uses_the_config_times(monkeypatch: pytest.MonkeyPatch) -> None:
    import policies.heads as heads

    head = make_head(base("diffusion"), MeanFlowConfig(net=MlpNet(hidden=(32,)), adaptive_power=0.0))
    seen = []

    def fixed(b: int, cfg: MeanFlowConfig, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(cfg)
        return torch.zeros(b), torch.ones(b)  # (r, t) = (0, 1): u_tgt = v - du/dt at the sampling point

    monkeypatch.setattr(heads, "meanflow_times", fixed)
    _, metrics = head.loss(head_batch())
    assert seen == [head.algo] and metrics["mse"] == pytest.approx(metrics["loss"])


def test_teacher_targets_keep_observation_keys_and_are_reused_only_for_the_same_setup(tmp_path: Path) -> None:
    from policies.distill import TeacherTargets

    teacher = base("diffusion")
    b = batch()
    windows = [{k: v[i] for k, v in b.items()} | {"extra": torch.zeros(1)} for i in range(B)]
    first = TeacherTargets(teacher, windows, per_window=3, progress=False, cache=tmp_path / "t")
    assert len(first) == 3 * B and set(first[4]) == {"state/ee_pose", "state/gripper", "noise", "teacher"}
    cond = teacher.model.condition({k: v[1:2] for k, v in b.items()})
    with torch.inference_mode():
        want = teacher.sample_normalized(cond, first.noise[4:5])[0]
    torch.testing.assert_close(first[4]["teacher"], want, atol=1e-4, rtol=1e-4)  # batched vs single sums
    teacher.sample_normalized = None  # type: ignore[assignment,method-assign]  # a cache hit never samples
    again = TeacherTargets(teacher, windows, per_window=3, progress=False, cache=tmp_path / "t")
    assert torch.equal(again.teacher, first.teacher) and torch.equal(again.noise, first.noise)
    del teacher.sample_normalized
    other = TeacherTargets(teacher, windows[:-1], per_window=3, progress=False, cache=tmp_path / "t")
    assert len(other) == 3 * (B - 1)  # other windows: recomputed and stored in place of the old set
    lcm = TeacherTargets(teacher, windows, per_window=1, trajectories=True, progress=False, cache=tmp_path / "t")
    again = TeacherTargets(teacher, windows, per_window=1, trajectories=True, progress=False, cache=tmp_path / "t")
    assert lcm.trajectory is not None and again.trajectory is not None and torch.equal(lcm.trajectory, again.trajectory)
    assert again[0]["trajectory"].shape == (11, 8, 7)
    idx = torch.tensor([5, 0, 5, 2])  # the trainer's one-gather batch is the collate of the items
    whole, items = again.batch(idx), torch.utils.data.default_collate([again[int(i)] for i in idx])
    assert whole.keys() == items.keys() and all(torch.equal(whole[k], items[k]) for k in whole)
    with pytest.raises(Exception, match="per_window"):
        TeacherTargets(teacher, windows, per_window=0)
    with pytest.raises(Exception, match="DDIM"):
        TeacherTargets(base("flow"), windows, trajectories=True)


def test_meanflow_checkpoints_from_before_x_prediction_load_as_velocity_heads(tmp_path: Path) -> None:
    import json

    from policies.config import algo_from_json

    assert algo_from_json("meanflow", {"r_equals_t_fraction": 0.25, "net": None}).x_prediction is False
    head = make_head(base("diffusion"), MeanFlowConfig(net=MlpNet(hidden=(32,))))
    save_policy(head, tmp_path / "h")
    assert load_policy(tmp_path / "h").algo.x_prediction is True
    cfg = json.loads((tmp_path / "h" / "config.json").read_text())
    del cfg["algo_config"]["x_prediction"]
    (tmp_path / "h" / "config.json").write_text(json.dumps(cfg))
    assert load_policy(tmp_path / "h").algo.x_prediction is False
