"""DeepSCAN-style 3D-to-2D segmentation (McKinley et al., Sci. Rep. 2021).

A stack of neighbouring slices of every contrast goes in, the central slice's labels come out:
one white-matter-lesion logit (sigmoid) and one logit per tissue class (softmax over
`labels.Tissue`). The 2D network is MONAI's `BasicUNet`; the slice stack is its channel axis,
ordered contrast-major (contrast 0's slices, then contrast 1's, ...).

A volume is segmented slice by slice along each of its three axes, and again on a copy
mirrored left-right; the logits of the passes are averaged, and the spread of the passes'
lesion probabilities is the per-voxel uncertainty. Volumes are numpy-ordered (z, y, x) on a
grid whose axes are anatomical (see `geometry.axis_aligned_grid`), so the three axes are the
axial, coronal and sagittal directions and the x axis is left-right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from monai.networks.nets import BasicUNet
from torch.nn import functional

from ..progress import Progress

LEFT_RIGHT_AXIS = 2
SIZE_MULTIPLE = 16  # BasicUNet halves the resolution four times
MAX_EXTRA_PLANE_WEIGHT = 2.0
EQUAL_WEIGHTS_UP_TO_ANISOTROPY = 2.0   # chosen on validation phantoms (docs/wm.md)


class DeepSCAN(torch.nn.Module):
    """The 2D network: (batch, contrasts * slices, h, w) -> (batch, 1 + tissue_classes, h, w)."""

    def __init__(self, contrasts: int, slices: int, tissue_classes: int,
                 features: Sequence[int]) -> None:
        super().__init__()
        if slices % 2 != 1:
            raise ValueError(f"slices must be odd (a central slice), got {slices}")
        self.contrasts, self.slices, self.tissue_classes = contrasts, slices, tissue_classes
        self.unet = BasicUNet(spatial_dims=2, in_channels=contrasts * slices,
                              out_channels=1 + tissue_classes, features=tuple(features))

    def forward(self, stacks: torch.Tensor) -> torch.Tensor:
        return self.unet(stacks)


def build(contrasts: int = 3, slices: int = 5, tissue_classes: int = 7,
          features: Sequence[int] = (8, 16, 24, 32, 48, 8)) -> DeepSCAN:
    return DeepSCAN(contrasts, slices, tissue_classes, features)


@dataclass
class VolumePrediction:
    """Averaged outputs on the input volume's grid (z, y, x)."""

    lesion_probability: torch.Tensor   # sigmoid of the mean lesion logit
    lesion_uncertainty: torch.Tensor   # standard deviation of the passes' lesion probabilities
    tissue_logits: torch.Tensor        # (tissue_classes, z, y, x), mean over the passes


def slice_stacks(volume: torch.Tensor, axis: int, slices: int) -> torch.Tensor:
    """Every slice of ``volume`` (contrasts, z, y, x) along ``axis`` with its neighbours:
    (n_slices, contrasts * slices, h, w); beyond the volume's ends the neighbours are zeros."""
    moved = volume.movedim(axis + 1, 1)
    half = slices // 2
    padded = functional.pad(moved, (0, 0, 0, 0, half, half))
    windows = padded.unfold(1, slices, 1)                  # (c, n, h, w, slices)
    stacks = windows.permute(1, 0, 4, 2, 3)                # (n, c, slices, h, w)
    return stacks.reshape(stacks.shape[0], -1, *stacks.shape[3:])


def _pad_to_multiple(stacks: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = stacks.shape[-2:]
    pad_h, pad_w = (-h) % SIZE_MULTIPLE, (-w) % SIZE_MULTIPLE
    return functional.pad(stacks, (0, pad_w, 0, pad_h)), (h, w)


def predict_axis(network: DeepSCAN, volume: torch.Tensor, axis: int, device: torch.device,
                 batch_size: int = 8) -> torch.Tensor:
    """Logits (1 + tissue_classes, z, y, x) from the slices along one axis."""
    stacks, (h, w) = _pad_to_multiple(slice_stacks(volume, axis, network.slices))
    outputs = []
    with torch.inference_mode():
        for start in range(0, stacks.shape[0], batch_size):
            batch = stacks[start:start + batch_size].to(device)
            outputs.append(network(batch)[..., :h, :w].float().cpu())
    logits = torch.cat(outputs).movedim(1, 0)              # (classes, n, h, w)
    return logits.movedim(1, axis + 1)


def slice_plane_weights(slice_direction_lps: Sequence[float],
                        anisotropy: float) -> tuple[float, float, float]:
    """Weights of the passes along numpy axes (z, y, x) for an image acquired in thick slices.

    Thick slices blur the image along the slice direction, so the pass whose 2D slices lie in
    the acquisition plane sees its sharp in-plane detail and the other two see the blur. That
    pass gets an extra weight growing with the anisotropy beyond 2:1 (none up to 2:1, where
    re-weighting cost a little on held-out cases; 1 at 3:1; at most 2 from 4:1), shared out by
    how well each axis is aligned with the slice direction (squared cosines, which sum to 1),
    so oblique slices spread it. Chosen and measured on phantoms with thick FLAIR slices:
    docs/wm.md, "Thick slices".
    """
    lps = np.asarray(slice_direction_lps, dtype=float)
    alignment = (lps[::-1] / np.linalg.norm(lps)) ** 2       # LPS (x, y, z) -> numpy (z, y, x)
    extra = float(np.clip(anisotropy - EQUAL_WEIGHTS_UP_TO_ANISOTROPY, 0.0,
                          MAX_EXTRA_PLANE_WEIGHT))
    return tuple(float(w) for w in 1.0 + extra * alignment)


def predict_volume(network: DeepSCAN, volume: torch.Tensor, device: torch.device,
                   axes: Sequence[int] = (0, 1, 2), mirror: bool = True,
                   progress: Progress | None = None, batch_size: int = 8,
                   axis_weights: Sequence[float] = (1.0, 1.0, 1.0)) -> VolumePrediction:
    """Average the logits of every pass (each axis, and each axis on the mirrored volume), a
    pass along numpy axis ``a`` weighted by ``axis_weights[a]``."""
    network.to(device).eval()
    passes = [(axis, flip) for flip in ((False, True) if mirror else (False,)) for axis in axes]
    total_weight = sum(axis_weights[axis] for axis, _ in passes)
    logit_sum = None
    probabilities = []
    for number, (axis, flip) in enumerate(passes):
        source = volume.flip(LEFT_RIGHT_AXIS + 1) if flip else volume
        logits = predict_axis(network, source, axis, device, batch_size)
        if flip:
            logits = logits.flip(LEFT_RIGHT_AXIS + 1)
        weighted = logits * axis_weights[axis]
        logit_sum = weighted if logit_sum is None else logit_sum + weighted
        probabilities.append(torch.sigmoid(logits[0]))
        if progress is not None:
            progress.update((number + 1) / len(passes), f"inference pass {number + 1}/"
                            f"{len(passes)}")
    mean_logits = logit_sum / total_weight
    spread = torch.stack(probabilities).std(0) if len(passes) > 1 else torch.zeros_like(
        probabilities[0])
    return VolumePrediction(torch.sigmoid(mean_logits[0]), spread, mean_logits[1:])
