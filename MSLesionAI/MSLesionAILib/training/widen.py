"""Function-preserving widening of a trained network (Net2WiderNet, Chen et al. 2016).

A narrow network's weights are copied into the same architecture with every widened channel
count multiplied by one integer factor k: channel c of a widened layer is a copy of the
parent's channel c // k (its filter, batch-norm statistics and bias), and a layer reading a
widened input splits each parent input weight over the k copies with random shares that sum
to one. The wider network computes what its parent did (exactly, in eval and in train mode),
so training goes on from the parent's accuracy with more capacity; the unequal shares give
the copies different gradients, so they do not stay twins.

Because copies are interleaved (c // k), a concatenation of widened tensors (RimNet's merged
branches, Deep-PRL's attention input, a U-Net's skip connections) maps onto the parent's
concatenation without knowing where the parts join. Every dimension must be either unchanged
or exactly k times the parent's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import BundleError


def widening_factor(parent: dict[str, torch.Tensor], child: dict[str, torch.Tensor]) -> int:
    """The one integer k by which every changed dimension grew (1 when none did)."""
    factors = set()
    for name, tensor in child.items():
        old_shape = parent[name].shape
        if len(old_shape) != tensor.dim():
            raise BundleError(f"cannot widen '{name}': {tuple(old_shape)} → {tuple(tensor.shape)}")
        for old, new in zip(old_shape, tensor.shape, strict=True):
            if new != old:
                if new % old:
                    raise BundleError(f"cannot widen '{name}': {old} channels to {new}")
                factors.add(new // old)
    if len(factors) > 1:
        raise BundleError(f"widths must all grow by one factor, found {sorted(factors)}")
    return factors.pop() if factors else 1


def load_widened(network: nn.Module, parent: dict[str, torch.Tensor],
                 seed: int = 0) -> nn.Module:
    """``network`` loaded with the weights of its narrower twin ``parent`` (a state dict), so
    that both compute the same; same widths: a plain copy."""
    child = network.state_dict()
    if set(parent) != set(child):
        raise BundleError("cannot widen: the parent is another architecture "
                          f"(keys differ: {sorted(set(parent) ^ set(child))[:4]})")
    factor = widening_factor(parent, child)
    transposed = {f"{name}.weight" for name, module in network.named_modules()
                  if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d,
                                         nn.ConvTranspose3d))}
    rng = np.random.default_rng(seed)
    network.load_state_dict({
        name: widen_tensor(parent[name], tuple(tensor.shape), factor, rng, name in transposed)
        for name, tensor in child.items()})
    return network


def widen_tensor(weights: torch.Tensor, shape: tuple[int, ...], factor: int,
                 rng: np.random.Generator, transposed: bool = False) -> torch.Tensor:
    """Output channels copied, input channels (of a convolution or linear layer) copied and
    split: dimensions 0 and 1, or 1 and 0 for a transposed convolution. Kernel dimensions are
    never widened."""
    inputs_dim = 0 if transposed else 1
    widened = weights
    for dim in (0, 1):
        if dim < widened.dim() and shape[dim] != widened.shape[dim]:
            widened = widened.repeat_interleave(factor, dim=dim)
            if dim == inputs_dim:
                view = [1] * widened.dim()
                view[dim] = -1
                widened = widened * split_shares(widened.shape[dim], factor, rng).view(
                    view).to(widened.dtype)
    return widened.clone()


def split_shares(channels: int, factor: int, rng: np.random.Generator) -> torch.Tensor:
    """Random positive shares, each consecutive group of ``factor`` summing to one."""
    raw = rng.uniform(0.5, 1.5, size=(channels // factor, factor))
    return torch.from_numpy(raw / raw.sum(axis=1, keepdims=True)).flatten().float()
