"""The cortical pipeline end to end on a tiny oblique case: geometry, files, refusals,
fine-tuning; and the shipped bundle through the command line on a cropped phantom."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MSLesionAILib.bundles import find_bundle, list_bundles, load_bundle, write_bundle
from MSLesionAILib.cli import EXIT_ERROR, build_parser, main
from MSLesionAILib.errors import Cancelled
from MSLesionAILib.geometry import index_zyx_to_ras
from MSLesionAILib.labels import CLAIMS_MIN_VOLUMES_UL, INTRACORTICAL_SUBPIAL, LEUKOCORTICAL
from MSLesionAILib.mrml import read_seg_nrrd
from MSLesionAILib.networks import build_network, load_network
from MSLesionAILib.pipelines import cortical
from MSLesionAILib.progress import Progress
from MSLesionAILib.training import cortical as trainer
from MSLesionAILib.training.cortical_data import TrainingCase, load_case

SIZE_ZYX = (20, 28, 24)
SPACING_XYZ = (0.6, 0.6, 0.7)
LESION_CENTRES_ZYX = {1: (6, 9, 8), 2: (13, 18, 15)}     # truth ids 1, 2
WM_CENTRE_ZYX = (10, 20, 6)


def oblique_direction(angle_deg: float = 25.0) -> tuple[float, ...]:
    a = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    return tuple(rotation.ravel())


def image_like(voxels: np.ndarray, origin=(12.0, -30.0, 40.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(voxels)
    image.SetSpacing(SPACING_XYZ)
    image.SetOrigin(origin)
    image.SetDirection(oblique_direction())
    return image


def ball(centre_zyx, radius=2.0) -> np.ndarray:
    z, y, x = np.ogrid[tuple(slice(0, s) for s in SIZE_ZYX)]
    return ((z - centre_zyx[0]) ** 2 + (y - centre_zyx[1]) ** 2
            + (x - centre_zyx[2]) ** 2) <= radius ** 2


def write_case(folder: Path, seed: int = 0) -> Path:
    """A tiny 'cortex' block with two dark cortical lesions and one white-matter lesion."""
    rng = np.random.default_rng(seed)
    mp2rage = rng.normal(100, 3, SIZE_ZYX).astype(np.float32)
    ids = np.zeros(SIZE_ZYX, np.uint16)
    for lesion_id, centre in LESION_CENTRES_ZYX.items():
        ids[ball(centre)] = lesion_id
        mp2rage[ball(centre)] -= 40
    wm = ball(WM_CENTRE_ZYX).astype(np.uint8)
    mp2rage[wm > 0] -= 40
    (folder / "truth").mkdir(parents=True)
    sitk.WriteImage(image_like(mp2rage), str(folder / "mp2rage.nii.gz"))
    sitk.WriteImage(image_like(ids), str(folder / "truth" / "cortical_lesions.nii.gz"))
    sitk.WriteImage(image_like(wm), str(folder / "truth" / "wm_lesions.nii.gz"))
    with open(folder / "truth" / "lesions.csv", "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["lesion_id", "family", "type", "volume_ul"])
        writer.writerow([1, "cortical", "leukocortical", 8.0])
        writer.writerow([2, "cortical", "subpial", 8.0])
        writer.writerow([1, "wm", "", 8.0])
    return folder


def tiny_bundle(folder: Path, background_bias: float = 0.0) -> Path:
    metadata = {
        "id": "cortical-tiny", "version": "1.0.0", "task": "cortical",
        "architecture": "claims_unet",
        "network": {"in_channels": 1, "out_channels": 3, "features": [4, 4, 8, 8]},
        "inputs": [{"name": "mp2rage", "required": True}],
        "classes": ["background", "leukocortical", "intracortical_subpial"],
        "spacing_mm": [0.8, 0.8, 0.8], "patch_size": [16, 16, 16],
        "inference": {"roi_size": [16, 16, 16], "overlap": 0.25, "batch_size": 2},
        "postprocessing": {"threshold": 0.5},
    }
    torch.manual_seed(0)
    network = build_network("claims_unet", **metadata["network"])
    with torch.no_grad():
        network.head.bias[:] = torch.tensor([background_bias, 0.0, 0.0])
    write_bundle(folder, metadata, network.state_dict())
    return folder


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    return write_case(tmp_path_factory.mktemp("cortical") / "case_000")


def dark_voxels_are_lesions(network, channels, bundle, device, warnings, progress):
    """Stands in for the network: voxels much darker than the tissue are leukocortical."""
    lesion = (channels[0] < -2.5) & (channels[0] != 0)
    return np.stack([~lesion, lesion, np.zeros_like(lesion)]).astype(np.float32)


def dark_voxels_classed_by_position(network, channels, bundle, device, warnings,
                                    progress) -> np.ndarray:
    """Stands in for the network: dark voxels are lesions, leukocortical in the front half of
    the grid (lower A-P index: truth lesion 1) and intracortical/subpial behind (truth lesion 2
    and the white-matter lesion)."""
    lesion = (channels[0] < -2.5) & (channels[0] != 0)
    behind = np.arange(channels.shape[2])[None, :, None] >= channels.shape[2] // 2
    return np.stack([~lesion, lesion & ~behind, lesion & behind]).astype(np.float32)


def run_cortical(mp2rage: Path, out: Path, bundle: Path, *extra: str) -> dict[str, Any]:
    """``mslesionai cortical`` on the CPU; its summary.json."""
    assert main(["cortical", "--mp2rage", str(mp2rage), "--out", str(out),
                 "--model", str(bundle), "--device", "cpu", *extra]) == 0
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def read_rows(table: Path) -> list[dict[str, str]]:
    with open(table, encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def test_outputs_are_in_the_oblique_mp2rage_geometry(case, tmp_path, monkeypatch):
    monkeypatch.setattr(cortical, "class_probabilities", dark_voxels_are_lesions)
    bundle = load_bundle(tiny_bundle(tmp_path / "bundle"))
    out = tmp_path / "out"
    assert main(["cortical", "--mp2rage", str(case / "mp2rage.nii.gz"), "--out", str(out),
                 "--model", str(bundle.path), "--device", "cpu",
                 "--wm-lesions", str(case / "truth" / "wm_lesions.nii.gz")]) == 0
    mp2rage = sitk.ReadImage(str(case / "mp2rage.nii.gz"))
    labelmap = sitk.ReadImage(str(out / "cortical_lesions.nii.gz"))
    assert labelmap.GetSize() == mp2rage.GetSize()
    assert np.allclose(labelmap.GetDirection(), mp2rage.GetDirection(), atol=1e-6)
    assert np.allclose(labelmap.GetOrigin(), mp2rage.GetOrigin(), atol=1e-4)
    with open(out / "lesions.csv", encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0])[:8] == ["lesion_id", "class", "volume_ul", "voxels", "centroid_r",
                                 "centroid_a", "centroid_s", "probability"]
    cortical_rows = [r for r in rows if r["overlaps_wm_lesion"] == "0"]
    assert len(rows) == 3 and len(cortical_rows) == 2
    found = np.array([[float(r[k]) for k in ("centroid_r", "centroid_a", "centroid_s")]
                      for r in cortical_rows])
    for centre in LESION_CENTRES_ZYX.values():
        expected = index_zyx_to_ras(mp2rage, np.array([centre]))[0]
        assert np.linalg.norm(found - expected, axis=1).min() < 0.6
    ids = sitk.GetArrayFromImage(labelmap)
    assert set(np.unique(ids)) == {0, 1, 2, 3}
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["cortical_total"] == 2
    assert summary["counts"]["overlapping_wm_lesions"] == 1
    assert summary["model"]["id"] == "cortical-tiny" and summary["warnings"] == []
    assert (out / "cortical.seg.nrrd").is_file()


def test_a_probability_map_as_wm_lesion_mask_flags_at_one_half_with_a_warning(
        case, tmp_path, monkeypatch):
    """0.3 over the whole field of view would flag every lesion if read as "not 0"."""
    monkeypatch.setattr(cortical, "class_probabilities", dark_voxels_are_lesions)
    wm = sitk.ReadImage(str(case / "truth" / "wm_lesions.nii.gz"), sitk.sitkFloat32)
    sitk.WriteImage(wm * 0.5 + 0.3, str(tmp_path / "wm_probability.nii.gz"))
    out = tmp_path / "out"
    assert main(["cortical", "--mp2rage", str(case / "mp2rage.nii.gz"), "--out", str(out),
                 "--model", str(tiny_bundle(tmp_path / "bundle")), "--device", "cpu",
                 "--wm-lesions", str(tmp_path / "wm_probability.nii.gz")]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["overlapping_wm_lesions"] == 1
    assert summary["counts"]["cortical_total"] == 2
    assert [w for w in summary["warnings"] if "probability map" in w]


def test_no_lesions_gives_an_empty_table(case, tmp_path):
    bundle = tiny_bundle(tmp_path / "bundle", background_bias=50.0)
    out = tmp_path / "out"
    assert main(["cortical", "--mp2rage", str(case / "mp2rage.nii.gz"), "--out", str(out),
                 "--model", str(bundle), "--device", "cpu", "--min-volume-ul", "3"]) == 0
    with open(out / "lesions.csv", encoding="utf-8", newline="") as stream:
        assert list(csv.DictReader(stream)) == []
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["cortical_total"] == 0
    assert not sitk.GetArrayFromImage(sitk.ReadImage(str(out / "cortical_lesions.nii.gz"))).any()


def test_no_lesion_is_looked_for_in_a_uni_background(case, tmp_path):
    """A UNI that is not skull-stripped: the tiny case surrounded by salt-and-pepper noise.
    A network that calls every voxel lesion finds one in the head only, with a warning."""
    rng = np.random.default_rng(3)
    tissue = sitk.GetArrayFromImage(sitk.ReadImage(str(case / "mp2rage.nii.gz")))
    margin = 10
    voxels = rng.uniform(0, 110, [n + 2 * margin for n in SIZE_ZYX]).astype(np.float32)
    head = (slice(margin, -margin),) * 3
    voxels[head] = tissue
    uni = tmp_path / "uni.nii.gz"
    sitk.WriteImage(image_like(voxels), str(uni))
    bundle = tiny_bundle(tmp_path / "bundle", background_bias=-50.0)
    out = tmp_path / "out"
    assert main(["cortical", "--mp2rage", str(uni), "--out", str(out), "--model", str(bundle),
                 "--device", "cpu"]) == 0
    ids = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "cortical_lesions.nii.gz")))
    near_head = np.zeros(ids.shape, bool)
    near_head[tuple(slice(margin - 2, n - margin + 2) for n in ids.shape)] = True
    deep_in_head = (slice(margin + 2, -margin - 2),) * 3  # the box blurs the head's border
    assert ids[deep_in_head].all() and not ids[~near_head].any()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["cortical_total"] == 1
    assert any("salt-and-pepper" in warning for warning in summary["warnings"])


def test_t2star_that_does_not_overlap_is_refused_in_one_line(case, tmp_path, capsys):
    far_away = image_like(np.ones(SIZE_ZYX, np.float32) + np.arange(SIZE_ZYX[2]),
                          origin=(500.0, 500.0, 500.0))
    sitk.WriteImage(far_away, str(tmp_path / "t2star.nii.gz"))
    code = main(["cortical", "--mp2rage", str(case / "mp2rage.nii.gz"), "--t2star-gre",
                 str(tmp_path / "t2star.nii.gz"), "--out", str(tmp_path / "out"),
                 "--model", str(tiny_bundle(tmp_path / "bundle"))])
    error = capsys.readouterr().err.strip()
    assert code == EXIT_ERROR and not (tmp_path / "out").exists()
    assert len(error.splitlines()) == 1 and "--t2star-gre: does not overlap" in error


def test_an_mp2rage_a_few_millimetres_across_is_refused_in_one_line(case, tmp_path, capsys):
    """A 7 mm crop: the network would see padding, and call lesions in it, without a word."""
    sitk.WriteImage(sitk.ReadImage(str(case / "mp2rage.nii.gz"))[:, :, 5:15],
                    str(tmp_path / "slab.nii.gz"))
    code = main(["cortical", "--mp2rage", str(tmp_path / "slab.nii.gz"), "--out",
                 str(tmp_path / "out"), "--model", str(tiny_bundle(tmp_path / "bundle"))])
    error = capsys.readouterr().err.strip()
    assert code == EXIT_ERROR and not (tmp_path / "out").exists()
    assert len(error.splitlines()) == 1
    assert ("--mp2rage: field of view [14.4, 16.8, 7.0] mm is smaller than a cortical region"
            in error)


def test_coarse_mp2rage_is_processed_with_a_warning(case, tmp_path):
    coarse = sitk.ReadImage(str(case / "mp2rage.nii.gz"))
    coarse.SetSpacing((1.0, 1.0, 1.5))
    bundle = load_bundle(tiny_bundle(tmp_path / "bundle", background_bias=50.0))
    warnings = cortical.input_warnings({"mp2rage": coarse}, bundle)
    assert len(warnings) == 1 and "coarser than 1.2 mm" in warnings[0]
    at_the_limit = sitk.Image(coarse)
    at_the_limit.SetSpacing((1.0, 1.0, float(np.float32(1.2))))  # 1.2000000477 in a header
    assert cortical.input_warnings({"mp2rage": at_the_limit}, bundle) == []


def test_a_coarse_mp2rage_is_processed_and_its_warning_reaches_summary_json(
        case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cortical, "class_probabilities", dark_voxels_are_lesions)
    coarse = sitk.ReadImage(str(case / "mp2rage.nii.gz"))
    coarse.SetSpacing((1.0, 1.0, 1.5))
    sitk.WriteImage(coarse, str(tmp_path / "coarse.nii.gz"))
    out = tmp_path / "out"
    summary = run_cortical(tmp_path / "coarse.nii.gz", out, tiny_bundle(tmp_path / "bundle"))
    assert summary["warnings"][1:] == [cortical.NO_WM_LESIONS_WARNING]   # none was given
    assert "coarser than 1.2 mm" in summary["warnings"][0]
    assert summary["mp2rage_spacing_mm"] == [1.0, 1.0, 1.5]
    labelmap = sitk.ReadImage(str(out / "cortical_lesions.nii.gz"))
    assert labelmap.GetSpacing() == (1.0, 1.0, 1.5) and labelmap.GetSize() == coarse.GetSize()
    ids = sitk.GetArrayFromImage(labelmap)
    assert all(ids[centre] for centre in LESION_CENTRES_ZYX.values())   # the lesions are found


@pytest.mark.parametrize("with_wm_mask", [True, False])
def test_summary_volumes_timings_and_segments(case: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              with_wm_mask: bool) -> None:
    """Volumes per class leave flagged lesions out; each lesion's voxels are in its segment."""
    monkeypatch.setattr(cortical, "class_probabilities", dark_voxels_classed_by_position)
    out = tmp_path / "out"
    mask = ["--wm-lesions", str(case / "truth" / "wm_lesions.nii.gz")] if with_wm_mask else []
    summary = run_cortical(case / "mp2rage.nii.gz", out, tiny_bundle(tmp_path / "bundle"),
                           *mask)
    rows = read_rows(out / "lesions.csv")
    flagged = [row for row in rows if row["overlaps_wm_lesion"] == "1"]
    counted = [row for row in rows if row["overlaps_wm_lesion"] == "0"]
    assert len(rows) == 3 and len(flagged) == (1 if with_wm_mask else 0)
    assert sorted(row["class"] for row in counted) == sorted(
        [INTRACORTICAL_SUBPIAL, LEUKOCORTICAL] + ([] if with_wm_mask else [INTRACORTICAL_SUBPIAL]))
    expected = {name: sum(float(row["volume_ul"]) for row in counted if row["class"] == name)
                for name in (LEUKOCORTICAL, INTRACORTICAL_SUBPIAL)}
    expected["cortical_total"] = expected[LEUKOCORTICAL] + expected[INTRACORTICAL_SUBPIAL]
    assert summary["volumes_ul"] == pytest.approx(expected, abs=2e-3)
    assert min(expected.values()) > 4.0                    # each class has a lesion (~10 µL)
    timings = summary["timings_s"]
    assert set(timings) == {"loading", "preprocessing", "inference", "resampling",
                            "postprocessing"}
    assert all(isinstance(s, float) and s >= 0 for s in timings.values())
    labels, segments = read_seg_nrrd(out / "cortical.seg.nrrd")
    names = {segment.value: segment.name for segment in segments}
    assert list(names.values()) == ["leukocortical lesion", "intracortical/subpial lesion",
                                    *(["white-matter lesion"] if with_wm_mask else [])]
    segment_of_voxel = sitk.GetArrayFromImage(labels)
    ids = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "cortical_lesions.nii.gz")))
    assert segment_of_voxel.shape == ids.shape
    for row in rows:
        values = np.unique(segment_of_voxel[ids == int(row["lesion_id"])])
        expected_name = ("white-matter lesion" if row["overlaps_wm_lesion"] == "1" else
                         {LEUKOCORTICAL: "leukocortical lesion",
                          INTRACORTICAL_SUBPIAL: "intracortical/subpial lesion"}[row["class"]])
        assert [names[v] for v in values] == [expected_name]
    assert not segment_of_voxel[ids == 0].any()


def test_fine_tuning_writes_a_new_loadable_bundle(case, tmp_path, capsys):
    parent = tiny_bundle(tmp_path / "parent")
    metadata = json.loads((parent / "metadata.json").read_text())
    metadata["postprocessing"]["threshold_selection"] = {"validation_cases": ["parent's"]}
    (parent / "metadata.json").write_text(json.dumps(metadata))
    out = tmp_path / "finetuned"
    assert main(["finetune", "cortical", "--cases", str(case.parent), "--from", str(parent),
                 "--out", str(out), "--steps", "2", "--patch-size", "16",
                 "--batch-size", "1", "--threads", "1"]) == 0
    threshold = load_bundle(parent).metadata["postprocessing"]["threshold"]
    assert (f"operating point: the parent's, score ≥ {threshold}; a threshold chosen on another "
            "site") in capsys.readouterr().out
    bundle = load_bundle(out)
    assert bundle.metadata["version"] == "1.1.0" and bundle.id == "cortical-tiny-finetuned"
    assert bundle.metadata["parent"]["id"] == "cortical-tiny"
    assert bundle.metadata["parent"]["sha256"] == load_bundle(parent).weights_sha256
    assert bundle.weights_sha256 != load_bundle(parent).weights_sha256
    assert find_bundle(str(out), "cortical").id == bundle.id
    load_network(bundle, torch.device("cpu"))
    assert bundle.metadata["fine_tuning"]["settings"]["lesion_class_weight"] == 1.0
    post = bundle.metadata["postprocessing"]  # the parent's threshold, marked as such
    assert post["threshold"] == threshold and "threshold_selection" not in post
    assert post["threshold_source"] == "parent cortical-tiny v1.0.0"


def test_fine_tuning_with_held_out_and_validation_cases_moves_the_bar_through_each_stage(
        case, tmp_path):
    """Held-out cases before, training, the threshold choice, held-out cases after: a quarter
    of the bar each, in that order (each of them takes minutes on a CPU)."""
    parent = tiny_bundle(tmp_path / "parent")
    args = build_parser().parse_args([
        "finetune", "cortical", "--cases", str(case.parent), "--from", str(parent),
        "--out", str(tmp_path / "out"), "--steps", "2", "--patch-size", "16",
        "--batch-size", "1", "--threads", "1", "--validation", str(case), "--eval", str(case)])
    seen = []
    progress = Progress(lambda fraction, message: seen.append((fraction, message)))
    assert args.func(args, progress) == 0
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert ((0.5, "choosing the threshold: validation case 1 of 1") in seen)


def test_fine_tuning_keeps_the_parents_lesion_class_weight_unless_given(case, tmp_path):
    parent = tiny_bundle(tmp_path / "parent")
    metadata = json.loads((parent / "metadata.json").read_text())
    metadata["training"] = {"settings": {"lesion_class_weight": 50.0}}
    (parent / "metadata.json").write_text(json.dumps(metadata))
    weights = {}
    for name, extra in (("kept", []), ("given", ["--lesion-weight", "3"])):
        assert main(["finetune", "cortical", "--cases", str(case.parent), "--from", str(parent),
                     "--out", str(tmp_path / name), "--steps", "1", "--patch-size", "16",
                     "--batch-size", "1", "--threads", "1", *extra]) == 0
        weights[name] = load_bundle(tmp_path / name).metadata["fine_tuning"]["settings"][
            "lesion_class_weight"]
    assert weights == {"kept": 50.0, "given": 3.0}


def dark_voxels_and_a_faint_false_lesion(images, network, bundle, device, warnings, progress,
                                         timer) -> tuple[np.ndarray, np.ndarray]:
    """Stands in for `cortical.lesion_probabilities`: on the MP2RAGE's grid, dark voxels (the
    two truth lesions and the white-matter lesion) are leukocortical with p 0.92, and a block
    in front of them is a false lesion with p 0.45."""
    progress.update(0.5, "halfway through a case")
    leukocortical = np.where(sitk.GetArrayFromImage(images["mp2rage"]) < 80, 0.92, 0.0)
    leukocortical[8:12, 0:4, 10:14] = 0.45
    return leukocortical.astype(np.float32), np.zeros(leukocortical.shape, np.float32)


def test_choosing_the_threshold_follows_each_validation_case_on_the_progress_bar(
        case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Minutes per whole-brain case on a CPU: the bar moves per case, and cancel stops it."""
    monkeypatch.setattr(cortical, "lesion_probabilities", dark_voxels_and_a_faint_false_lesion)
    bundle = load_bundle(tiny_bundle(tmp_path / "bundle"))
    seen = []
    trainer.choose_threshold(bundle, [case, case],
                             progress=Progress(lambda f, m: seen.append((f, m))))
    assert seen == [(0.0, "choosing the threshold: validation case 1 of 2"),
                    (0.25, "halfway through a case"),
                    (0.5, "choosing the threshold: validation case 2 of 2"),
                    (0.75, "halfway through a case")]
    cancelled = Progress()
    cancelled.cancel.set()
    with pytest.raises(Cancelled):
        trainer.choose_threshold(bundle, [case], progress=cancelled)


def test_the_threshold_chosen_on_validation_cases_is_written_into_the_bundle(
        case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to 0.4 the false lesion costs F1 (2 found of 2, 1 false of 3: 0.8); up to 0.9 F1 is
    1; above, nothing is found. The highest of the best thresholds is chosen."""
    monkeypatch.setattr(cortical, "lesion_probabilities", dark_voxels_and_a_faint_false_lesion)
    bundle = load_bundle(tiny_bundle(tmp_path / "bundle"))
    selection = trainer.choose_threshold(bundle, [case])
    f1 = {str(t): 0.8 if t < 0.45 else 1.0 if t <= 0.9 else 0.0
          for t in trainer.THRESHOLD_CANDIDATES}
    assert selection == {"threshold": 0.9, "validation_cases": [case.name],
                         "f1_by_threshold": f1}
    calibrated = trainer.calibrate(bundle, [case])
    assert calibrated.metadata == load_bundle(bundle.path).metadata     # written, reloaded
    assert calibrated.metadata["postprocessing"] == {
        **bundle.metadata["postprocessing"], "threshold": 0.9, "threshold_selection": selection}
    assert calibrated.weights_sha256 == bundle.weights_sha256


def test_held_out_figures_come_from_the_whole_pipeline_and_are_stored_by_name(
        case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cortical, "class_probabilities", dark_voxels_classed_by_position)
    bundle = load_bundle(tiny_bundle(tmp_path / "bundle"))
    metrics = trainer.evaluate_bundle(bundle, [case])
    assert [m["min_volume_ul"] for m in metrics] == list(CLAIMS_MIN_VOLUMES_UL)
    at_1_ul = metrics[0]      # the white-matter lesion (no mask given to the pipeline) is left out
    assert {k: at_1_ul[k] for k in ("truth_lesions", "pred_lesions", "detected",
                                    "false_positives", "ltpr", "lfpr",
                                    "classification_accuracy")} == {
        "truth_lesions": 2, "pred_lesions": 2, "detected": 2, "false_positives": 0,
        "ltpr": 1.0, "lfpr": 0.0, "classification_accuracy": 1.0}
    assert at_1_ul["median_seconds_per_case"] > 0
    assert metrics[-1]["truth_lesions"] == 0 and np.isnan(metrics[-1]["ltpr"])   # ≥ 15 µL
    trainer.record_metrics(bundle, "before (not stored)", metrics, store=False)
    assert "metrics" not in load_bundle(bundle.path).metadata
    trainer.record_metrics(bundle, "held_out", metrics)
    trainer.record_metrics(load_bundle(bundle.path), "second_site", metrics[:1])
    stored = load_bundle(bundle.path).metadata["metrics"]
    assert list(stored) == ["held_out", "second_site"] and len(stored["held_out"]) == 5
    assert all("per_case" not in m for m in stored["held_out"])
    assert stored["held_out"][0]["ltpr"] == 1.0 and stored["held_out"][-1]["ltpr"] is None
    printed = capsys.readouterr().out
    assert "v1.0.0 on before (not stored):\n≥1 µL: truth 2 pred 2 ltpr 1.000" in printed


@pytest.mark.parametrize("command", ["train", "finetune"])
def test_validation_and_eval_options_calibrate_and_store_the_new_models_figures(
        case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], command: str) -> None:
    """Fine-tuning prints its parent's figures first and stores nothing in the parent."""
    monkeypatch.setattr(cortical, "class_probabilities", dark_voxels_classed_by_position)
    parent = tiny_bundle(tmp_path / "parent")
    parent_metadata = load_bundle(parent).metadata
    out = tmp_path / "new"
    start = (["train", "cortical", "--data", str(case.parent)] if command == "train" else
             ["finetune", "cortical", "--cases", str(case.parent), "--from", str(parent)])
    assert main(["--progress", "none", *start, "--out", str(out), "--steps", "1",
                 "--patch-size", "16", "--batch-size", "1", "--threads", "1",
                 "--validation", str(case.parent), "--eval", str(case)]) == 0
    post = load_bundle(out).metadata["postprocessing"]
    assert post["threshold_selection"]["validation_cases"] == [case.name]
    assert post["threshold"] == post["threshold_selection"]["threshold"]
    stored_as = "held_out" if command == "train" else "held_out_new_site"
    assert list(load_bundle(out).metadata["metrics"]) == [stored_as]
    assert load_bundle(out).metadata["metrics"][stored_as][0]["ltpr"] == 1.0
    assert load_bundle(parent).metadata == parent_metadata
    printed = capsys.readouterr().out
    assert ("on held_out_new_site, before fine-tuning (not stored):" in printed) == (
        command == "finetune")
    assert f"on {stored_as}:" in printed


SHIPPED = [b for b in list_bundles() if b.task == "cortical"]


@pytest.mark.skipif(not SHIPPED, reason="no cortical bundle shipped yet")
def test_shipped_bundle_runs_on_a_cropped_phantom(tmp_path):
    phantom = pytest.importorskip("MSLesionAILib.phantom")
    case = phantom.generate_case(7, kind="cortical", crop_mm=24.0)
    folder = tmp_path / "case"
    phantom.write_case(case, folder)
    out = tmp_path / "out"
    assert main(["cortical", "--mp2rage", str(folder / "mp2rage.nii.gz"), "--out", str(out),
                 "--device", "cpu"]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["model"]["id"] == SHIPPED[0].id
    labelmap = sitk.ReadImage(str(out / "cortical_lesions.nii.gz"))
    assert labelmap.GetSize() == sitk.ReadImage(str(folder / "mp2rage.nii.gz")).GetSize()


def test_training_continues_from_a_bundle_within_a_time_budget(case, tmp_path):
    common = ["--progress", "none", "train", "cortical", "--data", str(case.parent),
              "--patch-size", "16", "--batch-size", "1", "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "a"), "--steps", "1", "--workers", "2"]) == 0
    first = load_bundle(tmp_path / "a")
    assert main([*common, "--out", str(tmp_path / "b"), "--steps", "1000",
                 "--max-minutes", "0", "--init", str(first.path)]) == 0
    continued = load_bundle(tmp_path / "b")
    assert continued.metadata["training"]["steps_done"] == 0   # the budget was already spent
    assert continued.weights_sha256 == first.weights_sha256    # so the weights are the start's
    assert continued.metadata["parent"]["command"] == first.metadata["training"]["command"]


def test_a_continued_model_can_read_a_contrast_its_parent_did_not(case, tmp_path):
    """`--t2star-epi` with `--init` of an MP2RAGE-only model: the new channel starts unused."""
    with_epi = tmp_path / "cases" / case.name
    shutil.copytree(case, with_epi)
    shutil.copy(case / "mp2rage.nii.gz", with_epi / "t2star_epi.nii.gz")
    common = ["--progress", "none", "train", "cortical", "--data", str(with_epi.parent),
              "--patch-size", "16", "--batch-size", "1", "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "a"), "--steps", "1"]) == 0
    assert main([*common, "--out", str(tmp_path / "b"), "--steps", "1", "--max-minutes", "0",
                 "--t2star-epi", "--init", str(tmp_path / "a")]) == 0
    parent, child = load_bundle(tmp_path / "a"), load_bundle(tmp_path / "b")
    assert child.input_names == ["mp2rage", "t2star_epi"]
    [(key, weights)] = [(key, weights) for key, weights in child.load_state_dict().items()
                        if weights.dim() == 5 and weights.shape[1] == 2]   # the input layer
    torch.testing.assert_close(weights[:, :1], parent.load_state_dict()[key])
    assert not weights[:, 1].any()


def test_the_training_record_names_absolute_folders_and_phantom_seeds(case, tmp_path,
                                                                     monkeypatch):
    """The benchmark reads them from any working directory to keep held-out seeds clear."""
    phantom_case = tmp_path / "cases" / case.name
    shutil.copytree(case, phantom_case)
    (phantom_case / "case.json").write_text('{"seed": 6500}', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["--progress", "none", "train", "cortical", "--data", "cases", "--out", "a",
                 "--steps", "1", "--patch-size", "16", "--batch-size", "1"]) == 0
    data = load_bundle(tmp_path / "a").metadata["training"]["data"]
    assert data["folders"] == [str((tmp_path / "cases").resolve())] and data["seeds"] == [6500]


def test_training_an_input_no_case_has_is_refused(case, tmp_path, capsys):
    assert main(["train", "cortical", "--data", str(case.parent), "--t2star-epi",
                 "--out", str(tmp_path / "a"), "--steps", "1"]) != 0
    assert "--data: no training case has t2star_epi" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def classes_by_type(loaded: TrainingCase) -> list[list[int]]:
    """The class values found among each lesion type's voxels of a loaded training case."""
    return [np.unique(loaded.labels[tuple(v.T)]).tolist() for v in loaded.voxels_by_type]


def test_training_cases_keep_each_lesion_types_voxels(case):
    """Leukocortical voxels are class 1, subpial ones class 2, each type's voxels apart."""
    loaded = load_case(case, ["mp2rage"], (0.5, 0.5, 0.5))
    assert classes_by_type(loaded) == [[1], [2]]
    assert sum(len(v) for v in loaded.voxels_by_type) == len(loaded.lesion_voxels)


def test_a_type_outside_the_three_still_trains_the_second_class(case, tmp_path):
    """A user's table may call a lesion "intracortical_subpial": it is class 2, a type apart."""
    import shutil

    renamed = tmp_path / "renamed"
    shutil.copytree(case, renamed)
    table = renamed / "truth" / "lesions.csv"
    table.write_text(table.read_text(encoding="utf-8").replace("subpial", "intracortical_subpial"),
                     encoding="utf-8")
    loaded = load_case(renamed, ["mp2rage"], (0.5, 0.5, 0.5))
    assert classes_by_type(loaded) == [[1], [2]]
