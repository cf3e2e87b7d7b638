"""Golden tests of the rim-lesion classification metrics."""

import math

import numpy as np
import pytest

from MSLesionAILib.metrics.rim import (
    candidate_truth,
    operating_point,
    patient_accuracy,
    plot_curves,
    ranking_metrics,
    rim_metrics,
    threshold_at_specificity,
)


def test_auc_on_known_scores():
    # Positive 0.35 beats negative 0.1 but not 0.4; positive 0.8 beats both: 3 of 4 pairs.
    # Ranked 0.8 (+), 0.4 (−), 0.35 (+), 0.1 (−): AP = 0.5 * 1 + 0.5 * 2/3 = 5/6.
    result = ranking_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert result["roc_auc"] == pytest.approx(0.75)
    assert result["pr_auc"] == pytest.approx(5 / 6)
    assert ranking_metrics([0, 1], [0.5, 0.5])["roc_auc"] == 0.5        # a tie counts half
    assert math.isnan(ranking_metrics([1, 1], [0.2, 0.9])["roc_auc"])   # one class only


def validation_set() -> tuple[list[int], list[float]]:
    """20 negatives scored 0.01..0.20 and 3 positives scored 0.15, 0.5, 0.9."""
    return [0] * 20 + [1] * 3, [k / 100 for k in range(1, 21)] + [0.15, 0.5, 0.9]


def test_threshold_at_95_percent_specificity():
    labels, scores = validation_set()
    # At 0.19, two negatives (0.19, 0.20) are called rim+: 90 %. At 0.20 only one: 95 %.
    threshold = threshold_at_specificity(labels, scores)
    assert threshold == pytest.approx(0.20)
    point = operating_point(labels, np.asarray(scores) >= threshold)
    assert (point["specificity"], point["sensitivity"]) == (0.95, pytest.approx(2 / 3))
    # 100 % specificity needs a threshold above every negative: 0.5.
    assert threshold_at_specificity(labels, scores, 1.0) == pytest.approx(0.5)


def test_threshold_when_every_score_is_negative_lies_above_the_largest():
    threshold = threshold_at_specificity([0, 0, 0], [0.1, 0.2, 0.3], 1.0)
    assert threshold > 0.3
    assert operating_point([0, 0, 0], np.array([0.1, 0.2, 0.3]) >= threshold)["fp"] == 0


def test_operating_point_rates():
    point = operating_point([1, 1, 1, 0, 0, 0, 0, 0], [1, 1, 0, 1, 1, 0, 0, 0])
    assert (point["tp"], point["fn"], point["fp"], point["tn"]) == (2, 1, 2, 3)
    assert point["sensitivity"] == pytest.approx(2 / 3)
    assert point["specificity"] == 0.6
    assert point["ppv"] == 0.5
    assert point["npv"] == 0.75
    assert point["f1"] == pytest.approx(4 / 7)
    assert point["accuracy"] == 0.625
    assert math.isnan(operating_point([0, 0], [0, 0])["sensitivity"])


def test_patient_rule_at_least_four():
    # Flags: truth (no, yes, yes, no), predicted (no, yes, no, yes): 2 of 4 agree.
    assert patient_accuracy([0, 4, 5, 3], [1, 4, 3, 4]) == 0.5
    assert patient_accuracy([0, 4, 5, 3], [3, 6, 4, 0]) == 1.0


def test_candidates_take_the_truth_they_overlap_most():
    truth, pred = np.zeros((4, 4, 30), dtype=np.int32), np.zeros((4, 4, 30), dtype=np.int32)
    truth[0:2, 0:2, 0:4] = 1                 # rim+
    truth[0:2, 0:2, 5:9] = 2                 # rim−
    truth[0:2, 0:2, 20:24] = 3               # rim+, no candidate
    pred[0:2, 0:2, 1:6] = 5                  # 12 voxels in lesion 1, 4 in lesion 2
    pred[0:2, 0:2, 7:9] = 6                  # inside lesion 2
    pred[3, 3, 12:15] = 7                    # touches no truth lesion
    truth[0:2, 0:2, 26:28] = 4               # rim+, 8 voxels ...
    pred[:, :, 25:30] = 8                    # ... inside an 80-voxel candidate: still rim+
    labels, missed = candidate_truth(pred, truth, {1: 1, 2: 0, 3: 1, 4: 1})
    assert labels == {5: 1, 6: 0, 7: 0, 8: 1}
    assert missed == [3]


def test_rim_metrics_combines_ranking_and_operating_point():
    result = rim_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], [0, 1, 0, 1])
    assert (result["lesions"], result["rim_positive"]) == (4, 2)
    assert (result["roc_auc"], result["sensitivity"], result["specificity"]) == (0.75, 0.5, 0.5)


def test_curves_are_written_as_png(tmp_path):
    labels, scores = validation_set()
    path = plot_curves(labels, scores, tmp_path / "curves.png", threshold=0.2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
