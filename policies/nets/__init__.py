"""Plain nn.Module networks: the conditional 1D U-Net, MLPs, image encoders and observation fusion."""

from policies.nets.encoders import RandomCrop, RandomShift, ResNet18Encoder, SpatialSoftmax, TinyConvEncoder
from policies.nets.fusion import ObservationEncoder
from policies.nets.mlp import MLP, MLPDenoiser, SinusoidalPosEmb
from policies.nets.unet1d import ConditionalUnet1D, UnetConfig

__all__ = [
    "MLP",
    "ConditionalUnet1D",
    "MLPDenoiser",
    "ObservationEncoder",
    "RandomCrop",
    "RandomShift",
    "ResNet18Encoder",
    "SinusoidalPosEmb",
    "SpatialSoftmax",
    "TinyConvEncoder",
    "UnetConfig",
]
