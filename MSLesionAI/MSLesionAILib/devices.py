"""Which device runs the networks: ``auto`` takes CUDA, then Apple's MPS, then the CPU.

torch is imported when a device is chosen, not before: the Slicer panels read
`DEVICE_CHOICES` before the first-use install has put torch in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def choose_device(requested: str = "auto") -> torch.device:
    """The torch device for ``requested``; asking for a device that is absent is an error."""
    import torch

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
