"""Agreement statistics between two raters (or a rater and a method): Cohen's κ, Lin's CCC."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def cohen_kappa(labels_a: Sequence, labels_b: Sequence) -> float:
    """Cohen's κ of two labellings of the same items: (p_o − p_e) / (1 − p_e).

    NaN with no items; 1.0 when the chance agreement is already perfect and observed too.
    """
    labels_a, labels_b = list(labels_a), list(labels_b)
    if not labels_a:
        return float("nan")
    categories = sorted(set(labels_a) | set(labels_b), key=str)
    a = np.array([categories.index(label) for label in labels_a])
    b = np.array([categories.index(label) for label in labels_b])
    observed = float(np.mean(a == b))
    counts_a = np.bincount(a, minlength=len(categories)) / len(a)
    counts_b = np.bincount(b, minlength=len(categories)) / len(b)
    expected = float(counts_a @ counts_b)
    if expected == 1.0:
        return 1.0 if observed == 1.0 else float("nan")
    return (observed - expected) / (1.0 - expected)


def lins_ccc(x: Sequence[float], y: Sequence[float]) -> float:
    """Lin's concordance correlation coefficient, 2 s_xy / (s_x² + s_y² + (x̄ − ȳ)²), with
    population (1/n) moments as in Lin (1989); NaN for fewer than two pairs or no spread."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2:
        return float("nan")
    covariance = np.mean((x - x.mean()) * (y - y.mean()))
    denominator = x.var() + y.var() + (x.mean() - y.mean()) ** 2
    return float(2 * covariance / denominator) if denominator else float("nan")
