"""How much of each truth lesion the shipped WM model labels, by lesion contrast and size.

    .venv/bin/python docs/wm_lesion_coverage.py [--work benchmark/work]

Reads the benchmark's held-out WM cohort and the shipped model's predictions cached beside it
(`mslesionai benchmark` writes both under ``benchmark/work``). A lesion's FLAIR contrast is its
severity times the case's (lesion / white matter − 1), both from ``case.json``: how much
brighter than white matter the lesion's core is. Used to ask, on phantom cases only, whether
the model misses faint lesions (docs/wm.md, "What is missing").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from MSLesionAILib.benchmark.sections import work_key
from MSLesionAILib.bundles import find_bundle
from MSLesionAILib.metrics.overlap import overlap_table

CONTRAST_BINS = ((0.0, 0.3), (0.3, 0.45), (0.45, 0.6), (0.6, 1.0))
VOLUME_BINS_UL = ((0.0, 10.0), (10.0, 30.0), (30.0, 100.0), (100.0, np.inf))


def lesion_rows(case: Path, prediction: Path) -> list[tuple[float, float, float]]:
    """(FLAIR contrast, volume_ul, share of voxels predicted) of each truth WM lesion."""
    info = json.loads((case / "case.json").read_text())
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(case / "truth" / "wm_lesions.nii.gz")))
    predicted = sitk.GetArrayFromImage(sitk.ReadImage(str(prediction / "wm_lesions.nii.gz")))
    flair = info["tissue_values"]["flair"]
    case_contrast = flair["wm_lesion"] / flair["wm"] - 1.0
    table = overlap_table(truth, predicted)  # row i: truth lesion i's voxels by predicted id
    voxels, labelled = table.sum(axis=1), table[:, 1:].sum(axis=1)
    return [(lesion["severity"] * case_contrast, lesion["volume_ul"],
             labelled[lesion["lesion_id"]] / voxels[lesion["lesion_id"]])
            for lesion in info["lesions"]
            if lesion["family"] == "wm" and lesion["lesion_id"] < len(voxels)
            and voxels[lesion["lesion_id"]] > 0]


def print_bins(title: str, values: np.ndarray, shares: np.ndarray, bins: tuple) -> None:
    print(f"\n| {title} | lesions | mean share of voxels labelled | detected (any voxel) |")
    print("| --- | --- | --- | --- |")
    for low, high in bins:
        inside = (values >= low) & (values < high)
        if inside.any():
            print(f"| {low:g}–{high:g} | {inside.sum()} | {shares[inside].mean():.2f} | "
                  f"{(shares[inside] > 0).mean():.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("benchmark/work"))
    args = parser.parse_args()
    bundle = find_bundle(None, "wm")  # the default (shipped) white-matter model
    predictions = args.work / "wm" / work_key(bundle)
    rows = [row for case in sorted((args.work / "cohorts" / "wm").glob("case_*"))
            for row in lesion_rows(case, predictions / case.name)]
    contrast, volume_ul, share = (np.array(column) for column in zip(*rows, strict=True))
    print(f"{bundle.id}: {len(rows)} truth lesions of {predictions}")
    print_bins("FLAIR contrast", contrast, share, CONTRAST_BINS)
    print_bins("volume (µL)", volume_ul, share, VOLUME_BINS_UL)


if __name__ == "__main__":
    main()
