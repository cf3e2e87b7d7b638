"""MSSEG-2016 lesion-wise detection (Commowick et al. 2018; DeepSCAN's supplementary definitions).

A lesion is a connected component (default 18-connectivity, as DeepSCAN states; Anima's own
evaluator uses 6) of at least `MIN_LESION_VOLUME_UL` ("3 mm³ or greater", DeepSCAN's
definitions; Anima's code drops ≤ 3 mm³, which differs only for components of exactly 3 mm³);
smaller ones are removed from both masks before anything else (their voxels then count as
background). The white-matter pipeline keeps lesions of the same size, so every lesion it
reports by default is scored.

A lesion X of one mask is *detected* by the other mask's lesions when
1. the other lesions cover more than α of X's voxels, and
2. walking the other lesions that overlap X from the largest overlap down, until they account
   for γ of the overlap, none of them has more than β of its voxels outside every lesion of
   X's mask (an oversized prediction spilling into healthy tissue fails here).

Sensitivity is the fraction of truth lesions detected by the prediction; precision the fraction
of predicted lesions detected by the truth (the same rule, roles swapped); F1 their harmonic mean.

Empty sets, fixed here: with no truth lesions the sensitivity is 1 (nothing was missed); with no
predicted lesions the precision is 1 (nothing false was claimed); F1 is 0 when both rates are 0.
So both empty gives 1/1/1, and one side empty gives F1 = 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..lesions import label_components, min_voxels_for_volume
from .overlap import dice, lesion_rates, overlap_table, ratio, volume_difference

ALPHA = 0.10
BETA = 0.70
GAMMA = 0.65
MIN_LESION_VOLUME_UL = 3.0
CONNECTIVITY = 18


def msseg_lesions(mask: np.ndarray, spacing_mm: Sequence[float],
                  connectivity: int = CONNECTIVITY,
                  min_volume_ul: float = MIN_LESION_VOLUME_UL) -> np.ndarray:
    """The mask's lesions for MSSEG: components of at least ``min_volume_ul``."""
    return label_components(mask, connectivity, min_voxels=min_voxels_for_volume(
        min_volume_ul, spacing_mm))


def detected_lesions(table: np.ndarray, alpha: float = ALPHA, beta: float = BETA,
                     gamma: float = GAMMA) -> np.ndarray:
    """For each reference lesion 1..n of an `overlap_table`: detected by the other lesions."""
    other_sizes = table.sum(axis=0)
    outside_fraction = table[0] / np.maximum(other_sizes, 1)
    detected = np.zeros(table.shape[0] - 1, dtype=bool)
    for row, overlaps in enumerate(table[1:, 1:]):
        covered = overlaps.sum()
        if covered / table[row + 1].sum() <= alpha:
            continue
        order = np.argsort(-overlaps, kind="stable")
        shares = np.cumsum(overlaps[order]) / covered
        contributors = order[:min(np.searchsorted(shares, gamma - 1e-12) + 1, len(order))]
        detected[row] = np.all(outside_fraction[contributors + 1] <= beta)
    return detected


def f1(sensitivity: float, precision: float) -> float:
    """Harmonic mean of the two rates; 0 when both are 0."""
    return ratio(2 * sensitivity * precision, sensitivity + precision, if_empty=0.0)


def msseg_detection(truth_mask: np.ndarray, pred_mask: np.ndarray, spacing_mm: Sequence[float],
                    connectivity: int = CONNECTIVITY, alpha: float = ALPHA, beta: float = BETA,
                    gamma: float = GAMMA,
                    min_volume_ul: float = MIN_LESION_VOLUME_UL) -> dict[str, Any]:
    """MSSEG-2016 lesion counts, sensitivity, precision and F1 (``spacing_mm`` in z, y, x)."""
    truth_ids = msseg_lesions(truth_mask, spacing_mm, connectivity, min_volume_ul)
    pred_ids = msseg_lesions(pred_mask, spacing_mm, connectivity, min_volume_ul)
    table = overlap_table(truth_ids, pred_ids)
    truth_detected = int(np.count_nonzero(detected_lesions(table, alpha, beta, gamma)))
    pred_detected = int(np.count_nonzero(detected_lesions(table.T, alpha, beta, gamma)))
    n_truth, n_pred = table.shape[0] - 1, table.shape[1] - 1
    sensitivity = ratio(truth_detected, n_truth, if_empty=1.0)
    precision = ratio(pred_detected, n_pred, if_empty=1.0)
    return {"truth_lesions": n_truth, "pred_lesions": n_pred,
            "truth_detected": truth_detected, "pred_detected": pred_detected,
            "sensitivity": sensitivity, "precision": precision,
            "f1": f1(sensitivity, precision), **lesion_rates(table)}


def wm_metrics(truth_mask: np.ndarray, pred_mask: np.ndarray, spacing_mm: Sequence[float],
               connectivity: int = CONNECTIVITY) -> dict[str, Any]:
    """The white-matter task's report: Dice and volumes of the whole masks, plus
    `msseg_detection` (whose ``ltpr``/``lfpr`` are any-overlap rates on the MSSEG lesions)."""
    voxel_ul = float(np.prod(spacing_mm))
    truth_ul = float(np.count_nonzero(truth_mask) * voxel_ul)
    pred_ul = float(np.count_nonzero(pred_mask) * voxel_ul)
    return {"dice": dice(truth_mask, pred_mask), "truth_volume_ul": truth_ul,
            "pred_volume_ul": pred_ul, "volume_difference": volume_difference(truth_ul, pred_ul),
            **msseg_detection(truth_mask, pred_mask, spacing_mm, connectivity)}
