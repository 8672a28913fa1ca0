"""Residual RL core: n-step targets across episode ends and envs, ensemble target selection, zero-init actors."""

from pathlib import Path

import numpy as np
import pytest
import torch

from policies.residual.losses import critic_loss, pair_min, soft_update, td_target, truncated_gaussian
from policies.residual.nets import CriticEnsemble, GaussianResidualActor, ResidualActor
from policies.residual.replay import NStepBatch, ReplayBuffer
from robot.core.errors import ConfigError

# The learner's device paths: cpu everywhere, cuda too where torch sees a GPU (CI has none).
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def fill(buf: ReplayBuffer, rewards, terms, truncs) -> None:
    """rewards/terms/truncs: (T, E); obs encode (t, e) so the bootstrap row can be identified."""
    for t in range(len(rewards)):
        e = buf.n_envs
        obs = np.stack([[t, i] for i in range(e)]).astype(np.float32)
        nxt = obs + np.array([0.5, 0], np.float32)
        buf.add(obs, np.zeros((e, 1)), np.asarray(rewards[t]), nxt, np.asarray(terms[t]), np.asarray(truncs[t]))


def test_nstep_returns_stop_at_termination_truncation_and_newest_row() -> None:
    g = 0.9
    buf = ReplayBuffer(16, 2, obs_dim=2, action_dim=1, n_step=3, gamma=g)
    # env 0: terminates at t=1 (reward 1); env 1: truncated at t=2; 6 rows in total.
    rewards = [[0, 0], [1, 0], [0, 0], [0, 0], [0, 0], [2, 3]]
    terms = [[0, 0], [1, 0], [0, 0], [0, 0], [0, 0], [0, 0]]
    truncs = [[0, 0], [0, 0], [0, 1], [0, 0], [0, 0], [0, 0]]
    fill(buf, rewards, terms, truncs)
    rows = {}
    for _ in range(50):
        b = buf.sample(64)
        for o, ret, disc, nxt in zip(b.obs, b.returns, b.discount, b.next_obs, strict=True):
            rows[(int(o[0]), int(o[1]))] = (float(ret), float(disc), tuple(nxt))
    # env 0 at t=0: r0 + g r1, terminated at t=1 -> no bootstrap
    assert rows[(0, 0)][:2] == pytest.approx((g * 1.0, 0.0))
    # env 0 at t=2 (new episode): three steps 2, 3, 4 -> bootstrap from after t=4 with g^3
    assert rows[(2, 0)][:2] == pytest.approx((0.0, g**3)) and rows[(2, 0)][2] == (4.5, 0.0)
    # env 1 at t=1: steps 1, 2; truncated at 2 -> bootstrap from after t=2 with g^2
    assert rows[(1, 1)][:2] == pytest.approx((0.0, g**2)) and rows[(1, 1)][2] == (2.5, 1.0)
    # env 1 at t=4: only rows 4 and 5 exist yet -> two steps, g * 3 reward, g^2 discount
    assert rows[(4, 1)][:2] == pytest.approx((g * 3.0, g**2)) and rows[(4, 1)][2] == (5.5, 1.0)
    # env 0 at t=5: newest row, one step
    assert rows[(5, 0)][:2] == pytest.approx((2.0, g))


def test_ring_buffer_wraps_without_reading_overwritten_rows() -> None:
    buf = ReplayBuffer(5, 1, obs_dim=2, action_dim=1, n_step=3, gamma=1.0)
    fill(buf, [[1]] * 8, [[0]] * 8, [[0]] * 8)
    assert len(buf) == 5
    b = buf.sample(200)
    assert set(b.obs[:, 0].astype(int)) == {3, 4, 5, 6, 7}  # rows 0-2 were overwritten
    for o, ret in zip(b.obs[:, 0], b.returns, strict=True):
        assert ret == min(3, 8 - int(o))  # windows stop at the newest row


def test_pair_min_takes_two_distinct_random_heads() -> None:
    q = torch.arange(10.0).unsqueeze(1).expand(10, 3)  # head k predicts k
    seen = set()
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        v = pair_min(q, g)
        assert torch.all(v == v[0])
        seen.add(int(v[0]))
    assert 9 not in seen and len(seen) > 5  # the min of two distinct heads is never the largest


def test_td_target_and_critic_loss() -> None:
    target = td_target(torch.tensor([1.0, 0.5]), torch.tensor([0.0, 0.9]), torch.tensor([10.0, 10.0]))
    torch.testing.assert_close(target, torch.tensor([1.0, 9.5]))
    q = torch.tensor([[1.0, 9.5], [3.0, 9.5]], requires_grad=True)
    loss = critic_loss(q, target)
    assert float(loss) == pytest.approx(4.0 / 4)
    loss.backward()
    assert q.grad is not None


def test_fresh_actors_output_zero_residual_and_critics_have_independent_heads() -> None:
    obs = torch.randn(32, 12)
    assert torch.equal(ResidualActor(12, 7)(obs), torch.zeros(32, 7))
    a, logp = GaussianResidualActor(12, 7)(obs, deterministic=True)
    assert torch.equal(a, torch.zeros(32, 7)) and logp.shape == (32,)
    a, logp = GaussianResidualActor(12, 7)(obs)
    assert a.abs().max() < 1 and torch.isfinite(logp).all()
    critic = CriticEnsemble(12, 7, n_heads=5)
    q = critic(obs, torch.zeros(32, 7))
    assert q.shape == (5, 32) and q.std(0).mean() > 0  # heads are initialised differently
    q.sum().backward()
    assert all(p.grad is not None for p in critic.parameters())


def test_soft_update_and_truncated_noise() -> None:
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    w = a.weight.detach().clone()
    soft_update(a, b, 0.25)
    torch.testing.assert_close(a.weight, 0.75 * w + 0.25 * b.weight.detach())
    x = truncated_gaussian(torch.full((1000, 2), 0.95), std=1.0, clip=0.2)
    assert x.max() <= 1.0 and x.min() >= 0.75


def test_q_bounds_clamp_the_td_target_and_keep_the_critic_in_range() -> None:
    from policies.residual.learner import ResidualConfig, ResidualLearner

    target = td_target(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.97, 0.97]),
                       torch.tensor([5.0, -0.4, 0.5]), bounds=(0.0, 1.0))
    torch.testing.assert_close(target, torch.tensor([1.0, 0.0, 0.485]))
    with pytest.raises(ConfigError, match="q_bounds must be"):
        ResidualConfig(q_bounds=(1.0, 0.0))
    # A target critic that extrapolates far outside [0, 1]: unbounded, the online critic follows it there.
    rng = np.random.default_rng(0)
    obs, nxt = rng.normal(size=(2, 64, 4)).astype(np.float32)
    batch = NStepBatch(obs, np.zeros((64, 1), np.float32), np.zeros(64, np.float32), np.full(64, 0.97, np.float32), nxt)
    q_means = {}
    for bounds in (None, (0.0, 1.0)):
        cfg = ResidualConfig(hidden=(16,), n_heads=2, q_bounds=bounds, tau=0.0, lr=3e-3)
        learner = ResidualLearner(4, 1, cfg, seed=0)
        with torch.no_grad():
            learner.critic_target.out.bias.fill_(-3.0)  # every head predicts ~-3 everywhere
        for _ in range(200):
            m = learner.update(iter([batch]), actor=False)
        q_means[bounds] = m["q_mean"]
    assert q_means[None] < -2.0 and abs(q_means[(0.0, 1.0)]) < 0.1, q_means


def test_demo_bc_pulls_the_actor_toward_demo_actions_only_where_the_critic_prefers_them() -> None:
    from policies.residual.learner import ResidualConfig, ResidualLearner, concat
    from policies.residual.losses import demo_bc_loss

    r, r_demo = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]), torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    loss = demo_bc_loss(r, r_demo, torch.tensor([1.0, 0.0, 0.0]), torch.tensor(2.0), weight=0.5)
    assert float(loss) == pytest.approx(0.5 * 2.0 / 2)  # the dropped demo row counts as zero

    def run(demo_return: float, bc_weight: float) -> tuple[np.ndarray, list[dict[str, float]]]:
        """Online rows take -0.5, demo rows +0.5 (residual scale 1), one step each; the returns say which the
        critic should prefer. The critic learns first, so that the filter has something to go by."""
        rng = np.random.default_rng(0)

        def batch() -> NStepBatch:
            obs = np.concatenate([rng.uniform(-1, 1, (64, 3)), np.zeros((64, 1))], 1).astype(np.float32)
            one = lambda v: np.full(64, v, np.float32)  # noqa: E731
            return concat(NStepBatch(obs, one(-0.5)[:, None], one(1.0 - demo_return), one(0.0), obs),
                          NStepBatch(obs, one(0.5)[:, None], one(demo_return), one(0.0), obs, demo=np.ones(64, bool)))

        learner = ResidualLearner(4, 1, ResidualConfig(hidden=(32,), n_heads=2, bc_weight=bc_weight, actor_every=1,
                                                       residual_l2=0.0, scale=1.0), seed=0)
        for _ in range(150):
            learner.update(iter([batch()]), actor=False)
        metrics = [learner.update(iter([batch()])) for _ in range(100)]
        return learner.act(np.concatenate([rng.uniform(-1, 1, (32, 3)), np.zeros((32, 1))], 1).astype(np.float32)), \
            metrics

    _, metrics = run(demo_return=1.0, bc_weight=1.0)  # the demo's action is the better one: cloned
    assert metrics[0]["bc_kept"] == 1.0 and metrics[-1]["bc_loss"] < 0.2 * metrics[0]["bc_loss"], metrics[::20]
    # The demo's action is the worse one: the filter drops every row, and the actor is the one without the term.
    r_bc, metrics = run(demo_return=0.0, bc_weight=1.0)
    r_rl, _ = run(demo_return=0.0, bc_weight=0.0)
    assert all(m["bc_kept"] == 0.0 for m in metrics)
    np.testing.assert_allclose(r_bc, r_rl, atol=1e-6)
    assert float(np.median(r_rl)) < -0.3  # (and the actor did move, away from the demo's action)
    with pytest.raises(ConfigError, match="bc_weight"):
        ResidualConfig(bc_weight=-1.0)
    from robot.sessions.residual import TrainResidualConfig

    with pytest.raises(ConfigError, match="--demo-fraction 0 draws none"):
        TrainResidualConfig(out=Path("unused"), base=Path("unused"), bc_weight=0.5, demo_fraction=0.0)
    annealed = ResidualLearner(4, 1, ResidualConfig(hidden=(8,), n_heads=2, bc_weight=0.5, bc_anneal_updates=100))
    weights = []
    for n in (0, 50, 100, 150):
        annealed.updates = n
        weights.append(annealed.bc_weight_now())
    assert weights == pytest.approx([0.5, 0.25, 0.0, 0.0])


def test_noise_scale_shrinks_exploration_and_target_smoothing_per_dimension() -> None:
    from policies.residual.learner import ResidualConfig, ResidualLearner

    x = truncated_gaussian(torch.zeros(2000, 2), std=torch.tensor([0.5, 0.0]), clip=torch.tensor([0.2, 0.0]))
    assert x[:, 1].abs().max() == 0 and 0.15 < x[:, 0].abs().max() <= 0.2
    learner = ResidualLearner(3, 2, ResidualConfig(hidden=(8,), n_heads=2, noise_scale=(1.0, 0.0)), seed=0)
    obs = np.zeros((500, 3), np.float32)
    r = learner.act(obs, explore=True)  # a fresh actor outputs 0: what is left is the noise
    assert np.all(r[:, 1] == 0) and r[:, 0].std() > 0.1
    t = learner.smoothed_target_residual(torch.zeros(500, 3))
    assert torch.all(t[:, 1] == 0) and t[:, 0].std() > 0.1
    half = ResidualLearner(3, 2, ResidualConfig(hidden=(8,), n_heads=2, noise_scale=(1.0, 0.5)), seed=0)
    t = half.smoothed_target_residual(torch.zeros(4000, 3))
    assert 0.4 < float(t[:, 1].std() / t[:, 0].std()) < 0.6 and t[:, 1].abs().max() <= 0.25 + 1e-6
    with pytest.raises(ConfigError, match="noise_scale"):
        ResidualConfig(noise_scale=(1.5,))
    with pytest.raises(ConfigError, match="noise_scale has 1 entries"):
        ResidualLearner(3, 2, ResidualConfig(hidden=(8,), n_heads=2, noise_scale=(0.5,)))


def _bandit_batches(learner, buf: ReplayBuffer, rng: np.random.Generator):
    """One-step episodes: obs = [context, base action 0]; reward peaks at combined action 0.08."""
    while True:
        for _ in range(8):
            obs = np.stack([rng.uniform(-1, 1, 4), np.zeros(4)], 1).astype(np.float32)
            residual = learner.act(obs, explore=True)
            combined = np.clip(obs[:, 1:] + learner.cfg.scale * residual, -1, 1)
            reward = 1.0 - 50.0 * (combined[:, 0] - 0.08) ** 2
            buf.add(obs, combined, reward, obs, np.ones(4, bool), np.zeros(4, bool))
        yield buf.sample(128)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_learner_moves_the_residual_toward_higher_return(algo: str, device: str) -> None:
    from policies.residual.learner import ResidualConfig, ResidualLearner

    learner = ResidualLearner(2, 1, ResidualConfig(algo=algo, hidden=(64, 64), n_heads=4, utd=1, actor_every=1,
                                                   lr=1e-3, explore_std=0.3, init_alpha=0.01), seed=0, device=device)
    assert next(learner.critic.parameters()).device.type == device
    obs = np.array([[0.3, 0.0], [-0.5, 0.0]], np.float32)
    assert np.all(learner.act(obs) == 0.0)  # a fresh residual leaves the base untouched
    buf = ReplayBuffer(4096, 4, obs_dim=2, action_dim=1, n_step=1, gamma=0.0)
    batches = _bandit_batches(learner, buf, np.random.default_rng(0))
    for _ in range(600):
        metrics = learner.update(batches)
    assert np.isfinite(metrics["critic_loss"])
    assert learner.act(obs).mean() > 0.4, learner.act(obs)  # combined action moved from 0 toward 0.08


@pytest.mark.parametrize("device", DEVICES)
def test_critic_picks_the_gripper_command_across_a_step_the_actor_does_not_cross(device: str) -> None:
    from policies.residual.learner import ResidualConfig, ResidualLearner

    # One-step episodes: obs = [context, base gripper command +1 (closed)]. Reward 1 for letting go (command below
    # -0.3) where the context is > 0, and for holding (above 0.3) where it is < 0: a step, as a held cube has.
    learner = ResidualLearner(2, 1, ResidualConfig(hidden=(64, 64), n_heads=4, lr=1e-3, action_scale=(2.0,)),
                              seed=0, device=device)
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(4096, 4, obs_dim=2, action_dim=1, n_step=1, gamma=0.0)

    def batches():
        while True:
            for _ in range(8):
                obs = np.stack([rng.uniform(-1, 1, 4), np.ones(4)], 1).astype(np.float32)
                cmd = rng.uniform(-1, 1, (4, 1)).astype(np.float32)
                ok = np.where(obs[:, 0] > 0, cmd[:, 0] < -0.3, cmd[:, 0] > 0.3)
                buf.add(obs, cmd, ok.astype(np.float32), obs, np.ones(4, bool), np.zeros(4, bool))
            yield buf.sample(128)

    it = batches()
    for _ in range(400):
        learner.update(it, actor=False)  # critics only: the actor stays at its zero init
    obs = np.array([[0.6, 1.0], [-0.6, 1.0], [0.9, 1.0]], np.float32)
    assert np.all(learner.act(obs) == 0.0)  # the actor alone keeps the base's "closed" everywhere
    r = learner.act_choosing(obs, (0,))
    combined = np.clip(obs[:, 1:] + 2.0 * r, -1, 1)[:, 0]
    np.testing.assert_allclose(combined, [-1.0, 1.0, -1.0])  # open where letting go pays, closed where holding does


@pytest.mark.parametrize("device", DEVICES)
def test_learner_state_round_trip(device: str) -> None:
    """Weights and optimizer state saved from a learner on `device` load into a CPU learner (a GPU-trained run
    resumes or deploys on a machine without one)."""
    from policies.residual.learner import ResidualLearner

    a, b = ResidualLearner(6, 2, seed=0, device=device), ResidualLearner(6, 2, seed=1)
    torch.nn.init.normal_(a.actor.out.weight)
    state = a.state_dict()
    assert all(v.device.type == "cpu" for v in state.values())  # safetensors-ready whatever the device
    b.load_state_dict(state)
    obs = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    assert isinstance(a.act(obs), np.ndarray)
    np.testing.assert_allclose(a.act(obs), b.act(obs), rtol=0, atol=1e-5)
    o = torch.as_tensor(obs)
    torch.testing.assert_close(a.critic(o.to(a.device), o[:, :2].to(a.device)).cpu(), b.critic(o, o[:, :2]))
    batch = NStepBatch(obs, obs[:, :2], np.ones(5, np.float32), np.full(5, 0.9, np.float32), obs)
    a.update(iter([batch] * 2))
    training = a.training_state()
    b.load_training_state(training)
    assert b.updates == a.updates == 1 and b.critic_opt.state_dict()["state"]


def test_learner_config_and_device_errors_name_what_is_wrong() -> None:
    from policies.residual.learner import ResidualConfig, resolve_device

    with pytest.raises(ConfigError, match="learning rate must be > 0"):
        ResidualConfig(lr=0.0)

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="unknown torch device 'gpu0'"):
        resolve_device("gpu0")
    with pytest.raises(ConfigError, match="runs on cpu or cuda"):
        resolve_device("meta")
    if torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(ConfigError, match="sees no CUDA GPU; use --device cpu"):
            resolve_device("cuda")


def test_phase_features_one_hot_the_chunk_phase_and_survive_json() -> None:
    from policies.residual.policy import Features
    from robot.core.errors import ConfigError

    states = {"state/a": np.arange(12, dtype=np.float32).reshape(6, 2)}
    base = np.full((6, 3), 0.5, np.float32)
    f = Features.fit(("state/a",), states, 3, phase_dim=4)
    assert f.dim == 2 + 4 + 3 and Features.from_json(f.to_json()) == f
    x = f.batch(states, base, np.arange(6))
    np.testing.assert_array_equal(x[:, 2:6].argmax(1), [0, 1, 2, 3, 0, 1])  # step mod Ta
    assert np.all(x[:, 2:6].sum(1) == 1) and np.all(x[:, -3:] == 0.5)  # the base action stays in the last Da
    np.testing.assert_array_equal(f({"state/a": states["state/a"][5]}, base[5], 5), x[5])
    with pytest.raises(ConfigError, match="episode steps"):
        f.batch(states, base)
    plain = Features.fit(("state/a",), states, 3)
    old = {k: v for k, v in plain.to_json().items() if k != "phase_dim"}  # written before phase features existed
    assert plain.dim == 5 and Features.from_json(old) == plain
