"""Make the documentation's figures with the project's own code, into docs/images/.

    .venv/bin/python docs/make_figures.py [--cache DIR]

- ``tutorial_sample_data.png``: the teaching samples (`MSLesionAILib.sample_data`), one axial
  slice each with the reference segmentation outlined.
- ``report_sample.png``: the top of the report (`mslesionai report`) of the WM phantom sample,
  rendered by headless Chromium. Until a trained WM model is shipped, its result folder is made
  from the phantom's truth (lesion ids and locations), so the numbers are the truth's.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from matplotlib.figure import Figure

from MSLesionAILib.labels import WM_LESION_SEGMENT
from MSLesionAILib.lesions import lesion_measures
from MSLesionAILib.mrml import read_seg_nrrd
from MSLesionAILib.report import browser
from MSLesionAILib.report.build import write_report
from MSLesionAILib.results import LesionResult, Segment, write_result
from MSLesionAILib.sample_data import sample_files

IMAGES = Path(__file__).resolve().parent / "images"
WM_PHANTOM, REAL_CASE = "MSLesionAI WM phantom", "MSLesionAI patient07 (Lesjak 2017)"
CORTICAL_PHANTOM = "MSLesionAI cortical 7T phantom"
WM_COLUMNS = ["lesion_id", "class", "volume_ul", "voxels", "centroid_r", "centroid_a",
              "centroid_s", "location", "probability", "uncertainty"]


def truth_result_folder(case_dir: Path, out_dir: Path) -> Path:
    """A WM result folder (the pipeline's files and columns) holding the phantom's truth."""
    flair = sitk.ReadImage(str(case_dir / "flair.nii.gz"))
    ids = sitk.GetArrayFromImage(sitk.ReadImage(str(case_dir / "truth" / "wm_lesions.nii.gz")))
    with open(case_dir / "truth" / "lesions.csv", newline="") as stream:
        location = {int(row["lesion_id"]): row["type"] for row in csv.DictReader(stream)
                    if row["family"] == "wm"}
    rows = [{**row, "class": "wm", "location": location[row["lesion_id"]], "probability": "",
             "uncertainty": ""} for row in lesion_measures(ids, flair)]
    result = LesionResult("wm", flair, ids, (ids > 0).astype(np.uint8),
                          [Segment(1, *WM_LESION_SEGMENT)], WM_COLUMNS, rows,
                          {"model": "none: the phantom's truth, shown as a result",
                           "inputs": {"flair": str(case_dir / "flair.nii.gz")}})
    out_dir.mkdir(parents=True)
    write_result(result, out_dir)
    return out_dir


def report_sample(cache: Path | None, out_png: Path) -> None:
    case_dir = sample_files(WM_PHANTOM, cache)[0].path.parent
    with tempfile.TemporaryDirectory() as work:
        folder = truth_result_folder(case_dir, Path(work) / "phantom_wm" / "wm")
        html_path = write_report([folder], Path(work) / "report.html",
                                 patient="WM phantom (seed 90001)")[0]
        browser.screenshot(html_path, out_png, window_size=(1200, 1500))


def sample_panels(cache: Path | None, out_png: Path) -> None:
    """Each sample's images, one axial slice through most reference voxels, the reference
    outlined (segment colours) on the first image of each sample."""
    wm, cortical, real = (sample_files(name, cache) for name in (WM_PHANTOM, CORTICAL_PHANTOM,
                                                                 REAL_CASE))
    panels = [(wm[0], wm[-1], True, "WM phantom: FLAIR + reference"),
              (wm[1], wm[-1], False, "WM phantom: T1"), (wm[2], wm[-1], False, "WM phantom: T2"),
              (real[0], real[-1], True, "patient07: FLAIR + consensus"),
              (cortical[0], cortical[-1], True, "cortical phantom: MP2RAGE + ref."),
              (cortical[1], cortical[-1], False, "cortical phantom: T2*")]
    figure = Figure(figsize=(12, 6.6), facecolor="black", layout="constrained")
    for axes, (image_file, reference_file, outlined, title) in zip(
            figure.subplots(2, 4).ravel(), panels, strict=False):
        _draw_slice(axes, sitk.DICOMOrient(sitk.ReadImage(str(image_file.path)), "LPS"),
                    reference_file.path, outlined)
        axes.set_title(title, color="white", fontsize=10)
    for axes in figure.axes:
        axes.set_axis_off()
    figure.savefig(out_png, dpi=100, facecolor="black")


def _draw_slice(axes, image: sitk.Image, reference_path: Path, outlined: bool) -> None:
    labels, segments = read_seg_nrrd(reference_path)
    labels = sitk.GetArrayFromImage(sitk.Resample(labels, image, sitk.Transform(),
                                                  sitk.sitkNearestNeighbor))
    z = int(np.argmax((labels > 0).sum(axis=(1, 2))))
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
    report_sample(args.cache, IMAGES / "report_sample.png")


if __name__ == "__main__":
    main()
