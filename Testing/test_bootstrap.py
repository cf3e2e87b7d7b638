"""Case-resampled confidence intervals (metrics.bootstrap) and the benchmark's use of them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from MSLesionAILib.benchmark.intervals import cortical_intervals, rim_intervals, wm_intervals
from MSLesionAILib.benchmark.tables import interval_table
from MSLesionAILib.metrics.bootstrap import case_bootstrap


def test_identical_cases_leave_nothing_to_resample() -> None:
    assert case_bootstrap([0.7] * 5, np.mean) == pytest.approx((0.7, 0.7))


def test_the_interval_holds_the_cohorts_own_figure_and_narrows_with_more_cases() -> None:
    rng = np.random.default_rng(1)
    few, many = list(rng.uniform(0, 1, 8)), list(rng.uniform(0, 1, 200))
    low_few, high_few = case_bootstrap(few, np.mean)
    low_many, high_many = case_bootstrap(many, np.mean)
    assert low_few < np.mean(few) < high_few and low_many < np.mean(many) < high_many
    assert high_many - low_many < 0.5 * (high_few - low_few)


def test_draws_where_the_figure_is_undefined_are_left_out() -> None:
    def first_positive(cases: list[float]) -> float:
        positive = [c for c in cases if c > 0]
        return min(positive) if positive else math.nan

    assert case_bootstrap([0.0, 0.0, 1.0], first_positive) == (1.0, 1.0)
    assert all(math.isnan(v) for v in case_bootstrap([0.0, 0.0], first_positive))
    assert all(math.isnan(v) for v in case_bootstrap([], np.mean))


def test_rim_lesions_are_resampled_with_their_case() -> None:
    """Lesions of one case move together: a cohort where one case is perfectly ranked and the
    other at chance has a wide ROC AUC interval, however many lesions each holds."""
    rng = np.random.default_rng(2)
    labels = [np.tile([0, 1], 100), np.tile([0, 1], 100)]
    scores = [labels[0] + rng.uniform(0, 0.5, 200), rng.uniform(0, 1, 200)]
    figures = rim_intervals(scores, labels, threshold=0.5)
    value, (low, high) = figures["ROC AUC"]
    assert low < 0.6 and high == 1.0 and low <= value <= high
    assert set(figures) == {"ROC AUC", "F1"}


def test_cortical_counts_are_recovered_from_each_cases_rates() -> None:
    per_case = [{"truth_lesions": 4, "pred_lesions": 5, "ltpr": 0.75, "lfpr": 0.4},
                {"truth_lesions": 0, "pred_lesions": 2, "ltpr": math.nan, "lfpr": 1.0},
                {"truth_lesions": 3, "pred_lesions": 0, "ltpr": 0.0, "lfpr": math.nan}]
    figures = cortical_intervals({"per_case": per_case})
    assert figures["LTPR"][0] == pytest.approx(3 / 7)     # the table's pooled rates
    assert figures["LFPR"][0] == pytest.approx(4 / 7)


def test_wm_figures_are_the_tables_means_over_cases() -> None:
    report = {"cases": [{"dice": 0.6, "f1": 0.5}, {"dice": 0.8, "f1": math.nan}]}
    figures = wm_intervals(report)
    assert figures["Dice"][0] == pytest.approx(0.7) and figures["lesion F1"][0] == 0.5
    text = interval_table({"model": figures})
    assert "| model | Dice | 0.700 |" in text
    assert "| model | lesion F1 | 0.500 | 0.500–0.500 |" in text
