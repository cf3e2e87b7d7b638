"""`mslesionai finetune cortical`: adapt a shipped model to a new site with a few annotated
cases (CLAIMS's domain adaptation), writing a new bundle that ``--model`` can select."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..bundles import find_bundle
from ..progress import Progress
from ..training import cortical as trainer


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("finetune", help="fine-tune a model on annotated cases")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    cortical = tasks.add_parser("cortical", help="CLAIMS cortical lesion model")
    cortical.add_argument("--cases", nargs="+", required=True, type=Path,
                          help="annotated case folders, or folders of them (mp2rage.nii.gz, "
                               "truth/cortical_lesions.nii.gz, truth/lesions.csv)")
    cortical.add_argument("--from", dest="parent", default=None,
                          help="bundle (id, installed folder name or folder) to start from "
                               "(default: the shipped one)")
    trainer.add_training_options(cortical, steps=300,
                                 learning_rate=trainer.FINETUNE_LEARNING_RATE)
    cortical.add_argument("--id", default=None,
                          help="id of the new bundle (default: the parent's id + -finetuned)")
    cortical.set_defaults(func=run_cortical)


def run_cortical(args: argparse.Namespace, progress: Progress) -> int:
    parent = find_bundle(args.parent, "cortical", option="--from")
    folders, validation, held_out = trainer.found_case_folders(
        {"--cases": args.cases, "--validation": args.validation, "--eval": args.eval})
    # Each stage takes minutes on a CPU (a model run per case, or 300 steps): an equal share
    # of the bar each.
    stage = progress.stages([name for name, present in (
        ("before", held_out), ("training", True), ("threshold", validation),
        ("after", held_out)) if present])
    if held_out:
        trainer.record_metrics(parent, "held_out_new_site, before fine-tuning (not stored)",
                               trainer.evaluate_bundle(parent, held_out, stage["before"],
                                                       args.device),
                               store=False)
    bundle = trainer.finetune(parent, folders, args, stage["training"])
    if validation:
        bundle = trainer.calibrate(bundle, validation, args.device, stage["threshold"])
    else:
        threshold = bundle.metadata["postprocessing"]["threshold"]
        print(f"operating point: the parent's, score ≥ {threshold}; a threshold "
              "chosen on another site can over- or under-call here: give --validation with a "
              "few annotated cases of the new site to choose one for it")
    print(f"fine-tuned {parent.id} v{parent.metadata['version']} on {len(folders)} cases: "
          f"{bundle.id} v{bundle.metadata['version']} written to {args.out}")
    if held_out:
        trainer.record_metrics(bundle, "held_out_new_site",
                               trainer.evaluate_bundle(bundle, held_out, stage["after"],
                                                       args.device))
    return 0
