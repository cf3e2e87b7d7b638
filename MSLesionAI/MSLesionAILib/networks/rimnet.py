"""RimNet (Barquero et al. 2020): two VGG-like 3D branches, phase (main) and FLAIR (second).

Each branch is three blocks of two 3×3×3 convolutions (batch norm, tanh) and a max-pool; the
second branch's first-block features are concatenated into the main branch before its second
block; each branch ends in a 1×1×1 convolution; both are flattened, concatenated and fed to
fully connected layers 256 → 128 → 64 → outputs. Weights start from Xavier initialisation.

The input is one tensor (N, 2, D, H, W): channel 0 the main contrast, channel 1 the second.
The building blocks here are shared with `deep_prl`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

HEAD_WIDTHS = (256, 128, 64)


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3×3×3 convolutions with batch norm and tanh, then a 2× max-pool."""
    layers: list[nn.Module] = []
    for channels in (in_channels, out_channels):
        layers += [nn.Conv3d(channels, out_channels, 3, padding=1, bias=False),
                   nn.BatchNorm3d(out_channels), nn.Tanh()]
    return nn.Sequential(*layers, nn.MaxPool3d(2))


def squeeze(in_channels: int, out_channels: int) -> nn.Sequential:
    """The 1×1×1 convolution that ends a branch."""
    return nn.Sequential(nn.Conv3d(in_channels, out_channels, 1), nn.Tanh())


def head(in_features: int, outputs: int, dropout: float) -> nn.Sequential:
    """Fully connected 256 → 128 → 64 → ``outputs`` with tanh and dropout."""
    layers: list[nn.Module] = [nn.Flatten()]
    for width in HEAD_WIDTHS:
        layers += [nn.Dropout(dropout), nn.Linear(in_features, width), nn.Tanh()]
        in_features = width
    return nn.Sequential(*layers, nn.Linear(in_features, outputs))


def pooled_size(patch_size: int, blocks: int = 3) -> int:
    """Edge length of a branch's output after ``blocks`` 2× max-pools."""
    for _ in range(blocks):
        patch_size //= 2
    return patch_size


def xavier_init(network: nn.Module) -> nn.Module:
    """Xavier-uniform weights and zero biases for every convolution and linear layer."""
    for module in network.modules():
        if isinstance(module, (nn.Conv3d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return network


def rim_probability(logits: torch.Tensor) -> torch.Tensor:
    """P(rim+) per sample from two-class logits (softmax) or one logit (sigmoid)."""
    if logits.shape[1] == 2:
        return logits.softmax(dim=1)[:, 1]
    return torch.sigmoid(logits[:, 0])


class RimNet(nn.Module):
    def __init__(self, widths: Sequence[int], patch_size: int, squeeze_channels: int,
                 outputs: int, dropout: float) -> None:
        super().__init__()
        first, second, third = widths
        self.main1, self.second1 = conv_block(1, first), conv_block(1, first)
        self.main2, self.second2 = conv_block(2 * first, second), conv_block(first, second)
        self.main3, self.second3 = conv_block(second, third), conv_block(second, third)
        self.main_out, self.second_out = (squeeze(third, squeeze_channels),
                                          squeeze(third, squeeze_channels))
        self.head = head(2 * squeeze_channels * pooled_size(patch_size) ** 3, outputs, dropout)
        xavier_init(self)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        main, second = self.main1(patches[:, :1]), self.second1(patches[:, 1:2])
        main = self.main2(torch.cat([main, second], dim=1))
        second = self.second2(second)
        main = self.main_out(self.main3(main)).flatten(1)
        second = self.second_out(self.second3(second)).flatten(1)
        return self.head(torch.cat([main, second], dim=1))


def build(widths: Sequence[int] = (8, 16, 32), patch_size: int = 28, squeeze_channels: int = 8,
          outputs: int = 2, dropout: float = 0.2) -> RimNet:
    return RimNet(tuple(widths), patch_size, squeeze_channels, outputs, dropout)
