"""Golden tests of CLAIMS's cortical evaluation and of the agreement statistics (κ, CCC)."""

import math

import numpy as np
import pytest

from MSLesionAILib.metrics.agreement import cohen_kappa, lins_ccc
from MSLesionAILib.metrics.cortical import CorticalCase, evaluate_cortical

ISOTROPIC = (1.0, 1.0, 1.0)


def grid() -> np.ndarray:
    return np.zeros((12, 12, 40), dtype=np.int32)


def case(truth_ids, truth_types, pred_ids, pred_classes=None, wm_mask=None,
         spacing_mm=ISOTROPIC, name=""):
    return CorticalCase(truth_ids, truth_types, pred_ids, pred_classes, spacing_mm, wm_mask, name)


def at_one_ul(*cases) -> dict:
    return evaluate_cortical(cases, (1.0,))[0]


def test_predictions_overlapping_wm_lesions_are_not_false_positives():
    truth, pred, wm = grid(), grid(), np.zeros(grid().shape, dtype=bool)
    truth[0:3, 0:3, 0:3] = 1
    pred[0:3, 0:3, 2:5] = 1                  # hits the truth lesion (and the WM mask): true
    pred[6:9, 6:9, 10:13] = 2                # inside a WM lesion, no truth: left out
    pred[6:9, 6:9, 30:33] = 3                # nowhere: a false positive
    wm[0:3, 0:3, 4:6] = True
    wm[7, 7, 9:12] = True
    with_wm = at_one_ul(case(truth, {1: "leukocortical"}, pred, wm_mask=wm))
    assert (with_wm["ltpr"], with_wm["pred_lesions"], with_wm["false_positives"]) == (1.0, 2, 1)
    assert with_wm["lfpr"] == 0.5
    # Dice leaves the WM component out: 2 * 9 / (27 + 54) = 2/9 rather than 2 * 9 / (27 + 81).
    assert with_wm["median_dice"] == pytest.approx(2 / 9)
    without_wm = at_one_ul(case(truth, {1: "leukocortical"}, pred))
    assert (without_wm["pred_lesions"], without_wm["lfpr"]) == (3, pytest.approx(2 / 3))
    assert without_wm["median_dice"] == pytest.approx(1 / 6)


def test_one_voxel_overlap_detects():
    truth, pred = grid(), grid()
    truth[0:3, 0:3, 0:3] = 1
    pred[2:5, 2:5, 2:5] = 1                  # shares the single voxel (2, 2, 2)
    result = at_one_ul(case(truth, {1: "subpial"}, pred))
    assert (result["ltpr"], result["lfpr"]) == (1.0, 0.0)


def sized_lesions() -> np.ndarray:
    """Lesions of 2, 5, 8, 12 and 20 voxels (ids 1..5) along x."""
    ids = grid()
    for lesion_id, (start, size) in enumerate([(0, 2), (4, 5), (11, 8), (21, 12)], start=1):
        ids[0, 0, start:start + size] = lesion_id
    ids[4, 0:4, 0:5] = 5
    return ids


def test_minimum_volumes_and_the_two_voxel_rule():
    truth = sized_lesions()
    pred = np.where(truth == 5, 0, truth)    # the 20-voxel lesion is missed
    types = dict.fromkeys(range(1, 6), "intracortical")
    results = evaluate_cortical([case(truth, types, pred)])
    # 1 mm voxels: the 2-voxel lesion is always dropped (≤ 2 voxels), then ≥ 1/3/6/9/15 µL.
    assert [r["min_volume_ul"] for r in results] == [1.0, 3.0, 6.0, 9.0, 15.0]
    assert [r["truth_lesions"] for r in results] == [4, 4, 3, 2, 1]
    assert [r["ltpr"] for r in results] == [0.75, 0.75, pytest.approx(2 / 3), 0.5, 0.0]
    assert [r["pred_lesions"] for r in results] == [3, 3, 2, 1, 0]
    assert math.isnan(results[-1]["lfpr"])
    # 0.5 mm voxels (0.125 µL): 1 µL needs 8 voxels, so only the 8, 12 and 20 remain.
    fine = evaluate_cortical([case(truth, types, pred, spacing_mm=(0.5, 0.5, 0.5))], (1.0,))
    assert fine[0]["truth_lesions"] == 3


def test_each_side_is_filtered_on_its_own():
    truth, pred = grid(), grid()
    truth[0, 0, 0:20] = 1                    # 20 voxels
    pred[0, 0, 0:4] = 1                      # 4 voxels: removed at 6 µL, so the lesion is missed
    results = evaluate_cortical([case(truth, {1: "leukocortical"}, pred)], (3.0, 6.0))
    assert [r["ltpr"] for r in results] == [1.0, 0.0]


def test_classification_accuracy_kappa_and_per_type_detection():
    truth, pred = grid(), grid()
    truth[0:3, 0:3, 0:3] = 1                 # leukocortical -> found as leukocortical
    truth[0:3, 0:3, 6:9] = 2                 # intracortical -> found as intracortical/subpial
    truth[0:3, 0:3, 12:15] = 3               # subpial -> found as leukocortical (wrong class)
    truth[0:3, 0:3, 18:21] = 4               # leukocortical -> missed
    pred[0:3, 0:3, 0:3] = 1
    pred[0:3, 0:3, 6:9] = 2
    pred[0:3, 0:3, 12:15] = 3
    pred[6:9, 6:9, 30:33] = 4                # false positive, called intracortical/subpial
    types = {1: "leukocortical", 2: "intracortical", 3: "subpial", 4: "leukocortical"}
    classes = {1: "leukocortical", 2: "intracortical_subpial", 3: "leukocortical",
               4: "intracortical_subpial"}
    result = at_one_ul(case(truth, types, pred, classes))
    assert (result["ltpr"], result["lfpr"]) == (0.75, 0.25)
    assert (result["ltpr_leukocortical"], result["ltpr_intracortical"],
            result["ltpr_subpial"]) == (0.5, 1.0, 1.0)
    assert result["classification_accuracy"] == pytest.approx(2 / 3)
    # Items (truth, pred): (L, L) (IS, IS) (IS, L) (L, none) (none, IS): p_o = 2/5;
    # marginals 2/2/1 on both sides: p_e = 9/25; κ = (0.4 - 0.36) / 0.64 = 0.0625.
    assert result["kappa"] == pytest.approx(0.0625)


def test_without_predicted_classes_there_is_no_classification():
    truth = grid()
    truth[0:3, 0:3, 0:3] = 1
    result = at_one_ul(case(truth, {1: "subpial"}, truth.copy()))
    assert "kappa" not in result and "classification_accuracy" not in result


def test_per_case_medians_dice_and_count_ccc():
    def one_case(found: int, lesions: int) -> CorticalCase:
        truth, pred = grid(), grid()
        for k in range(lesions):
            truth[0:3, 0:3, 4 * k:4 * k + 3] = k + 1
        for k in range(found):
            pred[0:3, 0:3, 4 * k:4 * k + 3] = k + 1
        return case(truth, dict.fromkeys(range(1, lesions + 1), "leukocortical"), pred)

    cases = [one_case(2, 2), one_case(1, 2), one_case(0, 2), one_case(0, 0)]
    result = at_one_ul(*cases)
    # Case LTPRs 1, 0.5, 0 and undefined (no lesions): median 0.5.
    assert result["median_case_ltpr"] == 0.5
    assert [c["ltpr"] for c in result["per_case"]][:3] == [1.0, 0.5, 0.0]
    # Dice per case with lesions: 1, 2*27/(54+27) = 2/3, 0 -> median 2/3; VD 0, 0.5, 1 -> 0.5.
    assert result["median_dice"] == pytest.approx(2 / 3)
    assert result["median_volume_difference"] == 0.5
    # Counts truth (2, 2, 2, 0), predicted (2, 1, 0, 0): means 1.5 and 0.75, variances 3/4 and
    # 11/16, covariance 3/8 -> CCC = (3/4) / (3/4 + 11/16 + 9/16) = 0.375.
    assert result["count_ccc"] == pytest.approx(0.375)


def test_cohen_kappa_known_table():
    # 2 x 2 table [[20, 5], [10, 15]]: p_o = 0.7, p_e = (25*30 + 25*20) / 2500 = 0.5 -> κ = 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == 1.0
    assert math.isnan(cohen_kappa([], []))


def test_lins_ccc_known_values():
    assert lins_ccc([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    # Shifted by one: s_xy = s_x² = s_y² = 2/3, (x̄ − ȳ)² = 1 -> (4/3) / (7/3) = 4/7.
    assert lins_ccc([1, 2, 3], [2, 3, 4]) == pytest.approx(4 / 7)
    assert lins_ccc([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # Pearson would be 1 here; the scale bias lowers CCC: 2 * (4/3) / (2/3 + 8/3 + 4) = 4/11.
    assert lins_ccc([1, 2, 3], [2, 4, 6]) == pytest.approx(4 / 11)
    assert math.isnan(lins_ccc([1], [1]))
