"""Make the documentation's figures with the project's own code, into docs/images/.

    .venv/bin/python docs/make_figures.py [--cache DIR]

- ``tutorial_sample_data.png``: the teaching samples (`MSLesionAILib.sample_data`), one axial
  slice each with the reference segmentation outlined.
- ``report_sample.png``, ``report_sample_rim.png``: the top of reports (`mslesionai report`)
  of the WM and rim phantom samples, rendered by headless Chromium. Until trained models are
  shipped, their result folders are made from the phantoms' truth (lesion ids, locations, rim
  status), so the numbers are the truth's.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from matplotlib.figure import Figure

from MSLesionAILib.labels import RIM_SEGMENTS, WM_LESION_SEGMENT
from MSLesionAILib.lesions import lesion_measures
from MSLesionAILib.mrml import read_seg_nrrd
from MSLesionAILib.report import browser
from MSLesionAILib.report.build import write_report
from MSLesionAILib.results import LesionResult, Segment, write_result
from MSLesionAILib.sample_data import sample_files

IMAGES = Path(__file__).resolve().parent / "images"
WM_PHANTOM, REAL_CASE = "MSLesionAI WM phantom", "MSLesionAI patient07 (Lesjak 2017)"
CORTICAL_PHANTOM, RIM_PHANTOM = "MSLesionAI cortical 7T phantom", "MSLesionAI rim phantom"
TRUTH_MODEL = "none: the phantom's truth, shown as a result"
CENTROIDS = ["centroid_r", "centroid_a", "centroid_s"]
WM_COLUMNS = ["lesion_id", "class", "volume_ul", "voxels", *CENTROIDS, "location",
              "probability", "uncertainty"]
RIM_COLUMNS = ["lesion_id", "volume_ul", "voxels", *CENTROIDS, "rim_probability",
               "rim_positive", "split_from"]


def truth_result_folder(case_dir: Path, task: str, out_dir: Path) -> Path:
    """A wm or rim result folder (the pipeline's files and columns) holding the phantom's
    white-matter lesion truth, on the pipeline's reference contrast (FLAIR, phase)."""
    reference_name = "flair" if task == "wm" else "phase"
    reference = sitk.ReadImage(str(case_dir / f"{reference_name}.nii.gz"))
    ids = sitk.GetArrayFromImage(sitk.ReadImage(str(case_dir / "truth" / "wm_lesions.nii.gz")))
    with open(case_dir / "truth" / "lesions.csv", encoding="utf-8", newline="") as stream:
        truth = {int(row["lesion_id"]): row for row in csv.DictReader(stream)
                 if row["family"] == "wm"}
    rows = lesion_measures(ids, reference)
    if task == "wm":
        columns, segments, classes = WM_COLUMNS, [Segment(1, *WM_LESION_SEGMENT)], ids > 0
        rows = [{**row, "class": "wm", "location": truth[row["lesion_id"]]["type"],
                 "probability": "", "uncertainty": ""} for row in rows]
    else:
        columns = RIM_COLUMNS
        segments = [Segment(1, *RIM_SEGMENTS[1]), Segment(2, *RIM_SEGMENTS[0])]
        rim = np.array([0] + [int(truth[k]["rim"]) for k in range(1, int(ids.max()) + 1)])
        classes = np.where(ids > 0, np.where(rim[ids] == 1, 1, 2), 0)
        rows = [{**row, "rim_probability": "", "rim_positive": truth[row["lesion_id"]]["rim"],
                 "split_from": ""} for row in rows]
    inputs = {name: str(case_dir / f"{name}.nii.gz") for name in ("flair", "phase")
              if (case_dir / f"{name}.nii.gz").exists()}
    result = LesionResult(task, reference, ids, classes.astype(np.uint8), segments, columns,
                          rows, {"model": TRUTH_MODEL, "inputs": inputs})
    out_dir.mkdir(parents=True)
    write_result(result, out_dir)
    return out_dir


def report_sample(cache: Path | None, sample: str, tasks: tuple[str, ...], patient: str,
                  out_png: Path) -> None:
    case_dir = sample_files(sample, cache)[0].path.parent
    with tempfile.TemporaryDirectory() as work:
        folders = [truth_result_folder(case_dir, task, Path(work) / "phantom" / task)
                   for task in tasks]
        html_path = write_report(folders, Path(work) / "report.html", patient=patient)[0]
        browser.screenshot(html_path, out_png, window_size=(1200, 1500))


def sample_panels(cache: Path | None, out_png: Path) -> None:
    """Each sample's images, one axial slice through most reference voxels (rim: rim+ ones),
    the reference outlined in its segments' colours."""
    wm, cortical, rim, real = (sample_files(name, cache) for name in (
        WM_PHANTOM, CORTICAL_PHANTOM, RIM_PHANTOM, REAL_CASE))
    panels = [(wm[0], wm[-1], True, "WM phantom: FLAIR + reference"),
              (wm[1], wm[-1], False, "WM phantom: T1"), (wm[2], wm[-1], False, "WM phantom: T2"),
              (real[0], real[-1], True, "patient07: FLAIR + consensus"),
              (cortical[0], cortical[-1], True, "cortical phantom: MP2RAGE + ref."),
              (cortical[1], cortical[-1], False, "cortical phantom: T2*"),
              (rim[4], rim[-1], False, "rim phantom: phase"),
              (rim[4], rim[-1], True, "rim phantom: phase + reference")]
    figure = Figure(figsize=(12, 6.6), facecolor="black", layout="constrained")
    for axes, (image_file, reference_file, outlined, title) in zip(
            figure.subplots(2, 4).ravel(), panels, strict=True):
        focus = 1 if image_file.path.name == "phase.nii.gz" else None
        _draw_slice(axes, sitk.DICOMOrient(sitk.ReadImage(str(image_file.path)), "LPS"),
                    reference_file.path, outlined, focus)
        axes.set_title(title, color="white", fontsize=10)
        axes.set_axis_off()
    figure.savefig(out_png, dpi=100, facecolor="black")


def _draw_slice(axes, image: sitk.Image, reference_path: Path, outlined: bool,
                focus_value: int | None) -> None:
    """The slice with the most reference voxels (of ``focus_value`` when given)."""
    labels, segments = read_seg_nrrd(reference_path)
    labels = sitk.GetArrayFromImage(sitk.Resample(labels, image, sitk.Transform(),
                                                  sitk.sitkNearestNeighbor))
    focus = labels == focus_value if focus_value else labels > 0
    focus = focus if focus.any() else labels > 0
    z = int(np.argmax(focus.sum(axis=(1, 2))))
    voxels = sitk.GetArrayFromImage(image)[z]
    spacing = image.GetSpacing()
    axes.imshow(voxels, cmap="gray", vmin=np.percentile(voxels, 1),
                vmax=np.percentile(voxels, 99.5), aspect=spacing[1] / spacing[0])
    for segment in segments if outlined else []:
        if (labels[z] == segment.value).any():
            axes.contour(labels[z] == segment.value, levels=[0.5], colors=[segment.color],
                         linewidths=0.8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="sample data cache (default: the user's)")
    args = parser.parse_args()
    IMAGES.mkdir(exist_ok=True)
    sample_panels(args.cache, IMAGES / "tutorial_sample_data.png")
    report_sample(args.cache, WM_PHANTOM, ("wm",), "WM phantom (seed 90001)",
                  IMAGES / "report_sample.png")
    report_sample(args.cache, RIM_PHANTOM, ("rim",), "rim phantom (seed 90003)",
                  IMAGES / "report_sample_rim.png")


if __name__ == "__main__":
    main()
