"""Running networks on images: MONAI sliding windows, with a fallback when the GPU runs out.

Out-of-memory on a GPU is retried with one window per batch, then on the CPU, each step
recorded as a warning (the pipelines put warnings in summary.json) instead of crashing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from monai.inferers import sliding_window_inference

from .progress import Progress

LOG = logging.getLogger(__name__)
T = TypeVar("T")


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def run_with_memory_fallback(call: Callable[[torch.device, int], T], device: torch.device,
                             batch_size: int, warnings: list[str]) -> T:
    """``call(device, batch_size)``; on GPU out-of-memory retry with batch 1, then on the CPU."""
    attempts = [(device, batch_size)]
    if device.type != "cpu":
        attempts += [(device, 1)] if batch_size > 1 else []
        attempts += [(torch.device("cpu"), batch_size)]
    for number, (attempt_device, attempt_batch) in enumerate(attempts):
        try:
            return call(attempt_device, attempt_batch)
        except (RuntimeError, torch.OutOfMemoryError) as error:
            if not is_out_of_memory(error) or number == len(attempts) - 1:
                raise
            if attempt_device.type == "cuda" and torch.cuda.is_available():
                torch.cuda.empty_cache()
            retry_device, retry_batch = attempts[number + 1]
            message = (f"out of memory on {attempt_device} with batch {attempt_batch}; "
                       f"retrying on {retry_device} with batch {retry_batch}")
            LOG.warning(message)
            warnings.append(message)
    raise AssertionError("unreachable")


def count_windows(image_size: Sequence[int], roi_size: Sequence[int], overlap: float) -> int:
    """How many windows MONAI's sliding window visits (for progress reporting)."""
    total = 1
    for size, roi in zip(image_size, roi_size, strict=True):
        step = max(int(roi * (1 - overlap)), 1)
        total *= 1 if size <= roi else math.ceil((size - roi) / step) + 1
    return total


def predict_sliding_window(network: torch.nn.Module, image: torch.Tensor,
                           roi_size: Sequence[int], device: torch.device, warnings: list[str],
                           progress: Progress | None = None, batch_size: int = 4,
                           overlap: float = 0.5) -> torch.Tensor:
    """Logits for a (1, C, z, y, x) image by Gaussian-blended sliding windows, on the CPU."""
    network.eval()
    total_windows = count_windows(image.shape[2:], roi_size, overlap)
    windows_done = [0]

    def predictor(batch: torch.Tensor) -> torch.Tensor:
        if progress is not None:
            windows_done[0] += batch.shape[0]
            progress.update(min(windows_done[0] / total_windows, 1.0), "inference")
        return network(batch)

    def call(run_device: torch.device, run_batch: int) -> torch.Tensor:
        network.to(run_device)
        with torch.inference_mode():
            return sliding_window_inference(
                image, roi_size, run_batch, predictor, overlap=overlap, mode="gaussian",
                sw_device=run_device, device=torch.device("cpu"))

    result = run_with_memory_fallback(call, device, batch_size, warnings)
    if progress is not None:
        progress.update(1.0, "inference done")
    return result
