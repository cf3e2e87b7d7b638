"""CPU-side parallelism for training: cases prepared in worker processes, and augmented
batches drawn by DataLoader workers, so that a GPU is not kept waiting for the augmentation
(one CPU core draws a white-matter batch in about 0.1 s; a GPU step takes a few ms).

With ``workers`` 0 everything runs in the calling process, exactly as before: the CPU path
and its reproducibility are unchanged. Workers are forked, so this must run before CUDA is
initialised (choose the device afterwards).
"""

from __future__ import annotations

import argparse
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

import torch

from ..devices import DEVICE_CHOICES

Result = TypeVar("Result")
Batch = tuple[torch.Tensor, torch.Tensor]
WORKER_SEED_STRIDE = 1000   # worker w draws with seed + stride * (w + 1)


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--workers`` for a trainer that uses `batch_source`."""
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                        help="where the network trains (auto: CUDA, then MPS, then the CPU)")
    parser.add_argument("--workers", type=int, default=0,
                        help="processes preparing the cases and drawing augmented batches "
                             "(0: all in this process, reproducible from --seed; give a GPU "
                             "several)")


def map_in_processes(function: Callable[..., Result], workers: int,
                     *arguments: Sequence[Any]) -> list[Result]:
    """``list(map(function, *arguments))``, in up to ``workers`` forked processes."""
    count = min(len(a) for a in arguments)
    if workers <= 1 or count <= 1:
        return list(map(function, *arguments))
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(min(workers, count), mp_context=context) as pool:
        return list(pool.map(function, *arguments))


class _BatchStream(torch.utils.data.IterableDataset):
    """Endless batches from a sampler made in each worker with that worker's own seed."""

    def __init__(self, new_sampler: Callable[[int], Callable[[], Batch]], seed: int) -> None:
        super().__init__()
        self.new_sampler, self.seed = new_sampler, seed

    def __iter__(self) -> Iterator[Batch]:
        worker = torch.utils.data.get_worker_info()
        draw = self.new_sampler(self.seed + WORKER_SEED_STRIDE * (worker.id + 1))
        while True:
            yield draw()


def batch_source(new_sampler: Callable[[int], Callable[[], Batch]], seed: int,
                 workers: int) -> Callable[[int], Batch]:
    """``next_batch(step)`` for `fit`. ``new_sampler(seed)`` returns a function drawing one
    batch; with workers each draws from its own sampler, else one sampler draws in-process."""
    if workers <= 0:
        draw = new_sampler(seed)
        return lambda step: draw()
    loader = torch.utils.data.DataLoader(
        _BatchStream(new_sampler, seed), batch_size=None, num_workers=workers,
        prefetch_factor=4, persistent_workers=True,
        multiprocessing_context=multiprocessing.get_context("fork"))
    batches = iter(loader)
    return lambda step: next(batches)
