"""A reference volume under a linear transform: jump-to-lesion and the rim module's picked point
agree with where Slicer shows the lesion (slicer-core scene, real transform nodes)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from test_modules_static import module_files as module_files  # the fixture
from test_modules_static import parameters_of

from MSLesionAILib import mrml
from MSLesionAILib.cli import build_parser
from MSLesionAILib.geometry import index_zyx_to_ras
from MSLesionAILib.results import LesionResult, Segment, write_result
from MSLesionAILib.workflow import option_arguments

slicer = pytest.importorskip("slicer")

LESION = np.s_[3:6, 4:9, 2:5]
SEGMENTS = [Segment(1, "white-matter lesion", (1.0, 0.85, 0.0))]


def lesion_image(oblique_image: sitk.Image) -> sitk.Image:
    labels = np.zeros(sitk.GetArrayViewFromImage(oblique_image).shape, np.uint8)
    labels[LESION] = 1
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(oblique_image)
    return image


def rotated_and_moved(scene):
    """A linear transform node: 30° about an oblique axis, then 12, -7, 25 mm."""
    rotation = sitk.VersorTransform((0.3, -0.5, 0.8), np.deg2rad(30.0)).GetMatrix()
    matrix = np.eye(4)
    matrix[:3, :3] = np.reshape(rotation, (3, 3))
    matrix[:3, 3] = (12.0, -7.0, 25.0)
    node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    node.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(matrix))
    return node, matrix


def lesion_centre(volume, to_world: np.ndarray) -> np.ndarray:
    """The mean of the lesion's voxel centres in world RAS: where Slicer shows the lesion."""
    mask = np.zeros(volume.GetImageData().GetDimensions()[::-1], bool)
    mask[LESION] = True
    ijk = np.argwhere(mask)[:, ::-1]
    ras = (to_world @ mrml.volume_ijk_to_ras(volume) @ np.c_[ijk, np.ones(len(ijk))].T).T
    return ras[:, :3].mean(axis=0)


def test_jump_to_lesion_goes_where_a_transformed_result_shows_the_lesion(scene, oblique_image,
                                                                         tmp_path):
    labels = lesion_image(oblique_image)
    ids = sitk.GetArrayFromImage(labels).astype(np.uint16)
    rows = [{"lesion_id": 1, "voxels": int(ids.sum())}]
    centroid = index_zyx_to_ras(labels, np.argwhere(ids).mean(axis=0))[0]  # as pipelines do
    rows[0].update(dict(zip(mrml.CENTROID_COLUMNS, centroid, strict=True)))
    write_result(LesionResult("wm", oblique_image, ids, sitk.GetArrayFromImage(labels), SEGMENTS,
                              list(rows[0]), rows, {}), tmp_path)
    volume = mrml.volume_from_image(scene, oblique_image, "FLAIR")
    transform, matrix = rotated_and_moved(scene)
    volume.SetAndObserveTransformNodeID(transform.GetID())
    nodes = mrml.load_result_folder(scene, tmp_path, volume, "FLAIR WM lesions")
    mrml.place_beside(nodes.nodes(), volume)  # as a run does: the result under the transform
    red = scene.AddNewNodeByClass("vtkMRMLSliceNode")
    red.SetLayoutName("Red")
    red.SetOrientationToAxial()

    position = mrml.jump_to_lesion(nodes.table, 0)

    expected = lesion_centre(volume, matrix)
    np.testing.assert_allclose(position, expected, atol=1e-6)
    assert np.linalg.norm(expected - centroid) > 10.0  # the transform matters here
    np.testing.assert_allclose(slicer.util.arrayFromVTKMatrix(red.GetSliceToRAS())[:3, 3],
                               expected, atol=1e-6)


def test_a_table_without_a_result_jumps_to_its_centroids_as_they_are(scene):
    row = {"lesion_id": 1, "centroid_r": 1.5, "centroid_a": -2.0, "centroid_s": 30.0}
    table = mrml.table_from_rows(scene, list(row), [row], "lesions")
    np.testing.assert_allclose(mrml.jump_to_lesion(table, 0), [1.5, -2.0, 30.0])


def test_transform_point_goes_both_ways_between_nodes_and_world(scene, oblique_image):
    volume = mrml.volume_from_image(scene, oblique_image, "FLAIR")
    transform, matrix = rotated_and_moved(scene)
    volume.SetAndObserveTransformNodeID(transform.GetID())
    local = np.array([-12.5, 3.0, 40.0])
    world = (matrix @ [*local, 1.0])[:3]
    np.testing.assert_allclose(mrml.transform_point(local, from_node=volume), world, atol=1e-9)
    np.testing.assert_allclose(mrml.transform_point(world, to_node=volume), local, atol=1e-9)
    other = mrml.volume_from_image(scene, oblique_image, "T2")
    np.testing.assert_allclose(mrml.transform_point(local, volume, other), world, atol=1e-9)
    np.testing.assert_allclose(mrml.transform_point(local), local)


def test_a_point_picked_on_a_transformed_volume_reaches_the_pipeline_on_the_lesion(
        module_files, scene, oblique_image):
    """The rim module's "classify the lesion at this point": the point is picked in world
    coordinates on the transformed phase image; the command line gets it in the coordinates of
    the exported phase image, where it lies in the lesion."""
    labels = lesion_image(oblique_image)
    phase = mrml.volume_from_image(scene, oblique_image, "phase")
    transform, matrix = rotated_and_moved(scene)
    phase.SetAndObserveTransformNodeID(transform.GetID())
    picked = lesion_centre(phase, matrix)  # what the user clicks on in a slice view
    point = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    point.AddControlPointWorld([0.0, 0.0, 0.0])   # placed before: the last point is the one
    point.AddControlPointWorld(picked.tolist())
    point.AddControlPointWorld([0.0, 0.0, 0.0])   # not placed (missing): not the one
    point.SetNthControlPointPositionMissing(2)
    rim = module_files["MSLesionAIRim"]
    parameters = parameters_of(rim, {"phase": phase, "point": point})

    options = rim.MSLesionAIRimLogic().arguments(parameters)[1]

    args = build_parser().parse_args(["rim", "--phase", "p.nrrd", "--out", "o",
                                      *option_arguments(options)])
    exported = mrml.image_from_volume(phase)  # as `workflow.start` exports the reference
    r, a, s = args.point
    index = exported.TransformPhysicalPointToIndex((-r, -a, s))
    assert labels[index] == 1
    np.testing.assert_allclose(args.point, lesion_centre(phase, np.eye(4)), atol=1e-3)
