"""Pictures of a case folder: one near-axial slice of every contrast with the truth outlined
(white-matter lesions yellow, rim+ red, cortical lesions green), and the tissue labels.

``python -m MSLesionAILib.phantom.panels CASE_DIR OUT.png [TITLE]`` draws one; with a rim
case, ``OUT_lesions.png`` also shows phase close-ups of rim+ and rim− lesions (docs/images/).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..jsonfiles import read_json
from ..labels import TISSUE_COLORS, Tissue
from .case import KIND_IMAGES

_ORDER = KIND_IMAGES["all"]
_LPS_AXES = {"R-L": 0, "A-P": 1, "S-I": 2}


def near_axial(voxels_zyx: np.ndarray, image: sitk.Image, index: int) -> tuple[np.ndarray,
                                                                               float]:
    """Slice ``index`` across the grid axis nearest to head-foot, shown radiologically
    (anterior up, patient's right on the left); also the pixel aspect ratio."""
    direction = np.abs(np.array(image.GetDirection()).reshape(3, 3))  # rows LPS, cols ijk
    axis_of = {name: int(np.argmax(direction[row])) for name, row in _LPS_AXES.items()}
    if len(set(axis_of.values())) < 3:
        axis_of = {"R-L": 0, "A-P": 1, "S-I": 2}
    zyx = {name: 2 - axis for name, axis in axis_of.items()}  # numpy axis of each
    plane = np.take(voxels_zyx, index, axis=zyx["S-I"])
    remaining = [a for a in range(3) if a != zyx["S-I"]]
    rows_axis, columns_axis = remaining.index(zyx["A-P"]), remaining.index(zyx["R-L"])
    plane = np.transpose(plane, (rows_axis, columns_axis))
    signed = np.array(image.GetDirection()).reshape(3, 3)
    if signed[1, axis_of["A-P"]] < 0:   # rows must run towards posterior (anterior up)
        plane = plane[::-1]
    if signed[0, axis_of["R-L"]] < 0:   # columns must run towards the patient's left
        plane = plane[:, ::-1]
    spacing = image.GetSpacing()
    return plane, spacing[axis_of["A-P"]] / spacing[axis_of["R-L"]]


def save_panel(folder: str | Path, path: str | Path, title: str = "") -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    folder = Path(folder)
    names = [n for n in _ORDER if (folder / f"{n}.nii.gz").exists()]
    reference = sitk.ReadImage(str(folder / "truth" / "tissue.nii.gz"))
    wm = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "truth" / "wm_lesions.nii.gz")))
    cortical = sitk.GetArrayFromImage(
        sitk.ReadImage(str(folder / "truth" / "cortical_lesions.nii.gz")))
    with open(folder / "truth" / "lesions.csv", encoding="utf-8", newline="") as stream:
        rim_ids = [int(r["lesion_id"]) for r in csv.DictReader(stream) if r["rim"] == "1"]
    tissue = sitk.GetArrayFromImage(reference)
    index = _busiest_slice(wm, cortical, rim_ids, tissue, reference)
    outlines = {"#ffd400": np.isin(wm, rim_ids, invert=True) & (wm > 0),
                "#ff2020": np.isin(wm, rim_ids) & (wm > 0), "#30e040": cortical > 0}
    columns = len(names) + 1
    figure, axes = plt.subplots(2, columns, figsize=(3.2 * columns, 6.6))
    for column, name in enumerate([*names, "tissue"]):
        voxels = tissue if name == "tissue" else sitk.GetArrayFromImage(
            sitk.ReadImage(str(folder / f"{name}.nii.gz")))
        plane, aspect = near_axial(voxels, reference, index)
        for row, outline in enumerate((False, True)):
            axis = axes[row, column]
            if name == "tissue":
                colours = ["black"] + [TISSUE_COLORS[t] for t in sorted(TISSUE_COLORS)]
                axis.imshow(plane, cmap=ListedColormap(colours), vmin=0, vmax=len(colours) - 1,
                            aspect=aspect, interpolation="nearest")
            else:
                axis.imshow(plane, cmap="gray", aspect=aspect, **_window(voxels, name))
            if outline:
                for colour, mask in outlines.items():
                    mask_plane, _ = near_axial(mask.astype(np.uint8), reference, index)
                    if mask_plane.any():
                        axis.contour(mask_plane, [0.5], colors=colour, linewidths=0.6)
            axis.set_axis_off()
        axes[0, column].set_title(name, fontsize=11)
    figure.suptitle(title, fontsize=12)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return Path(path)


def save_rim_gallery(folder: str | Path, path: str | Path, per_class: int = 5,
                     crop_mm: float = 24.0) -> Path:
    """Phase close-ups through the centre of the largest rim+ and rim− lesions (≥ 12.3 µL),
    the lesion outlined, each with its truth and phase mimic from ``case.json``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    phase_image = sitk.ReadImage(str(folder / "phase.nii.gz"))
    phase = sitk.GetArrayFromImage(phase_image)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "truth" / "wm_lesions.nii.gz")))
    rows = [r for r in read_json(folder / "case.json")["lesions"]
            if r["family"] == "wm" and r["volume_ul"] >= 12.3]
    chosen = [sorted((r for r in rows if r["rim"] == rim), key=lambda r: -r["volume_ul"])
              [:per_class] for rim in (1, 0)]
    figure, axes = plt.subplots(2, per_class, figsize=(2.4 * per_class, 5.2), squeeze=False)
    limit = float(np.percentile(np.abs(phase[phase != 0]), 99))
    half = (crop_mm / 2 / np.array(phase_image.GetSpacing()[::-1])).astype(int)
    direction = np.abs(np.array(phase_image.GetDirection()).reshape(3, 3))
    axis = 2 - int(np.argmax(direction[2]))
    for row_index, lesions in enumerate(chosen):
        for column in range(per_class):
            plot = axes[row_index, column]
            plot.set_axis_off()
            if column >= len(lesions):
                continue
            lesion = lesions[column]
            mask = labels == lesion["lesion_id"]
            centre = np.round(np.argwhere(mask).mean(0)).astype(int)
            box = tuple(slice(max(c - h, 0), c + h + 1) for c, h in zip(centre, half,
                                                                          strict=True))
            crop_phase, crop_mask = phase[box], mask[box]
            index = centre[axis] - box[axis].start
            plane, aspect = near_axial(crop_phase, phase_image, index)
            outline, _ = near_axial(crop_mask.astype(np.uint8), phase_image, index)
            plot.imshow(plane, cmap="gray", vmin=-limit, vmax=limit, aspect=aspect)
            if outline.any():
                plot.contour(outline, [0.5], colors="#ff2020" if lesion["rim"] else "#ffd400",
                             linewidths=0.6)
            plot.set_title(f"{'rim+' if lesion['rim'] else 'rim−'} {lesion['volume_ul']:.0f} µL"
                           f"\n{lesion.get('phase_mimic', '')}", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return Path(path)


def _window(voxels: np.ndarray, name: str) -> dict:
    if name == "phase":
        limit = float(np.percentile(np.abs(voxels[voxels != 0]), 99)) if voxels.any() else 1.0
        return {"vmin": -limit, "vmax": limit}
    low, high = np.percentile(voxels[voxels > 0], [0.5, 99.7])
    return {"vmin": low, "vmax": high}


def _busiest_slice(wm: np.ndarray, cortical: np.ndarray, rim_ids: list[int],
                   tissue: np.ndarray, reference: sitk.Image) -> int:
    """The near-axial slice with the most lesion voxels (rim+ lesions weigh more); for
    white-matter lesions, among those through the ventricles (the view a reader expects)."""
    weight = (wm > 0) + 4 * np.isin(wm, rim_ids) * (wm > 0) + 2 * (cortical > 0)
    direction = np.abs(np.array(reference.GetDirection()).reshape(3, 3))
    axis = 2 - int(np.argmax(direction[2]))
    other = tuple(a for a in range(3) if a != axis)
    counts = weight.sum(axis=other).astype(float)
    ventricles = (tissue == Tissue.VENTRICLES).sum(axis=other)
    if not cortical.any() and (counts * (ventricles > 0)).any():
        counts *= ventricles > 0
    return int(np.argmax(counts)) if counts.any() else wm.shape[axis] // 2


if __name__ == "__main__":
    save_panel(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
    if (Path(sys.argv[1]) / "phase.nii.gz").exists():
        save_rim_gallery(sys.argv[1], Path(sys.argv[2]).with_name(
            Path(sys.argv[2]).stem + "_lesions.png"))
