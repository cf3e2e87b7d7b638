"""The MRML adapter: library objects ↔ Slicer nodes. The only library file importing `slicer`.

`slicer` is imported inside the functions, so the rest of the library (and this file's import)
works with no Slicer at all. Everything here needs only MRML (a scene, nodes, the segmentations
logic), no Qt, so it runs inside the Slicer app and against the `slicer-core` wheel alike.

Geometry: a SimpleITK image speaks LPS, a node RAS. Images become nodes through
`results.ijk_to_ras_matrix` (volumes and segmentations alike) and nodes become images through
the same flip of the first two axes, so voxels never move.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import slicerio

from .errors import InputError
from .geometry import LPS_TO_RAS as RAS_TO_LPS  # the flip is its own inverse
from .jsonfiles import read_json
from .results import Segment, ijk_to_ras_matrix, read_table_csv
from .tasks import ROLE_ATTRIBUTE

CENTROID_COLUMNS = ("centroid_r", "centroid_a", "centroid_s")
COLUMN_UNITS = {"volume_ul": "µL", **dict.fromkeys(CENTROID_COLUMNS, "mm")}
SUMMARY_ATTRIBUTE = "MSLesionAI.summary"
SEGMENTATION_REFERENCE = "MSLesionAI.segmentation"
LESION_IDS_REFERENCE = "MSLesionAI.lesionIds"

# SNOMED CT codes of Slicer's "3D Slicer General Anatomy list" terminology for a brain lesion.
LESION_TERMINOLOGY = ("Segmentation category and type - 3D Slicer General Anatomy list"
                      "~SCT^49755003^Morphologically Altered Structure~SCT^52988006^Lesion~^^"
                      "~Anatomic codes - DICOM master list~SCT^12738006^Brain~^^")


@dataclass
class ResultNodes:
    """The nodes one pipeline run created in the scene."""

    segmentation: Any   # vtkMRMLSegmentationNode, one segment per class
    table: Any          # vtkMRMLTableNode, one row per lesion; references the other two
    lesion_ids: Any     # vtkMRMLLabelMapVolumeNode: value k is the lesion of id k
    summary: dict[str, Any]

    def nodes(self) -> list[Any]:
        return [self.segmentation, self.table, self.lesion_ids]


# --- volumes --------------------------------------------------------------------------------

def image_from_volume(volume_node: Any, frame_node: Any = None) -> sitk.Image:
    """A SimpleITK image (LPS geometry) with a copy of a scalar volume node's voxels.

    Coordinates are the node's own, or with ``frame_node`` those of that node's frame: a volume
    that a linear transform aligns with ``frame_node`` in Slicer is exported aligned with it.
    """
    image_data = volume_node.GetImageData()
    if image_data is None or image_data.GetNumberOfScalarComponents() != 1:
        raise InputError(f"{volume_node.GetName()}: not a scalar volume with voxels")
    ijk_to_ras = _to_frame(volume_node, frame_node) @ volume_ijk_to_ras(volume_node)
    ijk_to_lps = np.diag([*RAS_TO_LPS, 1.0]) @ ijk_to_ras
    return _image(_array_from_vtk_image(image_data), ijk_to_lps)


def volume_ijk_to_ras(volume_node: Any) -> np.ndarray:
    """The 4 x 4 matrix from a volume node's voxel index (i, j, k) to RAS millimetres."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return _numpy_matrix(matrix)


def volume_from_image(scene: Any, image: sitk.Image, name: str, labelmap: bool = False,
                      role: str | None = None) -> Any:
    """A new volume node (unique name) with the image's voxels and geometry; no display node
    (Slicer adds one when the volume is shown). A result's volume gets its ``role``
    (`ROLE_ATTRIBUTE`) before it is added, so that no panel takes it for an input."""
    node = scene.CreateNodeByClass(
        "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode")
    node.UnRegister(None)   # CreateNodeByClass hands over a reference Python already holds
    node.SetName(scene.GenerateUniqueName(name))
    if role:
        node.SetAttribute(ROLE_ATTRIBUTE, role)
    node.SetIJKToRASMatrix(_vtk_matrix(ijk_to_ras_matrix(image)))
    node.SetAndObserveImageData(_vtk_image(sitk.GetArrayFromImage(image)))
    return scene.AddNode(node)


def set_volume_voxels(volume_node: Any, voxels_zyx: np.ndarray) -> None:
    """Replace a volume node's voxels by an array of the same shape; geometry stays."""
    volume_node.SetAndObserveImageData(_vtk_image(voxels_zyx))


def place_beside(nodes: Sequence[Any], reference_node: Any) -> None:
    """Put nodes in the same subject hierarchy folder, and under the same transform, as the
    reference node (so results stay aligned with the input they were computed from)."""
    hierarchy = reference_node.GetScene().GetSubjectHierarchyNode()
    reference_item = hierarchy.GetItemByDataNode(reference_node)
    parent = hierarchy.GetItemParent(reference_item) if reference_item else 0
    for node in nodes:
        if node.IsA("vtkMRMLTransformableNode"):
            node.SetAndObserveTransformNodeID(reference_node.GetTransformNodeID())
        item = hierarchy.GetItemByDataNode(node)
        if item and parent:
            hierarchy.SetItemParent(item, parent)
        elif parent:
            hierarchy.CreateItem(parent, node)


# --- segmentations --------------------------------------------------------------------------

def segment_id(segment: Segment) -> str:
    """A readable, stable segment ID from the class name ("rim+ lesion" → "rim_positive_lesion")."""
    name = re.sub(r"[-−](\s|$)", r" negative\1", segment.name.lower().replace("+", " positive"))
    return re.sub(r"[^a-z0-9]+", "_", name).strip("_") or f"class_{segment.value}"


def segmentation_from_labelmap(scene: Any, class_labels: sitk.Image, segments: Sequence[Segment],
                               name: str, reference_volume: Any = None) -> Any:
    """A new segmentation node: one named, coloured segment per class, sharing one labelmap.

    Segments whose name ends in "lesion" come first (`lesions_first`) and get the SNOMED
    "Lesion" terminology tag. The reference geometry (what the Segment Editor paints on) is the
    reference volume's when one is given.
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
    for segment in lesions_first(segments):
        vtk_segment = slicer.vtkSegment()
        vtk_segment.SetName(segment.name)
        vtk_segment.SetColor(*segment.color)
        vtk_segment.SetLabelValue(segment.value)
        if is_lesion(segment):
            vtk_segment.SetTerminology(LESION_TERMINOLOGY)
        vtk_segment.AddRepresentation(labelmap_name, shared)
        node.GetSegmentation().AddSegment(vtk_segment, segment_id(segment))
    return node


def is_lesion(segment: Segment) -> bool:
    return segment.name.endswith("lesion")


def lesions_first(segments: Sequence[Segment]) -> list[Segment]:
    """The lesion segments, then the others (tissue), each in their order: on top of Slicer's
    segment list, whose first row is the first segment.

    In the slice views lesions are on top whatever the order, as long as the segments share one
    labelmap layer, as `segmentation_from_labelmap` makes them: a voxel is then in one segment
    only, and shows that segment's colour. (Segments in separate, overlapping layers are drawn
    in segment order, the last on top; exporting or flattening them also lets later segments
    overwrite earlier ones.)
    """
    return sorted(segments, key=lambda segment: not is_lesion(segment))


def segment_mask(segmentation_node: Any, segment_id: str, reference: sitk.Image,
                 frame_node: Any = None) -> np.ndarray:
    """A segment's voxels as a boolean array (numpy z, y, x) on the reference image's grid
    (in the segmentation's coordinates, or in ``frame_node``'s as `image_from_volume`)."""
    import slicer
    import vtk

    labelmap = slicer.vtkOrientedImageData()
    segmentation_node.GetBinaryLabelmapRepresentation(segment_id, labelmap)
    grid = _oriented_image(np.zeros(sitk.GetArrayViewFromImage(reference).shape, np.uint8),
                           reference)
    to_frame = vtk.vtkTransform()
    to_frame.SetMatrix(_vtk_matrix(_to_frame(segmentation_node, frame_node)))
    on_grid = slicer.vtkOrientedImageData()
    slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
        labelmap, grid, on_grid, False, False, to_frame)
    return _array_from_vtk_image(on_grid) > 0


def set_segment_masks(segmentation_node: Any, masks: dict[str, np.ndarray],
                      geometry: sitk.Image) -> None:
    """Replace segments' voxels (segment ID → boolean array on the geometry's grid).

    The masks are meant not to overlap; the segments then end up sharing one labelmap again.
    """
    import slicer

    logic = slicer.vtkSlicerSegmentationsModuleLogic
    for segment_id, mask in masks.items():
        logic.SetBinaryLabelmapToSegment(_oriented_image(mask.astype(np.uint8), geometry),
                                         segmentation_node, segment_id, logic.MODE_REPLACE)
    segmentation_node.GetSegmentation().CollapseBinaryLabelmaps(False)


def segmentation_reference_volume(segmentation_node: Any) -> Any:
    """The scalar volume a segmentation was drawn on (its reference geometry), or None."""
    role = segmentation_node.GetReferenceImageGeometryReferenceRole()
    volume = segmentation_node.GetNodeReference(role)
    return volume if volume is not None and volume.IsA("vtkMRMLScalarVolumeNode") else None


def segment_ids(segmentation_node: Any) -> list[str]:
    segmentation = segmentation_node.GetSegmentation()
    return [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]


# --- tables ---------------------------------------------------------------------------------

def table_from_rows(scene: Any, columns: Sequence[str], rows: Sequence[dict[str, Any]],
                    name: str) -> Any:
    """A new table node with one typed column (int, double or string) per column name, the
    names shown as the view's header (else Slicer shows them as an editable first row, and a
    clicked view row is one past its lesion's table row)."""
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    node.SetUseColumnTitleAsColumnHeader(True)
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
    """Centre every slice view of the table's scene on the lesion of that row; the world point.

    The table's centroids are in the result's own coordinates (`result_frame`): a transform
    over the result moves them to where the slice views show the lesion.
    """
    import slicer

    r, a, s = transform_point(lesion_position_ras(table_node, row), result_frame(table_node))
    slicer.vtkMRMLSliceNode.JumpAllSlices(table_node.GetScene(), r, a, s,
                                          slicer.vtkMRMLSliceNode.CenteredJumpSlice)
    return np.array([r, a, s])


def result_frame(table_node: Any) -> Any:
    """The node whose own coordinates a lesion table's centroids are in: the result's
    segmentation (else its lesion-id volume; None, world, for a table of neither). They are
    the reference volume's coordinates, and the result sits under the reference's transform."""
    for role in (SEGMENTATION_REFERENCE, LESION_IDS_REFERENCE):
        node = table_node.GetNodeReference(role)
        if node is not None:
            return node
    return None


# --- transforms -----------------------------------------------------------------------------

def transform_point(point_ras: Sequence[float], from_node: Any = None,
                    to_node: Any = None) -> np.ndarray:
    """A point (RAS mm) in ``from_node``'s own coordinates, before its parent transforms, moved
    into ``to_node``'s (None: world). Linear or not, as Slicer's transform nodes say."""
    import slicer
    import vtk

    transform = vtk.vtkGeneralTransform()
    slicer.vtkMRMLTransformNode.GetTransformBetweenNodes(
        _parent_transform(from_node), _parent_transform(to_node), transform)
    return np.array(transform.TransformPoint([float(value) for value in point_ras]))


# --- pipeline output folders ----------------------------------------------------------------

def load_result_folder(scene: Any, folder: str | Path, reference_volume: Any,
                       name: str) -> ResultNodes:
    """New nodes for the files `results.write_result` wrote: segmentation, table, lesion ids.

    Every file is read before the first node is made, so a bad folder leaves the scene as it
    was. The summary is kept as JSON in the table's `SUMMARY_ATTRIBUTE`; the lesion-id
    labelmap (it serves "update table") is an ordinary node, not hidden, so that every Slicer
    saves it with the scene (before 5.10, .mrml saving skipped hidden nodes); its
    `ROLE_ATTRIBUTE` keeps panels from taking it for an input. The table references the other
    two.
    """
    folder = Path(folder)
    summary = read_json(folder / "summary.json")
    files = summary["files"]
    labels, segments = read_seg_nrrd(folder / files["segmentation"])
    columns, rows = _csv_header(folder / files["table"]), read_table_csv(folder / files["table"])
    ids_image = sitk.ReadImage(str(folder / files["lesions"]))

    nodes = ResultNodes(
        segmentation_from_labelmap(scene, labels, segments, name, reference_volume),
        table_from_rows(scene, columns, rows, f"{name} table"),
        volume_from_image(scene, ids_image, f"{name} lesion ids", labelmap=True,
                          role="lesion ids"), summary)
    nodes.table.SetAttribute(SUMMARY_ATTRIBUTE, json.dumps(summary))
    nodes.table.SetNodeReferenceID(SEGMENTATION_REFERENCE, nodes.segmentation.GetID())
    nodes.table.SetNodeReferenceID(LESION_IDS_REFERENCE, nodes.lesion_ids.GetID())
    return nodes


def result_nodes(table_node: Any) -> ResultNodes:
    """The result a lesion table belongs to (see `load_result_folder`)."""
    return ResultNodes(table_node.GetNodeReference(SEGMENTATION_REFERENCE), table_node,
                       table_node.GetNodeReference(LESION_IDS_REFERENCE),
                       json.loads(table_node.GetAttribute(SUMMARY_ATTRIBUTE) or "{}"))


def read_seg_nrrd(path: str | Path) -> tuple[sitk.Image, list[Segment]]:
    """The class labelmap (one layer) and segments of a ``.seg.nrrd``, read with slicerio."""
    segmentation = slicerio.read_segmentation(str(path))
    voxels_ijk = segmentation["voxels"]
    if voxels_ijk.ndim != 3:
        raise InputError(f"{path}: has overlapping segments (several layers); expected one layer")
    labels = _image(np.transpose(voxels_ijk, (2, 1, 0)), segmentation["ijkToLPS"])
    segments = [Segment(int(s["labelValue"]), s["name"], tuple(s["color"]))
                for s in segmentation["segments"]]
    return labels, segments


# --- helpers --------------------------------------------------------------------------------

def _parent_transform(node: Any) -> Any:
    return None if node is None else node.GetParentTransformNode()


def _image(voxels_zyx: np.ndarray, ijk_to_lps: np.ndarray) -> sitk.Image:
    """A SimpleITK image from voxels (numpy z, y, x) and its 4 x 4 index-to-LPS matrix."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(voxels_zyx))
    ijk_to_lps = np.asarray(ijk_to_lps, dtype=float)
    spacing = np.linalg.norm(ijk_to_lps[:3, :3], axis=0)
    image.SetSpacing(spacing.tolist())
    image.SetDirection((ijk_to_lps[:3, :3] / spacing).flatten().tolist())
    image.SetOrigin(ijk_to_lps[:3, 3].tolist())
    return image


def _to_frame(node: Any, frame_node: Any) -> np.ndarray:
    """The 4 x 4 matrix from a node's coordinates to ``frame_node``'s (identity without one)."""
    import slicer
    import vtk

    matrix = vtk.vtkMatrix4x4()
    if frame_node is not None and not slicer.vtkMRMLTransformNode.GetMatrixTransformBetweenNodes(
            node.GetParentTransformNode(), frame_node.GetParentTransformNode(), matrix):
        raise InputError(f"{node.GetName()}: is under a non-linear transform; harden it first "
                         "(Data module: right-click, Harden transform)")
    return _numpy_matrix(matrix)


def _csv_header(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as stream:
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


def _column_type(values: Sequence[Any]) -> tuple[Callable[[str], Any], Any]:
    """The narrowest of int, double, string that holds every value, with its VTK array class.

    Empty values ("") are missing: a numeric column with missing values is double (NaN).
    """
    import vtk

    texts = [str(value) for value in values]
    present = [text for text in texts if text != ""]
    if len(present) == len(texts) and _all_parse(int, present):
        return int, vtk.vtkIntArray
    if _all_parse(float, present):
        return lambda text: float(text or "nan"), vtk.vtkDoubleArray
    return str, vtk.vtkStringArray


def _all_parse(parse: Callable[[str], Any], texts: Sequence[str]) -> bool:
    try:
        for text in texts:
            parse(text)
    except ValueError:
        return False
    return True


def _array_values(array: Any) -> list[Any]:
    """A column's values as int, float or str by its data type, not its class name: a table
    read back from a saved scene has vtkTypeInt32Array / vtkTypeFloat64Array columns."""
    from vtk.util.numpy_support import vtk_to_numpy

    if not array.IsA("vtkDataArray"):
        return [str(array.GetValue(i)) for i in range(array.GetNumberOfValues())]
    values = vtk_to_numpy(array)
    return [int(v) for v in values] if values.dtype.kind in "iub" else [float(v) for v in values]
