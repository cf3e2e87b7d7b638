"""RESULTS.md tables, shaped like the papers' own, each method beside the published figures.

The inputs are `mslesionai evaluate --json` reports (white matter, cortical), lesion-wise rim
metrics (`metrics.rim`), and `speed.summarise_runs` summaries. A published figure is printed in
a row of its own, marked "paper", with the data it was measured on: real scans, which the
phantom cohorts are not, so they set the scale rather than a like-for-like comparison.
Dice is a fraction here (DeepSCAN prints percentages).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

MISSING = "—"

WM_KEYS = ("dice", "f1", "sensitivity", "precision", "ltpr", "lfpr", "volume_difference")
WM_HEADER = ["method", "data", "cases", "Dice", "lesion F1", "lesion sensitivity",
             "lesion precision", "LTPR", "LFPR", "VD"]
DEEPSCAN_PAPER = {  # McKinley et al. 2021, Table 2 (Insel32, mean Dice / mean lesion F1)
    "DeepSCAN, lesions + structures": {"dice": 0.600, "f1": 0.57},
    "nnU-Net, lesions only": {"dice": 0.562, "f1": 0.48},
    "LST-LPA (FLAIR only)": {"dice": 0.319, "f1": 0.21},
    "rater A vs rater B": {"dice": 0.548, "f1": 0.42},
}

CORTICAL_KEYS = ("ltpr", "lfpr", "classification_accuracy", "median_case_ltpr",
                 "median_case_lfpr", "median_dice", "median_volume_difference", "kappa",
                 "count_ccc", "ltpr_leukocortical", "ltpr_intracortical", "ltpr_subpial")
CORTICAL_HEADER = ["method", "min volume (µL)", "truth lesions", "LTPR", "LFPR",
                   "class. accuracy", "patient LTPR", "patient LFPR", "patient DSC",
                   "patient VD", "κ", "count CCC", "LTPR leukocortical", "LTPR intracortical",
                   "LTPR subpial"]
CLAIMS_PAPER = {  # La Rosa et al. 2022: Table 1 and Table 2 (0.5 mm MP2RAGE×4), text, Fig. 9
    ("CLAIMS, MP2RAGE×4 (institution A)", "1"): {
        "ltpr": 0.74, "lfpr": 0.30, "classification_accuracy": 0.88, "median_case_ltpr": 0.73,
        "median_case_lfpr": 0.32, "median_dice": 0.49, "median_volume_difference": 0.80,
        "kappa": 0.49, "count_ccc": 0.91, "ltpr_leukocortical": 0.83,
        "ltpr_intracortical": 0.53, "ltpr_subpial": 0.69},
    ("CLAIMS, institution B", "3"): {"ltpr": 0.61, "lfpr": 0.33},
    ("CLAIMS_DA, institution B", "6"): {"ltpr": 0.71, "lfpr": 0.29},
}

RIM_KEYS = ("roc_auc", "pr_auc", "f1", "sensitivity", "specificity", "ppv", "npv",
            "patient_accuracy")
RIM_HEADER = ["method", "lesions", "rim+", "ROC AUC", "PR AUC", "F1", "sensitivity",
              "specificity", "PPV", "NPV", "patient accuracy (≥ 4)"]
RIM_PAPER = {  # RimNet: Table 3 and the patient-wise text; Deep-PRL: its Figure 3 table
    "RimNet (paper, cross-validation)": {
        "roc_auc": 0.943, "f1": 0.630, "sensitivity": 0.706, "specificity": 0.949,
        "ppv": 0.569, "npv": 0.971, "patient_accuracy": 0.895},
    "Deep-PRL (paper, test; NPV from its TN/FN)": {
        "roc_auc": 0.982, "f1": 0.860, "sensitivity": 0.874, "specificity": 0.986,
        "ppv": 0.851, "npv": 1068 / (1068 + 13)},
}

INTERVAL_HEADER = ["method", "figure", "value", "95 % interval"]
INTERVAL_NOTE = ("95 % intervals with the cases resampled (percentile bootstrap, 2000 draws of "
                 "as many cases): how far this cohort pins each figure down.\n\n")

SPEED_HEADER = ["pipeline", "case", "runs", "median per stage (s)", "whole case (s)",
                "network forward (s)", "end-to-end / forward", "peak memory (MiB)",
                "imports, before (s)"]


def fmt(value: Any) -> str:
    """A table cell: floats to 3 decimals, missing or NaN as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def wm_table(reports: Mapping[str, Mapping[str, Any]], data: str) -> str:
    """DeepSCAN's Table 2: mean Dice and lesion F1 per method (plus the MSSEG rates)."""
    rows = [[name, data, len(report["cases"]), *(report["mean"][k] for k in WM_KEYS)]
            for name, report in reports.items()]
    rows += [[f"{name} (paper)", "real, Insel32", 32, *(figures.get(k) for k in WM_KEYS)]
             for name, figures in DEEPSCAN_PAPER.items()]
    return markdown_table(WM_HEADER, rows)


def cortical_table(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """CLAIMS's Table 1 at each minimum lesion volume, per method, then the paper's rows."""
    rows = [[name, f"{entry['min_volume_ul']:g}", entry["truth_lesions"],
             *(entry.get(k) for k in CORTICAL_KEYS)]
            for name, report in reports.items() for entry in report["by_min_volume"]]
    rows += [[f"{name} (paper)", volume, MISSING, *(figures.get(k) for k in CORTICAL_KEYS)]
             for (name, volume), figures in CLAIMS_PAPER.items()]
    return markdown_table(CORTICAL_HEADER, rows)


def rim_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """RimNet's Table 3 / Deep-PRL's comparison: lesion-wise figures at the operating point."""
    rows = [[name, metrics["lesions"], metrics["rim_positive"],
             *(metrics.get(k) for k in RIM_KEYS)] for name, metrics in results.items()]
    rows += [[name, MISSING, MISSING, *(figures.get(k) for k in RIM_KEYS)]
             for name, figures in RIM_PAPER.items()]
    return markdown_table(RIM_HEADER, rows)


def interval_table(intervals: Mapping[str, Mapping[str, tuple[float, tuple[float, float]]]]
                   ) -> str:
    """Per method and figure: the value and its interval (`benchmark.intervals`)."""
    rows = [[method, label, value, f"{fmt(low)}–{fmt(high)}"]
            for method, figures in intervals.items()
            for label, (value, (low, high)) in figures.items()]
    return INTERVAL_NOTE + markdown_table(INTERVAL_HEADER, rows)


def speed_table(speeds: Mapping[str, Mapping[str, Any]]) -> str:
    """Per pipeline: median seconds per stage, whole case, forward pass, ratio, peak memory."""
    rows = [[name, summary["case"], summary["runs"],
             ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in summary["stages_s"].items()),
             summary["whole_s"], summary["forward_s"], summary["end_to_end_over_forward"],
             f"{summary['peak_memory_mib']:.0f}", summary["imports_s"]]
            for name, summary in speeds.items()]
    return markdown_table(SPEED_HEADER, rows)
