"""Deep-PRL (Spagnolo et al.): MP2RAGE + phase patches with an attention branch fed by the
dilated lesion mask.

Input (N, 3, D, H, W): channels 0-1 the images (MP2RAGE, phase), channel 2 the dilated lesion
mask. The mask branch's first-block features are combined with the images' low-level features
into a voxel-wise attention map in (0, 1) that re-weights those features ("1 + attention", so
nothing is switched off entirely), steering the deeper blocks to the lesion and its edge.
Blocks, head and initialisation are RimNet's (`rimnet`); one logit out (focal loss).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .rimnet import conv_block, head, pooled_size, squeeze, xavier_init

IMAGE_CHANNELS = 2


class DeepPRL(nn.Module):
    def __init__(self, widths: Sequence[int], patch_size: int, squeeze_channels: int,
                 outputs: int, dropout: float) -> None:
        super().__init__()
        first, second, third = widths
        self.image1 = conv_block(IMAGE_CHANNELS, first)
        self.mask1 = conv_block(1, first)
        self.attention = nn.Sequential(nn.Conv3d(2 * first, first, 1), nn.Sigmoid())
        self.image2 = conv_block(first, second)
        self.image3 = conv_block(second, third)
        self.image_out = squeeze(third, squeeze_channels)
        self.head = head(squeeze_channels * pooled_size(patch_size) ** 3, outputs, dropout)
        xavier_init(self)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        image = self.image1(patches[:, :IMAGE_CHANNELS])
        mask = self.mask1(patches[:, IMAGE_CHANNELS:])
        image = image * (1 + self.attention(torch.cat([image, mask], dim=1)))
        image = self.image_out(self.image3(self.image2(image)))
        return self.head(image.flatten(1))


def build(widths: Sequence[int] = (8, 16, 32), patch_size: int = 28, squeeze_channels: int = 8,
          outputs: int = 1, dropout: float = 0.2) -> DeepPRL:
    return DeepPRL(tuple(widths), patch_size, squeeze_channels, outputs, dropout)
