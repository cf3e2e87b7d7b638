"""The benchmark's plumbing on tiny cropped phantoms (`--quick`: the figures mean nothing), its
refusal to report on training cases, and the shapes of its tables."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MSLesionAILib.benchmark import baselines, speed, tables
from MSLesionAILib.benchmark import rim as rim_benchmark
from MSLesionAILib.benchmark.cohort import (
    QUICK_COHORTS,
    CohortSpec,
    TrainingCaseError,
    check_held_out,
    free_first_seed,
    used_seeds,
    write_cohort,
)
from MSLesionAILib.benchmark.sections import (
    Options,
    Report,
    _baseline_cases,
    _budget,
    cortical_section,
    rim_baseline_note,
    speed_section,
)
from MSLesionAILib.benchmark.speed import forward_timer
from MSLesionAILib.bundles import ModelBundle, load_bundle, write_bundle
from MSLesionAILib.cli import build_parser, main
from MSLesionAILib.commands.benchmark import skipped_baselines
from MSLesionAILib.metrics.overlap import dice
from MSLesionAILib.networks import build_network
from MSLesionAILib.progress import Progress
from MSLesionAILib.training import wm as wm_training

FIRST_WM_SEED = QUICK_COHORTS["wm"].first_seed


def _bundle_trained_on(*folders: Path) -> ModelBundle:
    return ModelBundle(Path("nowhere"), {"id": "m", "training": {"data": {
        "datasets": [str(f) for f in folders]}}})


def _case(folder: Path, seed: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "case.json").write_text(json.dumps({"seed": seed}), encoding="utf-8")
    return folder


def tiny_wm_bundle(folder: Path, trained_on: Path, bundle_id: str = "wm-tiny",
                   chosen_for_inputs: list[str] | None = None) -> Path:
    """An untrained, very small white-matter bundle whose record names one training folder."""
    metadata = wm_training.plan(argparse.Namespace(id=bundle_id, version="0.0.1", slices=3,
                                                   features="4,4,4,4,4,4",
                                                   bias_correction=False,
                                                   chosen_for_inputs=chosen_for_inputs))
    metadata["training"] = {"data": {"datasets": [str(trained_on)]},
                            "settings": {"steps": 1}}
    network = build_network("deepscan", **metadata["network"])
    write_bundle(folder, metadata, network.state_dict())
    return folder


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("benchmark")
    # The model "trained" on the first seed the quick WM cohort would take.
    trained_on = root / "data" / f"case_{FIRST_WM_SEED:04d}"
    bundle = tiny_wm_bundle(root / "wm-tiny", trained_on)
    flair_only = tiny_wm_bundle(root / "wm-tiny-flair", trained_on, "wm-tiny-flair", ["flair"])
    out = root / "out"
    code = main(["--progress", "none", "benchmark", "--quick", "--out", str(out),
                 "--models", str(flair_only), str(bundle), "--repeats", "1", "--threads", "1"])
    assert code == 0
    return out


def test_quick_run_writes_results_and_plots(quick_run: Path) -> None:
    text = (quick_run / "RESULTS.md").read_text(encoding="utf-8")
    for heading in ("# MSLesionAI benchmark", "## White-matter lesions",
                    "## Cortical lesions", "## Speed and memory", "## Notes"):
        assert heading in text
    assert "wm-tiny" in text and "3D U-Net" in text and "FLAIR threshold" in text
    assert text.count("| method | figure | value | 95 % interval |") == 2  # wm, cortical
    assert f"speed measured on {' and '.join(speed.speed_devices())}" in text
    for png in ("per_patient_rates.png", "wm_volume_bland_altman.png", "lesion_counts.png"):
        assert (quick_run / png).stat().st_size > 1000
        assert f"({png})" in text


def test_a_model_chosen_for_flair_alone_is_run_and_named_with_flair_alone(
        quick_run: Path) -> None:
    """Given first, it is still listed and timed after the general model: speed is the general
    model's, with every contrast."""
    text = (quick_run / "RESULTS.md").read_text(encoding="utf-8")
    assert text.index("| wm-tiny v0.0.1 |") < text.index("| wm-tiny-flair v0.0.1 (FLAIR only) |")
    timed = json.loads((quick_run / "work" / "speed" / "wm" / "run_0" / "summary.json").read_text(
        encoding="utf-8"))
    assert timed["model"]["id"] == "wm-tiny" and "t1" in timed["inputs"]
    summaries = list((quick_run / "work" / "wm").glob("wm-tiny-flair-*/case_*/summary.json"))
    assert summaries and all(set(json.loads(s.read_text(encoding="utf-8"))["inputs"]) ==
                             {"flair"} for s in summaries)
    general = [s for s in (quick_run / "work" / "wm").glob("wm-tiny-*/case_*/summary.json")
               if not s.parent.parent.name.startswith("wm-tiny-flair")]
    assert general and all("t1" in json.loads(s.read_text(encoding="utf-8"))["inputs"]
                           for s in general)


def test_quick_cohort_skips_the_seeds_a_model_trained_on(quick_run: Path) -> None:
    cases = sorted(p.name for p in (quick_run / "work" / "cohorts" / "wm").glob("case_*"))
    assert cases == [f"case_{FIRST_WM_SEED + 1:04d}", f"case_{FIRST_WM_SEED + 2:04d}"]
    assert f"1 seeds, {FIRST_WM_SEED}" in (quick_run / "RESULTS.md").read_text(encoding="utf-8")


def test_a_training_case_is_refused(tmp_path: Path) -> None:
    case = _case(tmp_path / "test" / "case_0042", seed=42)
    used = used_seeds([_bundle_trained_on(tmp_path / "train" / "realistic-42")])
    with pytest.raises(TrainingCaseError, match="case_0042.*seed 42"):
        check_held_out([case], used)
    check_held_out([_case(tmp_path / "test" / "case_0043", seed=43)], used)


def test_seeds_come_from_case_json_of_recorded_datasets(tmp_path: Path) -> None:
    _case(tmp_path / "train" / "a", seed=7)
    assert used_seeds([_bundle_trained_on(tmp_path / "train")]) == {7: "m"}


def test_a_model_whose_training_seeds_cannot_be_read_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrainingCaseError, match="cannot be guaranteed"):
        used_seeds([_bundle_trained_on(tmp_path / "gone")])


def test_free_first_seed_moves_past_used_seeds() -> None:
    assert free_first_seed(10, 3, {11, 20}) == 12
    assert free_first_seed(10, 3, set()) == 10


def test_forward_timer_counts_the_outermost_call_once() -> None:
    network = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    started = time.perf_counter()
    with forward_timer() as forward_s:
        network(torch.zeros(2, 4))
    assert 0 < forward_s[0] <= time.perf_counter() - started


def test_flair_threshold_is_calibrated_and_finds_the_bright_lesion(tmp_path: Path) -> None:
    grid = np.indices((40, 40, 40)) - 20
    lesion = (grid ** 2).sum(axis=0) <= 9
    voxels = np.random.default_rng(0).normal(100, 5, lesion.shape) + 100 * lesion
    voxels[:, :, :4] = 0  # background outside the head
    flair = sitk.GetImageFromArray(voxels.astype(np.float32))
    (tmp_path / "truth").mkdir()
    sitk.WriteImage(flair, str(tmp_path / "flair.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(lesion.astype(np.uint8)),
                    str(tmp_path / "truth" / "wm_lesions.nii.gz"))
    percentile = baselines.calibrate_flair_threshold([tmp_path])
    found = baselines.flair_threshold_lesions(flair, percentile)
    assert found.max() == 1 and dice(lesion, found) > 0.9


def _columns(table: str) -> list[int]:
    return [line.count("|") - 1 for line in table.strip().splitlines()]


def test_wm_table_has_one_row_per_method_and_paper_figure() -> None:
    mean = dict.fromkeys(tables.WM_KEYS, 0.5)
    table = tables.wm_table({"a": {"cases": [{}] * 3, "mean": mean}}, "phantom")
    assert set(_columns(table)) == {len(tables.WM_HEADER)}
    assert len(table.strip().splitlines()) == 2 + 1 + len(tables.DEEPSCAN_PAPER)
    assert "| a | phantom | 3 | 0.500 |" in table


def test_cortical_table_has_a_row_per_method_and_minimum_volume() -> None:
    entries = [{"min_volume_ul": v, "truth_lesions": 4, **dict.fromkeys(tables.CORTICAL_KEYS,
                                                                           float("nan"))}
               for v in (1.0, 3.0, 6.0, 9.0, 15.0)]
    table = tables.cortical_table({"a": {"by_min_volume": entries},
                                   "b": {"by_min_volume": entries}})
    assert set(_columns(table)) == {len(tables.CORTICAL_HEADER)}
    assert len(table.strip().splitlines()) == 2 + 10 + len(tables.CLAIMS_PAPER)
    assert "| a | 15 | 4 | — |" in table


def test_rim_table_sets_each_method_beside_the_papers() -> None:
    metrics = {"lesions": 10, "rim_positive": 3, **dict.fromkeys(tables.RIM_KEYS, 0.9)}
    table = tables.rim_table({"RimNet": metrics, "naive rim score": metrics})
    assert set(_columns(table)) == {len(tables.RIM_HEADER)}
    assert "RimNet (paper, cross-validation) | — | — | 0.943" in table
    assert len(table.strip().splitlines()) == 2 + 2 + len(tables.RIM_PAPER)


def test_speed_table_lists_the_stages() -> None:
    summary = {"case": "c", "runs": 3, "stages_s": {"inference": 1.0, "read + write": 0.5},
               "whole_s": 2.0, "forward_s": 0.8, "end_to_end_over_forward": 2.5,
               "peak_memory_mib": 900.0, "imports_s": 3.0}
    table = tables.speed_table({"wm": summary})
    assert "inference 1.00, read + write 0.50" in table
    assert set(_columns(table)) == {len(tables.SPEED_HEADER)}
    assert np.isclose(float(table.splitlines()[-1].split("|")[7]), 2.5)


def test_a_second_benchmark_times_again_in_the_same_folder(tmp_path, monkeypatch) -> None:
    def fake_run(argv, out, threads):
        assert not out.exists(), "a timing run must start from an empty output folder"
        out.mkdir(parents=True)
        return {"stages_s": {"read": 1.0}, "whole_s": 2.0, "forward_s": 1.0,
                "imports_s": 0.5, "peak_memory_mib": 100.0}

    monkeypatch.setattr(speed, "measure_run", fake_run)
    for _ in range(2):
        assert speed.measure(["wm"], tmp_path / "speed" / "wm", 2, 1)["runs"] == 2


def test_with_a_gpu_each_pipeline_is_timed_on_the_cpu_and_again_on_the_gpu(
        tmp_path, monkeypatch) -> None:
    timed = []

    def fake_measure(argv, out, repeats, threads):
        timed.append((argv[argv.index("--device") + 1], out.name))
        return {"runs": repeats}

    monkeypatch.setattr(speed, "speed_devices", lambda: ["cpu", "cuda"])
    monkeypatch.setattr(speed, "measure", fake_measure)
    monkeypatch.setattr(tables, "speed_table", lambda speeds: "")
    bundle = load_bundle(tiny_wm_bundle(tmp_path / "wm-tiny", tmp_path / "data"))
    report = Report()
    speed_section({"wm": [bundle]}, {"wm": [tmp_path / "case_1"]},
                  Options(out=tmp_path, quick=True, repeats=1), tmp_path, report, Progress())
    assert timed == [("cpu", "wm"), ("cuda", "wm_on_cuda")]
    assert list(report.speeds) == ["wm", "wm on cuda"]
    assert 'rows marked "on cuda" ran on the GPU' in report.sections[-1]


def test_a_cohort_case_from_another_generator_is_refused(tmp_path: Path) -> None:
    spec = CohortSpec("rim", cases=1, first_seed=500)
    folder = tmp_path / "cohorts" / "rim"
    (folder / "case_0500").mkdir(parents=True)
    (folder / "case_0500" / "case.json").write_text(json.dumps(
        {"seed": 500, "kind": "rim", "mode": "realistic",
         "generator_version": "0.0.0+phantom.0"}), encoding="utf-8")
    with pytest.raises(TrainingCaseError, match="phantom.0.*mix generators"):
        write_cohort(folder, spec, {})


def test_rim_baselines_need_the_cases_they_are_fitted_on(tmp_path: Path) -> None:
    present = tmp_path / "case_1"
    present.mkdir()
    bundle = ModelBundle(Path("nowhere"), {"id": "rim", "training": {"data": {
        "training_cases": [str(present), str(tmp_path / "case_2")],
        "validation_cases": [str(tmp_path / "case_3")]}}})
    missing = rim_benchmark.missing_fit_cases(bundle)
    assert missing == [tmp_path / "case_2", tmp_path / "case_3"]
    assert "not run" in rim_baseline_note(bundle, missing)
    assert rim_baseline_note(bundle, []) == (
        "Rim: naive rim score and logistic regression fitted on rim's 2 training cases and "
        "thresholded on its 1 validation cases (95 % specificity).")


def test_baseline_budget_counts_every_stage_of_the_shipped_model(tmp_path: Path) -> None:
    grandparent = {"seconds": 1000.0, "steps_done": 300, "device": "cpu", "threads": 1}
    parent = {"seconds": 200.0, "steps_done": 50, "device": "cuda (a GPU)",
              "parent": grandparent}
    shipped = ModelBundle(Path("nowhere"), {"id": "m", "parent": parent, "training": {
        "seconds": 100.0, "steps_done": 10, "device": "cuda (a GPU)", "settings": {}}})
    report = Report()
    budget = _budget("wm", [shipped], Options(out=tmp_path, budget=0.5), tmp_path, report)
    assert budget["steps"] == 360 and budget["seconds"] == 650
    assert "1300 s of training in 3 stage(s)" in report.notes[-1]
    assert "200 s on cuda (a GPU)" in report.notes[-1]
    assert "1000 s on cpu (1 torch thread)" in report.notes[-1]


def test_skip_baselines_takes_the_tasks_whose_baseline_is_not_trained(tmp_path: Path) -> None:
    parser = build_parser()
    given = {argv: skipped_baselines(parser.parse_args(
        ["benchmark", "--out", "x", *argv]).skip_baselines)
        for argv in ((), ("--skip-baselines",), ("--skip-baselines", "cortical"))}
    assert given == {(): frozenset(), ("--skip-baselines",): {"wm", "cortical"},
                     ("--skip-baselines", "cortical"): {"cortical"}}
    with pytest.raises(SystemExit):
        parser.parse_args(["benchmark", "--out", "x", "--skip-baselines", "rim"])
    report = Report()
    cortical_section({}, {"cortical": []}, Options(out=tmp_path, skip_baselines=frozenset(
        {"cortical"})), tmp_path, report, Progress())
    assert report.notes == ["Cortical: no cortical model installed; baselines only.",
                            "Cortical: plain U-Net baseline skipped (--skip-baselines)."]


def test_baselines_train_on_copies_of_the_recorded_cases(tmp_path: Path) -> None:
    for kind, seed in (("wm", 7), ("wm", 8), ("cortical", 7), ("wm", 9)):
        case = tmp_path / "copies" / f"{kind}_s{seed}" / f"case_{seed:04d}"
        case.mkdir(parents=True)
        (case / "case.json").write_text(json.dumps({"seed": seed, "kind": kind}),
                                        encoding="utf-8")
    shipped = ModelBundle(Path("nowhere"), {"id": "m", "training": {"data": {
        "datasets": ["/gone/s7", "/gone/s8"], "seeds": [7, 8], "cases": 2}}})
    report = Report()
    cases = _baseline_cases("wm", [shipped], Options(out=tmp_path, baseline_data=[
        tmp_path / "copies"]), tmp_path, report)
    assert [c.name for c in cases] == ["case_0007", "case_0008"]
    assert [c.parent.name for c in cases] == ["wm_s7", "wm_s8"]
    assert report.notes[-1] == ("wm baselines drawn from 2 of m's 2 training cases (copies "
                                "under --baseline-data).")


def test_the_rim_pipeline_row_runs_the_model_best_on_validation() -> None:
    better_on_validation = ModelBundle(Path("a"), {"id": "a", "validation": {"roc_auc": 0.9}})
    worse = ModelBundle(Path("b"), {"id": "b", "validation": {"roc_auc": 0.8}})
    assert rim_benchmark.best_on_validation([worse, better_on_validation]).id == "a"


def test_rim_features_of_a_lesion_wrapped_in_another_are_defined(tmp_path: Path) -> None:
    """A lesion whose 2 mm shell is all other lesion (confluent lesions) still gets finite
    features: the shell then keeps the other lesion's voxels."""
    from test_rim_pipeline import make_case

    case = make_case(tmp_path / "case")
    truth_path = case / "truth" / "wm_lesions.nii.gz"
    truth_image = sitk.ReadImage(str(truth_path))
    truth = sitk.GetArrayFromImage(truth_image)
    z, y, x = np.mgrid[:truth.shape[0], :truth.shape[1], :truth.shape[2]]
    distance = np.sqrt((z - 24) ** 2 + (y - 24) ** 2 + (x - 32) ** 2)   # lesion 2's centre
    truth[(distance > 3.5) & (distance <= 7.0) & (truth == 0)] = 4
    wrapped = sitk.GetImageFromArray(truth)
    wrapped.CopyInformation(truth_image)
    sitk.WriteImage(wrapped, str(truth_path))
    with open(case / "truth" / "lesions.csv", "a", encoding="utf-8") as stream:
        stream.write("4,wm,wm,0\n")
    features, labels = rim_benchmark.lesion_features(case)
    assert len(labels) == 4 and np.isfinite(features).all()
