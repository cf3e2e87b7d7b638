"""`mslesionai benchmark`: the shipped models beside baselines on held-out cohorts (RESULTS.md)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..benchmark.run import Options, run_benchmark
from ..benchmark.sections import BASELINE_TASKS
from ..progress import Progress


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "benchmark", help="measure the installed models and baselines on held-out phantom "
                          "cohorts and the real sample case; write RESULTS.md and plots",
        description="Held-out cohorts (seeds no model trained on), every installed model and "
                    "the baselines, the papers' metrics, speed and memory per stage.")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for RESULTS.md and the PNGs (work files in OUT/work)")
    parser.add_argument("--quick", action="store_true",
                        help="2 tiny cropped cases per kind and 2-step baselines: checks the "
                             "plumbing only, the figures mean nothing")
    parser.add_argument("--cases", type=int, help="cases per kind (default 10; quick 2)")
    parser.add_argument("--skip-baselines", nargs="*", choices=BASELINE_TASKS,
                        metavar="TASK",
                        help="skip the trained U-Net baselines of these tasks (wm, cortical; "
                             "alone: both). The naive FLAIR threshold and the rim baselines "
                             "still run")
    parser.add_argument("--models", type=Path, nargs="*",
                        help="bundle folders (default: every installed model)")
    parser.add_argument("--baseline-data", type=Path, nargs="*",
                        help="folders holding the shipped models' training cases (remade with "
                             "`mslesionai phantom-dataset --seed S --kind K --mode M`) when the "
                             "folders their bundles record are not on this machine")
    parser.add_argument("--budget", type=float, default=1.0,
                        help="baseline U-Net training time as a fraction of the shipped "
                             "model's recorded training time (default 1: the same budget)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="speed runs per pipeline (0: no speed runs)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    parser.set_defaults(func=run)


def skipped_baselines(tasks: list[str] | None) -> frozenset[str]:
    """``--skip-baselines``: absent → none; given alone → every task's; else those named."""
    if tasks is None:
        return frozenset()
    return frozenset(tasks or BASELINE_TASKS)


def run(args: argparse.Namespace, progress: Progress) -> int:
    options = Options(out=args.out, quick=args.quick, cases=args.cases,
                      skip_baselines=skipped_baselines(args.skip_baselines),
                      models=args.models,
                      baseline_data=args.baseline_data,
                      budget=args.budget, repeats=args.repeats, threads=args.threads,
                      command="mslesionai " + shlex.join(sys.argv[1:]))
    print(f"wrote {run_benchmark(options, progress)}")
    return 0
