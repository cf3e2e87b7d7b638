"""Rim benchmark: the shipped rim bundles side by side with two baselines on held-out cases.

    python -m MSLesionAILib.benchmark.rim --test DIR… --models BUNDLE… [--out DIR]

Lesion-wise, on the truth lesions ≥ 12.3 µL of the test cases (seeds used neither for training
nor for validation; checked against each bundle's record): ROC AUC, PR AUC and the operating
point's sensitivity, specificity, PPV, NPV and F1; patient-wise accuracy of "≥ 4 PRL". Then the
whole pipeline (a binary lesion mask → candidates with automatic splitting → classification),
scored by `metrics.rim.candidate_truth`, with its classification time per case.

Baselines, fitted on the first bundle's own training cases and thresholded on its validation
cases: a naive rim score (mean phase in a 2 mm shell around the lesion minus the mean inside,
its sign chosen on the training cases) and a logistic regression on simple lesion features.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..bundles import ModelBundle, load_bundle, update_metadata
from ..errors import InputError
from ..imageio import read_image
from ..lesions import min_voxels_for_volume
from ..metrics.rim import (
    candidate_truth,
    patient_accuracy,
    plot_curves,
    rim_metrics,
    threshold_at_specificity,
)
from ..networks import load_network
from ..pipelines import rim
from ..progress import Progress
from ..rim_candidates import MIN_VOLUME_UL
from ..rim_patches import PatchSpec
from ..training.rim import write_model_card
from ..training.rim_data import case_folders, case_patches, read_case
from .cohort import case_record

SHELL_MM = 2.0
METRIC_KEYS = ("lesions", "rim_positive", "roc_auc", "pr_auc", "sensitivity", "specificity",
               "ppv", "npv", "f1", "patient_accuracy")


def lesion_features(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per truth lesion ≥ 12.3 µL: [log volume, phase inside, phase in the shell, shell − inside,
    phase spread in the shell] (phase in units of its spread in the brain), and rim labels.
    The shell leaves out other lesions, unless they fill it."""
    phase_image, _, truth, rim_truth = read_case(folder, [])
    phase = sitk.GetArrayFromImage(phase_image).astype(np.float32)
    brain = sitk.GetArrayFromImage(read_image(folder / "brainmask.nii.gz", "brainmask")) > 0
    phase = phase / (np.std(phase[brain]) or 1.0)
    spacing = phase_image.GetSpacing()[::-1]
    min_voxels = min_voxels_for_volume(MIN_VOLUME_UL, spacing)
    pad = [int(np.ceil(SHELL_MM / s)) + 1 for s in spacing]
    features, labels = [], []
    for lesion_id, box in enumerate(ndimage.find_objects(truth), start=1):
        if box is None or np.count_nonzero(truth[box] == lesion_id) < min_voxels:
            continue
        crop = tuple(slice(max(b.start - p, 0), b.stop + p) for b, p in zip(box, pad, strict=True))
        lesion = truth[crop] == lesion_id
        outside_mm = ndimage.distance_transform_edt(~lesion, sampling=spacing)
        shell = (outside_mm > 0) & (outside_mm <= SHELL_MM)
        if np.any(shell & (truth[crop] == 0)):   # a lesion wrapped in others keeps them
            shell &= truth[crop] == 0
        inside, around = phase[crop][lesion], phase[crop][shell]
        features.append([np.log(lesion.sum() * np.prod(spacing)), inside.mean(), around.mean(),
                         around.mean() - inside.mean(), around.std()])
        labels.append(rim_truth.get(lesion_id, 0))
    return np.array(features).reshape(-1, 5), np.array(labels, dtype=int)


def evaluate(scores_by_case: list[np.ndarray], labels_by_case: list[np.ndarray],
             threshold: float) -> dict[str, Any]:
    """Lesion-wise metrics at ``threshold`` and patient-wise "≥ 4 PRL" accuracy."""
    scores, labels = np.concatenate(scores_by_case), np.concatenate(labels_by_case)
    metrics = rim_metrics(labels, scores, scores >= threshold)
    metrics["patient_accuracy"] = patient_accuracy(
        [int(case.sum()) for case in labels_by_case],
        [int((s >= threshold).sum()) for s in scores_by_case])
    return {**metrics, "threshold": threshold}


def network_scores(bundle: ModelBundle, folders: list[Path]) -> tuple[list, list, dict]:
    """P(rim+) of each case's truth lesions, labels, and the network's wall-clock and CPU
    seconds per 50 lesions (CPU time is what a machine shared with other jobs cannot hide)."""
    network = load_network(bundle, torch.device("cpu"))
    spec = PatchSpec.from_metadata(bundle.metadata["patches"])
    scores, labels, seconds, cpu_seconds, lesions = [], [], 0.0, 0.0, 0
    for folder in folders:
        patches, case_labels, _ = case_patches(folder, bundle.input_names, spec, spec.size_vox,
                                               (0, 0), np.random.default_rng(0))
        start, cpu_start = time.perf_counter(), time.process_time()
        scores.append(rim.classify(network, patches.astype(np.float32), torch.device("cpu"),
                                   bundle.metadata["test_time_flips"]))
        seconds += time.perf_counter() - start
        cpu_seconds += time.process_time() - cpu_start
        lesions += len(case_labels)
        labels.append(case_labels.astype(int))
    per_50 = 50 / max(lesions, 1)
    return scores, labels, {"seconds_per_50_lesions": round(seconds * per_50, 3),
                            "cpu_seconds_per_50_lesions": round(cpu_seconds * per_50, 3)}


def missing_fit_cases(bundle: ModelBundle) -> list[Path]:
    """The bundle's training and validation case folders that are not on this machine (the
    baselines are fitted and thresholded on them)."""
    data = bundle.metadata["training"]["data"]
    return [Path(f) for key in ("training_cases", "validation_cases") for f in data.get(key, [])
            if not Path(f).is_dir()]


def baselines(bundle: ModelBundle, test: list[Path]) -> dict[str, tuple[list, list, float]]:
    """Naive rim score and logistic regression: (test scores, test labels, threshold)."""
    data = bundle.metadata["training"]["data"]
    sets = {name: [lesion_features(Path(f)) for f in folders] for name, folders in
            (("train", data["training_cases"]), ("validation", data["validation_cases"]),
             ("test", test))}
    stacked = {name: tuple(np.concatenate(parts) for parts in zip(*cases, strict=True))
               for name, cases in sets.items()}
    train_x, train_y = stacked["train"]
    sign = 1.0 if np.mean(train_x[train_y == 1, 3]) >= np.mean(train_x[train_y == 0, 3]) else -1.0
    regression = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    regression.fit(train_x, train_y)
    scorers: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "naive rim score": lambda x: sign * x[:, 3],
        "logistic regression": lambda x: regression.predict_proba(x)[:, 1]}
    results = {}
    for name, score in scorers.items():
        threshold = threshold_at_specificity(stacked["validation"][1],
                                             score(stacked["validation"][0]))
        results[name] = ([score(x) for x, _ in sets["test"]], [y for _, y in sets["test"]],
                         threshold)
    return results


def best_on_validation(bundles: list[ModelBundle]) -> ModelBundle:
    """The bundle with the best validation ROC AUC, the one the pipeline row runs: chosen as
    `models.json`'s default is, never on the test figures it is reported beside."""
    return max(bundles, key=lambda b: b.metadata.get("validation", {}).get("roc_auc", 0.0))


def pipeline_scores(bundle: ModelBundle, folders: list[Path]) -> tuple[list, list, list]:
    """The whole pipeline from each case's binary truth mask: candidate scores, candidate
    labels (truth of the most-overlapped lesion), and the classification seconds per case."""
    scores, labels, seconds = [], [], []
    for folder in folders:
        phase = read_image(folder / "phase.nii.gz", "phase")
        truth = read_image(folder / "truth" / "wm_lesions.nii.gz", "truth")
        images = {name: read_image(folder / f"{name}.nii.gz", name)
                  for name in bundle.input_names if name != "phase"}
        inputs = rim.RimInputs(phase, images, lesion_mask=truth > 0,
                               brain_mask=read_image(folder / "brainmask.nii.gz", "brain"))
        result = rim.run(inputs, bundle=bundle, device=torch.device("cpu"), progress=Progress())
        _, _, truth_ids, rim_truth = read_case(folder, [])
        truth_of, _ = candidate_truth(result.lesion_ids, truth_ids, rim_truth)
        scores.append(np.array([r["rim_probability"] for r in result.rows]))
        labels.append(np.array([truth_of.get(r["lesion_id"], 0) for r in result.rows]))
        seconds.append(result.summary["timings_s"]["classification"])
    return scores, labels, seconds


def check_held_out(bundles: list[ModelBundle], test: list[Path]) -> None:
    """Refuse test cases that a bundle trained or validated on (same folder or same seed)."""
    def identity(folder: Path) -> tuple:
        case = case_record(folder)
        return case.get("seed"), case.get("mode"), case.get("kind")

    test_ids = {identity(f) for f in test}
    for bundle in bundles:
        data = bundle.metadata["training"]["data"]
        chose_threshold = bundle.metadata.get("derivation", {}).get("data", {})
        used = {identity(Path(f)) for f in data["training_cases"] + data["validation_cases"]
                + chose_threshold.get("validation_cases", [])}
        if used & test_ids:
            raise InputError(f"--test: cases {sorted(used & test_ids)} were used to train or "
                             f"validate {bundle.id}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", nargs="+", required=True, type=Path)
    parser.add_argument("--models", nargs="+", required=True, help="bundle folders")
    parser.add_argument("--out", type=Path, help="folder for report.json and curve PNGs")
    parser.add_argument("--record", action="store_true",
                        help="write the test figures into each bundle's metadata.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    test = case_folders(args.test, "--test")
    bundles = [load_bundle(m) for m in args.models]
    check_held_out(bundles, test)
    report: dict[str, Any] = {"test_cases": [str(f) for f in test], "lesion_wise": {}}
    curves = {}
    for bundle in bundles:
        scores, labels, speed = network_scores(bundle, test)
        threshold = bundle.metadata["operating_point"]["threshold"]
        report["lesion_wise"][bundle.id] = {**evaluate(scores, labels, threshold), **speed}
        curves[bundle.id] = (scores, labels, threshold)
    for name, (scores, labels, threshold) in baselines(bundles[0], test).items():
        report["lesion_wise"][name] = evaluate(scores, labels, threshold)
        curves[name] = (scores, labels, threshold)
    best = best_on_validation(bundles)
    scores, labels, seconds = pipeline_scores(best, test)
    report["pipeline"] = {"model": best.id, **evaluate(
        scores, labels, best.metadata["operating_point"]["threshold"]),
        "classification_seconds_per_case": seconds,
        "candidates_per_case": [len(s) for s in scores]}
    print_table(report)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(json.dumps(report, indent=2, default=float),
                                              encoding="utf-8")
        for name, (scores, labels, threshold) in curves.items():
            plot_curves(np.concatenate(labels), np.concatenate(scores),
                        args.out / f"curves_{name.replace(' ', '_')}.png", threshold, name)
    if args.record:
        for bundle in bundles:
            record_test_metrics(bundle, report["lesion_wise"][bundle.id], report["test_cases"])
    return report


def record_test_metrics(bundle: ModelBundle, metrics: dict[str, Any], cases: list[str]) -> None:
    """Add the held-out figures to metadata.json (the weights and their checksum are kept)."""
    test = {"cases": cases, **{k: metrics[k] for k in METRIC_KEYS}}
    write_model_card(bundle.path, update_metadata(bundle, test=test).metadata)


def print_table(report: dict[str, Any]) -> None:
    header = f"{'model':<24}" + "".join(f"{k[:8]:>9}" for k in METRIC_KEYS)
    print(header)
    rows = {**report["lesion_wise"], f"pipeline {report['pipeline']['model']}":
            report["pipeline"]}
    for name, metrics in rows.items():
        print(f"{name[:24]:<24}" + "".join(
            f"{metrics[k]:>9.3f}" if isinstance(metrics[k], float) else f"{metrics[k]:>9}"
            for k in METRIC_KEYS))
    for name, metrics in report["lesion_wise"].items():
        if "seconds_per_50_lesions" in metrics:
            print(f"{name}: {metrics['seconds_per_50_lesions']:.2f} s wall, "
                  f"{metrics['cpu_seconds_per_50_lesions']:.2f} s CPU per 50 lesions "
                  "(1 thread, test-time flips included, patches extracted beforehand)")
    print(f"pipeline classification seconds per case: "
          f"{report['pipeline']['classification_seconds_per_case']}")


if __name__ == "__main__":
    main()
