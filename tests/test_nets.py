"""Numeric checks of policies.nets: shapes, gradient flow, conditioning, augmentations, encoders, init seeds."""

import time

import pytest
import torch
from torch import nn
from torch.func import jvp

from policies.nets import (
    MLP,
    ConditionalUnet1D,
    MLPDenoiser,
    ObservationEncoder,
    RandomCrop,
    RandomShift,
    ResNet18Encoder,
    TinyConvEncoder,
    UnetConfig,
)
from robot.core.errors import ConfigError

SMALL = UnetConfig(down_dims=(32, 64), diffusion_step_embed_dim=32)


def _assert_grads(module: nn.Module, loss: torch.Tensor) -> None:
    """Every parameter gets a finite, non-zero gradient."""
    module.zero_grad()
    loss.backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def _denoisers(da: int, h: int, cond: int, two_times: bool = False) -> list[nn.Module]:
    return [
        ConditionalUnet1D(da, cond, SMALL, two_times=two_times),
        ConditionalUnet1D(da, cond, UnetConfig(down_dims=(16, 32, 64), n_groups=4), horizon=h, two_times=two_times),
        MLPDenoiser(da, h, cond, hidden=(64, 64), two_times=two_times),
    ]


@pytest.mark.parametrize("h", [4, 8, 16])
@pytest.mark.parametrize("to", [1, 2])
@pytest.mark.parametrize("da", [2, 7])
def test_denoiser_shapes(h: int, to: int, da: int) -> None:
    b, f = 3, 10
    for net in _denoisers(da, h, to * f):
        out = net(torch.randn(b, h, da), torch.randint(0, 100, (b,)), torch.randn(b, to * f))  # (B, H, Da)
        assert out.shape == (b, h, da)
        # A scalar timestep (as schedulers hand out) broadcasts over the batch.
        assert net(torch.randn(b, h, da), torch.tensor(5), torch.randn(b, to * f)).shape == (b, h, da)
        assert net(torch.randn(b, h, da), 0.25, torch.randn(b, to * f)).shape == (b, h, da)


@pytest.mark.parametrize("h", [1, 3, 5, 7, 10])
def test_unet_any_horizon(h: int) -> None:
    net = ConditionalUnet1D(2, 6, UnetConfig(down_dims=(16, 32, 64), n_groups=4))
    assert net(torch.randn(2, h, 2), torch.tensor([1, 2]), torch.randn(2, 6)).shape == (2, h, 2)


def test_unet_without_cond_and_bad_inputs() -> None:
    net = ConditionalUnet1D(3, 0, SMALL)
    assert net(torch.randn(2, 8, 3), torch.tensor([1, 2]), None).shape == (2, 8, 3)
    net = ConditionalUnet1D(3, 5, SMALL)
    with pytest.raises(ValueError, match="global_cond"):
        net(torch.randn(2, 8, 3), torch.tensor([1, 2]), torch.randn(2, 4))
    with pytest.raises(ValueError, match="sample"):
        net(torch.randn(2, 8, 4), torch.tensor([1, 2]), torch.randn(2, 5))
    with pytest.raises(ValueError, match="timestep"):
        net(torch.randn(2, 8, 3), torch.tensor([1, 2, 3]), torch.randn(2, 5))
    with pytest.raises(ValueError, match="sample"):
        MLPDenoiser(3, 8, 5)(torch.randn(2, 16, 3), torch.tensor([1, 2]), torch.randn(2, 5))
    with pytest.raises(ValueError, match="sample"):
        ConditionalUnet1D(3, 5, SMALL, horizon=8)(torch.randn(2, 16, 3), torch.tensor([1, 2]), torch.randn(2, 5))


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="n_groups"):
        UnetConfig(down_dims=(30, 64), n_groups=8)
    with pytest.raises(ConfigError, match="kernel_size"):
        UnetConfig(kernel_size=4)
    with pytest.raises(ConfigError, match="relu"):
        MLP(3, 3, activation="gelu")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="resnet18"):
        ObservationEncoder({}, {"image/front": (3, 32, 32)}, image_encoder="vit")  # type: ignore[arg-type]


@pytest.mark.parametrize("two_times", [False, True])
def test_denoiser_gradient_flow(two_times: bool) -> None:
    b, h, da, c = 4, 8, 3, 12
    for net in _denoisers(da, h, c, two_times):
        out = net(torch.randn(b, h, da), torch.rand(b) * 50, torch.randn(b, c), torch.rand(b) * 50)
        _assert_grads(net, (out * torch.randn_like(out)).sum())


def test_mlp_gradient_flow_and_zero_last() -> None:
    mlp = MLP(5, 3, (16, 16), activation="relu", layer_norm=True, dropout=0.1)
    x = torch.randn(8, 5)
    _assert_grads(mlp, (mlp(x) * torch.randn(8, 3)).sum())
    zero = MLP(5, 3, (16,), activation="silu", zero_last=True)
    assert torch.equal(zero(x), torch.zeros(8, 3))


def test_zero_output() -> None:
    for net in _denoisers(2, 8, 4):
        net.zero_output_()  # type: ignore[operator]
        assert torch.equal(net(torch.randn(2, 8, 2), torch.tensor([3, 4]), torch.randn(2, 4)), torch.zeros(2, 8, 2))


def test_conditioning_matters() -> None:
    torch.manual_seed(0)
    b, h, da, c = 2, 8, 3, 6
    x, t, cond = torch.randn(b, h, da), torch.tensor([10, 20]), torch.randn(b, c)
    for net in _denoisers(da, h, c):
        base = net(x, t, cond)
        assert not torch.allclose(base, net(x, t, cond + 1.0), atol=1e-4), f"{type(net).__name__} ignores cond"
        assert not torch.allclose(base, net(x, t + 7, cond), atol=1e-4), f"{type(net).__name__} ignores t"
        # Per-sample: changing sample 1's condition leaves sample 0 alone.
        cond2 = cond.clone()
        cond2[1] += 1.0
        assert torch.allclose(base[0], net(x, t, cond2)[0], atol=1e-5)


def test_timestep2_only_matters_with_two_times() -> None:
    b, h, da, c = 2, 8, 3, 6
    x, t, cond = torch.randn(b, h, da), torch.tensor([0.5, 0.7]), torch.randn(b, c)
    for net in _denoisers(da, h, c, two_times=False):
        assert torch.equal(net(x, t, cond), net(x, t, cond, torch.tensor([0.1, 0.2])))
    for net in _denoisers(da, h, c, two_times=True):
        r1, r2 = torch.tensor([0.1, 0.2]), torch.tensor([30.0, 40.0])
        assert not torch.allclose(net(x, t, cond, r1), net(x, t, cond, r2), atol=1e-4)
        with pytest.raises(ValueError, match="timestep2"):
            net(x, t, cond)


# torch.func.jvp loads its decompositions through torch.jit.script on first use (a torch-internal warning).
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_jvp_through_two_time_denoisers() -> None:
    """MeanFlow differentiates u(z, r, t) along (v, 0, 1) with torch.func.jvp."""
    b, h, da, c = 3, 8, 2, 4
    z, t, r, cond = torch.randn(b, h, da), torch.rand(b), torch.rand(b), torch.randn(b, c)
    for net in _denoisers(da, h, c, two_times=True):

        def u(z: torch.Tensor, t: torch.Tensor, r: torch.Tensor, net: nn.Module = net) -> torch.Tensor:
            return net(z, t, cond, r)

        out, tangent = jvp(u, (z, t, r), (torch.randn_like(z), torch.ones(b), torch.zeros(b)))
        assert out.shape == tangent.shape == (b, h, da)
        assert torch.isfinite(tangent).all()


def test_seed_determinism() -> None:
    def build() -> list[nn.Module]:
        torch.manual_seed(123)
        return [ConditionalUnet1D(4, 8, SMALL), MLPDenoiser(4, 8, 8), TinyConvEncoder(16)]

    for a, b in zip(build(), build(), strict=True):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    torch.manual_seed(124)
    other = ConditionalUnet1D(4, 8, SMALL).state_dict()
    assert not torch.equal(other["final.1.weight"], build()[0].state_dict()["final.1.weight"])


def test_random_crop() -> None:
    n, h, w = 16, 12, 10
    # Pixel value encodes its (row, col), so a crop reveals its offset.
    img = (torch.arange(h)[:, None] * w + torch.arange(w)[None, :]).to(torch.uint8)  # (H, W)
    x = img.expand(n, 3, h, w).clone()
    crop = RandomCrop((8, 6))
    assert crop.output_hw(h, w) == (8, 6)
    out = crop.train()(x)
    assert out.shape == (n, 3, 8, 6) and out.dtype == torch.uint8
    offsets = set()
    for i in range(n):
        top, left = divmod(int(out[i, 0, 0, 0]), w)
        assert torch.equal(out[i], x[i, :, top : top + 8, left : left + 6])
        offsets.add((top, left))
    assert len(offsets) > 1, "offsets are not drawn per sample"
    ev = crop.eval()(x)
    assert torch.equal(ev, x[..., 2:10, 2:8])
    assert torch.equal(ev, crop(x))
    # Leading dims (B, To) are kept.
    assert crop.train()(torch.rand(2, 3, 3, h, w)).shape == (2, 3, 3, 8, 6)
    with pytest.raises(ValueError, match="larger"):
        RandomCrop(13)(x)


def test_random_shift() -> None:
    x = torch.rand(32, 3, 9, 9)
    shift = RandomShift(pad=2)
    assert shift.eval()(x) is x
    out = shift.train()(x)
    assert out.shape == x.shape
    padded = nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    for i in range(x.shape[0]):
        windows = [padded[i, :, dy : dy + 9, dx : dx + 9] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], wnd) for wnd in windows)
    assert not all(torch.equal(out[i], x[i]) for i in range(x.shape[0]))
    u8 = (x * 255).to(torch.uint8)
    assert shift(u8).dtype == torch.uint8


@pytest.mark.parametrize(
    "make",
    [
        lambda: ResNet18Encoder(out_dim=16, width=16),
        lambda: ResNet18Encoder(out_dim=16, pool="spatial_softmax", num_keypoints=8, width=16),
        lambda: TinyConvEncoder(out_dim=16),
    ],
)
def test_image_encoders(make) -> None:
    torch.manual_seed(0)
    enc = make().eval()
    for hw in (64, 84):
        x = torch.randint(0, 256, (2, 3, hw, hw), dtype=torch.uint8)
        f_u8 = enc(x)
        assert f_u8.shape == (2, 16)
        assert torch.equal(f_u8, enc(x.float() / 255))
    enc.train()
    _assert_grads(enc, (enc(torch.rand(2, 3, 64, 64)) * torch.randn(2, 16)).sum())
    with pytest.raises(ValueError, match="B, 3, H, W"):
        enc(torch.rand(2, 1, 64, 64))


def test_observation_encoder_state_only() -> None:
    enc = ObservationEncoder({"state/ee_pose": 7, "state/gripper": 1})
    assert enc.out_dim == 8
    obs = {"state/gripper": torch.randn(4, 2, 1), "state/ee_pose": torch.randn(4, 2, 7), "time/x": torch.zeros(1)}
    out = enc(obs)  # (B, To, F)
    assert out.shape == (4, 2, 8)
    # Sorted key order: ee_pose then gripper, untouched values.
    assert torch.equal(out, torch.cat([obs["state/ee_pose"], obs["state/gripper"]], dim=-1))
    assert list(enc.parameters()) == []
    with pytest.raises(ValueError, match="state/gripper"):
        enc({"state/ee_pose": torch.randn(4, 2, 7)})
    with pytest.raises(ValueError, match="state/ee_pose"):
        enc({"state/ee_pose": torch.randn(4, 2, 6), "state/gripper": torch.randn(4, 2, 1)})


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("to", [1, 2])
def test_observation_encoder_with_images(shared: bool, to: int) -> None:
    shapes = {"image/front": (3, 64, 64), "image/wrist": (3, 48, 48)}
    enc = ObservationEncoder(
        {"state/ee_pose": 7}, shapes, image_encoder="tiny", feature_dim=16, crop=0.9, shared=shared
    )
    assert enc.out_dim == 2 * 16 + 7
    n_enc = len(list(enc.encoders.children()))
    assert n_enc == (1 if shared else 2)
    b = 3
    obs = {
        "state/ee_pose": torch.randn(b, to, 7),
        "image/front": torch.randint(0, 256, (b, to, 3, 64, 64), dtype=torch.uint8),
        "image/wrist": torch.randint(0, 256, (b, to, 3, 48, 48), dtype=torch.uint8),
    }
    out = enc.train()(obs)
    assert out.shape == (b, to, enc.out_dim)
    _assert_grads(enc, (out * torch.randn_like(out)).sum())
    ev1, ev2 = enc.eval()(obs), enc(obs)
    assert torch.equal(ev1, ev2), "eval mode must be deterministic (center crop)"
    with pytest.raises(ValueError, match="image/wrist"):
        enc({k: v for k, v in obs.items() if k != "image/wrist"})


def test_observation_encoder_resnet_shared_same_size() -> None:
    shapes = {"image/left": (3, 32, 32), "image/right": (3, 32, 32)}
    enc = ObservationEncoder({}, shapes, image_encoder="resnet18", feature_dim=8, shared=True).eval()
    x = torch.rand(2, 1, 3, 32, 32)
    out = enc({"image/left": x, "image/right": x})
    assert out.shape == (2, 1, 16)
    # One encoder, same image -> same features for both cameras.
    assert torch.allclose(out[..., :8], out[..., 8:])


def _latency_ms(fn, n: int = 200) -> float:
    for _ in range(20):
        fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e3


def test_batch1_latency_report() -> None:
    """Prints batch-1 CPU forward latency (1 thread); timing is reported, not asserted."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        h, da, c = 16, 7, 64
        x, t, cond = torch.randn(1, h, da), torch.tensor([3]), torch.randn(1, c)
        nets = {
            "MLPDenoiser(256,256)": MLPDenoiser(da, h, c),
            "UNet(32,64)": ConditionalUnet1D(da, c, UnetConfig(down_dims=(32, 64))),
            "UNet(64,128)": ConditionalUnet1D(da, c, UnetConfig(down_dims=(64, 128))),
        }
        with torch.inference_mode():
            for name, net in nets.items():
                net.eval()
                ms = _latency_ms(lambda net=net: net(x, t, cond))
                n_params = sum(p.numel() for p in net.parameters())
                print(f"\n{name}: {n_params / 1e6:.3f} M params, batch-1 forward {ms:.3f} ms (1 thread)")
    finally:
        torch.set_num_threads(threads)
