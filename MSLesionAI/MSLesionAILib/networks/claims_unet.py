"""CLAIMS's 3D U-Net (La Rosa et al. 2022): four resolution levels with 16/32/64/128 features.

Each level is two 3×3×3 convolutions (instance norm, leaky ReLU); the encoder halves the
resolution with a strided first convolution, the decoder doubles it with a 2×2×2 transposed
convolution and merges the skip connection by concatenation. A 1×1×1 convolution gives the
logits of background, leukocortical and intracortical/subpial. The first level runs at full
resolution, which the smallest cortical lesions (1 µL is 8 voxels at 0.5 mm) need.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.blocks import Convolution
from torch import nn

DEFAULT_FEATURES = (16, 32, 64, 128)


def _level(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """Two 3×3×3 convolutions; the first one may downsample."""
    return nn.Sequential(
        Convolution(3, in_channels, out_channels, strides=stride, kernel_size=3,
                    norm="instance", act="leakyrelu"),
        Convolution(3, out_channels, out_channels, kernel_size=3, norm="instance",
                    act="leakyrelu"))


class ClaimsUNet(nn.Module):
    """Input (B, C, z, y, x) with sides divisible by 2 ** (levels - 1); output logits."""

    def __init__(self, in_channels: int, out_channels: int = 3,
                 features: Sequence[int] = DEFAULT_FEATURES) -> None:
        super().__init__()
        features = list(features)
        pairs = list(zip(features[:-1], features[1:], strict=True))
        self.encoder = nn.ModuleList([_level(in_channels, features[0])]
                                     + [_level(fine, coarse, 2) for fine, coarse in pairs])
        self.upsample = nn.ModuleList(
            [Convolution(3, coarse, fine, strides=2, kernel_size=2, padding=0, output_padding=0,
                         is_transposed=True, norm="instance", act="leakyrelu")
             for fine, coarse in pairs])
        self.decoder = nn.ModuleList([_level(2 * fine, fine) for fine, _ in pairs])
        self.head = nn.Conv3d(features[0], out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
        skips.pop()
        for upsample, decoder in zip(reversed(self.upsample), reversed(self.decoder),
                                     strict=True):
            x = decoder(torch.cat([skips.pop(), upsample(x)], dim=1))
        return self.head(x)


def build(in_channels: int, out_channels: int = 3,
          features: Sequence[int] = DEFAULT_FEATURES) -> ClaimsUNet:
    """The network a bundle's ``metadata["network"]`` describes."""
    return ClaimsUNet(in_channels, out_channels, features)
