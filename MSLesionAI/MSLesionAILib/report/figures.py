"""Lightbox pictures for the report: one axial slice through each lesion, segmentation outlined.

Slices are cut on the lesion labelmap's own grid turned to the nearest LPS axes (a permutation,
so the labels are never interpolated), with the background image resampled onto it, and shown
in radiological convention: patient's right on the left, anterior up. Rim+ lesions are shown
on phase twice, bare and outlined, because an outline drawn over a rim hides it.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import ndimage

from ..geometry import resample_like
from ..imageio import load_image
from .collect import PipelineResult
from .groups import group_of, lesion_color, title_of, volume_ul

# The contrast each task's lesions are shown on, in order of preference.
BACKGROUNDS = {"wm": ("flair", "t2", "t1"),
               "cortical": ("mp2rage", "t2star_gre", "t2star_epi", "t2star"),
               "rim": ("phase",)}
COLUMNS = 6
PANEL_INCHES = 1.75
DPI = 100
MIN_FIELD_OF_VIEW_MM = 32.0


@dataclass(frozen=True)
class Lightbox:
    """A PNG of lesion panels, and what it shows."""

    png: bytes
    contrast: str
    shown: int
    total: int


def background_contrast(result: PipelineResult) -> str | None:
    """The input contrast the lesions are drawn on, or None when no usable image was found."""
    return next((name for name in BACKGROUNDS[result.task] if name in result.images), None)


def lesions_to_show(result: PipelineResult) -> list[dict[str, str]]:
    """The lesions worth a picture: all of them, except that only rim+ lesions for rim (and no
    row without voxels, like a rim patch classified at a point outside every lesion)."""
    return [row for row in result.rows if int(row["lesion_id"]) > 0
            and (result.task != "rim" or group_of("rim", row) == "1")]


def lesion_lightbox(result: PipelineResult, max_lesions: int = 36) -> Lightbox | None:
    """The largest ``max_lesions`` lesions, one panel each (two for rim+), or None when there
    is no lesion to show or no image to show it on."""
    contrast = background_contrast(result)
    candidates = lesions_to_show(result)
    if contrast is None or not candidates:
        return None
    rows = sorted(candidates, key=volume_ul, reverse=True)[:max_lesions]
    labels = sitk.DICOMOrient(sitk.ReadImage(str(result.lesions_path)), "LPS")
    image = resample_like(load_image(result.images[contrast], contrast), labels)
    slices = _SliceSource(sitk.GetArrayFromImage(image).astype(np.float32),
                          sitk.GetArrayFromImage(labels).astype(np.int64),
                          labels.GetSpacing()[::-1],
                          {int(row["lesion_id"]): lesion_color(result.task, row)
                           for row in result.rows})
    outline_styles = (False, True) if result.task == "rim" else (True,)
    panels = [(row, outlined) for row in rows for outlined in outline_styles]
    figure = _panel_grid(len(panels))
    for axes, (row, outlined) in zip(figure.axes, panels, strict=False):
        slices.draw(axes, int(row["lesion_id"]), outlined)
        detail = title_of(group_of(result.task, row))
        axes.set_title(f"#{row['lesion_id']} · {volume_ul(row):.1f} µL\n"
                       f"{detail if outlined else contrast}", color="white", fontsize=8)
    return Lightbox(_png(figure), contrast, len(rows), len(candidates))


def _panel_grid(count: int) -> Figure:
    rows = math.ceil(count / COLUMNS)
    figure = Figure(figsize=(COLUMNS * PANEL_INCHES, rows * PANEL_INCHES * 1.18),
                    facecolor="black", layout="constrained")
    for axes in figure.subplots(rows, COLUMNS, squeeze=False).ravel():
        axes.set_axis_off()
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor=figure.get_facecolor())
    return buffer.getvalue()


class _SliceSource:
    """An image and its lesion labelmap on one grid (numpy z, y, x; LPS axes), cut per lesion."""

    def __init__(self, voxels: np.ndarray, lesion_ids: np.ndarray,
                 spacing_zyx_mm: tuple[float, float, float], colors: dict[int, tuple]) -> None:
        self.voxels, self.lesion_ids, self.colors = voxels, lesion_ids, colors
        self.spacing_zyx_mm = np.asarray(spacing_zyx_mm, dtype=float)
        self.boxes = ndimage.find_objects(lesion_ids)

    def draw(self, axes: Axes, lesion_id: int, outlined: bool) -> None:
        """The axial slice with the most voxels of the lesion, centred on it."""
        box = self.boxes[lesion_id - 1] if 0 < lesion_id <= len(self.boxes) else None
        if box is None:  # a table row with no voxels (e.g. a rim patch classified at a point)
            return
        in_box = self.lesion_ids[box] == lesion_id
        z = box[0].start + int(np.argmax(in_box.sum(axis=(1, 2))))
        centre = ndimage.center_of_mass(self.lesion_ids[z] == lesion_id)
        extent_mm = np.array(in_box.shape[1:]) * self.spacing_zyx_mm[1:]
        half_mm = max(MIN_FIELD_OF_VIEW_MM / 2, 0.8 * float(extent_mm.max()))
        window = [(int(round(c - half_mm / s)), int(round(c + half_mm / s)) + 1)
                  for c, s in zip(centre, self.spacing_zyx_mm[1:], strict=True)]
        ids = _crop(self.lesion_ids[z], window)
        voxels = _crop(self.voxels[z], window)
        low, high = _display_range(voxels)
        axes.imshow(voxels, cmap="gray", vmin=low, vmax=high, interpolation="bilinear",
                    aspect=self.spacing_zyx_mm[1] / self.spacing_zyx_mm[2])
        if outlined:
            for other in np.unique(ids[(ids > 0) & (ids != lesion_id)]):
                axes.contour(ids == other, levels=[0.5], linewidths=0.6,
                             colors=[self.colors.get(int(other), (1.0, 1.0, 1.0))])
            axes.contour(ids == lesion_id, levels=[0.5], linewidths=1.5,
                         colors=[self.colors.get(lesion_id, (1.0, 1.0, 1.0))])


def _display_range(voxels: np.ndarray) -> tuple[float, float]:
    """Grey-level window of one panel, from its non-zero voxels (zero is the background of
    masked images): per panel, so that a lesion shows against its own surroundings, as a
    reader would window it."""
    inside = voxels[voxels != 0]
    if inside.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(inside, [1.0, 99.5])
    return float(low), float(high if high > low else low + 1.0)


def _crop(plane: np.ndarray, window: list[tuple[int, int]]) -> np.ndarray:
    """A (rows, columns) window of a 2D array, zero-filled where it leaves the array."""
    (y0, y1), (x0, x1) = window
    out = np.zeros((y1 - y0, x1 - x0), dtype=plane.dtype)
    sy0, sy1 = max(y0, 0), min(y1, plane.shape[0])
    sx0, sx1 = max(x0, 0), min(x1, plane.shape[1])
    if sy1 > sy0 and sx1 > sx0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = plane[sy0:sy1, sx0:sx1]
    return out
