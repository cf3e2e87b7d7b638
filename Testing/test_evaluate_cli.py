"""`mslesionai evaluate` on tiny case folders laid out as the phantom and pipelines write them."""

import argparse
import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from MSLesionAILib.commands import evaluate as evaluate_command
from MSLesionAILib.errors import InputError
from MSLesionAILib.progress import Progress

SHAPE = (10, 12, 30)                         # numpy (z, y, x)


def write_labelmap(path, ids_zyx, spacing=(1.0, 1.0, 1.0)):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(ids_zyx.astype(np.uint16))
    image.SetSpacing(spacing)
    image.SetOrigin((5.0, -3.0, 2.0))
    sitk.WriteImage(image, str(path))
    return path


def write_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def truth_row(lesion_id, family, kind="", rim=0):
    return {"lesion_id": lesion_id, "family": family, "type": kind, "rim": rim, "volume_ul": 27,
            "centroid_r": 0, "centroid_a": 0, "centroid_s": 0, "confluent_group": 0}


def cubes(*ids_at_x):
    """3x3x3 cubes with the given ids, at x = 0, 5, 10, ... (0 leaves a place empty)."""
    ids = np.zeros(SHAPE, dtype=np.int32)
    for place, lesion_id in enumerate(ids_at_x):
        ids[2:5, 2:5, 5 * place:5 * place + 3] = lesion_id
    return ids


def evaluate(tmp_path, capsys, *argv):
    """Run the command as the CLI does (its parser and ``func``), without importing every other
    command (and torch): returns the exit code, the JSON report and what was printed."""
    parser = argparse.ArgumentParser()
    evaluate_command.register(parser.add_subparsers())
    out = tmp_path / f"metrics-{len(list(tmp_path.glob('metrics-*.json')))}.json"  # a new file
    args = parser.parse_args(["evaluate", *map(str, argv), "--json", str(out)])
    code = args.func(args, Progress())
    return code, json.loads(out.read_text(encoding="utf-8")), capsys.readouterr().out


def test_an_existing_json_file_is_refused_and_left_as_it_was(tmp_path, capsys):
    write_labelmap(tmp_path / "mask.nii.gz", cubes(1) != 0)
    (tmp_path / "mine.json").write_text("precious", encoding="utf-8")
    parser = argparse.ArgumentParser()
    evaluate_command.register(parser.add_subparsers())
    args = parser.parse_args(["evaluate", "--task", "wm", "--pred", str(tmp_path / "mask.nii.gz"),
                              "--truth", str(tmp_path / "mask.nii.gz"),
                              "--json", str(tmp_path / "mine.json")])
    with pytest.raises(InputError, match="--json: .* already exists"):
        args.func(args, Progress())
    assert (tmp_path / "mine.json").read_text(encoding="utf-8") == "precious"


def test_wm_against_a_case_folder_and_a_plain_mask(tmp_path, capsys):
    truth_ids = cubes(1, 2)
    write_labelmap(tmp_path / "case" / "truth" / "wm_lesions.nii.gz", truth_ids)
    write_labelmap(tmp_path / "mask.nii.gz", truth_ids != 0)
    write_labelmap(tmp_path / "out" / "wm_lesions.nii.gz", cubes(1))
    for truth in (tmp_path / "case", tmp_path / "mask.nii.gz"):
        code, report, printed = evaluate(tmp_path, capsys, "--task", "wm",
                                         "--pred", tmp_path / "out", "--truth", truth)
        case = report["cases"][0]
        # One of two lesions found exactly: Dice 2*27/81, sensitivity 1/2, precision 1.
        assert code == 0 and case["dice"] == pytest.approx(2 / 3)
        assert (case["sensitivity"], case["precision"]) == (0.5, 1.0)
        assert case["f1"] == pytest.approx(2 / 3)
        assert "sensitivity" in printed and "0.667" in printed


def test_wm_location_agreement_with_a_case_folder_that_types_its_lesions(tmp_path, capsys):
    write_labelmap(tmp_path / "case" / "truth" / "wm_lesions.nii.gz", cubes(1, 2, 3))
    write_csv(tmp_path / "case" / "truth" / "lesions.csv",
              [truth_row(1, "wm", "periventricular"), truth_row(2, "wm", "deep"),
               truth_row(3, "cortical", "leukocortical")])
    write_labelmap(tmp_path / "out" / "wm_lesions.nii.gz", cubes(1, 2, 3))
    write_csv(tmp_path / "out" / "lesions.csv",
              [{"lesion_id": 1, "location": "periventricular"},
               {"lesion_id": 2, "location": "juxtacortical"},
               {"lesion_id": 3, "location": "deep"}])
    _, report, printed = evaluate(tmp_path, capsys, "--task", "wm", "--pred", tmp_path / "out",
                                  "--truth", tmp_path / "case")
    # Lesions 1 and 2 lie on typed white-matter lesions, one location right; 3 on a cortical one.
    case = report["cases"][0]
    assert (case["location_agreement"], case["located_lesions"]) == (0.5, 2)
    assert "location_agreement" in printed


def test_wm_several_cases_and_json_has_no_nan(tmp_path, capsys):
    write_labelmap(tmp_path / "a" / "truth" / "wm_lesions.nii.gz", cubes(1))
    write_labelmap(tmp_path / "b" / "truth" / "wm_lesions.nii.gz", cubes(0))
    write_labelmap(tmp_path / "pa" / "wm_lesions.nii.gz", cubes(1))
    write_labelmap(tmp_path / "pb" / "wm_lesions.nii.gz", cubes(0))
    code, report, printed = evaluate(tmp_path, capsys, "--task", "wm",
                                     "--pred", tmp_path / "pa", tmp_path / "pb",
                                     "--truth", tmp_path / "a", tmp_path / "b")
    assert code == 0 and len(report["cases"]) == 2
    assert report["cases"][1]["volume_difference"] is None       # empty truth: undefined
    assert report["mean"]["f1"] == 1.0 and "mean" in printed


def test_wm_refuses_mismatched_grids_and_unpaired_cases(tmp_path, capsys):
    write_labelmap(tmp_path / "truth.nii.gz", cubes(1))
    write_labelmap(tmp_path / "pred.nii.gz", cubes(1), spacing=(1.0, 1.0, 2.0))
    with pytest.raises(InputError, match=r"not on the grid of the truth .*truth.nii.gz "
                                         r"\(spacing \[1.0, 1.0, 2.0\] vs \[1.0, 1.0, 1.0\]\)"):
        evaluate(tmp_path, capsys, "--task", "wm", "--pred", tmp_path / "pred.nii.gz",
                 "--truth", tmp_path / "truth.nii.gz")
    rotated = sitk.ReadImage(str(tmp_path / "truth.nii.gz"))
    c, r = np.cos(np.pi / 6), np.sin(np.pi / 6)
    rotated.SetDirection((c, -r, 0.0, r, c, 0.0, 0.0, 0.0, 1.0))
    sitk.WriteImage(rotated, str(tmp_path / "rotated.nii.gz"))
    with pytest.raises(InputError, match=r"truth.nii.gz \(direction \[0.866, -0.5, 0.0, 0.5, "
                                         r"0.866, 0.0, 0.0, 0.0, 1.0\] vs \[1.0, 0.0"):
        evaluate(tmp_path, capsys, "--task", "wm", "--pred", tmp_path / "rotated.nii.gz",
                 "--truth", tmp_path / "truth.nii.gz")
    nudged = sitk.ReadImage(str(tmp_path / "truth.nii.gz"))   # 3 µm: below the rounding shown
    nudged.SetOrigin(tuple(np.add(nudged.GetOrigin(), 0.003)))
    sitk.WriteImage(nudged, str(tmp_path / "nudged.nii.gz"))
    with pytest.raises(InputError, match=r"truth.nii.gz \(size \[30, 12, 10\] vs \[30, 12, 10\], "
                                         r"spacing .*, origin"):
        evaluate(tmp_path, capsys, "--task", "wm", "--pred", tmp_path / "nudged.nii.gz",
                 "--truth", tmp_path / "truth.nii.gz")
    with pytest.raises(InputError, match="one prediction per truth"):
        evaluate(tmp_path, capsys, "--task", "wm", "--pred", tmp_path / "pred.nii.gz",
                 tmp_path / "pred.nii.gz", "--truth", tmp_path / "truth.nii.gz")


def test_images_that_are_not_3d_label_images_are_refused_in_one_line(tmp_path, capsys):
    write_labelmap(tmp_path / "truth.nii.gz", cubes(1))
    sitk.WriteImage(sitk.GetImageFromArray(cubes(1)[3].astype(np.uint16)),
                    str(tmp_path / "slice.nii.gz"))
    with pytest.raises(InputError, match="--pred: is 2D"):
        evaluate(tmp_path, capsys, "--task", "wm", "--pred", tmp_path / "slice.nii.gz",
                 "--truth", tmp_path / "truth.nii.gz")
    for name, value in (("probability", 0.3), ("negative", -1.0)):
        image = sitk.GetImageFromArray((cubes(1) != 0) * value)
        image.SetOrigin((5.0, -3.0, 2.0))
        sitk.WriteImage(image, str(tmp_path / f"{name}.nii.gz"))
        with pytest.raises(InputError, match=f"--truth: .*{name}.nii.gz holds 27 voxels that "
                                             f"are not whole numbers 0 or above .e.g. {value:g}"):
            evaluate(tmp_path, capsys, "--task", "wm", "--pred", tmp_path / "truth.nii.gz",
                     "--truth", tmp_path / f"{name}.nii.gz")


@pytest.mark.parametrize("option, value", [("--min-volume", "nan"), ("--min-volume", "inf"),
                                           ("--min-volume", "-1"), ("--threshold", "2"),
                                           ("--threshold", "nan")])
def test_volumes_and_thresholds_out_of_range_are_refused_by_the_parser(tmp_path, capsys, option,
                                                                       value):
    with pytest.raises(SystemExit):
        evaluate(tmp_path, capsys, "--task", "cortical", "--pred", tmp_path,
                 "--truth", tmp_path, option, value)
    expected = {"--min-volume": "a volume in µL (0 or more)",
                "--threshold": "a probability (0 to 1)"}[option]
    assert f"argument {option}: '{value}' is not {expected}" in capsys.readouterr().err


def test_a_prediction_stored_in_another_orientation_is_scored_on_the_truths_voxels(
        tmp_path, capsys):
    """The same voxels written LAS (as FSL does) against an LPS truth: reordered, not refused;
    a grid that differs also in its voxels is refused, its orientation named."""
    truth = write_labelmap(tmp_path / "truth.nii.gz", cubes(1, 0, 2))
    pred = write_labelmap(tmp_path / "pred.nii.gz", cubes(1, 0, 0))
    sitk.WriteImage(sitk.DICOMOrient(sitk.ReadImage(str(pred)), "LAS"),
                    str(tmp_path / "pred_las.nii.gz"))
    _, as_written, _ = evaluate(tmp_path, capsys, "--task", "wm", "--pred", pred,
                                "--truth", truth)
    _, reoriented, _ = evaluate(tmp_path, capsys, "--task", "wm", "--pred",
                                tmp_path / "pred_las.nii.gz", "--truth", truth)
    assert as_written["cases"][0]["dice"] > 0
    assert reoriented["cases"][0]["dice"] == as_written["cases"][0]["dice"]
    coarse = sitk.DICOMOrient(sitk.ReadImage(str(truth))[::2, :, :], "LAS")
    sitk.WriteImage(coarse, str(tmp_path / "coarse_las.nii.gz"))
    with pytest.raises(InputError, match="orientation LAS vs LPS"):
        evaluate(tmp_path, capsys, "--task", "wm", "--pred", tmp_path / "coarse_las.nii.gz",
                 "--truth", truth)


def test_cortical_case_folder(tmp_path, capsys):
    truth = tmp_path / "case" / "truth"
    write_labelmap(truth / "cortical_lesions.nii.gz", cubes(3, 0, 4))
    write_labelmap(truth / "wm_lesions.nii.gz", cubes(0, 0, 0, 0, 1))
    write_csv(truth / "lesions.csv", [truth_row(1, "wm"), truth_row(3, "cortical", "leukocortical"),
                                      truth_row(4, "cortical", "subpial")])
    pred = tmp_path / "out"
    write_labelmap(pred / "cortical_lesions.nii.gz", cubes(1, 0, 0, 0, 2))
    write_csv(pred / "lesions.csv", [{"lesion_id": 1, "class": "leukocortical"},
                                     {"lesion_id": 2, "class": "intracortical_subpial"}])
    code, report, printed = evaluate(tmp_path, capsys, "--task", "cortical", "--pred", pred,
                                     "--truth", tmp_path / "case", "--min-volume", 1, 30)
    at_1, at_30 = report["by_min_volume"]
    # Lesion 3 found and well classified, lesion 4 missed; predicted 2 lies in a WM lesion.
    assert code == 0
    assert (at_1["ltpr"], at_1["lfpr"], at_1["pred_lesions"]) == (0.5, 0.0, 1)
    assert (at_1["ltpr_leukocortical"], at_1["ltpr_subpial"]) == (1.0, 0.0)
    assert at_1["classification_accuracy"] == 1.0
    assert at_30["truth_lesions"] == 0 and at_30["ltpr"] is None   # 27 µL lesions < 30 µL
    assert "ltpr_subpial" in printed


def rim_case(tmp_path, probabilities, calls):
    truth = tmp_path / "case" / "truth"
    write_labelmap(truth / "wm_lesions.nii.gz", cubes(1, 2, 3, 4))
    write_csv(truth / "lesions.csv", [truth_row(1, "wm", rim=1), truth_row(2, "wm", rim=0),
                                      truth_row(3, "wm", rim=1), truth_row(4, "wm", rim=1)])
    pred = tmp_path / "out"
    write_labelmap(pred / "rim_lesions.nii.gz", cubes(1, 2, 3))          # lesion 4: no candidate
    rows = zip(probabilities, calls, strict=True)
    write_csv(pred / "lesions.csv", [{"lesion_id": k + 1, "rim_probability": p, "rim_positive": c}
                                     for k, (p, c) in enumerate(rows)])
    return pred, tmp_path / "case"


def test_rim_operating_point_threshold_and_curves(tmp_path, capsys):
    pred, case = rim_case(tmp_path, [0.9, 0.2, 0.6], [1, 0, 0])
    code, report, _ = evaluate(tmp_path, capsys, "--task", "rim", "--pred", pred,
                               "--truth", case, "--curves", tmp_path / "curves.png")
    # Candidates rim+ (0.9), rim− (0.2), rim+ (0.6): perfectly ranked; the pipeline's calls
    # find one of two; truth lesion 4 (rim+) had no candidate.
    assert code == 0 and report["roc_auc"] == 1.0
    assert (report["sensitivity"], report["specificity"]) == (0.5, 1.0)
    assert report["missed_rim_positive"] == 1
    # 3 rim+ in truth and 1 called: both under 4, so the patient is right.
    assert (report["truth_prl_counts"], report["pred_prl_counts"]) == ([3], [1])
    assert report["patient_accuracy"] == 1.0
    assert report["calls"] == "rim_positive (the model's operating point)"
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    code, report, printed = evaluate(tmp_path, capsys, "--task", "rim", "--pred", pred,
                                     "--truth", case, "--threshold", 0.5)
    assert report["sensitivity"] == 1.0 and report["pred_prl_counts"] == [2]
    assert printed.splitlines()[-1].split() == ["calls", "rim_probability", ">=", "0.5"]
    assert "None" not in printed


def test_rim_curves_that_cannot_be_drawn_are_reported_not_silently_skipped(tmp_path, capsys):
    pred, case = rim_case(tmp_path, [0.9, 0.2, 0.6], [1, 0, 0])
    write_csv(case / "truth" / "lesions.csv", [truth_row(k, "wm", rim=1) for k in (1, 2, 3, 4)])
    code, report, printed = evaluate(tmp_path, capsys, "--task", "rim", "--pred", pred,
                                     "--truth", case, "--curves", tmp_path / "curves.png")
    assert code == 0 and not (tmp_path / "curves.png").exists()
    assert report["curves"] == "not drawn: the candidates are all rim+ in the truth, so no curve"
    assert "not drawn" in printed


def test_a_rim_result_at_a_point_is_not_scored_as_a_patients_candidates(tmp_path, capsys):
    pred, case = rim_case(tmp_path, [0.9, 0.2, 0.6], [1, 0, 0])
    (pred / "summary.json").write_text(json.dumps({"point": {"lesion_id": 1}}), encoding="utf-8")
    with pytest.raises(InputError, match="is a --point result"):
        evaluate(tmp_path, capsys, "--task", "rim", "--pred", pred, "--truth", case)


def test_rim_needs_an_output_folder(tmp_path, capsys):
    pred, case = rim_case(tmp_path, [0.9, 0.2, 0.6], [1, 0, 0])
    with pytest.raises(InputError, match="not a rim output folder"):
        evaluate(tmp_path, capsys, "--task", "rim", "--pred", pred / "rim_lesions.nii.gz",
                 "--truth", case)
