"""`mslesionai train wm-threshold`: choose a white-matter bundle's lesion-probability threshold
on validation phantom cases, as the rim bundles choose their operating point.

Whether 0.5 is a bundle's best lesion threshold is measured, not assumed. The whole pipeline runs
once per case (no brain mask given, as the default path); every candidate threshold is then
applied to the same probability map, with the pipeline's own components and minimum size. The
threshold with the best mean of Dice and MSSEG-2016 lesion F1 (the two figures docs/wm.md
reports) is written into the bundle's metadata with the whole table; the weights are untouched.
Use cases that are neither trained on nor reported as test.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..bundles import load_bundle, update_metadata
from ..devices import DEVICE_CHOICES, choose_device
from ..errors import BundleError
from ..metrics.msseg import wm_metrics
from ..pipelines import wm as wm_pipeline
from ..progress import Progress
from .wm import case_folders, model_card, read_case

CANDIDATES = tuple(round(float(t), 2) for t in np.arange(0.1, 0.91, 0.05))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "wm-threshold", help="choose a white-matter bundle's lesion threshold on validation "
                             "cases", description=__doc__.split("\n\n")[1])
    parser.add_argument("--bundle", required=True, type=Path)
    parser.add_argument("--validation", nargs="+", required=True, type=Path,
                        help="validation phantom dataset folders (never trained on, not test)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.set_defaults(func=run)


def case_scores(maps: wm_pipeline.LesionMaps, truth: np.ndarray,
                spacing_zyx_mm: tuple[float, ...]) -> dict[float, dict[str, float]]:
    """Dice and lesion F1 of one case at every candidate threshold."""
    scores = {}
    for threshold in CANDIDATES:
        lesions = wm_pipeline.lesion_components(
            maps, threshold, wm_pipeline.CONNECTIVITY, wm_pipeline.MIN_VOLUME_UL, spacing_zyx_mm)
        figures = wm_metrics(truth, lesions > 0, spacing_zyx_mm)
        scores[threshold] = {"dice": figures["dice"], "f1": figures["f1"]}
    return scores


def best_threshold(per_case: list[dict[float, dict[str, float]]]) -> tuple[float, list[dict]]:
    """The candidate with the best mean of (Dice + F1) / 2 over cases (ties: nearest 0.5),
    and the table of means per candidate."""
    table = [{"threshold": t,
              "dice": round(float(np.mean([case[t]["dice"] for case in per_case])), 4),
              "f1": round(float(np.mean([case[t]["f1"] for case in per_case])), 4)}
             for t in CANDIDATES]
    best = max(table, key=lambda row: (round(row["dice"] + row["f1"], 4),
                                       -abs(row["threshold"] - 0.5)))
    return best["threshold"], table


def run(args: argparse.Namespace, progress: Progress) -> int:
    bundle = load_bundle(args.bundle)
    if "metrics" in bundle.metadata:
        raise BundleError(f"{args.bundle} already has measured figures (at its present "
                          "threshold): choose the threshold before `train wm-measure`")
    device = choose_device(args.device)
    folders = case_folders(args.validation)
    per_case = []
    for number, folder in enumerate(folders):
        images, truth = read_case(folder, bundle)
        maps = wm_pipeline.predict_maps(images["flair"], images.get("t1"), images.get("t2"),
                                        bundle=bundle, device=device)
        per_case.append(case_scores(maps, truth, images["flair"].GetSpacing()[::-1]))
        progress.update((number + 1) / len(folders), f"scored {folder.name}")
    threshold, table = best_threshold(per_case)
    choice: dict[str, Any] = {"criterion": "mean of Dice and MSSEG-2016 lesion F1",
                              "cases": [str(f) for f in folders], "table": table}
    thresholds = {**bundle.metadata["thresholds"], "lesion_probability": threshold}
    metadata = update_metadata(bundle, thresholds=thresholds,
                               threshold_choice=choice).metadata
    (bundle.path / "MODEL_CARD.md").write_text(model_card(metadata), encoding="utf-8")
    chosen = table[CANDIDATES.index(threshold)]
    print(f"lesion_probability threshold {threshold} (Dice {chosen['dice']}, "
          f"F1 {chosen['f1']} on {len(folders)} cases)")
    return 0
