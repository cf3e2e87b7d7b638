"""The MRML adapter: library objects ↔ Slicer nodes. The only library file importing `slicer`.

`slicer` is imported inside the functions, so the rest of the library (and this file's import)
works with no Slicer at all. Everything here needs only MRML (a scene, nodes, the segmentations
logic), no Qt, so it runs inside the Slicer app and against the `slicer-core` wheel alike.

Geometry: a SimpleITK image speaks LPS, a volume node RAS; `results.ijk_to_ras_matrix` is the
one conversion, used for volumes and segmentations alike, so voxels never move.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import slicerio

from .errors import InputError
from .results import Segment, ijk_to_ras_matrix, read_table_csv

CENTROID_COLUMNS = ("centroid_r", "centroid_a", "centroid_s")
COLUMN_UNITS = {"volume_ul": "µL", **dict.fromkeys(CENTROID_COLUMNS, "mm")}
SUMMARY_ATTRIBUTE = "MSLesionAI.summary"

# SNOMED CT codes of Slicer's "3D Slicer General Anatomy list" terminology for a brain lesion.
LESION_TERMINOLOGY = ("Segmentation category and type - 3D Slicer General Anatomy list"
                      "~SCT^49755003^Morphologically Altered Structure~SCT^52988006^Lesion~^^"
                      "~Anatomic codes - DICOM master list~SCT^12738006^Brain~^^")


@dataclass
class ResultNodes:
    """The nodes one pipeline run created in the scene."""

    segmentation: Any   # vtkMRMLSegmentationNode, one segment per class
    table: Any          # vtkMRMLTableNode, one row per lesion
    lesion_ids: Any     # vtkMRMLLabelMapVolumeNode (hidden): value k is the lesion of id k
    summary: dict[str, Any]

    def nodes(self) -> list[Any]:
        return [self.segmentation, self.table, self.lesion_ids]


# --- volumes --------------------------------------------------------------------------------

def image_from_volume(volume_node: Any) -> sitk.Image:
    """A SimpleITK image (LPS geometry) with a copy of a scalar volume node's voxels.

    The node's own (local) geometry is used; a parent transform is not applied.
    """
    image_data = volume_node.GetImageData()
    if image_data is None or image_data.GetNumberOfScalarComponents() != 1:
        raise InputError(f"{volume_node.GetName()}: not a scalar volume with voxels")
    image = sitk.GetImageFromArray(_array_from_vtk_image(image_data))
    matrix = volume_ijk_to_ras(volume_node)
    matrix[:2, :] *= -1  # RAS → LPS
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    image.SetSpacing(spacing.tolist())
    image.SetDirection((matrix[:3, :3] / spacing).flatten().tolist())
    image.SetOrigin(matrix[:3, 3].tolist())
    return image


def volume_ijk_to_ras(volume_node: Any) -> np.ndarray:
    """The 4 x 4 matrix from a volume node's voxel index (i, j, k) to RAS millimetres."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return _numpy_matrix(matrix)


def volume_from_image(scene: Any, image: sitk.Image, name: str, labelmap: bool = False) -> Any:
    """A new volume node (unique name) with the image's voxels and geometry."""
    node_class = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    node = scene.AddNewNodeByClass(node_class, scene.GenerateUniqueName(name))
    node.SetIJKToRASMatrix(_vtk_matrix(ijk_to_ras_matrix(image)))
    node.SetAndObserveImageData(_vtk_image(sitk.GetArrayFromImage(image)))
    node.CreateDefaultDisplayNodes()
    return node


# --- segmentations --------------------------------------------------------------------------

def segment_id(segment: Segment) -> str:
    """A readable, stable segment ID from the class name ("rim+ lesion" → "rim_positive_lesion")."""
    name = segment.name.lower().replace("+", " positive").replace("−", " negative")
    return re.sub(r"[^a-z0-9]+", "_", name).strip("_") or f"class_{segment.value}"


def segmentation_from_labelmap(scene: Any, class_labels: sitk.Image, segments: Sequence[Segment],
                               name: str, reference_volume: Any = None) -> Any:
    """A new segmentation node: one named, coloured segment per class, sharing one labelmap.

    Segments whose name ends in "lesion" get the SNOMED "Lesion" terminology tag. The reference
    geometry (what the Segment Editor paints on) is the reference volume's when one is given.
    """
    import slicer

    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName(name))
    node.SetSourceRepresentationToBinaryLabelmap()
    if reference_volume is not None:
        node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume)
    node.CreateDefaultDisplayNodes()
    labels = sitk.GetArrayFromImage(class_labels).astype(np.uint8)
    shared = _oriented_image(labels, class_labels)
    labelmap_name = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    for segment in segments:
        vtk_segment = slicer.vtkSegment()
        vtk_segment.SetName(segment.name)
        vtk_segment.SetColor(*segment.color)
        vtk_segment.SetLabelValue(segment.value)
        if segment.name.endswith("lesion"):
            vtk_segment.SetTerminology(LESION_TERMINOLOGY)
        vtk_segment.AddRepresentation(labelmap_name, shared)
        node.GetSegmentation().AddSegment(vtk_segment, segment_id(segment))
    return node


def segment_mask(segmentation_node: Any, segment_id: str, reference: sitk.Image) -> np.ndarray:
    """A segment's voxels as a boolean array (numpy z, y, x) on the reference image's grid."""
    import slicer

    labelmap = slicer.vtkOrientedImageData()
    segmentation_node.GetBinaryLabelmapRepresentation(segment_id, labelmap)
    grid = _oriented_image(np.zeros(sitk.GetArrayViewFromImage(reference).shape, np.uint8),
                           reference)
    on_grid = slicer.vtkOrientedImageData()
    slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
        labelmap, grid, on_grid)
    return _array_from_vtk_image(on_grid) > 0


def segment_ids(segmentation_node: Any) -> list[str]:
    segmentation = segmentation_node.GetSegmentation()
    return [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]


# --- tables ---------------------------------------------------------------------------------

def table_from_rows(scene: Any, columns: Sequence[str], rows: Sequence[dict[str, Any]],
                    name: str) -> Any:
    """A new table node with one typed column (int, double or string) per column name."""
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    fill_table(node, columns, rows)
    return node


def fill_table(table_node: Any, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Replace a table node's contents; each column's type is the narrowest that fits its values:
    int, then double, then string (values may be numbers or the strings of a CSV file)."""
    table_node.RemoveAllColumns()
    for column in columns:
        table_node.AddColumn(_typed_array(column, [row[column] for row in rows]))
        if column in COLUMN_UNITS:
            table_node.SetColumnUnitLabel(column, COLUMN_UNITS[column])
    table_node.Modified()


def rows_from_table(table_node: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """The column names and rows of a table node, with Python int / float / str values."""
    table = table_node.GetTable()
    columns = [table.GetColumnName(i) for i in range(table.GetNumberOfColumns())]
    values = {name: _array_values(table.GetColumnByName(name)) for name in columns}
    rows = [{name: values[name][i] for name in columns} for i in range(table.GetNumberOfRows())]
    return columns, rows


def lesion_position_ras(table_node: Any, row: int) -> np.ndarray:
    """The RAS centroid (mm) of the lesion in one row of a lesion table."""
    table = table_node.GetTable()
    return np.array([float(table.GetColumnByName(column).GetValue(row))
                     for column in CENTROID_COLUMNS])


def jump_to_lesion(table_node: Any, row: int) -> np.ndarray:
    """Centre every slice view of the table's scene on the lesion of that row."""
    import slicer

    r, a, s = lesion_position_ras(table_node, row)
    slicer.vtkMRMLSliceNode.JumpAllSlices(table_node.GetScene(), r, a, s,
                                          slicer.vtkMRMLSliceNode.CenteredJumpSlice)
    return np.array([r, a, s])


# --- pipeline output folders ----------------------------------------------------------------

def load_result_folder(scene: Any, folder: str | Path, reference_volume: Any,
                       name: str) -> ResultNodes:
    """New nodes for the files `results.write_result` wrote: segmentation, table, lesion ids.

    The summary is kept as JSON in the segmentation and table nodes' attribute
    `SUMMARY_ATTRIBUTE`; the lesion-id labelmap is hidden (it serves "update table").
    """
    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text())
    files = summary["files"]
    labels, segments = read_seg_nrrd(folder / files["segmentation"])
    segmentation = segmentation_from_labelmap(scene, labels, segments, name, reference_volume)
    table_rows = read_table_csv(folder / files["table"])
    columns = list(table_rows[0]) if table_rows else _csv_header(folder / files["table"])
    table = table_from_rows(scene, columns, table_rows, f"{name} table")
    lesion_ids = volume_from_image(scene, sitk.ReadImage(str(folder / files["lesions"])),
                                   f"{name} lesion ids", labelmap=True)
    lesion_ids.SetHideFromEditors(True)
    result = ResultNodes(segmentation, table, lesion_ids, summary)
    for node in (segmentation, table):
        node.SetAttribute(SUMMARY_ATTRIBUTE, json.dumps(summary))
    return result


def read_seg_nrrd(path: str | Path) -> tuple[sitk.Image, list[Segment]]:
    """The class labelmap (one layer) and segments of a ``.seg.nrrd``, read with slicerio."""
    segmentation = slicerio.read_segmentation(str(path))
    voxels_ijk = segmentation["voxels"]
    if voxels_ijk.ndim != 3:
        raise InputError(f"{path}: has overlapping segments (several layers); expected one layer")
    labels = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(voxels_ijk, (2, 1, 0))))
    ijk_to_lps = np.asarray(segmentation["ijkToLPS"], dtype=float)
    spacing = np.linalg.norm(ijk_to_lps[:3, :3], axis=0)
    labels.SetSpacing(spacing.tolist())
    labels.SetDirection((ijk_to_lps[:3, :3] / spacing).flatten().tolist())
    labels.SetOrigin(ijk_to_lps[:3, 3].tolist())
    segments = [Segment(int(s["labelValue"]), s["name"], tuple(s["color"]))
                for s in segmentation["segments"]]
    return labels, segments


# --- helpers --------------------------------------------------------------------------------

def _csv_header(path: Path) -> list[str]:
    with open(path, newline="") as stream:
        return next(csv.reader(stream))


def _vtk_image(voxels_zyx: np.ndarray, image: Any = None) -> Any:
    """A VTK image (origin 0, spacing 1: geometry lives in the node) holding a copy of voxels."""
    import vtk
    from vtk.util.numpy_support import numpy_to_vtk

    image = image if image is not None else vtk.vtkImageData()
    image.SetDimensions(*voxels_zyx.shape[::-1])
    scalars = numpy_to_vtk(np.ascontiguousarray(voxels_zyx).ravel(), deep=True)
    image.GetPointData().SetScalars(scalars)
    return image


def _oriented_image(voxels_zyx: np.ndarray, geometry: sitk.Image) -> Any:
    """A vtkOrientedImageData (what segments are made of) in the geometry of an ITK image."""
    import slicer

    image = _vtk_image(voxels_zyx, slicer.vtkOrientedImageData())
    image.SetImageToWorldMatrix(_vtk_matrix(ijk_to_ras_matrix(geometry)))
    return image


def _array_from_vtk_image(image_data: Any) -> np.ndarray:
    """A copy of a VTK image's scalars as a numpy (z, y, x) array."""
    from vtk.util.numpy_support import vtk_to_numpy

    extent = image_data.GetExtent()
    shape = [extent[2 * i + 1] - extent[2 * i] + 1 for i in (2, 1, 0)]
    return vtk_to_numpy(image_data.GetPointData().GetScalars()).reshape(shape).copy()


def _vtk_matrix(matrix: np.ndarray) -> Any:
    import vtk

    vtk_matrix = vtk.vtkMatrix4x4()
    vtk_matrix.DeepCopy(np.asarray(matrix, dtype=float).ravel().tolist())
    return vtk_matrix


def _numpy_matrix(vtk_matrix: Any) -> np.ndarray:
    return np.array([[vtk_matrix.GetElement(i, j) for j in range(4)] for i in range(4)])


def _typed_array(name: str, values: Sequence[Any]) -> Any:
    parse, array_class = _column_type(values)
    array = array_class()
    array.SetName(name)
    for value in values:
        array.InsertNextValue(parse(str(value)))
    return array


def _column_type(values: Sequence[Any]) -> tuple[type, Any]:
    """The narrowest of int, float, str that parses every value, with its VTK array class."""
    import vtk

    for parse, array_class in ((int, vtk.vtkIntArray), (float, vtk.vtkDoubleArray)):
        try:
            [parse(str(value)) for value in values]
        except ValueError:
            continue
        return parse, array_class
    return str, vtk.vtkStringArray


def _array_values(array: Any) -> list[Any]:
    convert = {"vtkIntArray": int, "vtkDoubleArray": float}.get(array.GetClassName(), str)
    return [convert(array.GetValue(i)) for i in range(array.GetNumberOfValues())]
