"""Continue a trained network with more input contrasts than its parent read.

The new contrasts' weights in the first convolution start at zero, so the network computes
exactly what its parent did (as it must when such a contrast is missing: a channel of zeros)
until training teaches it to use them.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError


def load_with_new_inputs(network: nn.Module, parent: dict[str, torch.Tensor],
                         parent_inputs: list[str], inputs: list[str]) -> None:
    """Load ``parent`` (a state dict of the same architecture reading ``parent_inputs``) into
    ``network``, which reads ``inputs``: the parent's inputs, in the parent's order, with new
    ones anywhere among them."""
    missing = [name for name in parent_inputs if name not in inputs]
    if missing:
        raise InputError(f"--init: the new model must read every input of its parent; it "
                         f"drops {', '.join(missing)}")
    if len(inputs) == len(parent_inputs) and inputs != parent_inputs:
        raise InputError(f"--init: the parent reads {', '.join(parent_inputs)} in another order")
    state = network.state_dict()
    if set(parent) != set(state):
        differing = sorted(set(parent) ^ set(state))
        raise InputError(f"--init: not the same network (layers {', '.join(differing[:3])} "
                         "are in only one of the two)")
    for key, weights in parent.items():
        if state[key].shape == weights.shape:
            state[key] = weights
        elif _first_layer(state[key], weights, len(parent_inputs), len(inputs)):
            state[key] = torch.zeros_like(state[key])
            for index, name in enumerate(parent_inputs):
                state[key][:, inputs.index(name)] = weights[:, index]
        else:
            raise InputError(f"--init: layer {key} is {tuple(weights.shape)} in the parent and "
                             f"{tuple(state[key].shape)} here: not the same network")
    network.load_state_dict(state)


def _first_layer(own: torch.Tensor, parent: torch.Tensor, parent_channels: int,
                 channels: int) -> bool:
    """A convolution's weights that differ from the parent's only in their input channels."""
    return (own.dim() >= 3 and own.shape[1] == channels and parent.shape[1] == parent_channels
            and own.shape[:1] + own.shape[2:] == parent.shape[:1] + parent.shape[2:])
