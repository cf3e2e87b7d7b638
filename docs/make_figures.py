"""Make the documentation's figures with the project's own code, into docs/images/.

    .venv/bin/python docs/make_figures.py [--cache DIR]

- ``tutorial_sample_data.png``: the teaching samples (`MSLesionAILib.sample_data`), one axial
  slice each with the reference segmentation outlined.
- ``report_sample.png``, ``report_sample_rim.png``: the top of reports (`mslesionai report`)
  of the WM and rim phantom samples from the shipped models' results, rendered by headless
  Chromium.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from matplotlib.figure import Figure

from MSLesionAILib.cli import main as main_cli
from MSLesionAILib.mrml import read_seg_nrrd
from MSLesionAILib.report import browser
from MSLesionAILib.report.build import write_report
from MSLesionAILib.sample_data import sample_files

IMAGES = Path(__file__).resolve().parent / "images"
WM_PHANTOM, REAL_CASE = "MSLesionAI WM phantom", "MSLesionAI patient07 (Lesjak 2017)"
CORTICAL_PHANTOM, RIM_PHANTOM = "MSLesionAI cortical 7T phantom", "MSLesionAI rim phantom"


def model_result_folder(case_dir: Path, task: str, out_dir: Path) -> Path:
    """The shipped model's result on a phantom sample: ``mslesionai wm`` on FLAIR, T1 and T2,
    or ``mslesionai rim`` on phase and FLAIR with the phantom's truth lesions as candidates
    (so the rim picture shows the classifier, not the white-matter model's misses)."""
    files = {name: str(case_dir / f"{name}.nii.gz") for name in ("flair", "t1", "t2", "phase")}
    if task == "wm":
        args = ["wm", "--flair", files["flair"], "--t1", files["t1"], "--t2", files["t2"]]
    else:
        args = ["rim", "--phase", files["phase"], "--flair", files["flair"],
                "--lesion-mask", str(case_dir / "truth" / "wm_lesions.nii.gz")]
    if main_cli(["--progress", "none", *args, "--out", str(out_dir)]) != 0:
        raise SystemExit(f"mslesionai {task} failed on {case_dir}")
    return out_dir


def report_sample(cache: Path | None, sample: str, tasks: tuple[str, ...], patient: str,
                  out_png: Path) -> None:
    case_dir = sample_files(sample, cache)[0].path.parent
    with tempfile.TemporaryDirectory() as work:
        folders = [model_result_folder(case_dir, task, Path(work) / "phantom" / task)
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
