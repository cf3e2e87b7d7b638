"""Golden tests of the MSSEG-2016 lesion-wise detection (α 10 %, β 70 %, γ 65 %, > 3 mm³).

Each case is a tiny mask whose answer is worked out by hand in the comments (1 mm voxels
unless stated; ``spacing_mm`` in numpy z, y, x order).
"""

import numpy as np
import pytest

from MSLesionAILib.metrics.msseg import msseg_detection, wm_metrics

ISOTROPIC = (1.0, 1.0, 1.0)


def empty() -> np.ndarray:
    return np.zeros((16, 16, 16), dtype=np.uint8)


def rates(result: dict) -> tuple:
    return result["sensitivity"], result["precision"], result["f1"]


def test_identical_masks_are_perfect():
    truth = empty()
    truth[2:5, 2:5, 2:5] = 1
    result = msseg_detection(truth, truth, ISOTROPIC)
    assert rates(result) == (1.0, 1.0, 1.0)
    assert (result["truth_lesions"], result["pred_lesions"]) == (1, 1)


def test_split_lesion_is_detected_and_both_pieces_count_as_true():
    truth = empty()
    truth[2:6, 2:6, 2:6] = 1                 # one 64-voxel lesion
    pred = truth.copy()
    pred[2:6, 2:6, 4] = 0                    # split in two: x 2..3 (32) and x 5 (16)
    # Truth: 48/64 covered > α, both pieces lie 0 % outside -> detected. Each piece is inside the
    # truth lesion -> detected too. A one-to-one matching would call one piece a false positive.
    result = msseg_detection(truth, pred, ISOTROPIC)
    assert (result["pred_lesions"], result["pred_detected"]) == (2, 2)
    assert rates(result) == (1.0, 1.0, 1.0)


def test_merged_lesions_are_both_detected():
    truth = empty()
    truth[2:5, 2:5, 2:5] = 1                 # A, 27 voxels
    truth[2:5, 2:5, 6:9] = 1                 # B, 27 voxels, 1-voxel gap at x = 5
    pred = empty()
    pred[2:5, 2:5, 2:9] = 1                  # one 63-voxel lesion bridging the gap
    # A and B: fully covered; the prediction lies 9/63 = 14 % outside the truth -> detected.
    # The prediction: 54/63 covered; A (share 1/2) then B reach γ, both 0 % outside it -> detected.
    result = msseg_detection(truth, pred, ISOTROPIC)
    assert (result["truth_lesions"], result["pred_lesions"]) == (2, 1)
    assert rates(result) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(("length", "sensitivity"), [(10, 1.0), (11, 0.0)])
def test_oversized_prediction_fails_beta(length, sensitivity):
    truth = empty()
    truth[2:5, 2:5, 2:5] = 1                 # 27 voxels
    pred = empty()
    pred[2:5, 2:5, 2:2 + length] = 1         # a 3x3xlength rod containing the truth lesion
    # length 10: 63/90 = 70 % outside, not more than β -> detected.
    # length 11: 72/99 = 73 % outside > β -> missed. Either way the prediction is 27/99 or 27/90
    # covered by a truth lesion lying 0 % outside it, so precision stays 1.
    result = msseg_detection(truth, pred, ISOTROPIC)
    assert result["sensitivity"] == sensitivity
    assert result["precision"] == 1.0
    assert result["f1"] == pytest.approx(2 * sensitivity / (sensitivity + 1))


def test_overlap_of_alpha_or_less_is_not_a_detection():
    truth = empty()
    truth[0:10, 0:10, 0:1] = 1               # 100 voxels
    pred = truth.copy()
    pred[1:10, :, :] = 0                     # 10 voxels: exactly 10 %, not more than α
    assert msseg_detection(truth, pred, ISOTROPIC)["sensitivity"] == 0.0
    pred[1, 0, 0] = 1                        # 11 voxels: 11 % > α
    assert msseg_detection(truth, pred, ISOTROPIC)["sensitivity"] == 1.0


@pytest.mark.parametrize(("plate_overlaps_most", "detected"), [(False, True), (True, False)])
def test_gamma_only_the_main_contributors_must_stay_inside(plate_overlaps_most, detected):
    truth = empty()
    truth[0:10, 0:3, 0:3] = 1                # 3x3 rod along z, 90 voxels
    pred = empty()
    inside, plate = (slice(7, 10), slice(0, 5)) if plate_overlaps_most else (slice(0, 7),
                                                                             slice(8, 10))
    pred[inside, 0:3, 0:3] = 1               # lies inside the rod
    pred[plate, 0:10, 0:10] = 1              # a plate, mostly outside the rod
    # Inside 63 vs plate 18: 63/81 = 78 % ≥ γ from the inside piece alone -> detected.
    # Inside 27 vs plate 45: the plate comes first (share 62.5 % < γ, but it is checked) and
    # lies 455/500 = 91 % outside > β -> missed.
    assert (msseg_detection(truth, pred, ISOTROPIC)["sensitivity"] == 1.0) is detected


def test_lesions_under_3_mm3_are_removed_first():
    truth = empty()
    truth[2:5, 2:5, 2:5] = 1
    truth[10, 10, 10:12] = 1                 # 2 voxels = 2 mm³: removed, so not a miss
    pred = empty()
    pred[2:5, 2:5, 2:5] = 1
    pred[12, 12, 0:3] = 1                    # 3 voxels = 3 mm³: kept ("3 mm³ or greater")
    result = msseg_detection(truth, pred, ISOTROPIC)
    assert (result["truth_lesions"], result["pred_lesions"]) == (1, 2)
    assert rates(result) == (1.0, 0.5, pytest.approx(2 / 3))


def test_minimum_volume_follows_anisotropic_spacing():
    truth = empty()
    truth[2:5, 2:5, 2:5] = 1
    truth[10, 10, 10:12] = 1                 # 2 voxels
    pred = empty()
    pred[2:5, 2:5, 2:5] = 1
    # 1 mm: 2 mm³, removed. 2 mm slices: 4 mm³, kept and missed. 1.5 mm: exactly 3 mm³, kept.
    # 1.45 mm: 2.9 mm³, removed.
    assert msseg_detection(truth, pred, ISOTROPIC)["sensitivity"] == 1.0
    assert msseg_detection(truth, pred, (2.0, 1.0, 1.0))["sensitivity"] == 0.5
    assert msseg_detection(truth, pred, (1.5, 1.0, 1.0))["sensitivity"] == 0.5
    assert msseg_detection(truth, pred, (1.45, 1.0, 1.0))["sensitivity"] == 1.0


@pytest.mark.parametrize(("connectivity", "truth_lesions", "sensitivity"),
                         [(6, 2, 0.5), (18, 1, 1.0)])
def test_connectivity_6_and_18_give_different_counts(connectivity, truth_lesions, sensitivity):
    truth = empty()
    truth[0:2, 0:2, 0:2] = 1                 # A
    truth[2:4, 2:4, 0:2] = 1                 # B, touching A along an edge only
    pred = empty()
    pred[0:2, 0:2, 0:2] = 1                  # finds A only
    # 18: one 16-voxel lesion, half covered, prediction inside -> detected.
    # 6: A detected, B missed.
    result = msseg_detection(truth, pred, ISOTROPIC, connectivity=connectivity)
    assert (result["truth_lesions"], result["sensitivity"]) == (truth_lesions, sensitivity)
    assert result["precision"] == 1.0


def lesion() -> np.ndarray:
    mask = empty()
    mask[2:5, 2:5, 2:5] = 1
    return mask


@pytest.mark.parametrize(("truth", "pred", "expected"), [
    (empty, lesion, (1.0, 0.0, 0.0)),        # nothing to miss; everything claimed is false
    (lesion, empty, (0.0, 1.0, 0.0)),        # everything missed; nothing false claimed
    (empty, empty, (1.0, 1.0, 1.0)),         # nothing to find and nothing found
])
def test_empty_sets_convention(truth, pred, expected):
    assert rates(msseg_detection(truth(), pred(), ISOTROPIC)) == expected


def test_wm_metrics_adds_dice_and_volumes():
    truth = empty()
    truth[2:5, 2:5, 2:5] = 1                 # 27 voxels of 2 µL
    pred = empty()
    pred[2:5, 2:5, 3:6] = 1                  # 27 voxels, 18 shared
    result = wm_metrics(truth, pred, (2.0, 1.0, 1.0))
    assert result["dice"] == pytest.approx(2 * 18 / 54)
    assert (result["truth_volume_ul"], result["pred_volume_ul"]) == (54.0, 54.0)
    assert result["volume_difference"] == 0.0
    assert (result["ltpr"], result["lfpr"], result["f1"]) == (1.0, 0.0, 1.0)
