"""The one result object every pipeline returns, and its files.

Every way out starts here: `write_result` writes the files the command line promises, and the
MRML adapter turns the same files (or the same object) into Slicer nodes.

Files written for a result named ``NAME`` (wm, cortical, rim):
``NAME_lesions.nii.gz`` (instance labelmap: value k is row k of the table), ``NAME.seg.nrrd``
(one segment per class), ``lesions.csv``, ``summary.json``, and any extra images.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import slicerio

from .imageio import array_to_image, write_image
from .jsonfiles import write_json


@dataclass(frozen=True)
class Segment:
    """One class of a segmentation: its label value, name and colour (RGB in 0..1)."""

    value: int
    name: str
    color: tuple[float, float, float]


@dataclass
class LesionResult:
    """A pipeline's answer, in the geometry of the reference input it was computed for."""

    name: str
    reference: sitk.Image
    lesion_ids: np.ndarray
    class_labels: np.ndarray
    segments: list[Segment]
    columns: list[str]
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    extra_images: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def lesion_count(self) -> int:
        return len(self.rows)


def ijk_to_lps_matrix(image: sitk.Image) -> np.ndarray:
    """The 4 x 4 matrix from ITK (i, j, k) voxel index to LPS millimetres."""
    matrix = np.eye(4)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    matrix[:3, :3] = direction * np.array(image.GetSpacing())
    matrix[:3, 3] = image.GetOrigin()
    return matrix


def ijk_to_ras_matrix(image: sitk.Image) -> np.ndarray:
    """The 4 x 4 matrix from voxel index (i, j, k) to Slicer's RAS millimetres."""
    matrix = ijk_to_lps_matrix(image)
    matrix[:2, :] *= -1
    return matrix


def write_seg_nrrd(path: str | Path, class_labels_zyx: np.ndarray, reference: sitk.Image,
                   segments: list[Segment]) -> Path:
    """A Slicer ``.seg.nrrd``: one labelmap layer, one named, coloured segment per class."""
    segmentation = {
        "voxels": np.ascontiguousarray(np.transpose(class_labels_zyx, (2, 1, 0))).astype(np.uint8),
        "ijkToLPS": ijk_to_lps_matrix(reference),
        "segments": [{"id": f"segment_{s.value}", "name": s.name, "color": list(s.color),
                      "labelValue": s.value, "layer": 0} for s in segments],
    }
    slicerio.write_segmentation(str(path), segmentation)
    return Path(path)


def write_table_csv(path: str | Path, columns: list[str], rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="raise")
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def read_table_csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def write_result(result: LesionResult, out_dir: str | Path) -> dict[str, Path]:
    """Write every file of a result into ``out_dir`` (a folder from `output_directory`)."""
    out_dir = Path(out_dir)
    ids_dtype = np.uint16 if result.lesion_ids.max(initial=0) < 2**16 else np.uint32
    files = {
        "lesions": write_image(array_to_image(result.lesion_ids.astype(ids_dtype),
                                              result.reference),
                               out_dir / f"{result.name}_lesions.nii.gz"),
        "segmentation": write_seg_nrrd(out_dir / f"{result.name}.seg.nrrd", result.class_labels,
                                       result.reference, result.segments),
        "table": write_table_csv(out_dir / "lesions.csv", result.columns, result.rows),
    }
    for key, voxels in result.extra_images.items():
        files[key] = write_image(array_to_image(voxels, result.reference),
                                 out_dir / f"{key}.nii.gz")
    summary = {**result.summary, "files": {k: p.name for k, p in files.items()}}
    files["summary"] = write_json(out_dir / "summary.json", summary)
    return files

