"""`mslesionai demo`: the main job on bundled cases, as a user would run it.

Generates a phantom case with a fixed seed (never used in training), runs every pipeline whose
command and model are installed on it and on the real case shipped with the repository,
scores each against its truth, and writes a report. Each step is an ordinary `mslesionai`
command line, printed before it runs, so the demo doubles as a worked example.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

from ..bundles import list_bundles
from ..progress import Progress

DEMO_SEED = 90210
REPO = Path(__file__).resolve().parents[3]
REAL_CASE = REPO / "Resources" / "SampleData" / "lesjak2017_patient07"
PIPELINES = ("wm", "rim", "cortical")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run every installed pipeline on a phantom case and the real sample case")
    parser.add_argument("--out", type=Path, default=Path("demo-output"),
                        help="parent folder; each run writes a new timestamped folder in it")
    parser.add_argument("--device", default="auto", help="device for the networks")
    parser.set_defaults(func=run)


def demo_steps(run_dir: Path, device: str) -> list[tuple[tuple[str, ...], list[str]]]:
    """(what the step needs, argv) for each step of the demo, in order."""
    phantom, real = run_dir / "phantom", REAL_CASE
    return [
        (("phantom",), ["phantom", str(phantom), "--seed", str(DEMO_SEED), "--kind", "all"]),
        (("phantom", "wm"), ["wm", "--flair", f"{phantom}/flair.nii.gz",
                             "--t1", f"{phantom}/t1.nii.gz", "--t2", f"{phantom}/t2.nii.gz",
                             "--out", f"{run_dir}/phantom_wm", "--device", device]),
        (("phantom", "wm", "evaluate"), ["evaluate", "--task", "wm", "--pred",
                                         f"{run_dir}/phantom_wm", "--truth", str(phantom)]),
        (("phantom", "wm", "rim"), ["rim", "--phase", f"{phantom}/phase.nii.gz",
                                    "--flair", f"{phantom}/flair.nii.gz", "--lesion-mask",
                                    f"{run_dir}/phantom_wm/wm_lesions.nii.gz",
                                    "--out", f"{run_dir}/phantom_rim", "--device", device]),
        (("phantom", "wm", "rim", "evaluate"), ["evaluate", "--task", "rim", "--pred",
                                                f"{run_dir}/phantom_rim", "--truth",
                                                str(phantom)]),
        (("phantom", "cortical"), ["cortical", "--mp2rage", f"{phantom}/cortical/mp2rage.nii.gz",
                                   "--t2star-gre", f"{phantom}/cortical/t2star.nii.gz",
                                   "--out", f"{run_dir}/phantom_cortical", "--device", device]),
        (("phantom", "cortical", "evaluate"), ["evaluate", "--task", "cortical", "--pred",
                                               f"{run_dir}/phantom_cortical",
                                               "--truth", f"{phantom}/cortical"]),
        (("wm",), ["wm", "--flair", f"{real}/flair.nii.gz", "--t1", f"{real}/t1.nii.gz",
                   "--t2", f"{real}/t2.nii.gz", "--out", f"{run_dir}/real_wm",
                   "--device", device]),
        (("wm", "evaluate"), ["evaluate", "--task", "wm", "--pred", f"{run_dir}/real_wm",
                              "--truth", f"{real}/wm_lesions_gt.nii.gz"]),
    ]


def available(name: str, model_tasks: set[str]) -> bool:
    """A step's need is met: the command is installed and, for a pipeline, a model too."""
    installed = importlib.util.find_spec(f"{__package__}.{name}") is not None
    return installed and (name not in PIPELINES or name in model_tasks)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..cli import main

    model_tasks = {bundle.task for bundle in list_bundles()}
    run_dir = args.out / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True)
    failures = 0
    for needs, argv in demo_steps(run_dir, args.device):
        if not all(available(name, model_tasks) for name in needs):
            print(f"\n# skipped (not installed yet): mslesionai {' '.join(argv)}")
            continue
        print(f"\n$ mslesionai {' '.join(argv)}", flush=True)
        failures += main(["--progress", "none", *argv]) != 0
    results = [str(p) for p in sorted(run_dir.iterdir()) if (p / "summary.json").is_file()]
    if results and available("report", model_tasks):
        argv = ["report", *results, "--out", f"{run_dir}/report.html"]
        print(f"\n$ mslesionai {' '.join(argv)}", flush=True)
        failures += main(["--progress", "none", *argv]) != 0
    print(f"\ndemo results in {run_dir}")
    return 1 if failures else 0
