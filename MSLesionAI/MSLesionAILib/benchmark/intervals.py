"""How far each held-out cohort pins the benchmark's headline figures down: 95 % intervals
with the cases resampled (`metrics.bootstrap`), the same statistic as the table's figure."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..metrics.bootstrap import case_bootstrap
from ..metrics.overlap import finite_statistic, ratio
from ..metrics.rim import rim_metrics

Interval = tuple[float, tuple[float, float]]   # the figure, (low, high)


def _with_interval(cases: Sequence[Any], statistic: Callable[[list[Any]], float]) -> Interval:
    return statistic(list(cases)), case_bootstrap(cases, statistic)


def wm_intervals(report: Mapping[str, Any]) -> dict[str, Interval]:
    """Mean Dice and mean lesion F1 over cases (`mslesionai evaluate --task wm`'s report)."""
    return {label: _with_interval(report["cases"], lambda cases, key=key: finite_statistic(
                (case[key] for case in cases), np.mean))
            for label, key in (("Dice", "dice"), ("lesion F1", "f1"))}


def cortical_intervals(entry: Mapping[str, Any]) -> dict[str, Interval]:
    """Pooled LTPR and LFPR at one minimum volume (an entry of the report's
    ``by_min_volume``); each case's counts are recovered from its rates."""
    counts = [(round(_rate(c["ltpr"]) * c["truth_lesions"]), c["truth_lesions"],
               round(_rate(c["lfpr"]) * c["pred_lesions"]), c["pred_lesions"])
              for c in entry["per_case"]]

    def pooled(numerator: int, denominator: int) -> Callable[[list[Any]], float]:
        return lambda cases: ratio(sum(c[numerator] for c in cases),
                                   sum(c[denominator] for c in cases), float("nan"))

    return {"LTPR": _with_interval(counts, pooled(0, 1)),
            "LFPR": _with_interval(counts, pooled(2, 3))}


def rim_intervals(scores_by_case: Sequence[np.ndarray], labels_by_case: Sequence[np.ndarray],
                  threshold: float) -> dict[str, Interval]:
    """Lesion-wise ROC AUC and F1 at ``threshold``, the lesions of the drawn cases pooled."""
    cases = list(zip(scores_by_case, labels_by_case, strict=True))

    def pooled(key: str) -> Callable[[list[Any]], float]:
        def statistic(drawn: list[Any]) -> float:
            scores = np.concatenate([s for s, _ in drawn])
            labels = np.concatenate([lab for _, lab in drawn])
            return rim_metrics(labels, scores, scores >= threshold)[key]
        return statistic

    return {"ROC AUC": _with_interval(cases, pooled("roc_auc")),
            "F1": _with_interval(cases, pooled("f1"))}


def _rate(value: float | None) -> float:
    """A case's rate, 0 where it is undefined (no lesions to count)."""
    return 0.0 if value is None or np.isnan(value) else float(value)
