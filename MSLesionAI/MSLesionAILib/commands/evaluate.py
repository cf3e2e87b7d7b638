"""`mslesionai evaluate`: score pipeline outputs against a truth, with the papers' metrics.

``--pred`` is a pipeline output folder (or a labelmap file); ``--truth`` a phantom case folder
(its ``truth/`` subfolder: ``wm_lesions.nii.gz``, ``cortical_lesions.nii.gz``, ``lesions.csv``)
or, for ``--task wm``, a lesion mask file. Several cases: give as many ``--pred`` as ``--truth``,
paired in order; per-patient statistics (medians, CCC, the ≥ 4 PRL rule) then have meaning.

- wm: Dice, volumes, MSSEG-2016 lesion-wise sensitivity / precision / F1 (`metrics.msseg`);
- cortical: CLAIMS's metrics at each minimum lesion volume (`metrics.cortical`);
- rim: lesion-wise ROC/PR AUC and the operating point, patient-wise ≥ 4 rule (`metrics.rim`).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..argtypes import probability, volume_ul
from ..atomic import make_folder, refuse_existing
from ..errors import InputError
from ..geometry import orientation_code, resample_like, same_grid, same_voxels
from ..imageio import read_image, validate_volume
from ..jsonfiles import read_json
from ..labels import CORTICAL_FAMILY, WM_FAMILY
from ..lesions import label_components
from ..metrics.cortical import MIN_VOLUMES_UL, CorticalCase, evaluate_cortical
from ..metrics.location import location_agreement
from ..metrics.msseg import CONNECTIVITY, wm_metrics
from ..metrics.overlap import finite_statistic, ratio
from ..metrics.rim import candidate_truth, patient_accuracy, plot_curves, rim_metrics
from ..progress import Progress
from ..results import read_table_csv

PRED_FILES = {"wm": "wm_lesions.nii.gz", "cortical": "cortical_lesions.nii.gz",
              "rim": "rim_lesions.nii.gz"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score a pipeline's output against a truth (Dice, lesion detection, AUC)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=tuple(PRED_FILES), required=True)
    parser.add_argument("--pred", type=Path, nargs="+", required=True,
                        help="pipeline output folder(s) or labelmap file(s)")
    parser.add_argument("--truth", type=Path, nargs="+", required=True,
                        help="phantom case folder(s), or lesion mask file(s) for --task wm")
    parser.add_argument("--json", type=Path, help="also write the metrics to this JSON file")
    parser.add_argument("--connectivity", type=int, choices=(6, 18, 26), default=CONNECTIVITY,
                        help="lesion connectivity for MSSEG (default 18, as DeepSCAN)")
    parser.add_argument("--min-volume", type=volume_ul, nargs="+", default=list(MIN_VOLUMES_UL),
                        metavar="UL", help="cortical: minimum lesion volumes in µL")
    parser.add_argument("--threshold", type=probability,
                        help="rim: call rim+ at rim_probability ≥ this instead of rim_positive")
    parser.add_argument("--curves", type=Path, help="rim: write the ROC/PR curves to this PNG")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    if len(args.pred) != len(args.truth):
        raise InputError(f"--pred: {len(args.pred)} given but --truth: {len(args.truth)}; "
                         "give one prediction per truth, paired in order")
    for option, path in (("--json", args.json), ("--curves", args.curves)):
        if path:
            refuse_existing([path], option)
            make_folder(path.parent, option)
    load_case, summarise = {"wm": (_wm_case, _summarise_wm),
                            "cortical": (_cortical_case, _summarise_cortical),
                            "rim": (_rim_case, _summarise_rim)}[args.task]
    cases = []
    for index, (pred_path, truth_path) in enumerate(zip(args.pred, args.truth, strict=True)):
        progress.update(index / len(args.pred), f"case {index + 1} of {len(args.pred)}")
        cases.append(load_case(pred_path, truth_path, args))
    report = {"task": args.task, "pred": [str(p) for p in args.pred],
              "truth": [str(t) for t in args.truth], **summarise(cases, args)}
    if args.json:
        args.json.write_text(json.dumps(_json_safe(report), indent=2) + "\n", encoding="utf-8")
    progress.update(1.0, "evaluated")
    return 0


def _wm_case(pred_path: Path, truth_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    truth_file = truth_path
    if truth_path.is_dir():
        truth_file = _truth_folder(truth_path) / "wm_lesions.nii.gz"
    truth, pred = _read_pair(truth_file, _pred_file(pred_path, "wm"))
    case = {"case": str(truth_path), **wm_metrics(_array(truth), _array(pred),
                                                  truth.GetSpacing()[::-1], args.connectivity)}
    truth_table, pred_table = truth_file.parent / "lesions.csv", pred_path / "lesions.csv"
    if truth_path.is_dir() and truth_table.is_file() and pred_table.is_file():
        agreeing, matched = location_agreement(
            _array(pred), _array(truth),
            {int(row["lesion_id"]): row["location"] for row in _read_csv(pred_table)},
            {int(row["lesion_id"]): row["type"] for row in _read_csv(truth_table)
             if row["family"] == WM_FAMILY})
        case |= {"location_agreement": ratio(agreeing, matched, if_empty=float("nan")),
                 "located_lesions": matched}
    return case


def _summarise_wm(cases: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    columns = ["dice", "volume_difference", "truth_lesions", "pred_lesions", "sensitivity",
               "precision", "f1", "ltpr", "lfpr"]
    if all("location_agreement" in case for case in cases):
        columns += ["location_agreement", "located_lesions"]
    mean = {key: finite_statistic((case[key] for case in cases), np.mean) for key in columns}
    rows = [[Path(case["case"]).name, *(case[key] for key in columns)] for case in cases]
    if len(cases) > 1:
        rows.append(["mean", *mean.values()])
    _print_table(["case", *columns], rows)
    return {"connectivity": args.connectivity, "cases": cases, "mean": mean}


def _cortical_case(pred_path: Path, truth_path: Path, args: argparse.Namespace) -> CorticalCase:
    folder = _truth_folder(truth_path)
    truth, pred = _read_pair(folder / "cortical_lesions.nii.gz",
                             _pred_file(pred_path, "cortical"))
    types = {int(row["lesion_id"]): row["type"] for row in _read_csv(folder / "lesions.csv")
             if row["family"] == CORTICAL_FAMILY}
    truth_ids = _array(truth).astype(np.int64)
    missing = set(np.unique(truth_ids[truth_ids != 0]).tolist()) - set(types)
    if missing:
        raise InputError(f"--truth: {folder / 'lesions.csv'} has no cortical row for lesion "
                         f"id(s) {sorted(missing)[:5]}")
    pred_table = pred_path / "lesions.csv"
    classes = ({int(row["lesion_id"]): row["class"] for row in _read_csv(pred_table)}
               if pred_path.is_dir() and pred_table.exists() else None)
    wm_mask = None
    if (folder / "wm_lesions.nii.gz").exists():
        wm_lesions = read_image(folder / "wm_lesions.nii.gz", "truth WM lesions")
        wm_mask = _array(resample_like(wm_lesions, truth, "nearest")) != 0
    return CorticalCase(truth_ids, types, _instances(_array(pred)), classes,
                        truth.GetSpacing()[::-1], wm_mask, name=truth_path.name)


def _summarise_cortical(cases: list[CorticalCase], args: argparse.Namespace) -> dict[str, Any]:
    results = evaluate_cortical(cases, args.min_volume)
    keys = [k for k in results[0] if k not in ("min_volume_ul", "per_case")]
    _print_table(["min volume (µL)", *(f"{r['min_volume_ul']:g}" for r in results)],
                 [[key, *(r[key] for r in results)] for key in keys])
    return {"by_min_volume": results}


def _rim_case(pred_path: Path, truth_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One case's candidates: truth labels, scores, rim+ calls; its truth PRL count, misses."""
    if not pred_path.is_dir():
        raise InputError(f"--pred: {pred_path} is not a rim output folder "
                         "(rim_lesions.nii.gz and lesions.csv with rim_probability, rim_positive)")
    summary = pred_path / "summary.json"
    if summary.is_file() and "point" in read_json(summary):
        raise InputError(f"--pred: {pred_path} is a --point result, one lesion's call; score "
                         "a run over all the candidates")
    folder = _truth_folder(truth_path)
    truth, pred = _read_pair(folder / "wm_lesions.nii.gz", pred_path / PRED_FILES["rim"])
    truth_rim = {int(row["lesion_id"]): int(row["rim"])
                 for row in _read_csv(folder / "lesions.csv") if row["family"] == WM_FAMILY}
    candidate_labels, missed = candidate_truth(_array(pred).astype(np.int64),
                                               _array(truth).astype(np.int64), truth_rim)
    rows = _read_csv(pred_path / "lesions.csv")
    scores = [float(row["rim_probability"]) for row in rows]
    calls = ([int(score >= args.threshold) for score in scores] if args.threshold is not None
             else [int(row["rim_positive"]) for row in rows])
    return {"labels": [candidate_labels.get(int(row["lesion_id"]), 0) for row in rows],
            "scores": scores, "calls": calls, "truth_prl_count": sum(truth_rim.values()),
            "missed": len(missed)}


def _summarise_rim(cases: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    labels, scores, calls = ([v for case in cases for v in case[key]]
                             for key in ("labels", "scores", "calls"))
    truth_counts = [case["truth_prl_count"] for case in cases]
    pred_counts = [sum(case["calls"]) for case in cases]
    result = {**rim_metrics(labels, scores, calls),
              "missed_rim_positive": sum(case["missed"] for case in cases),
              "patient_accuracy": patient_accuracy(truth_counts, pred_counts),
              "truth_prl_counts": truth_counts, "pred_prl_counts": pred_counts,
              "calls": (f"rim_probability >= {args.threshold}" if args.threshold is not None
                        else "rim_positive (the model's operating point)")}
    if args.curves and 0 < sum(labels) < len(labels):
        result["curves"] = str(plot_curves(labels, scores, args.curves, args.threshold))
    elif args.curves:
        one_class = f"the candidates are all rim{'+' if sum(labels) else '-'} in the truth"
        result["curves"] = f"not drawn: {one_class if labels else 'no candidates'}, so no curve"
    _print_table(["metric", "value"], [[key, value] for key, value in result.items()])
    return result


def _truth_folder(truth_path: Path) -> Path:
    """A phantom case's ``truth/`` subfolder, or the folder itself when it holds the files."""
    if not truth_path.is_dir():
        raise InputError(f"--truth: {truth_path} is not a case folder (with truth/lesions.csv)")
    return truth_path / "truth" if (truth_path / "truth").is_dir() else truth_path


def _pred_file(pred_path: Path, task: str) -> Path:
    return pred_path / PRED_FILES[task] if pred_path.is_dir() else pred_path


def _read_pair(truth_file: Path, pred_file: Path) -> tuple[sitk.Image, sitk.Image]:
    truth = _read_labels(truth_file, "--truth")
    pred = _read_labels(pred_file, "--pred")
    if same_grid(truth, pred):
        return truth, pred
    if same_voxels(pred, truth):   # stored in another orientation: reordered, not resampled
        return truth, resample_like(pred, truth, "nearest")
    raise InputError(f"--pred: {pred_file} is not on the grid of the truth {truth_file} "
                     f"({', '.join(_grid_differences(pred, truth))}); resample it first")


def _grid_differences(pred: sitk.Image, truth: sitk.Image) -> list[str]:
    """What differs between the two grids, each as "property pred vs truth"; every property
    when the difference is below the rounding shown."""
    shown = {"size": lambda image: list(image.GetSize()),
             "spacing": lambda image: np.round(image.GetSpacing(), 3).tolist(),
             "orientation": orientation_code,
             "direction": lambda image: np.round(image.GetDirection(), 3).tolist(),
             "origin": lambda image: np.round(image.GetOrigin(), 2).tolist()}
    pairs = [(name, value(pred), value(truth)) for name, value in shown.items()]
    differing = [pair for pair in pairs if pair[1] != pair[2]] or pairs
    return [f"{name} {pred_value} vs {truth_value}" for name, pred_value, truth_value in differing]


def _read_labels(path: Path, name: str) -> sitk.Image:
    """A 3D label image: whole numbers, 0 for background (any other value is a lesion, or a
    lesion's id); a probability map or a scan given in its place is refused."""
    image = validate_volume(read_image(path, name), name)
    voxels = sitk.GetArrayViewFromImage(image)
    odd = voxels[(voxels < 0) | (voxels != np.round(voxels))]
    if odd.size:
        raise InputError(f"{name}: {path} holds {odd.size} voxels that are not whole numbers "
                         f"0 or above (e.g. {odd.flat[0]:g}); give a label image: 0 for "
                         "background, lesion ids or 1 for lesion")
    return image


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        raise InputError(f"lesion table not found: {path}")
    return read_table_csv(path)


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def _instances(labelmap: np.ndarray) -> np.ndarray:
    """Instance ids as given; a binary mask (only 0 and 1) is split into 18-connected lesions."""
    if labelmap.max(initial=0) <= 1:
        return label_components(labelmap)
    return labelmap.astype(np.int64)


def _print_table(header: list[str], rows: list[list[Any]]) -> None:
    cells = [header] + [[_format(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(cell.ljust(width)
                        for cell, width in zip(row, widths, strict=True)).rstrip())


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def _json_safe(value: Any) -> Any:
    """NaN becomes null (JSON has no NaN); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
