"""The calibration's naive baselines can succeed, so their low scores on the phantom mean
something: a FLAIR that shows exactly the lesions scores F1 = 1, and rim scores rank a case
whose phase is its rim truth perfectly."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from MSLesionAILib.metrics.rim import ranking_metrics
from MSLesionAILib.phantom import generate_case
from MSLesionAILib.phantom.calibration import (
    best_flair_threshold,
    flair_f1_by_threshold,
    rim_scores,
)
from MSLesionAILib.phantom.rim import MIN_RIM_LESION_UL


def test_flair_baseline_finds_lesions_that_are_the_only_bright_thing() -> None:
    case = generate_case(4, "wm", spacing_mm=2.0, crop_mm=50.0, wm_lesion_count=15)
    truth = sitk.GetArrayFromImage(case.truth["wm_lesions"])
    brain = sitk.GetArrayFromImage(case.brainmask) > 0
    oracle = sitk.GetImageFromArray((truth > 0).astype(np.float32) * 10.0 + brain)
    scores = flair_f1_by_threshold(oracle, brain, truth, thresholds_z=(1.0, 50.0))
    assert best_flair_threshold([scores]) == (1.0, 1.0)
    assert scores[50.0] == 0.0


def test_rim_scores_cover_the_eligible_lesions_and_rank_an_ideal_phase() -> None:
    case = generate_case(11, "rim", spacing_mm=1.5, crop_mm=60.0, wm_lesion_count=30)
    labels = sitk.GetArrayFromImage(case.truth["wm_lesions"])
    eligible = [r for r in case.lesions if r["volume_ul"] >= MIN_RIM_LESION_UL]
    rim_ids = [r["lesion_id"] for r in eligible if r["rim"]]
    rims = np.isin(labels, rim_ids)
    ideal = sitk.GetImageFromArray((ndimage.binary_dilation(rims) & ~rims).astype(np.float32))
    ideal.CopyInformation(case.truth["wm_lesions"])
    case.images["phase"] = ideal  # bright just outside every rim+ lesion, nowhere else
    truth, scores = rim_scores(case)
    assert len(truth) == len(eligible) and 0 < sum(truth) == len(rim_ids) < len(truth)
    assert ranking_metrics(truth, scores)["roc_auc"] > 0.9
