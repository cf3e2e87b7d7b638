"""CLAIMS's cortical-lesion evaluation (La Rosa et al. 2022, section 3.1).

Rules, per case and per minimum lesion volume (1, 3, 6, 9, 15 µL by default):

- Lesions are the instances of the truth and predicted labelmaps. On both sides, lesions of
  ≤ 2 voxels (as CLAIMS's evaluation code drops them) and lesions under the minimum volume are
  removed first, each side on its own.
- A truth lesion is detected when it shares at least one voxel with a predicted lesion.
- A predicted lesion sharing no voxel with a truth lesion is a false positive, unless it
  overlaps the white-matter lesion mask: such components are left out of the prediction
  altogether (neither false positives nor counted lesions; leukocortical and juxtacortical
  lesions are hard to tell apart). They are also left out of the Dice and the counts.
- LTPR = detected / truth lesions; LFPR = false positives / counted predicted lesions, pooled
  over all lesions, and per case with the median over the cases where the rate is defined.
- Detection rate per truth type (leukocortical, intracortical, subpial).
- The class of a detected truth lesion is the class of the predicted lesion overlapping it
  most; accuracy is over detected lesions. Cohen's κ is over every truth lesion (its class
  against the predicted class, or "none" when missed) and every false positive ("none"
  against its class): the agreement on both detection and type.
- Dice and volume difference (medians) over the cases with at least one truth lesion; Lin's
  CCC between truth and predicted lesion counts per case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..labels import (
    CLAIMS_MIN_VOLUMES_UL,
    CORTICAL_TYPES,
    INTRACORTICAL,
    INTRACORTICAL_SUBPIAL,
    LEUKOCORTICAL,
    SUBPIAL,
)
from ..lesions import lesion_sizes, min_voxels_for_volume, remove_small_lesions
from .agreement import cohen_kappa, lins_ccc
from .overlap import dice, finite_statistic, overlap_table, ratio, volume_difference

MIN_VOLUMES_UL = CLAIMS_MIN_VOLUMES_UL
MIN_LESION_VOXELS = 3
NOT_FOUND = "none"
CLASS_OF_TYPE = {LEUKOCORTICAL: LEUKOCORTICAL, INTRACORTICAL: INTRACORTICAL_SUBPIAL,
                 SUBPIAL: INTRACORTICAL_SUBPIAL}


@dataclass
class CorticalCase:
    """One case's truth and prediction, on the same grid (arrays z, y, x)."""

    truth_ids: np.ndarray
    truth_types: Mapping[int, str]           # truth lesion id -> one of CORTICAL_TYPES
    pred_ids: np.ndarray
    pred_classes: Mapping[int, str] | None   # predicted id -> one of CORTICAL_CLASSES
    spacing_mm: Sequence[float]
    wm_mask: np.ndarray | None = None
    name: str = ""


@dataclass
class _CaseMatch:
    """What one case contributes at one minimum volume."""

    truth_types: list[str]
    truth_detected: list[bool]
    truth_pred_classes: list[str]
    false_positive_classes: list[str]
    pred_count: int
    dice: float
    volume_difference: float
    rates: dict[str, float]


def match_case(case: CorticalCase, min_volume_ul: float) -> _CaseMatch:
    """Apply the rules above to one case at one minimum lesion volume."""
    min_voxels = max(MIN_LESION_VOXELS, min_voxels_for_volume(min_volume_ul, case.spacing_mm))
    truth = remove_small_lesions(case.truth_ids, min_voxels)
    pred = remove_small_lesions(case.pred_ids, min_voxels)
    table = overlap_table(truth, pred)
    truth_present = np.flatnonzero(lesion_sizes(truth))
    counted = _counted_predictions(pred, table, case.wm_mask)
    false_positives = np.flatnonzero(counted & (table[1:].sum(axis=0) == 0))
    overlaps = table[truth_present]
    overlaps[:, 0] = 0                       # column 0 is "outside every predicted lesion"
    detected = overlaps.sum(axis=1) > 0
    classes = case.pred_classes or {}
    truth_mask, pred_mask = truth != 0, counted[pred]
    voxel_ul = float(np.prod(case.spacing_mm))
    return _CaseMatch(
        truth_types=[case.truth_types[int(i)] for i in truth_present],
        truth_detected=detected.tolist(),
        truth_pred_classes=[classes.get(int(j), NOT_FOUND) if hit else NOT_FOUND
                            for j, hit in zip(overlaps.argmax(axis=1), detected, strict=True)],
        false_positive_classes=[classes.get(int(j), NOT_FOUND) for j in false_positives],
        pred_count=int(np.count_nonzero(counted)),
        dice=dice(truth_mask, pred_mask) if len(truth_present) else float("nan"),
        volume_difference=volume_difference(np.count_nonzero(truth_mask) * voxel_ul,
                                            np.count_nonzero(pred_mask) * voxel_ul),
        rates={"ltpr": ratio(np.count_nonzero(detected), len(truth_present), float("nan")),
               "lfpr": ratio(len(false_positives), np.count_nonzero(counted), float("nan"))})


def _counted_predictions(pred: np.ndarray, table: np.ndarray,
                         wm_mask: np.ndarray | None) -> np.ndarray:
    """By predicted id: present, and touching a truth lesion or else no white-matter lesion."""
    hits_truth = table[1:].sum(axis=0) > 0
    in_wm = np.zeros(table.shape[1], dtype=bool)
    if wm_mask is not None:
        in_wm[np.unique(pred[wm_mask != 0])] = True
    counted = (lesion_sizes(pred) > 0) & (hits_truth | ~in_wm)
    counted[0] = False
    return counted


def evaluate_cortical(cases: Sequence[CorticalCase],
                      min_volumes_ul: Sequence[float] = MIN_VOLUMES_UL) -> list[dict[str, Any]]:
    """CLAIMS's metrics over all cases, one dict per minimum lesion volume."""
    return [_summarise([match_case(case, min_volume_ul) for case in cases], cases, min_volume_ul)
            for min_volume_ul in min_volumes_ul]


def _summarise(matches: list[_CaseMatch], cases: Sequence[CorticalCase],
               min_volume_ul: float) -> dict[str, Any]:
    types = [t for m in matches for t in m.truth_types]
    detected = [d for m in matches for d in m.truth_detected]
    false_positives = sum(len(m.false_positive_classes) for m in matches)
    pred_count = sum(m.pred_count for m in matches)
    with_lesions = [m for m in matches if m.truth_types]
    summary = {
        "min_volume_ul": min_volume_ul,
        "cases": len(matches), "truth_lesions": len(types), "pred_lesions": pred_count,
        "detected": sum(detected), "false_positives": false_positives,
        "ltpr": ratio(sum(detected), len(types), float("nan")),
        "lfpr": ratio(false_positives, pred_count, float("nan")),
        "median_case_ltpr": finite_statistic([m.rates["ltpr"] for m in matches]),
        "median_case_lfpr": finite_statistic([m.rates["lfpr"] for m in matches]),
        **{f"ltpr_{kind}": ratio(sum(d for t, d in zip(types, detected, strict=True)
                                     if t == kind), types.count(kind), float("nan"))
           for kind in CORTICAL_TYPES},
        "median_dice": finite_statistic([m.dice for m in with_lesions]),
        "median_volume_difference": finite_statistic([m.volume_difference for m in with_lesions]),
        "count_ccc": lins_ccc([len(m.truth_types) for m in matches],
                              [m.pred_count for m in matches]),
        "per_case": [{"name": case.name, "truth_lesions": len(m.truth_types),
                      "pred_lesions": m.pred_count, **m.rates, "dice": m.dice}
                     for case, m in zip(cases, matches, strict=True)],
    }
    if all(case.pred_classes is not None for case in cases):
        summary.update(_classification(matches))
    return summary


def _classification(matches: list[_CaseMatch]) -> dict[str, float]:
    truth = [CLASS_OF_TYPE[t] for m in matches for t in m.truth_types]
    pred = [c for m in matches for c in m.truth_pred_classes]
    found = [(t, p) for t, p in zip(truth, pred, strict=True) if p != NOT_FOUND]
    false_positives = [c for m in matches for c in m.false_positive_classes]
    return {"classification_accuracy": ratio(sum(t == p for t, p in found), len(found),
                                             float("nan")),
            "kappa": cohen_kappa(truth + [NOT_FOUND] * len(false_positives),
                                 pred + false_positives)}

