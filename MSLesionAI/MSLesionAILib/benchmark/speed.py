"""Speed and memory of the pipelines, as a user meets them: the `mslesionai` command.

Each run is a child process (``python -m MSLesionAILib.benchmark.speed ARGS…``) so that its
peak resident memory (`peak_memory_mib`) is its own. The child imports the commands first
(timed apart), then times the command from argument parsing to the last file written, and
the time spent inside the network's forward calls (global module hooks: only the outermost
module call counts). The per-stage timings come from the run's summary.json; what the
command does besides them (reading the inputs, checks, writing the files) is the
``read + write`` stage. The ratio end-to-end / forward says how much
the pipeline adds around the bare network.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cli import build_parser
from ..cli import main as cli_main
from ..errors import MSLesionAIError
from ..jsonfiles import read_json

OTHER_STAGE = "read + write"


@contextmanager
def forward_timer() -> Iterator[list[float]]:
    """Yields a one-item list that accumulates the seconds spent in outermost module calls."""
    total, depth, started = [0.0], [0], [0.0]

    def before(_module: torch.nn.Module, _inputs: Any) -> None:
        if depth[0] == 0:
            wait_for_gpu()
            started[0] = time.perf_counter()
        depth[0] += 1

    def after(_module: torch.nn.Module, _inputs: Any, _output: Any) -> None:
        depth[0] -= 1
        if depth[0] == 0:
            wait_for_gpu()
            total[0] += time.perf_counter() - started[0]

    hooks = [torch.nn.modules.module.register_module_forward_pre_hook(before),
             torch.nn.modules.module.register_module_forward_hook(after)]
    try:
        yield total
    finally:
        for hook in hooks:
            hook.remove()


def wait_for_gpu() -> None:
    """CUDA kernels run asynchronously: a forward call "returns" before its work is done, so
    the timer waits for the GPU at each end of a call (nothing to wait for on the CPU)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def speed_devices() -> list[str]:
    """Where the speed runs happen: the CPU, and the GPU when this machine has one."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def peak_memory_mib() -> float:
    """This process's resident high-water mark: VmHWM on Linux, which exec resets, unlike
    getrusage's ru_maxrss, which keeps the forking parent's size; ru_maxrss elsewhere."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_command(argv: list[str]) -> dict[str, float]:
    """Run ``mslesionai ARGV`` here: seconds to import the commands, then the whole command's
    and the forward calls' seconds, and the peak memory (MiB)."""
    started = time.perf_counter()
    build_parser()
    imports_s = time.perf_counter() - started
    with forward_timer() as forward_s:
        started = time.perf_counter()
        code = cli_main(argv)
        whole_s = time.perf_counter() - started
    if code:
        raise MSLesionAIError(f"mslesionai {' '.join(argv)} exited with {code}")
    return {"imports_s": imports_s, "whole_s": whole_s, "forward_s": forward_s[0],
            "peak_memory_mib": peak_memory_mib()}


def measure_run(argv: list[str], out_dir: Path, threads: int) -> dict[str, Any]:
    """One run of ``mslesionai ARGV --out OUT_DIR`` in a child process, with its stages."""
    command = [sys.executable, "-m", __name__, str(threads), "--progress", "none", *argv,
               "--out", str(out_dir)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise MSLesionAIError(f"speed run failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    run = json.loads(done.stdout.strip().splitlines()[-1])
    stages = read_json(out_dir / "summary.json")["timings_s"]
    stages[OTHER_STAGE] = max(run["whole_s"] - sum(stages.values()), 0.0)
    return {**run, "stages_s": stages}


def summarise_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repeated runs; the peak memory is the largest run's."""
    stages = {name: float(np.median([r["stages_s"].get(name, 0.0) for r in runs]))
              for name in runs[0]["stages_s"]}
    whole_s = float(np.median([r["whole_s"] for r in runs]))
    forward_s = float(np.median([r["forward_s"] for r in runs]))
    return {"runs": len(runs), "stages_s": stages, "whole_s": whole_s, "forward_s": forward_s,
            "imports_s": float(np.median([r["imports_s"] for r in runs])),
            "end_to_end_over_forward": whole_s / forward_s if forward_s else float("nan"),
            "peak_memory_mib": max(r["peak_memory_mib"] for r in runs)}


def measure(argv: list[str], scratch: Path, repeats: int, threads: int) -> dict[str, Any]:
    """``repeats`` runs of ``mslesionai ARGV`` (outputs under ``scratch``, emptied first: the
    outputs of an earlier benchmark's timing runs are not kept), summarised."""
    shutil.rmtree(scratch, ignore_errors=True)
    return summarise_runs([measure_run(argv, scratch / f"run_{number}", threads)
                           for number in range(repeats)])


def main() -> None:
    """Child entry point: ``THREADS ARGV…``; prints the run's figures as a JSON line."""
    torch.set_num_threads(int(sys.argv[1]))
    print(json.dumps(timed_command(sys.argv[2:])))


if __name__ == "__main__":
    main()
