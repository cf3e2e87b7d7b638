"""Reading and validating inputs: every bad input is refused with a message naming it."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import make_image
from MSLesionAILib.errors import InputError
from MSLesionAILib.imageio import BRAIN, array_to_image, load_image, read_image, write_image


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_round_trip_keeps_geometry_and_voxels(tmp_path, oblique_image, suffix):
    path = write_image(oblique_image, tmp_path / f"image{suffix}")
    back = load_image(path, "--flair")
    assert back.GetSize() == oblique_image.GetSize()
    np.testing.assert_allclose(back.GetSpacing(), oblique_image.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(back.GetOrigin(), oblique_image.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(back.GetDirection(), oblique_image.GetDirection(), atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back),
                                  sitk.GetArrayFromImage(oblique_image))


def test_dicom_series_folder_is_read(tmp_path):
    image = sitk.Cast(make_image(direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)) * 10, sitk.sitkInt16)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series_uid = "1.2.826.0.1.3680043.2.1125.1"
    for k in range(image.GetSize()[2]):
        slice_k = image[:, :, k]
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        for tag, value in [("0020|000e", series_uid), ("0020|0032", "\\".join(map(str, position))),
                           ("0020|0037", "1\\0\\0\\0\\1\\0"), ("0020|0013", str(k)),
                           ("0008|0060", "MR"), ("0028|0030", "1.2\\1.0"),
                           ("0018|0050", "2.5")]:
            slice_k.SetMetaData(tag, value)
        writer.SetFileName(str(tmp_path / f"slice{k:03d}.dcm"))
        writer.Execute(slice_k)
    back = load_image(tmp_path, "--flair")
    assert back.GetSize() == image.GetSize()
    np.testing.assert_allclose(back.GetSpacing(), image.GetSpacing(), atol=1e-4)


def test_missing_file_names_the_input(tmp_path):
    with pytest.raises(InputError, match=r"--t1: file not found"):
        read_image(tmp_path / "nope.nii.gz", "--t1")


def test_unreadable_file_names_the_input(tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"this is not an image")
    with pytest.raises(InputError, match=r"--flair: cannot read"):
        read_image(bad, "--flair")


def test_empty_dicom_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match="no DICOM series"):
        read_image(tmp_path, "--flair")


def _save(tmp_path, voxels, name="image.nii.gz"):
    path = tmp_path / name
    sitk.WriteImage(sitk.GetImageFromArray(voxels), str(path))
    return path


def test_2d_image_is_refused(tmp_path):
    with pytest.raises(InputError, match="--flair: is 2D"):
        load_image(_save(tmp_path, np.random.rand(8, 8).astype(np.float32)), "--flair")


def test_4d_image_is_refused(tmp_path):
    image = sitk.JoinSeries([make_image(), make_image(seed=1)])
    path = write_image(image, tmp_path / "series.nii.gz")
    with pytest.raises(InputError, match="--flair: is 4D"):
        load_image(path, "--flair")


def test_4d_image_with_one_volume_is_accepted(tmp_path):
    path = write_image(sitk.JoinSeries([make_image()]), tmp_path / "one.nii.gz")
    assert load_image(path, "--flair").GetDimension() == 3


def test_single_slice_is_refused(tmp_path):
    with pytest.raises(InputError, match="single slice"):
        load_image(_save(tmp_path, np.random.rand(1, 8, 8).astype(np.float32)), "--flair")


def test_constant_image_is_refused(tmp_path):
    with pytest.raises(InputError, match="--t2: is constant"):
        load_image(_save(tmp_path, np.zeros((8, 8, 8), np.float32)), "--t2")


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
# MetaImage keeps NaN (ITK's NIfTI reader turns it into 0).
def test_non_finite_voxels_are_refused(tmp_path, bad_value):
    voxels = np.random.rand(8, 8, 8).astype(np.float32)
    voxels[3, 3, 3] = bad_value
    with pytest.raises(InputError, match="--phase: contains NaN or infinite"):
        load_image(_save(tmp_path, voxels, "image.mha"), "--phase")


@pytest.mark.parametrize("name", ["image.nii.gz", "image.nii", "IMAGE.NII.GZ", "pair.hdr"])
@pytest.mark.parametrize("voxel_type", [np.float32, np.float64])
def test_non_finite_voxels_of_a_nifti_file_are_counted_in_the_file(tmp_path, name, voxel_type):
    """ITK reads them as 0, which would pass every check: whatever the file's name says of it,
    and in a header/image pair too."""
    voxels = np.random.rand(8, 8, 8).astype(voxel_type)
    voxels[3, 3, 3:5] = [np.nan, -np.inf]
    path = _save(tmp_path, voxels, name.lower())
    path = path.rename(tmp_path / name) if name.isupper() else path
    assert np.isfinite(sitk.GetArrayViewFromImage(sitk.ReadImage(str(path)))).all()
    with pytest.raises(InputError, match=f"--flair: 2 voxels of {name} are NaN or infinite; "
                                         "replace them"):
        load_image(path, "--flair")
    voxels[3, 3, 3:5] = 0.5
    assert load_image(_save(tmp_path, voxels, f"clean_{name.lower()}"), "--flair").GetSize() == (
        8, 8, 8)


def test_a_gzip_named_file_that_is_not_compressed_is_read(tmp_path):
    voxels = np.random.rand(8, 8, 8).astype(np.float32)
    (tmp_path / "plain.nii.gz").write_bytes(_save(tmp_path, voxels, "plain.nii").read_bytes())
    assert load_image(tmp_path / "plain.nii.gz", "--flair").GetSize() == (8, 8, 8)


def test_a_scaled_integer_nifti_file_is_not_read_as_floats(tmp_path):
    """Stored as int16 with a slope of 2 (ITK then gives floats): its voxels are whole numbers,
    which the NaN count must not read as float32."""
    path = tmp_path / "scaled.nii"
    sitk.WriteImage(sitk.Cast(sitk.GetImageFromArray(np.arange(512).reshape(8, 8, 8)),
                              sitk.sitkInt16), str(path))
    data = bytearray(path.read_bytes())
    data[112:116] = np.float32(2.0).tobytes()   # scl_slope
    path.write_bytes(bytes(data))
    image = load_image(path, "--t1")
    assert image.GetPixelID() == sitk.sitkFloat32
    assert sitk.GetArrayViewFromImage(image)[7, 7, 7] == 2 * 511


def test_a_sheared_direction_matrix_is_refused(tmp_path):
    """NIfTI cannot store it (ITK's writer makes it orthogonal), so outputs would move."""
    image = sitk.GetImageFromArray(np.random.rand(8, 8, 8).astype(np.float32))
    image.SetDirection((1.0, 0.287, 0.0, 0.0, 0.958, 0.0, 0.0, 0.0, 1.0))
    sitk.WriteImage(image, str(tmp_path / "sheared.nrrd"))
    with pytest.raises(InputError, match="--flair: its voxel axes are not perpendicular"):
        load_image(tmp_path / "sheared.nrrd", "--flair")


def test_vector_image_is_refused(tmp_path):
    voxels = np.random.rand(8, 8, 8, 3).astype(np.float32)
    path = tmp_path / "rgb.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(voxels, isVector=True), str(path))
    with pytest.raises(InputError, match="3 components"):
        load_image(path, "--flair")


def test_small_field_of_view_is_refused_when_a_brain_is_expected(tmp_path):
    path = _save(tmp_path, np.random.rand(10, 10, 10).astype(np.float32))
    assert load_image(path, "--flair").GetSize() == (10, 10, 10)
    with pytest.raises(InputError, match="smaller than a brain"):
        load_image(path, "--flair", field_of_view=BRAIN)


def test_array_to_image_copies_geometry(oblique_image):
    labels = np.zeros(sitk.GetArrayViewFromImage(oblique_image).shape, np.uint8)
    image = array_to_image(labels, oblique_image)
    assert image.GetDirection() == oblique_image.GetDirection()
    assert image.GetOrigin() == oblique_image.GetOrigin()
