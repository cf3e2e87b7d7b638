"""User masks: what is refused, what is warned about, and how a probability map is read."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from MSLesionAILib.errors import InputError
from MSLesionAILib.masks import checked_mask, load_mask


def _image(voxels: np.ndarray, origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
           ) -> sitk.Image:
    image = sitk.GetImageFromArray(voxels)
    image.SetOrigin(origin)
    return image


REFERENCE = _image(np.zeros((20, 20, 20), np.float32))


def _lesion_mask(dtype: type = np.uint8, value: float = 1) -> np.ndarray:
    mask = np.zeros((20, 20, 20), dtype)
    mask[8:12, 8:12, 8:12] = value
    return mask


def test_a_whole_labelmap_is_used_as_given_without_warning() -> None:
    warnings: list[str] = []
    mask = _image(_lesion_mask(np.uint16, 7))
    checked = checked_mask(mask, "--lesion-mask", REFERENCE, "--phase", warnings)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(checked), _lesion_mask(np.uint16, 7))
    assert checked.GetOrigin() == mask.GetOrigin() and warnings == []


def test_a_probability_map_is_read_at_one_half_with_a_warning() -> None:
    probability = _lesion_mask(np.float32, 0.3)
    probability[9:11, 9:11, 9:11] = 0.8
    warnings: list[str] = []
    mask = checked_mask(_image(probability), "--lesion-mask", REFERENCE, "--phase", warnings)
    assert np.array_equal(sitk.GetArrayFromImage(mask), (probability >= 0.5).astype(np.uint8))
    assert len(warnings) == 1 and "probability map" in warnings[0]


def test_a_probability_map_stored_as_whole_numbers_is_warned_about_and_labelmaps_are_not(
        ) -> None:
    """A smooth 0-100 blob, the same on a floor of 1 filling the field of view, against
    instance ids packed as 3-voxel cubes all touching (a third of their neighbour pairs
    differ), three separate ones, tissue classes in slabs, and a binary mask."""
    z, y, x = np.mgrid[:20, :20, :20]
    blob = np.exp(-((z - 10) ** 2 + (y - 10) ** 2 + (x - 10) ** 2) / 18.0)
    percent = np.round(100 * blob).astype(np.uint8)
    touching = np.zeros((20, 20, 20), np.uint16)
    touching[2:6, 2:6, 2:6], touching[2:6, 2:6, 6:10], touching[12:16, 12:16, 12:16] = 1, 2, 3
    packed = (1 + (z // 3) * 49 + (y // 3) * 7 + x // 3).astype(np.uint16)[:18, :18, :18]
    classes = np.where(z < 14, 5, 1 + y // 5).astype(np.uint8)   # one class dominant
    big_and_specks = _lesion_mask(np.uint16, 1)
    big_and_specks[0, 0, :2] = 2, 3         # two touching one-voxel lesions besides it
    warned = {}
    for name, voxels in (("percent", percent), ("floor", np.maximum(percent, 1)),
                         ("instances", touching), ("packed", packed), ("classes", classes),
                         ("big and specks", big_and_specks),
                         ("binary 0/255", _lesion_mask(np.uint8, 255))):
        warnings: list[str] = []
        checked = checked_mask(_image(voxels), "--lesion-mask", REFERENCE, "--phase", warnings)
        warned[name] = [w for w in warnings if "as in a probability map" in w]
        np.testing.assert_array_equal(sitk.GetArrayFromImage(checked), voxels)  # read as given
    assert len(warned["percent"]) == 1 and "(0 to 100?)" in warned["percent"][0]
    assert len(warned["floor"]) == 1
    assert warned["instances"] == warned["packed"] == warned["classes"] == []
    assert warned["big and specks"] == warned["binary 0/255"] == []


def test_a_probability_map_below_one_half_everywhere_is_said_to_be_empty() -> None:
    warnings: list[str] = []
    checked_mask(_image(_lesion_mask(np.float32, 0.4)), "--lesion-mask", REFERENCE, "--phase",
                 warnings)
    assert any("probability map" in w for w in warnings)
    assert any("no lesion voxels" in w for w in warnings)


def test_an_empty_lesion_mask_is_valid_with_a_warning_and_an_empty_brain_mask_is_refused(
        ) -> None:
    warnings: list[str] = []
    empty = _image(np.zeros((20, 20, 20), np.uint8))
    checked_mask(empty, "--lesion-mask", REFERENCE, "--phase", warnings)
    assert len(warnings) == 1 and "no lesion voxels" in warnings[0]
    with pytest.raises(InputError, match="--brain-mask: is empty"):
        checked_mask(empty, "--brain-mask", REFERENCE, "--phase", [], brain=True)


def test_negative_values_are_outside_the_mask_with_a_warning() -> None:
    """Every pipeline counts a voxel in when it is above 0: a mask of -1 labels is empty, not a
    silent 0 lesions."""
    voxels = _lesion_mask(np.int16, 2)
    voxels[voxels == 0] = -1
    warnings: list[str] = []
    mask = checked_mask(_image(voxels), "--lesion-mask", REFERENCE, "--phase", warnings)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), _lesion_mask(np.int16, 2))
    assert warnings == ["--lesion-mask: has negative values, read as 0 (outside the mask)"]
    with pytest.raises(InputError, match=r"--brain-mask: is empty \(no voxel above 0\)"):
        checked_mask(_image(-_lesion_mask(np.int16)), "--brain-mask", REFERENCE, "--phase", [],
                     brain=True)


def test_a_brain_probability_map_below_one_half_is_refused_as_such() -> None:
    with pytest.raises(InputError, match=r"is empty \(no voxel of 0.5 or more\)"):
        checked_mask(_image(_lesion_mask(np.float32, 0.4)), "--brain-mask", REFERENCE,
                     "--phase", [], brain=True)


def test_nan_values_are_refused() -> None:
    voxels = _lesion_mask(np.float32)
    voxels[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        checked_mask(_image(voxels), "--lesion-mask", REFERENCE, "--phase", [])


def test_a_mask_cropped_through_its_lesions_is_warned_about() -> None:
    """Two thirds of the reference's field of view, with lesion voxels on its cut face."""
    cropped = np.zeros((20, 20, 14), np.uint8)
    cropped[8:12, 8:12, 10:14] = 1
    for brain, left_out in ((False, "lesions beyond it are missed"),
                            (True, "nothing beyond it counts as brain")):
        warnings: list[str] = []
        checked_mask(_image(cropped), "--mask", REFERENCE, "--phase", warnings, brain=brain)
        assert len(warnings) == 1 and "70% of --phase's field of view" in warnings[0]
        assert left_out in warnings[0]


def test_a_mask_on_a_smaller_grid_clear_of_its_edges_is_not_taken_for_cropped() -> None:
    """A mask saved on the brain's bounding box, with a margin, covers all there is."""
    boxed = np.zeros((20, 20, 14), np.uint8)
    boxed[8:12, 8:12, 4:8] = 1
    warnings: list[str] = []
    checked_mask(_image(boxed), "--lesion-mask", REFERENCE, "--phase", warnings)
    assert warnings == []


def test_a_mask_elsewhere_in_space_is_refused() -> None:
    with pytest.raises(InputError, match="does not overlap --phase"):
        checked_mask(_image(_lesion_mask(), origin=(100.0, 0.0, 0.0)), "--lesion-mask",
                     REFERENCE, "--phase", [])


def test_a_4d_file_of_one_volume_is_read_as_a_3d_mask(tmp_path) -> None:
    volume = sitk.JoinSeries(_image(_lesion_mask()))   # x, y, z, 1: as some tools write masks
    sitk.WriteImage(volume, str(tmp_path / "mask4d.nrrd"))   # NIfTI readers drop the 1
    mask = load_mask(tmp_path / "mask4d.nrrd", "--lesion-mask")
    assert mask.GetDimension() == 3
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), _lesion_mask())
