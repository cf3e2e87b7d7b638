"""Percentile-bootstrap confidence intervals, with the case (patient) as the unit resampled.

Lesions of one case share its scanner, anatomy and noise: resampling lesions would treat them
as independent and give intervals that are too narrow. A held-out cohort is a sample of cases,
and what a figure from ten cases leaves open is how ten other cases would have scored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

Case = TypeVar("Case")
RESAMPLES = 2000
LEVEL = 0.95


def case_bootstrap(cases: Sequence[Case], statistic: Callable[[list[Case]], float],
                   resamples: int = RESAMPLES, level: float = LEVEL,
                   seed: int = 0) -> tuple[float, float]:
    """The central ``level`` interval of ``statistic`` over ``resamples`` draws of as many
    cases as given, with replacement. Draws where the statistic is undefined (NaN, e.g. a ROC
    AUC of cases without a rim+ lesion) are left out; (NaN, NaN) if every draw is."""
    nan = float("nan")
    if not cases:
        return nan, nan
    draws = np.random.default_rng(seed).integers(len(cases), size=(resamples, len(cases)))
    values = np.array([statistic([cases[i] for i in draw]) for draw in draws], dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return nan, nan
    tail = 50.0 * (1.0 - level)
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)
