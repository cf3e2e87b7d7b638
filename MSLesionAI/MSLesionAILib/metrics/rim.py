"""Paramagnetic rim lesion classification metrics (RimNet, Deep-PRL).

Lesion-wise: ROC AUC, PR AUC (average precision: the step-wise area, no interpolation),
sensitivity, specificity, PPV, NPV and F1 at an operating point. The operating point is a
threshold chosen on *validation* scores at a target specificity (95 %, as RimNet): a lesion is
rim+ when its score is ≥ the threshold. Patient-wise: accuracy of the "≥ 4 rim+ lesions" rule.

Predicted lesions (candidates) get the truth of the truth lesion they overlap most; a candidate
overlapping no truth lesion is rim−. Truth rim+ lesions that no candidate overlaps are counted
apart (``missed_rim_positive``): the classifier never saw them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..labels import CHRONIC_ACTIVE_MIN_PRL
from .overlap import overlap_table, ratio

TARGET_SPECIFICITY = 0.95


def candidate_truth(pred_ids: np.ndarray, truth_ids: np.ndarray,
                    truth_rim: Mapping[int, int]) -> tuple[dict[int, int], list[int]]:
    """Rim truth (0/1) of each predicted lesion id, and the truth rim+ ids no candidate touches."""
    table = overlap_table(pred_ids, truth_ids)
    table[:, 0] = 0
    labels = {int(p): int(truth_rim.get(int(table[p].argmax()), 0))
              for p in np.unique(pred_ids[pred_ids != 0])}
    touched = table[1:].sum(axis=0) > 0
    missed = [t for t, rim in truth_rim.items()
              if rim and (t >= len(touched) or not touched[t])]
    return labels, sorted(missed)


def threshold_at_specificity(labels: Sequence[int], scores: Sequence[float],
                             target_specificity: float = TARGET_SPECIFICITY) -> float:
    """The lowest score threshold (rim+ when score ≥ it) whose specificity reaches the target.

    Candidates are the observed scores and one just above the largest, so the answer is
    always reachable; choose it on validation data, then apply it unchanged to test data.
    """
    labels, scores = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=float)
    negatives = np.sort(scores[~labels])
    if len(negatives) == 0:
        return float(scores.min(initial=0.0))
    candidates = np.append(np.unique(scores), np.nextafter(scores.max(), np.inf))
    specificity = np.searchsorted(negatives, candidates, side="left") / len(negatives)
    return float(candidates[np.argmax(specificity >= target_specificity - 1e-12)])


def operating_point(labels: Sequence[int], predicted: Sequence[int]) -> dict[str, float]:
    """Counts and rates of binary calls; a rate with an empty denominator is NaN."""
    labels, predicted = np.asarray(labels, dtype=bool), np.asarray(predicted, dtype=bool)
    tp = int(np.count_nonzero(labels & predicted))
    fp = int(np.count_nonzero(~labels & predicted))
    tn = int(np.count_nonzero(~labels & ~predicted))
    fn = int(np.count_nonzero(labels & ~predicted))
    nan = float("nan")
    sensitivity, ppv = ratio(tp, tp + fn, nan), ratio(tp, tp + fp, nan)
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn, "sensitivity": sensitivity,
            "specificity": ratio(tn, tn + fp, nan), "ppv": ppv, "npv": ratio(tn, tn + fn, nan),
            "f1": ratio(2 * tp, 2 * tp + fp + fn, nan),
            "accuracy": ratio(tp + tn, len(labels), nan)}


def ranking_curves(labels: Sequence[int], scores: Sequence[float]) -> dict[str, np.ndarray]:
    """ROC and precision-recall points, one per distinct score taken as the threshold (from the
    highest down; tied scores move together), the ROC curve starting at (0, 0)."""
    labels, scores = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=float)
    thresholds, first = np.unique(-scores, return_inverse=True)
    true_positives = np.cumsum(np.bincount(first, weights=labels, minlength=len(thresholds)))
    called = np.cumsum(np.bincount(first, minlength=len(thresholds)))
    n_positive, n_negative = labels.sum(), (~labels).sum()
    return {"threshold": -thresholds,
            "tpr": np.concatenate([[0.0], true_positives / max(n_positive, 1)]),
            "fpr": np.concatenate([[0.0], (called - true_positives) / max(n_negative, 1)]),
            "precision": true_positives / called}


def ranking_metrics(labels: Sequence[int], scores: Sequence[float]) -> dict[str, float]:
    """ROC AUC (trapezoids: a tied pair counts half) and PR AUC as average precision
    (Σ Δrecall · precision, no interpolation); NaN unless both classes are present."""
    if len(np.unique(np.asarray(labels, dtype=bool))) < 2:
        return {"roc_auc": float("nan"), "pr_auc": float("nan")}
    curves = ranking_curves(labels, scores)
    tpr, fpr = curves["tpr"], curves["fpr"]
    return {"roc_auc": float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)),
            "pr_auc": float(np.sum(np.diff(tpr) * curves["precision"]))}


def patient_accuracy(truth_counts: Sequence[int], pred_counts: Sequence[int],
                     min_count: int = CHRONIC_ACTIVE_MIN_PRL) -> float:
    """Fraction of patients whose "≥ min_count rim+ lesions" call matches the truth's."""
    truth_flag = np.asarray(truth_counts) >= min_count
    pred_flag = np.asarray(pred_counts) >= min_count
    return ratio(np.count_nonzero(truth_flag == pred_flag), len(truth_flag), float("nan"))


def rim_metrics(labels: Sequence[int], scores: Sequence[float],
                predicted: Sequence[int]) -> dict[str, Any]:
    """Ranking metrics on the scores plus the operating point of the given rim+ calls."""
    return {"lesions": len(labels), "rim_positive": int(np.sum(labels)),
            **ranking_metrics(labels, scores), **operating_point(labels, predicted)}


def plot_curves(labels: Sequence[int], scores: Sequence[float], path: str | Path,
                threshold: float | None = None, title: str = "rim lesions") -> Path:
    """ROC and precision-recall curves side by side as a PNG (Agg; no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # imported only to plot
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    roc_axes, pr_axes = figure.subplots(1, 2)
    curves, areas = ranking_curves(labels, scores), ranking_metrics(labels, scores)
    roc_axes.plot(curves["fpr"], curves["tpr"], label=f"AUC {areas['roc_auc']:.3f}")
    roc_axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    pr_axes.step(curves["tpr"][1:], curves["precision"], where="pre",
                 label=f"AP {areas['pr_auc']:.3f}")
    if threshold is not None:
        point = operating_point(labels, np.asarray(scores) >= threshold)
        roc_axes.plot(1 - point["specificity"], point["sensitivity"], "o", color="red",
                      label=f"threshold {threshold:.3g}")
        pr_axes.plot(point["sensitivity"], point["ppv"], "o", color="red")
    for axes, curve, x_label, y_label in (
            (roc_axes, "ROC", "1 − specificity", "sensitivity"),
            (pr_axes, "precision-recall", "recall (sensitivity)", "precision (PPV)")):
        axes.set(xlabel=x_label, ylabel=y_label, xlim=(0, 1), ylim=(0, 1.02),
                 title=f"{title}: {curve}")
        axes.legend(loc="lower right" if axes is roc_axes else "lower left")
    figure.tight_layout()
    figure.savefig(path)
    return Path(path)

