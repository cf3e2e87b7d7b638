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

# Never used in training; its rim case has 9 rim+ lesions of 43, its cortical case all three
# cortical lesion types (90210's rim case had none, its cortical case no leukocortical one).
DEMO_SEED = 90212
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
    wm, rim, cortical = (run_dir / f"phantom_{kind}" for kind in ("wm", "rim", "cortical"))
    real = REAL_CASE

    def phantom(kind: str, case: Path) -> tuple[tuple[str, ...], list[str]]:
        return ("phantom",), ["phantom", str(case), "--seed", str(DEMO_SEED), "--kind", kind]

    def evaluate(task: str, result: str, truth: Path) -> tuple[tuple[str, ...], list[str]]:
        return (task, "evaluate"), ["evaluate", "--task", task, "--pred", f"{run_dir}/{result}",
                                    "--truth", str(truth)]

    return [
        phantom("wm", wm),
        (("wm",), ["wm", "--flair", f"{wm}/flair.nii.gz", "--t1", f"{wm}/t1.nii.gz",
                   "--t2", f"{wm}/t2.nii.gz", "--out", f"{run_dir}/result_phantom_wm",
                   "--device", device]),
        evaluate("wm", "result_phantom_wm", wm),
        (("wm",), ["wm", "--flair", f"{real}/flair.nii.gz", "--t1", f"{real}/t1.nii.gz",
                   "--t2", f"{real}/t2.nii.gz", "--out", f"{run_dir}/result_real_wm",
                   "--device", device]),
        evaluate("wm", "result_real_wm", real / "wm_lesions_gt.nii.gz"),
        phantom("rim", rim),
        (("rim", "wm"), ["rim", "--phase", f"{rim}/phase.nii.gz", "--flair", f"{rim}/flair.nii.gz",
                         "--t1", f"{rim}/t1.nii.gz", "--out", f"{run_dir}/result_phantom_rim",
                         "--device", device]),
        evaluate("rim", "result_phantom_rim", rim),
        phantom("cortical", cortical),
        (("cortical",), ["cortical", "--mp2rage", f"{cortical}/mp2rage.nii.gz",
                         "--t2star-gre", f"{cortical}/t2star.nii.gz",
                         "--t2star-epi", f"{cortical}/t2star_epi.nii.gz",
                         # The phantom's white-matter lesions stand in for a `wm` result: the
                         # cortical case has no FLAIR to segment them from.
                         "--wm-lesions", f"{cortical}/truth/wm_lesions.nii.gz",
                         "--out", f"{run_dir}/result_phantom_cortical", "--device", device]),
        evaluate("cortical", "result_phantom_cortical", cortical),
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
    results = [p for p in sorted(run_dir.iterdir()) if (p / "summary.json").is_file()]
    for result in results if available("report", model_tasks) else []:
        # One report per result: each demo case is a different (phantom or real) patient.
        argv = ["report", str(result), "--out", f"{run_dir}/report_{result.name}.html"]
        print(f"\n$ mslesionai {' '.join(argv)}", flush=True)
        failures += main(["--progress", "none", *argv]) != 0
    print(f"\ndemo results in {run_dir}")
    return 1 if failures else 0
