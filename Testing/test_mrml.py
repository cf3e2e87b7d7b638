"""The MRML adapter against the real `slicer-core` scene, volume, segmentation and table nodes."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio

from MSLesionAILib import mrml
from MSLesionAILib.geometry import index_zyx_to_ras
from MSLesionAILib.results import LesionResult, Segment, write_result, write_seg_nrrd
from MSLesionAILib.tasks import ROLE_ATTRIBUTE

slicer = pytest.importorskip("slicer")

SEGMENTS = [Segment(1, "white-matter lesion", (1.0, 0.85, 0.0)),
            Segment(2, "rim+ lesion", (0.9, 0.1, 0.1)),
            Segment(3, "white matter", (0.94, 0.92, 0.85))]
LESION_ID = 1
LESION_SLICES = np.s_[3:6, 4:9, 2:5]


@pytest.fixture
def oblique_image() -> sitk.Image:
    """An anisotropic image whose axes are rotated about all three world axes."""
    image = sitk.GetImageFromArray(np.random.default_rng(0).random((10, 14, 17), np.float32))
    image.SetSpacing((0.8, 1.1, 3.0))
    rotation = sitk.Euler3DTransform((0, 0, 0), 0.35, -0.25, 0.6)
    image.SetDirection(rotation.GetMatrix())
    image.SetOrigin((12.5, -40.0, 7.25))
    return image


@pytest.fixture
def class_labels(oblique_image: sitk.Image) -> sitk.Image:
    labels = np.zeros(sitk.GetArrayViewFromImage(oblique_image).shape, np.uint8)
    labels[LESION_SLICES] = 1
    labels[6:8, 10:12, 12:16] = 2
    labels[0:2, :, :] = 3
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(oblique_image)
    return image


def lesion_mask(image: sitk.Image) -> np.ndarray:
    mask = np.zeros(sitk.GetArrayViewFromImage(image).shape, bool)
    mask[LESION_SLICES] = True
    return mask


def lesion_row(image: sitk.Image) -> dict:
    """The row a pipeline writes for the lesion at `LESION_SLICES`, centroid from geometry.py."""
    mask = lesion_mask(image)
    centroid = index_zyx_to_ras(image, np.argwhere(mask).mean(axis=0))[0]
    return {"lesion_id": LESION_ID, "class": "wm", "volume_ul": mask.sum() * 0.8 * 1.1 * 3.0,
            "voxels": int(mask.sum()), "centroid_r": centroid[0], "centroid_a": centroid[1],
            "centroid_s": centroid[2]}


def exported_labels(scene, segmentation_node, reference_volume) -> np.ndarray:
    """Slicer's own export of all segments (value = segment order) on the reference grid."""
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    slicer.vtkSlicerSegmentationsModuleLogic.ExportAllSegmentsToLabelmapNode(
        segmentation_node, labelmap, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY)
    assert np.allclose(mrml.volume_ijk_to_ras(labelmap),
                       mrml.volume_ijk_to_ras(reference_volume))
    return slicer.util.arrayFromVolume(labelmap)


def test_a_results_volume_has_its_role_when_the_scene_announces_it(scene, oblique_image):
    """Panels choose inputs by name as volumes are added: a result's lesion ids, named after
    its reference volume, must already be marked as such then."""
    import vtk

    added = []

    def on_node_added(caller, event, node):
        added.append((node.GetName(), node.GetAttribute(ROLE_ATTRIBUTE)))

    on_node_added.CallDataType = vtk.VTK_OBJECT
    scene.AddObserver(scene.NodeAddedEvent, on_node_added)
    mrml.volume_from_image(scene, oblique_image, "FLAIR lesion ids", labelmap=True,
                           role="lesion ids")
    mrml.volume_from_image(scene, oblique_image, "FLAIR")
    assert added == [("FLAIR lesion ids", "lesion ids"), ("FLAIR", None)]


def test_volume_round_trip_keeps_voxels_and_geometry(scene, oblique_image):
    node = mrml.volume_from_image(scene, oblique_image, "FLAIR")
    back = mrml.image_from_volume(node)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back),
                                  sitk.GetArrayFromImage(oblique_image))
    np.testing.assert_allclose(back.GetSpacing(), oblique_image.GetSpacing())
    np.testing.assert_allclose(back.GetOrigin(), oblique_image.GetOrigin())
    np.testing.assert_allclose(back.GetDirection(), oblique_image.GetDirection(), atol=1e-12)
    # Slicer's IJK → RAS agrees with ITK's index → LPS, the first two axes flipped.
    ijk = (3, 7, 5)
    lps = oblique_image.TransformIndexToPhysicalPoint(ijk)
    ras = mrml.volume_ijk_to_ras(node) @ [*ijk, 1]
    np.testing.assert_allclose(ras[:3], [-lps[0], -lps[1], lps[2]], atol=1e-9)


def test_second_volume_with_the_same_name_gets_a_new_name(scene, oblique_image):
    first = mrml.volume_from_image(scene, oblique_image, "FLAIR")
    second = mrml.volume_from_image(scene, oblique_image, "FLAIR")
    assert first.GetName() == "FLAIR" and second.GetName() != "FLAIR"


def test_segmentation_has_named_coloured_segments_with_exact_voxels(scene, oblique_image,
                                                                   class_labels):
    volume = mrml.volume_from_image(scene, oblique_image, "FLAIR")
    node = mrml.segmentation_from_labelmap(scene, class_labels, SEGMENTS, "FLAIR lesions", volume)

    assert mrml.segment_ids(node) == ["white_matter_lesion", "rim_positive_lesion", "white_matter"]
    segmentation = node.GetSegmentation()
    for expected, segment_id in zip(SEGMENTS, mrml.segment_ids(node), strict=True):
        segment = segmentation.GetSegment(segment_id)
        assert segment.GetName() == expected.name
        np.testing.assert_allclose(segment.GetColor(), expected.color)
        is_lesion = expected.name.endswith("lesion")
        assert (segment.GetTerminology() == mrml.LESION_TERMINOLOGY) == is_lesion
    assert node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole()) is volume

    labels = sitk.GetArrayFromImage(class_labels)
    np.testing.assert_array_equal(exported_labels(scene, node, volume), labels)
    for segment in SEGMENTS:
        mask = mrml.segment_mask(node, mrml.segment_id(segment), class_labels)
        np.testing.assert_array_equal(mask, labels == segment.value)


def test_transforms_that_align_nodes_in_slicer_count(scene, oblique_image, class_labels):
    """A node under a linear transform is read in the frame of another node."""
    volume = mrml.volume_from_image(scene, oblique_image, "FLAIR")
    moved = mrml.volume_from_image(scene, oblique_image, "T2")
    segmentation = mrml.segmentation_from_labelmap(scene, class_labels, SEGMENTS, "seg", volume)
    one_voxel_along_i = mrml.volume_ijk_to_ras(volume)[:3, 0]
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    transform.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(
        np.r_[np.c_[np.eye(3), one_voxel_along_i], [[0, 0, 0, 1]]]))
    for node in (moved, segmentation):
        node.SetAndObserveTransformNodeID(transform.GetID())

    in_frame = mrml.image_from_volume(moved, frame_node=volume)
    assert in_frame.TransformIndexToPhysicalPoint((0, 0, 0)) == pytest.approx(
        oblique_image.TransformIndexToPhysicalPoint((1, 0, 0)))
    assert mrml.image_from_volume(moved).GetOrigin() == pytest.approx(oblique_image.GetOrigin())
    mask = mrml.segment_mask(segmentation, "white_matter_lesion", class_labels, frame_node=volume)
    labels = sitk.GetArrayFromImage(class_labels)
    np.testing.assert_array_equal(mask[:, :, 1:], labels[:, :, :-1] == 1)


def test_rim_segment_ids_stay_distinct():
    ids = {mrml.segment_id(Segment(v, n, (0, 0, 0)))
           for v, n in ((1, "rim+ lesion"), (2, "rim- lesion"))}
    assert ids == {"rim_positive_lesion", "rim_negative_lesion"}


def test_table_has_typed_columns_from_values_and_from_csv_strings(scene):
    rows = [{"lesion_id": 1, "class": "leukocortical", "volume_ul": 12.5, "rim_positive": 1},
            {"lesion_id": 2, "class": "intracortical_subpial", "volume_ul": 3.0,
             "rim_positive": 0}]
    columns = list(rows[0])
    as_csv = [{k: str(v) for k, v in row.items()} for row in rows]
    for source in (rows, as_csv):
        table = mrml.table_from_rows(scene, columns, source, "lesions")
        kinds = [table.GetTable().GetColumnByName(c).GetClassName() for c in columns]
        assert kinds == ["vtkIntArray", "vtkStringArray", "vtkDoubleArray", "vtkIntArray"]
        assert mrml.rows_from_table(table) == (columns, rows)
        assert table.GetColumnUnitLabel("volume_ul") == "µL"


def test_table_views_show_the_column_names_as_header_so_view_rows_are_table_rows(scene):
    table = mrml.table_from_rows(scene, ["lesion_id"], [{"lesion_id": 1}], "lesions")
    assert table.GetUseColumnTitleAsColumnHeader()


def test_a_numeric_column_with_missing_values_is_double_with_nan(scene):
    rows = [{"split_from": 3, "note": ""}, {"split_from": "", "note": "painted"}]
    table = mrml.table_from_rows(scene, ["split_from", "note"], rows, "lesions")
    assert table.GetTable().GetColumnByName("split_from").GetClassName() == "vtkDoubleArray"
    values = mrml.rows_from_table(table)[1]
    assert values[0] == {"split_from": 3.0, "note": ""} and np.isnan(values[1]["split_from"])


def test_results_are_placed_beside_the_input_under_its_transform(scene, oblique_image):
    volume = mrml.volume_from_image(scene, oblique_image, "FLAIR")
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    volume.SetAndObserveTransformNodeID(transform.GetID())
    hierarchy = scene.GetSubjectHierarchyNode()
    patient = hierarchy.CreateFolderItem(hierarchy.GetSceneItemID(), "patient")
    hierarchy.CreateItem(patient, volume)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    table = scene.AddNewNodeByClass("vtkMRMLTableNode")

    mrml.place_beside([segmentation, table], volume)

    assert segmentation.GetTransformNodeID() == transform.GetID()
    for node in (segmentation, table):
        assert hierarchy.GetItemParent(hierarchy.GetItemByDataNode(node)) == patient


def test_lesion_centroid_in_the_table_is_where_slicer_shows_the_lesion(scene, oblique_image):
    volume = mrml.volume_from_image(scene, oblique_image, "FLAIR")
    row = lesion_row(oblique_image)
    table = mrml.table_from_rows(scene, list(row), [row], "lesions")

    lesion_ijk = np.argwhere(lesion_mask(oblique_image))[:, ::-1]
    ijk_to_ras = mrml.volume_ijk_to_ras(volume)
    voxel_centres_ras = (ijk_to_ras @ np.c_[lesion_ijk, np.ones(len(lesion_ijk))].T).T[:, :3]
    np.testing.assert_allclose(mrml.lesion_position_ras(table, 0), voxel_centres_ras.mean(0),
                               atol=1e-6)

    red = scene.AddNewNodeByClass("vtkMRMLSliceNode")
    red.SetLayoutName("Red")
    red.SetOrientationToAxial()
    position = mrml.jump_to_lesion(table, 0)
    np.testing.assert_allclose(slicer.util.arrayFromVTKMatrix(red.GetSliceToRAS())[:3, 3], position,
                               atol=1e-6)


def test_seg_nrrd_reads_back_with_slicer_storage_node_and_slicerio(scene, tmp_path,
                                                                  oblique_image, class_labels):
    labels = sitk.GetArrayFromImage(class_labels)
    path = write_seg_nrrd(tmp_path / "wm.seg.nrrd", labels, oblique_image, SEGMENTS)

    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    segmentation = node.GetSegmentation()
    names = [segmentation.GetNthSegment(i).GetName() for i in range(len(SEGMENTS))]
    assert names == [s.name for s in SEGMENTS]
    volume = mrml.volume_from_image(scene, oblique_image, "FLAIR")
    node.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    np.testing.assert_array_equal(exported_labels(scene, node, volume), labels)

    read = slicerio.read_segmentation(str(path))
    assert [s["name"] for s in read["segments"]] == [s.name for s in SEGMENTS]
    np.testing.assert_array_equal(np.transpose(read["voxels"], (2, 1, 0)), labels)

    labels_back, segments_back = mrml.read_seg_nrrd(path)
    assert segments_back == SEGMENTS
    np.testing.assert_array_equal(sitk.GetArrayFromImage(labels_back), labels)
    np.testing.assert_allclose(labels_back.GetDirection(), oblique_image.GetDirection(),
                               atol=1e-9)
    np.testing.assert_allclose(labels_back.GetOrigin(), oblique_image.GetOrigin(), atol=1e-9)


def test_result_folder_loads_into_new_nodes(scene, tmp_path, oblique_image, class_labels):
    labels = sitk.GetArrayFromImage(class_labels)
    row = lesion_row(oblique_image)
    result = LesionResult("wm", oblique_image, (labels == 1).astype(np.uint16), labels, SEGMENTS,
                          list(row), [row], {"lesion_count": 1})
    write_result(result, tmp_path)
    volume = mrml.volume_from_image(scene, oblique_image, "FLAIR")

    nodes = mrml.load_result_folder(scene, tmp_path, volume, "FLAIR WM lesions")

    assert nodes.segmentation.GetName() == "FLAIR WM lesions"
    assert nodes.table.GetName() == "FLAIR WM lesions table"
    assert nodes.summary["lesion_count"] == 1
    assert '"lesion_count": 1' in nodes.table.GetAttribute(mrml.SUMMARY_ATTRIBUTE)
    columns, rows = mrml.rows_from_table(nodes.table)
    assert columns == list(row) and rows[0]["lesion_id"] == LESION_ID
    np.testing.assert_allclose([rows[0][c] for c in mrml.CENTROID_COLUMNS],
                               [row[c] for c in mrml.CENTROID_COLUMNS])
    assert nodes.lesion_ids.GetAttribute(ROLE_ATTRIBUTE) == "lesion ids"
    assert not nodes.lesion_ids.GetHideFromEditors()  # saved with the scene by every Slicer
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(nodes.lesion_ids), labels == 1)
    np.testing.assert_array_equal(exported_labels(scene, nodes.segmentation, volume), labels)


def write_like_the_save_dialog(scene, folder) -> None:
    """What Slicer's Save dialog does for a .mrml scene: each storable node it lists (not
    hidden from editors, saved with the scene) to a file in its default format, then the scene
    file. (Slicer 5.10 and later also write hidden storable nodes, from `Commit`, into a
    "<scene>_Private" folder; older versions do not, which the result's nodes do not need.)"""
    nodes = scene.GetNodesByClass("vtkMRMLStorableNode")
    for node in (nodes.GetItemAsObject(i) for i in range(nodes.GetNumberOfItems())):
        if node.GetHideFromEditors() or not node.GetSaveWithScene():
            continue
        if node.GetStorageNode() is None:
            node.AddDefaultStorageNode()
        storage = node.GetStorageNode()
        extension = storage.GetDefaultWriteFileExtension()
        storage.SetFileName(str(folder / f"{node.GetName()}.{extension}"))
        assert storage.WriteData(node)
    assert scene.Commit(str(folder / "scene.mrml"))


def write_data_bundle(scene, folder) -> None:
    """What saving a .mrb does before zipping the folder."""
    folder.mkdir()
    logic = slicer.vtkMRMLApplicationLogic()
    logic.SetMRMLScene(scene)
    assert logic.SaveSceneToSlicerDataBundleDirectory(str(folder), None)


@pytest.mark.parametrize("save", [write_like_the_save_dialog, write_data_bundle],
                         ids=["mrml", "mrb"])
def test_a_result_saved_with_the_scene_loads_back_whole(scene, tmp_path, oblique_image,
                                                         class_labels, save):
    """What the module needs of a result after the scene is saved and loaded again: the table
    (values of their types), its segmentation and its lesion-id volume."""
    labels = sitk.GetArrayFromImage(class_labels)
    row = lesion_row(oblique_image)
    write_result(LesionResult("rim", oblique_image, (labels == 1).astype(np.uint16), labels,
                              SEGMENTS, list(row), [row], {"lesion_count": 1}), tmp_path / "r")
    volume = mrml.volume_from_image(scene, oblique_image, "FLAIR")
    nodes = mrml.load_result_folder(scene, tmp_path / "r", volume, "FLAIR rim lesions")
    saved = tmp_path / "saved"
    saved.mkdir()
    save(scene, saved / "bundle" if save is write_data_bundle else saved)

    loaded = slicer.vtkMRMLScene()
    slicer.vtkSlicerSegmentationsModuleLogic().SetMRMLScene(loaded)
    loaded.SetURL(str(next(saved.rglob("*.mrml"))))
    assert loaded.Connect()
    back = mrml.result_nodes(loaded.GetFirstNodeByName("FLAIR rim lesions table"))

    assert mrml.rows_from_table(back.table)[0] == list(row)
    back_row = mrml.rows_from_table(back.table)[1][0]
    assert back_row == {name: pytest.approx(value, rel=1e-5) if isinstance(value, float)
                        else value for name, value in row.items()}  # .tsv: 6 digits
    assert type(back_row["lesion_id"]) is int and type(back_row["volume_ul"]) is float
    assert back.summary == nodes.summary
    assert mrml.segment_ids(back.segmentation) == mrml.segment_ids(nodes.segmentation)
    assert back.lesion_ids.GetAttribute(ROLE_ATTRIBUTE) == "lesion ids"
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(back.lesion_ids), labels == 1)
    np.testing.assert_allclose(mrml.volume_ijk_to_ras(back.lesion_ids),
                               mrml.volume_ijk_to_ras(nodes.lesion_ids))
    loaded.Clear(True)


TISSUE_AND_LESION = [Segment(3, "white matter", (0.94, 0.92, 0.85)),
                     Segment(4, "ventricles", (0.16, 0.35, 0.80)),
                     Segment(1, "white-matter lesion", (1.0, 0.85, 0.0))]  # as `pipelines.wm`


def lesion_in_tissue(oblique_image: sitk.Image) -> sitk.Image:
    labels = np.full(sitk.GetArrayViewFromImage(oblique_image).shape, 3, np.uint8)
    labels[:, :3, :] = 4
    labels[3:8, 5:10, 6:11] = 1
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(oblique_image)
    return image


def test_lesion_segments_come_first_in_the_segment_list(scene, oblique_image):
    labels = lesion_in_tissue(oblique_image)
    node = mrml.segmentation_from_labelmap(scene, labels, TISSUE_AND_LESION, "wm")
    assert mrml.segment_ids(node) == ["white_matter_lesion", "white_matter", "ventricles"]
    assert node.GetSegmentation().GetNumberOfLayers() == 1
    for segment in TISSUE_AND_LESION:
        np.testing.assert_array_equal(mrml.segment_mask(node, mrml.segment_id(segment), labels),
                                      sitk.GetArrayFromImage(labels) == segment.value)


def render_slice(scene, position_ras, size: int = 64) -> np.ndarray:
    """An axial slice view centred on a point, rendered off screen with Slicer's own
    segmentation displayable manager; RGB pixels."""
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    window = vtk.vtkRenderWindow()
    window.SetOffScreenRendering(1)
    if not window.SupportsOpenGL():
        pytest.skip("no off-screen OpenGL here")
    window.SetSize(size, size)
    renderer = vtk.vtkRenderer()
    window.AddRenderer(renderer)
    interactor = vtk.vtkRenderWindowInteractor()
    interactor.SetRenderWindow(window)
    application_logic = slicer.vtkMRMLApplicationLogic()
    application_logic.SetMRMLScene(scene)
    factory = slicer.vtkMRMLSliceViewDisplayableManagerFactory.GetInstance()
    factory.SetMRMLApplicationLogic(application_logic)
    factory.RegisterDisplayableManager("vtkMRMLSegmentationsDisplayableManager2D")
    slice_node = scene.AddNewNodeByClass("vtkMRMLSliceNode")
    slice_node.SetLayoutName("Red")
    slice_node.SetOrientationToAxial()
    slice_node.SetDimensions(size, size, 1)
    slice_node.SetFieldOfView(8.0, 8.0, 1.0)
    slice_node.JumpSliceByCentering(*position_ras)
    managers = factory.InstantiateDisplayableManagers(renderer)
    managers.SetMRMLDisplayableNode(slice_node)
    window.Render()
    capture = vtk.vtkWindowToImageFilter()
    capture.SetInput(window)
    capture.Update()
    pixels = vtk_to_numpy(capture.GetOutput().GetPointData().GetScalars())
    managers.SetMRMLDisplayableNode(None)
    return pixels.reshape(size, size, -1)[:, :, :3]


def test_slice_views_show_lesions_over_visible_tissue(scene, oblique_image):
    """The lesion is first in the segment list, and still drawn over the tissue around it."""
    labels = lesion_in_tissue(oblique_image)
    node = mrml.segmentation_from_labelmap(scene, labels, TISSUE_AND_LESION, "wm")
    display = node.GetDisplayNode()
    display.SetVisibility2DOutline(False)
    display.SetOpacity2DFill(1.0)
    lesion_voxels = np.argwhere(sitk.GetArrayFromImage(labels) == 1)
    centre = index_zyx_to_ras(labels, lesion_voxels.mean(axis=0))[0]

    pixels = render_slice(scene, centre)

    lesion_rgb, tissue_rgb = (np.multiply(255, TISSUE_AND_LESION[i].color) for i in (2, 0))
    middle = pixels.shape[0] // 2
    np.testing.assert_allclose(pixels[middle, middle], lesion_rgb, atol=2)
    assert any(np.allclose(pixel, tissue_rgb, atol=2) for pixel in pixels.reshape(-1, 3))
