"""LPS/RAS conversion, resampling and overlap checks on oblique, anisotropic images."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import make_image
from MSLesionAILib.errors import InputError
from MSLesionAILib.geometry import (
    axis_aligned_grid,
    check_overlap,
    corners_lps,
    index_zyx_to_lps,
    index_zyx_to_ras,
    lps_to_ras,
    overlap_fraction,
    ras_to_index_zyx,
    ras_to_lps,
    resample_like,
    resample_to_spacing,
    same_grid,
    same_voxels,
    slice_anisotropy,
    slice_axis,
    slice_direction_lps,
    voxel_volume_ul,
)


def test_lps_ras_flip_the_first_two_axes():
    np.testing.assert_allclose(lps_to_ras([1.0, 2.0, 3.0]), [-1.0, -2.0, 3.0])
    np.testing.assert_allclose(ras_to_lps(lps_to_ras([[4.0, -5.0, 6.0]])), [[4.0, -5.0, 6.0]])


def test_index_to_lps_matches_itk_on_oblique_anisotropic_image(oblique_image):
    index_xyz = (3, 7, 5)
    expected = oblique_image.TransformIndexToPhysicalPoint(index_xyz)
    np.testing.assert_allclose(index_zyx_to_lps(oblique_image, [index_xyz[::-1]])[0], expected)


def test_ras_round_trip_through_voxel_index(oblique_image):
    index_zyx = np.array([4.5, 2.0, 11.25])
    point_ras = index_zyx_to_ras(oblique_image, index_zyx)[0]
    np.testing.assert_allclose(ras_to_index_zyx(oblique_image, point_ras), index_zyx, atol=1e-9)
    lps = oblique_image.TransformContinuousIndexToPhysicalPoint(index_zyx[::-1].tolist())
    np.testing.assert_allclose(point_ras, [-lps[0], -lps[1], lps[2]])


def test_voxel_volume_is_in_microlitres(oblique_image):
    assert voxel_volume_ul(oblique_image) == pytest.approx(1.0 * 1.2 * 2.5)


def test_resample_like_onto_same_grid_is_identity(oblique_image):
    same = resample_like(oblique_image, oblique_image, "nearest")
    assert same_grid(same, oblique_image)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(same),
                                  sitk.GetArrayFromImage(oblique_image))


def test_resample_to_spacing_keeps_the_physical_box(oblique_image):
    resampled = resample_to_spacing(oblique_image, (0.5, 0.6, 1.25))
    assert resampled.GetSize() == (40, 32, 24)
    assert resampled.GetDirection() == oblique_image.GetDirection()
    centre = index_zyx_to_lps(oblique_image, [(np.array(oblique_image.GetSize()[::-1]) - 1) / 2])
    new_centre = index_zyx_to_lps(resampled, [(np.array(resampled.GetSize()[::-1]) - 1) / 2])
    np.testing.assert_allclose(new_centre, centre, atol=1e-6)


def test_overlap_of_an_image_with_itself_is_complete(oblique_image):
    assert overlap_fraction(oblique_image, oblique_image) == pytest.approx(1.0)
    check_overlap(oblique_image, "--t1", oblique_image, "--flair")


def test_images_far_apart_are_refused(oblique_image):
    far = make_image(origin=(500.0, 500.0, 500.0))
    assert overlap_fraction(far, oblique_image) == 0.0
    with pytest.raises(InputError, match="--t1: does not overlap --flair"):
        check_overlap(far, "--t1", oblique_image, "--flair")


def test_half_overlap_is_measured():
    reference = make_image(size_xyz=(10, 10, 10), spacing=(1, 1, 1), origin=(0, 0, 0),
                           direction=(1, 0, 0, 0, 1, 0, 0, 0, 1))
    shifted = make_image(size_xyz=(10, 10, 10), spacing=(1, 1, 1), origin=(5, 0, 0),
                         direction=(1, 0, 0, 0, 1, 0, 0, 0, 1))
    assert overlap_fraction(shifted, reference) == pytest.approx(0.5)


def test_axis_aligned_grid_covers_an_oblique_image(oblique_image):
    grid = axis_aligned_grid(oblique_image, (0.5, 0.5, 0.5))
    assert grid.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    inner = corners_lps(grid)
    outer = corners_lps(oblique_image)
    assert np.all(inner.min(0) <= outer.min(0) + 1e-6)
    assert np.all(inner.max(0) >= outer.max(0) - 1e-6)
    assert np.all(inner.max(0) - inner.min(0) <= outer.max(0) - outer.min(0) + 0.5 + 1e-6)


def test_the_slice_axis_is_the_coarsest_with_its_oblique_direction(oblique_image):
    assert slice_axis(oblique_image) == 2                       # spacing 1, 1.2, 2.5 mm
    direction = np.array(oblique_image.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(slice_direction_lps(oblique_image), direction[:, 2])
    assert slice_anisotropy(oblique_image) == pytest.approx(2.5 / 1.2)


@pytest.mark.parametrize("orientation", ["RAS", "LAS", "SPL", "ILA"])
def test_the_same_voxels_in_another_orientation_are_recognised_and_reorder_losslessly(
        oblique_image, orientation):
    reoriented = sitk.DICOMOrient(oblique_image, orientation)
    assert not same_grid(reoriented, oblique_image)
    assert same_voxels(reoriented, oblique_image) and same_voxels(oblique_image, reoriented)
    back = resample_like(reoriented, oblique_image, "nearest")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back),
                                  sitk.GetArrayFromImage(oblique_image))


def test_grids_that_do_not_share_every_voxel_centre_are_not_the_same_voxels(oblique_image):
    shifted = sitk.Image(oblique_image)
    shifted.SetOrigin(index_zyx_to_lps(oblique_image, [[0.0, 0.0, 0.3]])[0].tolist())
    finer = resample_to_spacing(oblique_image, (0.5, 1.2, 2.5))
    cropped = oblique_image[1:, :, :]
    long_axis = sitk.Image(700, 2, 2, sitk.sitkUInt8)   # 0.09 % larger voxels drift 0.6 voxel
    drifting = sitk.Image(long_axis)
    drifting.SetSpacing((1.0009, 1.0, 1.0))
    for other, reference in ((shifted, oblique_image), (finer, oblique_image),
                             (cropped, oblique_image), (drifting, long_axis)):
        assert not same_voxels(other, reference)
