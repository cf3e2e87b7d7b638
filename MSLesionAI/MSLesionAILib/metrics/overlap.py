"""Voxel and lesion overlap: Dice, volume difference, the lesion overlap table, lesion rates."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np


def ratio(numerator: float, denominator: float, if_empty: float) -> float:
    """numerator / denominator, or ``if_empty`` when there is nothing to count (denominator 0)."""
    return float(numerator / denominator) if denominator else float(if_empty)


def finite_statistic(values: Iterable[float],
                     statistic: Callable[[np.ndarray], float] = np.median) -> float:
    """``statistic`` (default the median) of the values that are not NaN; NaN if none are."""
    finite = np.array([v for v in values if not np.isnan(v)], dtype=float)
    return float(statistic(finite)) if len(finite) else float("nan")


def dice(truth_mask: np.ndarray, pred_mask: np.ndarray) -> float:
    """2|T ∩ P| / (|T| + |P|) of the non-zero voxels, as a fraction; 1.0 when both are empty."""
    truth, pred = truth_mask != 0, pred_mask != 0
    both = np.count_nonzero(truth & pred)
    return ratio(2 * both, np.count_nonzero(truth) + np.count_nonzero(pred), if_empty=1.0)


def volume_difference(truth_volume_ul: float, pred_volume_ul: float) -> float:
    """|V_pred − V_truth| / V_truth (CLAIMS's VD); NaN when the truth is empty."""
    return ratio(abs(pred_volume_ul - truth_volume_ul), truth_volume_ul, if_empty=float("nan"))


def overlap_table(reference_ids: np.ndarray, other_ids: np.ndarray) -> np.ndarray:
    """Voxel counts ``table[i, j]`` shared by reference lesion i and other lesion j.

    Row 0 counts voxels outside every reference lesion, column 0 voxels outside every other
    lesion; ``table[0, 0]`` is left 0. Row sums are reference sizes, column sums other sizes.
    """
    n_reference = int(reference_ids.max(initial=0))
    n_other = int(other_ids.max(initial=0))
    either = (reference_ids != 0) | (other_ids != 0)
    pairs = reference_ids[either].astype(np.int64) * (n_other + 1) + other_ids[either]
    table = np.bincount(pairs, minlength=(n_reference + 1) * (n_other + 1))
    return table.reshape(n_reference + 1, n_other + 1)


def lesions_hit(table: np.ndarray, min_overlap_voxels: int = 1) -> np.ndarray:
    """For each reference lesion 1..n: overlapped by other lesions in at least that many voxels."""
    return table[1:, 1:].sum(axis=1) >= min_overlap_voxels


def lesion_rates(table: np.ndarray) -> dict[str, float]:
    """Lesion-wise TPR (truth lesions touched by the prediction) and FPR (predicted lesions
    touching no truth lesion), for a table with truth as reference; NaN when nothing to count."""
    n_truth, n_pred = table.shape[0] - 1, table.shape[1] - 1
    return {"ltpr": ratio(np.count_nonzero(lesions_hit(table)), n_truth, float("nan")),
            "lfpr": ratio(np.count_nonzero(~lesions_hit(table.T)), n_pred, float("nan"))}
