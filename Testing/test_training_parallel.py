"""Training's CPU-side parallelism: the same results as in one process, each worker with its
own reproducible random stream."""

from collections.abc import Callable

import torch

from MSLesionAILib.training._parallel import (
    WORKER_SEED_STRIDE,
    batch_source,
    map_in_processes,
)


def seeded_draws(seed: int) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)

    def draw() -> tuple[torch.Tensor, torch.Tensor]:
        inputs = torch.rand(2, 3, generator=generator)
        return inputs, torch.full((2,), float(seed))

    return draw


def test_map_in_processes_matches_map() -> None:
    expected = [1, 4, 27]
    assert map_in_processes(pow, 2, [1, 2, 3], [3, 2, 3]) == expected
    assert map_in_processes(pow, 0, [1, 2, 3], [3, 2, 3]) == expected


def test_without_workers_one_sampler_draws_in_process() -> None:
    next_batch, reference = batch_source(seeded_draws, 7, workers=0), seeded_draws(7)
    for step in range(3):
        inputs, targets = next_batch(step)
        assert torch.equal(inputs, reference()[0]) and targets[0] == 7


def test_workers_draw_in_turn_from_their_own_seeded_samplers() -> None:
    first, second = (seeded_draws(7 + WORKER_SEED_STRIDE * n) for n in (1, 2))
    next_batch = batch_source(seeded_draws, 7, workers=2)
    for step, reference in enumerate([first, second, first, second]):
        inputs, targets = next_batch(step)
        assert torch.equal(inputs, reference()[0]), f"batch {step}"
