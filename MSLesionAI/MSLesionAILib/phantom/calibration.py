"""How hard is the phantom? Naive methods, scored on it the way the models will be.

- FLAIR: z-score FLAIR in the brain mask, threshold it; the threshold is the one that does
  best on the phantom cases themselves (an optimistic baseline); lesion-wise F1 by the MSSEG
  rule (`metrics.msseg`).
- Rims: for each white-matter lesion of at least 12.3 µL, mean phase in a shell across its
  border (±1.5 mm) minus mean phase deeper inside (the deepest voxels of a lesion too small
  to have such a core); ROC AUC against the rim truth (`metrics.rim`).
- Cortical: MP2RAGE z-scored in the cortex, hypointense voxels of the cortex thresholded; the
  loosest threshold still reaching LTPR 0.7 and its LFPR (CLAIMS rules, `metrics.cortical`).

The phantom is not a toy when these stay at or below what they score on real data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..labels import Tissue
from ..metrics.cortical import CorticalCase, evaluate_cortical
from ..metrics.msseg import msseg_detection
from ..metrics.rim import ranking_metrics
from ..progress import Progress
from .case import PhantomCase, generate_case
from .rim import MIN_RIM_LESION_UL

FLAIR_THRESHOLDS_Z = tuple(np.round(np.arange(0.5, 4.01, 0.25), 2))
CORTICAL_THRESHOLDS_Z = tuple(np.round(np.arange(0.25, 3.01, 0.25), 2))
TARGET_LTPR = 0.7
_SHELL_MM = 1.5


def zscore(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    values = image[mask].astype(np.float64)
    return ((image - values.mean()) / (values.std() + 1e-9)).astype(np.float32)


def flair_f1_by_threshold(flair: sitk.Image, brain: np.ndarray, truth: np.ndarray,
                          thresholds_z: Sequence[float] = FLAIR_THRESHOLDS_Z
                          ) -> dict[float, float]:
    """MSSEG lesion-wise F1 of ``zscore(FLAIR) > t`` in the brain, for each threshold t."""
    z = zscore(sitk.GetArrayFromImage(flair), brain)
    spacing_zyx = flair.GetSpacing()[::-1]
    return {float(t): msseg_detection(truth > 0, (z > t) & brain, spacing_zyx)["f1"]
            for t in thresholds_z}


def best_flair_threshold(f1_by_case: Sequence[dict[float, float]]) -> tuple[float, float]:
    """The threshold with the best mean F1 over the cases, and that F1."""
    thresholds = list(f1_by_case[0])
    means = [float(np.mean([case[t] for case in f1_by_case])) for t in thresholds]
    best = int(np.argmax(means))
    return thresholds[best], means[best]


def rim_scores(case: PhantomCase) -> tuple[list[int], list[float]]:
    """Rim truth and naive score (shell minus inside) of every rim-eligible WM lesion."""
    labels = sitk.GetArrayFromImage(case.truth["wm_lesions"])
    phase = sitk.GetArrayFromImage(case.images["phase"])
    spacing = np.array(case.images["phase"].GetSpacing()[::-1])
    pad = np.ceil(2 * _SHELL_MM / spacing).astype(int) + 1
    truth, scores = [], []
    boxes = ndimage.find_objects(labels)
    for row in case.lesions:
        if row["family"] != "wm" or row["volume_ul"] < MIN_RIM_LESION_UL:
            continue
        box = tuple(slice(max(b.start - p, 0), b.stop + p)
                    for b, p in zip(boxes[row["lesion_id"] - 1], pad, strict=True))
        lesion = labels[box] == row["lesion_id"]
        depth_mm = (ndimage.distance_transform_edt(lesion, sampling=spacing)
                    - ndimage.distance_transform_edt(~lesion, sampling=spacing))
        inside = depth_mm >= min(_SHELL_MM, depth_mm.max())  # small lesions: their core
        shell = (np.abs(depth_mm) <= _SHELL_MM) & ~inside
        truth.append(int(row["rim"]))
        scores.append(float(phase[box][shell].mean() - phase[box][inside].mean()))
    return truth, scores


def cortical_case(case: PhantomCase, threshold_z: float) -> CorticalCase:
    """The naive cortical prediction: cortex voxels darker than −t on cortex-z-scored MP2RAGE."""
    tissue = sitk.GetArrayFromImage(case.truth["tissue"])
    cortex = tissue == Tissue.CORTICAL_GM
    z = zscore(sitk.GetArrayFromImage(case.images["mp2rage"]), cortex)
    pred, _ = ndimage.label((z < -threshold_z) & cortex, np.ones((3, 3, 3)))
    truth = sitk.GetArrayFromImage(case.truth["cortical_lesions"])
    return CorticalCase(truth_ids=truth, pred_ids=pred, pred_classes=None,
                        truth_types={r["lesion_id"]: r["type"] for r in case.lesions
                                     if r["family"] == "cortical"},
                        spacing_mm=case.images["mp2rage"].GetSpacing()[::-1],
                        wm_mask=sitk.GetArrayFromImage(case.truth["wm_lesions"]) > 0)


def cortical_lfpr_at_ltpr(cases: Sequence[PhantomCase]) -> dict:
    """Sweep the threshold; report the first (strictest) reaching `TARGET_LTPR`."""
    sweep = []
    for threshold in sorted(CORTICAL_THRESHOLDS_Z, reverse=True):
        scores = evaluate_cortical([cortical_case(c, threshold) for c in cases], (1.0,))[0]
        sweep.append({"threshold_z": threshold, "ltpr": scores["ltpr"], "lfpr": scores["lfpr"]})
        if scores["ltpr"] >= TARGET_LTPR:
            return {"threshold_z": threshold, "ltpr": scores["ltpr"], "lfpr": scores["lfpr"],
                    "sweep": sweep}
    return {"threshold_z": None, "ltpr": sweep[-1]["ltpr"], "lfpr": sweep[-1]["lfpr"],
            "sweep": sweep}


TASKS = ("flair", "rim", "cortical")


def calibrate(n_cases: int, first_seed: int, mode: str = "realistic",
              real_flair: sitk.Image | None = None, real_truth: sitk.Image | None = None,
              tasks: Sequence[str] = TASKS, progress: Progress | None = None) -> dict:
    """The naive baselines of ``tasks`` on ``n_cases`` phantom cases each (FLAIR: also on the
    real case when given)."""
    progress = progress or Progress()
    seeds = [first_seed + i for i in range(n_cases)]
    report: dict = {"mode": mode, "seeds": seeds}
    steps = len(tasks) * n_cases

    def cases(kind: str, task_index: int):
        for i, seed in enumerate(seeds):
            progress.update((task_index * n_cases + i) / steps, f"{kind} case {seed}")
            yield generate_case(seed, kind, mode=mode)

    for task_index, task in enumerate(tasks):
        if task == "flair":
            report["flair"] = _flair_report(cases("wm", task_index), real_flair, real_truth)
        elif task == "rim":
            labels, scores = [], []
            for case in cases("rim", task_index):
                truth, case_scores = rim_scores(case)
                labels += truth
                scores += case_scores
            report["rim"] = {"lesions": len(labels), "rim_positive": int(sum(labels)),
                             **ranking_metrics(labels, scores)}
        else:
            cortical = list(cases("cortical", task_index))
            report["cortical"] = {**cortical_lfpr_at_ltpr(cortical), "truth_lesions": sum(
                r["family"] == "cortical" for c in cortical for r in c.lesions)}
    progress.update(1.0, "calibrated")
    return report


def _flair_report(cases, real_flair: sitk.Image | None, real_truth: sitk.Image | None) -> dict:
    f1_by_case = [flair_f1_by_threshold(case.images["flair"],
                                        sitk.GetArrayFromImage(case.brainmask) > 0,
                                        sitk.GetArrayFromImage(case.truth["wm_lesions"]))
                  for case in cases]
    threshold, f1 = best_flair_threshold(f1_by_case)
    report = {"best_threshold_z": threshold, "mean_f1": f1,
              "f1_per_case": [c[threshold] for c in f1_by_case]}
    if real_flair is not None and real_truth is not None:
        brain = sitk.GetArrayFromImage(real_flair) != 0
        real = flair_f1_by_threshold(real_flair, brain, sitk.GetArrayFromImage(real_truth))
        report["real"] = {"f1_at_phantom_threshold": real[threshold],
                          "best_threshold_z": max(real, key=real.get),
                          "best_f1": max(real.values())}
    return report
