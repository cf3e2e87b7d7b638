"""RimNet and Deep-PRL shapes, their losses, and the operating point taken on scores."""

from __future__ import annotations

import math

import numpy as np
import torch

from MSLesionAILib.metrics.rim import threshold_at_specificity
from MSLesionAILib.networks import build_network
from MSLesionAILib.networks.rimnet import rim_probability
from MSLesionAILib.pipelines.rim import classify
from MSLesionAILib.training.rim import TEST_TIME_FLIPS, loss_function


def test_rimnet_two_branches_two_logits() -> None:
    network = build_network("rimnet").eval()
    logits = network(torch.randn(3, 2, 28, 28, 28))
    assert logits.shape == (3, 2)
    assert torch.all((rim_probability(logits) > 0) & (rim_probability(logits) < 1))
    # The FLAIR channel matters (the second branch is wired in).
    other = network(torch.cat([torch.randn(3, 1, 28, 28, 28), torch.zeros(3, 1, 28, 28, 28)],
                              dim=1))
    assert other.shape == (3, 2)


def test_deep_prl_uses_the_mask_channel() -> None:
    torch.manual_seed(0)
    network = build_network("deep_prl").eval()
    images = torch.randn(2, 2, 28, 28, 28)
    mask = torch.zeros(2, 1, 28, 28, 28)
    with torch.no_grad():
        without = network(torch.cat([images, mask], dim=1))
        mask[:, :, 10:18, 10:18, 10:18] = 1
        with_mask = network(torch.cat([images, mask], dim=1))
    assert without.shape == (2, 1) and not torch.allclose(without, with_mask)


def test_focal_loss_matches_the_formula() -> None:
    loss = loss_function(outputs=1)(torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0], [0.0]]))
    p = 1 / (1 + math.exp(-2.0))
    expected = (0.2 * 0.5**2 * math.log(2) + 0.8 * p**2 * -math.log(1 - p)) / 2
    assert math.isclose(float(loss), expected, rel_tol=1e-5)


def test_focal_gamma_0_alpha_half_is_balanced_cross_entropy() -> None:
    torch.manual_seed(0)
    logits, targets = torch.randn(64, 1) * 3, torch.randint(0, 2, (64, 1)).float()
    expected = 0.5 * torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    assert torch.isclose(loss_function(1, 0.0, 0.5)(logits, targets), expected, rtol=1e-5)


def test_operating_point_gives_95_percent_specificity_on_validation_scores() -> None:
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(200, int), np.ones(20, int)]
    scores = np.r_[rng.uniform(0, 0.8, 200), rng.uniform(0.5, 1.0, 20)]
    threshold = threshold_at_specificity(labels, scores, 0.95)
    negatives = scores[labels == 0]
    assert np.mean(negatives < threshold) >= 0.95
    assert np.mean(negatives < np.max(negatives[negatives < threshold])) < 0.95


class _CornerLogit(torch.nn.Module):
    """One logit: channel 0 at voxel (0, 0, 0), so each mirror of a patch sees another corner."""

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return patches[:, :1, 0, 0, 0]


def test_test_time_flips_average_every_mirror() -> None:
    assert sorted(map(tuple, TEST_TIME_FLIPS)) == sorted(
        {tuple(a for a in range(3) if mask >> a & 1) for mask in range(8)})
    patches = np.zeros((1, 1, 4, 4, 4), np.float32)
    corners = [(0, 0, 0), (3, 0, 0), (0, 3, 0), (0, 0, 3),
               (3, 3, 0), (3, 0, 3), (0, 3, 3), (3, 3, 3)]
    logits = np.linspace(-2.0, 2.0, len(corners))
    for corner, logit in zip(corners, logits, strict=True):
        patches[(0, 0, *corner)] = logit
    expected = float(np.mean(1.0 / (1.0 + np.exp(-logits))))
    flipped = classify(_CornerLogit(), patches, torch.device("cpu"), TEST_TIME_FLIPS)
    assert math.isclose(float(flipped[0]), expected, rel_tol=1e-5)
    as_is = classify(_CornerLogit(), patches, torch.device("cpu"), [[]])
    assert math.isclose(float(as_is[0]), 1.0 / (1.0 + math.exp(2.0)), rel_tol=1e-5)
