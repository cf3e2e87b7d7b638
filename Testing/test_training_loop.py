"""The shared training loop: steps, the time budget and the learning-rate decay."""

import time

import torch

from MSLesionAILib.progress import Progress
from MSLesionAILib.training._loop import fit


def linear_batches(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = torch.randn(8, 4)
    return inputs, inputs.sum(dim=1, keepdim=True)


def test_fit_runs_every_step_and_learns() -> None:
    torch.manual_seed(0)
    network = torch.nn.Linear(4, 1)
    record = fit(network, linear_batches, torch.nn.functional.mse_loss, 200, 0.05,
                 torch.device("cpu"), Progress(), log_every=50)
    assert record.steps_done == 200 and record.device == "cpu"
    assert len(record.losses) == 4
    assert record.losses[-1] < 0.1 * record.losses[0]
    assert not network.training


def test_fit_stops_when_its_time_budget_is_spent() -> None:
    def slow_batches(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        time.sleep(0.01)
        return linear_batches(step)

    network = torch.nn.Linear(4, 1)
    record = fit(network, slow_batches, torch.nn.functional.mse_loss, 100_000, 0.01,
                 torch.device("cpu"), Progress(), log_every=5, max_seconds=0.3)
    assert 5 <= record.steps_done < 100_000
    assert record.losses, "the losses of the steps done are kept"
    assert record.seconds < 5.0
