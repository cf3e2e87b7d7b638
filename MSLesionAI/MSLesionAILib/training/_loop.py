"""What every trainer shares: seeding, the optimisation loop, and the record kept in a bundle."""

from __future__ import annotations

import platform
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..bundles import ModelBundle
from ..errors import InputError
from ..jsonfiles import read_json
from ..progress import Progress

Batch = tuple[torch.Tensor, torch.Tensor]
# What a training stage cost (the CPU threads too: CPU seconds mean little without them).
STAGE_KEYS = ("seconds", "steps_done", "device", "threads")


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, numpy and torch; return a numpy generator for the trainer's own draws."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


@dataclass
class FitRecord:
    """What a training run did: the mean loss per logging interval, steps, seconds, and the
    device it ran on."""

    losses: list[float]
    steps_done: int
    seconds: float
    device: str


def fit(network: torch.nn.Module, next_batch: Callable[[int], Batch],
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], steps: int,
        learning_rate: float, device: torch.device, progress: Progress,
        weight_decay: float = 1e-5, log_every: int = 50,
        max_seconds: float | None = None) -> FitRecord:
    """Adam with a polynomial learning-rate decay for ``steps`` steps or ``max_seconds``,
    whichever ends first: the decay follows the larger of the two fractions spent, so a run
    cut short by its time budget still ends at a small learning rate.
    ``next_batch(step)`` returns (inputs, targets) on the CPU."""
    network.to(device).train()
    optimiser = torch.optim.Adam(network.parameters(), lr=learning_rate,
                                 weight_decay=weight_decay)
    started = time.perf_counter()

    def spent(step: int) -> float:
        if max_seconds is None:
            elapsed = 0.0
        else:
            elapsed = (time.perf_counter() - started) / max_seconds if max_seconds > 0 else 1.0
        return min(1.0, max(step / steps, elapsed))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: (1 - spent(step)) ** 0.9)
    losses, running, step = [], 0.0, 0
    while step < steps and spent(step) < 1.0:
        inputs, targets = next_batch(step)
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(network(inputs.to(device)), targets.to(device))
        loss.backward()
        optimiser.step()
        schedule.step()
        running += loss.item()
        step += 1
        if step % log_every == 0 or step == steps:
            losses.append(running / (((step - 1) % log_every) + 1))
            running = 0.0
            progress.update(max(step / steps, spent(step)),
                            f"step {step}/{steps} loss {losses[-1]:.4f}")
    network.eval()
    return FitRecord(losses, step, time.perf_counter() - started, device_description(device))


def device_description(device: torch.device) -> str:
    """``cpu``, or the device type with the GPU's name: ``cuda (NVIDIA H100 80GB HBM3)``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def trained_on(training: dict[str, Any]) -> str:
    """A training record's machine for a model card: ``x86_64 Linux, cuda (NVIDIA H100 …)``
    (records older than the ``device`` entry name the machine alone)."""
    device = training.get("device")
    return f"{training['machine']}, {device}" if device else training["machine"]


def minutes_to_seconds(minutes: float | None) -> float | None:
    """A ``--max-minutes`` option as `fit`'s ``max_seconds`` (None: no time budget)."""
    return None if minutes is None else 60.0 * minutes


def phantom_data_record(datasets: list[Path], folders: list[Path]) -> dict[str, Any]:
    """Training data: the dataset folders, and each case's phantom seed and mode (from
    case.json), so held-out cohorts can avoid these seeds."""
    cases = [read_json(folder / "case.json") for folder in folders]
    return {"datasets": [str(Path(d).resolve()) for d in datasets], "cases": len(folders),
            "seeds": [case["seed"] for case in cases],
            "modes": sorted({case.get("mode", "unknown") for case in cases}),
            "generator_versions": sorted({case.get("generator_version", "unknown")
                                          for case in cases})}


def phantom_seeds(folders: list[Path]) -> list[int]:
    """The phantom seeds of the case folders that are phantom cases (hold a case.json); cases
    annotated by hand have none."""
    return [read_json(folder / "case.json")["seed"] for folder in folders
            if (folder / "case.json").is_file()]


def found_cases(option: str, roots: list[Path] | None, folders: list[Path],
                marker: str) -> list[Path]:
    """The case folders found under an option's folders, or, when it was given and holds
    none, a clear error before any training starts."""
    if roots and not folders:
        raise InputError(f"{option}: no case found in {', '.join(map(str, roots))} (a case "
                         f"folder holds {marker}; give case folders or folders of them)")
    return folders


def parent_record(parent: ModelBundle) -> dict[str, Any]:
    """What a bundle trained on from another bundle's weights (``--init``, fine-tuning) started
    from: enough to rebuild the chain of training commands, and what each stage cost (its
    seconds and device), the parent's own parent nested inside."""
    training = parent.metadata.get("training", {})
    record = {"id": parent.id, "version": parent.metadata["version"],
              "sha256": parent.weights_sha256,
              "command": training.get("command", "not recorded"),
              **{key: training.get(key) for key in STAGE_KEYS}}
    if "parent" in parent.metadata:
        record["parent"] = parent.metadata["parent"]
    return record


def training_stages(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """Every training stage behind a bundle, its own first then its parents': the
    `STAGE_KEYS` of each (None where a stage did not record one)."""
    stages, parent = [metadata.get("training", {})], metadata.get("parent")
    while parent:
        stages.append(parent)
        parent = parent.get("parent")
    return [{key: stage.get(key) for key in STAGE_KEYS} for stage in stages]


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def training_record(seed: int, data: dict[str, Any], settings: dict[str, Any],
                    seconds: float, record: FitRecord) -> dict[str, Any]:
    """The ``training`` section of a bundle's metadata: how to reproduce this model."""
    return {
        "command": "mslesionai " + shlex.join(sys.argv[1:]),
        "seed": seed,
        "data": data,
        "settings": settings,
        "seconds": round(seconds, 1),
        "steps_done": record.steps_done,
        "loss_history": [round(v, 5) for v in record.losses],
        "library_version": __version__,
        "commit": git_commit(),
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.system()}",
        "device": record.device,
        "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
    }
