"""Widening a trained network keeps what it computes (Net2WiderNet)."""

from __future__ import annotations

import pytest
import torch

from MSLesionAILib.errors import BundleError
from MSLesionAILib.networks import build_network
from MSLesionAILib.training.widen import load_widened


def trained_looking(network: torch.nn.Module) -> torch.nn.Module:
    """``network`` with normalisation statistics and biases that are not the fresh defaults."""
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif tensor.is_floating_point() and not name.endswith("weight"):
                tensor.normal_(0.0, 0.3)
    return network


@pytest.mark.parametrize("architecture", ["rimnet", "deep_prl"])
@pytest.mark.parametrize("factor", [2, 3])
def test_wider_network_computes_what_its_parent_did(architecture: str, factor: int) -> None:
    torch.manual_seed(0)
    parent = trained_looking(build_network(architecture, widths=(2, 4, 8)))
    child = load_widened(build_network(architecture, widths=(2 * factor, 4 * factor, 8 * factor)),
                         parent.state_dict(), seed=1)
    patches = torch.rand(4, 3 if architecture == "deep_prl" else 2, 28, 28, 28)
    with torch.no_grad():
        for mode in ("eval", "train"):  # train: batch statistics, dropout off for the check
            for network in (parent, child):
                getattr(network, mode)()
                network.head.apply(lambda m: m.eval() if isinstance(m, torch.nn.Dropout) else m)
            torch.testing.assert_close(child(patches), parent(patches), rtol=1e-4, atol=1e-5)


def test_copies_of_a_channel_get_different_outgoing_weights() -> None:
    """Otherwise the copies would get equal gradients and stay twins for ever."""
    parent = build_network("deep_prl", widths=(2, 4, 8))
    widened = load_widened(build_network("deep_prl", widths=(4, 8, 16)),
                           parent.state_dict()).state_dict()
    second_conv = widened["image1.3.weight"]  # reads the first convolution's copies
    assert not torch.allclose(second_conv[:, 0], second_conv[:, 1])
    torch.testing.assert_close(second_conv[:, 0] + second_conv[:, 1],
                               parent.state_dict()["image1.3.weight"][:, 0].repeat_interleave(2, 0))


def test_same_widths_copy_the_parent_and_others_are_refused() -> None:
    parent = build_network("rimnet", widths=(2, 4, 8))
    same = load_widened(build_network("rimnet", widths=(2, 4, 8)), parent.state_dict())
    assert all(torch.equal(same.state_dict()[k], v) for k, v in parent.state_dict().items())
    with pytest.raises(BundleError, match="one factor"):
        load_widened(build_network("rimnet", widths=(4, 12, 16)), parent.state_dict())
    with pytest.raises(BundleError, match="another architecture"):
        load_widened(build_network("deep_prl", widths=(2, 4, 8)), parent.state_dict())


def test_a_unet_with_transposed_convolutions_and_skips_widens_too() -> None:
    """The white-matter network (MONAI BasicUNet): concatenated skips, transposed
    convolutions (weights stored inputs first) and instance norm."""
    torch.manual_seed(0)
    parent = trained_looking(build_network("deepscan", features=(4, 8, 8, 12, 16, 4))).eval()
    child = load_widened(build_network("deepscan", features=(8, 16, 16, 24, 32, 8)),
                         parent.state_dict(), seed=3).eval()
    stacks = torch.rand(2, 15, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(child(stacks), parent(stacks), rtol=1e-4, atol=1e-5)
