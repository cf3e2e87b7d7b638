"""The DeepSCAN-style network: shapes, slice stacks, and the averaging over axes and mirror."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from MSLesionAILib.networks import build_network
from MSLesionAILib.networks.deepscan import (
    DeepSCAN,
    predict_axis,
    predict_volume,
    slice_plane_weights,
    slice_stacks,
)

CPU = torch.device("cpu")


class CentralSlice(torch.nn.Module):
    """Echoes the central slice of contrast 0 as the lesion logit (and as every tissue logit)."""

    slices = 3

    def forward(self, stacks: torch.Tensor) -> torch.Tensor:
        central = stacks[:, self.slices // 2: self.slices // 2 + 1]
        return central.repeat(1, 8, 1, 1)


def test_build_gives_one_lesion_and_seven_tissue_logits_per_pixel() -> None:
    network = build_network("deepscan", contrasts=3, slices=5, tissue_classes=7,
                            features=[4, 4, 4, 4, 4, 4])
    assert isinstance(network, DeepSCAN)
    assert network(torch.zeros(2, 15, 32, 48)).shape == (2, 8, 32, 48)


def test_even_slice_count_is_refused() -> None:
    with pytest.raises(ValueError, match="odd"):
        build_network("deepscan", slices=4, features=[4] * 6)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slice_stacks_hold_neighbours_contrast_major_with_zeros_beyond_the_ends(axis) -> None:
    volume = torch.randn(2, 6, 7, 8)
    stacks = slice_stacks(volume, axis, slices=3)
    moved = volume.movedim(axis + 1, 1)                  # (contrasts, n, h, w)
    assert stacks.shape == (moved.shape[1], 2 * 3, *moved.shape[2:])
    assert torch.equal(stacks[2, 1], moved[0, 2])        # contrast 0, central slice
    assert torch.equal(stacks[2, 3 + 2], moved[1, 3])    # contrast 1, next slice
    assert torch.equal(stacks[0, 0], torch.zeros_like(moved[0, 0]))  # before the first slice


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_each_axis_puts_every_slice_back_where_it_came_from(axis) -> None:
    volume = torch.randn(3, 5, 9, 11)       # not multiples of 16: padding is undone
    logits = predict_axis(CentralSlice(), volume, axis, CPU, batch_size=4)
    assert logits.shape == (8, 5, 9, 11)
    assert torch.allclose(logits[0], volume[0])


def test_mirror_and_axes_average_to_the_same_map_with_no_spread_for_an_exact_network() -> None:
    volume = torch.randn(3, 6, 10, 12)
    prediction = predict_volume(CentralSlice(), volume, CPU, axes=(0, 1, 2), mirror=True)
    assert torch.allclose(prediction.lesion_probability, torch.sigmoid(volume[0]), atol=1e-6)
    assert prediction.lesion_uncertainty.max() < 1e-5
    assert prediction.tissue_logits.shape == (7, 6, 10, 12)


class StackMean(CentralSlice):
    """The mean over the whole stack: differs between axes wherever the volume varies."""

    def forward(self, stacks: torch.Tensor) -> torch.Tensor:
        return stacks.mean(1, keepdim=True).repeat(1, 8, 1, 1)


def test_uncertainty_is_the_spread_of_the_passes_probabilities() -> None:
    volume = torch.randn(3, 6, 7, 8)
    prediction = predict_volume(StackMean(), volume, CPU, axes=(0, 1, 2), mirror=True)
    passes = [predict_axis(StackMean(), volume, axis, CPU)[0] for axis in (0, 1, 2)]
    passes += [predict_axis(StackMean(), volume.flip(3), axis, CPU)[0].flip(2)
               for axis in (0, 1, 2)]
    expected = torch.stack([torch.sigmoid(p) for p in passes]).std(0)
    assert torch.allclose(prediction.lesion_uncertainty, expected, atol=1e-6)
    assert prediction.lesion_uncertainty.mean() > 0.01
    mean_logit = torch.stack(passes).mean(0)
    assert torch.allclose(prediction.lesion_probability, torch.sigmoid(mean_logit), atol=1e-6)


def test_weighted_passes_give_the_weighted_mean_logit() -> None:
    volume = torch.randn(3, 6, 7, 8)
    weights = (3.0, 1.0, 0.5)
    prediction = predict_volume(StackMean(), volume, CPU, axes=(0, 1, 2), mirror=False,
                                axis_weights=weights)
    passes = [predict_axis(StackMean(), volume, axis, CPU)[0] for axis in (0, 1, 2)]
    mean_logit = sum(w * p for w, p in zip(weights, passes, strict=True)) / sum(weights)
    assert torch.allclose(prediction.lesion_probability, torch.sigmoid(mean_logit), atol=1e-6)


@pytest.mark.parametrize("anisotropy", [1.0, 1.5, 2.0])
def test_voxels_up_to_two_to_one_weigh_every_pass_alike(anisotropy) -> None:
    assert slice_plane_weights((0.3, 0.4, np.sqrt(0.75)), anisotropy) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(("direction_lps", "anisotropy", "expected_zyx"), [
    ((0, 0, 1), 3.0, (2.0, 1.0, 1.0)),          # axial stack, 3:1: the axial pass doubled
    ((0, 0, -1), 4.0, (3.0, 1.0, 1.0)),         # 4:1, the sign of the direction is irrelevant
    ((0, 0, 1), 9.0, (3.0, 1.0, 1.0)),          # capped
    ((1, 0, 0), 3.0, (1.0, 1.0, 2.0)),          # sagittal stack: slices along left-right
    ((0, 1, 1), 3.0, (1.5, 1.5, 1.0)),          # 45° between axial and coronal: shared
])
def test_thick_slices_weigh_the_pass_in_the_acquisition_plane_more(
        direction_lps, anisotropy, expected_zyx) -> None:
    assert slice_plane_weights(direction_lps, anisotropy) == pytest.approx(expected_zyx)
