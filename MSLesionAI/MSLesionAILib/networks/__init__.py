"""The networks, one architecture per module; a bundle names its module in
``metadata["architecture"]`` and the keyword arguments of that module's ``build`` in
``metadata["network"]``."""

from __future__ import annotations

import importlib
import pkgutil

import torch

from ..bundles import ModelBundle
from ..errors import BundleError


def architectures() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def build_network(architecture: str, **kwargs: object) -> torch.nn.Module:
    """A fresh network of the named architecture (a module of this package with ``build``)."""
    if architecture not in architectures():
        raise BundleError(f"unknown network architecture '{architecture}' "
                          f"(known: {', '.join(architectures())})")
    return importlib.import_module(f"{__name__}.{architecture}").build(**kwargs)


def load_network(bundle: ModelBundle, device: torch.device) -> torch.nn.Module:
    """The bundle's network with its checked weights, in eval mode on ``device``."""
    network = build_network(bundle.metadata["architecture"], **bundle.metadata["network"])
    network.load_state_dict(bundle.load_state_dict())
    return network.to(device).eval()
