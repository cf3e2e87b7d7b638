"""A network continued with more input contrasts computes what its parent did without them."""

from __future__ import annotations

import pytest
import torch

from MSLesionAILib.errors import InputError
from MSLesionAILib.networks import build_network
from MSLesionAILib.training.new_inputs import load_with_new_inputs

PARENT_INPUTS = ["mp2rage", "t2star_gre"]


def _parent() -> torch.nn.Module:
    torch.manual_seed(0)
    network = build_network("claims_unet", in_channels=2, out_channels=3).eval()
    with torch.no_grad():
        for weights in network.parameters():
            weights.add_(0.05 * torch.randn_like(weights))
    return network


def test_a_new_contrast_starts_unused_and_the_old_ones_keep_their_weights() -> None:
    parent = _parent()
    child = build_network("claims_unet", in_channels=3, out_channels=3).eval()
    load_with_new_inputs(child, parent.state_dict(), PARENT_INPUTS, [*PARENT_INPUTS, "t2star_epi"])
    old = torch.randn(1, 2, 16, 16, 16)
    with torch.no_grad():
        expected = parent(old)
        torch.testing.assert_close(child(torch.cat([old, torch.zeros(1, 1, 16, 16, 16)], 1)),
                                   expected)
        # The new channel is read once training moves its zero weights.
        first = next(w for w in child.parameters() if w.dim() == 5)
        first[:, 2] += 0.1
        assert not torch.allclose(child(torch.cat([old, torch.ones(1, 1, 16, 16, 16)], 1)),
                                  expected)


def test_a_new_contrast_between_the_parents_goes_to_its_own_channel() -> None:
    parent = build_network("claims_unet", in_channels=2, out_channels=3).eval()
    child = build_network("claims_unet", in_channels=3, out_channels=3).eval()
    parent_inputs = ["mp2rage", "t2star_epi"]
    load_with_new_inputs(child, parent.state_dict(), parent_inputs,
                         ["mp2rage", "t2star_gre", "t2star_epi"])
    first = next(w for w in child.parameters() if w.dim() == 5)
    parent_first = next(w for w in parent.parameters() if w.dim() == 5)
    torch.testing.assert_close(first[:, 0], parent_first[:, 0])
    torch.testing.assert_close(first[:, 2], parent_first[:, 1])
    assert not first[:, 1].any()


def test_dropping_or_reordering_a_parents_input_is_refused() -> None:
    parent = _parent()
    with pytest.raises(InputError, match="drops t2star_gre"):
        load_with_new_inputs(build_network("claims_unet", in_channels=2, out_channels=3),
                             parent.state_dict(), PARENT_INPUTS, ["mp2rage", "t2star_epi"])
    with pytest.raises(InputError, match="another order"):
        load_with_new_inputs(build_network("claims_unet", in_channels=2, out_channels=3),
                             parent.state_dict(), PARENT_INPUTS, ["t2star_gre", "mp2rage"])
    with pytest.raises(InputError, match="not the same network"):
        load_with_new_inputs(build_network("claims_unet", in_channels=3, out_channels=4),
                             parent.state_dict(), PARENT_INPUTS, [*PARENT_INPUTS, "t2star_epi"])
    fewer_layers = dict(list(parent.state_dict().items())[1:])
    with pytest.raises(InputError, match="in only one of the two"):
        load_with_new_inputs(build_network("claims_unet", in_channels=3, out_channels=3),
                             fewer_layers, PARENT_INPUTS, [*PARENT_INPUTS, "t2star_epi"])
