"""Which device runs the networks: ``auto`` takes CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

from .errors import InputError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def choose_device(requested: str = "auto") -> torch.device:
    """The torch device for ``requested``; asking for a device that is absent is an error."""
    if requested not in DEVICE_CHOICES:
        raise InputError(f"--device: '{requested}' is not one of {', '.join(DEVICE_CHOICES)}")
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise InputError("--device: cuda requested but no CUDA GPU is usable by this PyTorch "
                         f"({torch.__version__}); use --device cpu or install a CUDA build")
    if requested == "mps" and not mps_available():
        raise InputError("--device: mps requested but Apple's MPS backend is not available")
    return torch.device(requested)
