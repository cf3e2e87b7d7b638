"""Shared preprocessing: registration recovers a known motion; masks and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from conftest import make_image
from MSLesionAILib.errors import InputError
from MSLesionAILib.preprocessing import (
    air_level,
    background_at_zero,
    bias_correct,
    bring_to_reference,
    foreground_mask,
    register_rigid,
    spacing_warning,
    zscore,
)


def _head_phantom(size: int = 48, spacing_mm: float = 2.0) -> sitk.Image:
    """Ellipsoids with distinct intensities: enough structure for mutual information."""
    z, y, x = np.mgrid[:size, :size, :size] - size / 2
    voxels = np.zeros((size,) * 3, np.float32)
    voxels[(x / 18) ** 2 + (y / 15) ** 2 + (z / 13) ** 2 < 1] = 100
    voxels[((x - 4) / 8) ** 2 + (y / 5) ** 2 + ((z + 2) / 6) ** 2 < 1] = 300
    voxels[((x + 6) / 4) ** 2 + ((y - 6) / 6) ** 2 + (z / 4) ** 2 < 1] = 200
    image = sitk.GetImageFromArray(ndimage.gaussian_filter(voxels, 1.0))
    image.SetSpacing([spacing_mm] * 3)
    image.SetOrigin([-size * spacing_mm / 2] * 3)
    return image


def test_rigid_registration_recovers_a_known_motion():
    fixed = _head_phantom()
    motion = sitk.Euler3DTransform((0, 0, 0), 0.0, 0.0, np.deg2rad(6), (4.0, -3.0, 2.0))
    moving = sitk.Resample(fixed, fixed, motion, sitk.sitkLinear, 0.0)
    found = register_rigid(moving, fixed)
    # moving(x) = fixed(motion(x)), so the transform found maps fixed points to moving ones:
    # the inverse of the motion.
    for probe in ([10.0, -8.0, 6.0], [-12.0, 5.0, -4.0]):
        np.testing.assert_allclose(found.TransformPoint(motion.TransformPoint(probe)), probe,
                                   atol=1.0)


def test_images_on_the_same_grid_are_returned_unchanged(oblique_image):
    assert bring_to_reference(oblique_image, "--t1", oblique_image, "--flair") is oblique_image


def test_non_overlapping_images_are_refused_before_registration(oblique_image):
    far = make_image(origin=(900.0, 0.0, 0.0))
    with pytest.raises(InputError, match="--t2: does not overlap --flair"):
        bring_to_reference(far, "--t2", oblique_image, "--flair")


def test_other_grid_is_resampled_onto_the_reference_without_registration():
    reference = _head_phantom()
    other = sitk.Resample(reference, [32] * 3, sitk.Transform(), sitk.sitkLinear,
                          reference.GetOrigin(), [3.0] * 3, reference.GetDirection())
    result = bring_to_reference(other, "--t1", reference, "--flair", register=False)
    assert result.GetSize() == reference.GetSize()
    assert result.GetSpacing() == reference.GetSpacing()


def test_zscore_is_standard_inside_the_mask_and_zero_outside():
    rng = np.random.default_rng(0)
    voxels = rng.normal(500, 40, (20, 20, 20))
    mask = np.zeros(voxels.shape, bool)
    mask[5:15, 5:15, 5:15] = True
    normalised = zscore(voxels, mask)
    assert normalised.dtype == np.float32
    assert abs(normalised[mask].mean()) < 0.05 and abs(normalised[mask].std() - 1) < 0.05
    assert np.all(normalised[~mask] == 0)


def test_foreground_is_the_largest_filled_component():
    voxels = np.zeros((30, 30, 30), np.float32)
    voxels[5:25, 5:25, 5:25] = 100
    voxels[12:16, 12:16, 12:16] = 0      # a dark hole inside (ventricle-like)
    voxels[0:2, 0:2, 0:2] = 100          # a small bright speck elsewhere
    mask = foreground_mask(voxels)
    assert mask[14, 14, 14] and mask[6, 6, 6] and not mask[0, 0, 0]
    assert mask.sum() == 20 ** 3


def _head_in_noisy_air(air_max: float) -> tuple[np.ndarray, np.ndarray]:
    """A head (a ball of 100 around a dark ventricle) in air of uniform noise up to
    ``air_max``, and the head's mask."""
    z, y, x = np.mgrid[:40, :40, :40] - 19.5
    head = x ** 2 + y ** 2 + z ** 2 < 14 ** 2
    voxels = np.random.default_rng(0).uniform(0, air_max, head.shape).astype(np.float32)
    voxels[head] = 100
    voxels[x ** 2 + y ** 2 + z ** 2 < 4 ** 2] = 0
    return voxels, head


def test_background_at_zero_undoes_an_offset_and_leaves_a_scanner_image_alone():
    voxels = np.floor(_head_in_noisy_air(air_max=20.0)[0])   # integers; the faces reach 0
    image = sitk.GetImageFromArray(voxels.astype(np.int16))
    assert np.array_equal(sitk.GetArrayFromImage(background_at_zero(image)), voxels)
    offset = sitk.GetImageFromArray(voxels.astype(np.float32) - 7.5)   # background below 0
    assert np.array_equal(sitk.GetArrayFromImage(background_at_zero(offset)), voxels)
    assert background_at_zero(offset).GetPixelID() == sitk.sitkFloat32


def test_an_image_is_padded_with_its_own_background_where_its_field_of_view_ends():
    """An offset image on a smaller grid than the reference: outside its field of view it is
    its background, not 0, so shifting the background to 0 afterwards leaves no step."""
    voxels = np.floor(_head_in_noisy_air(air_max=20.0)[0]).astype(np.float32)
    reference = sitk.GetImageFromArray(voxels)
    moved = {}
    for offset in (0.0, 300.0):
        small = sitk.GetImageFromArray(voxels[:, :, 4:] + offset)
        small.SetOrigin((4.0, 0.0, 0.0))
        moved[offset] = sitk.GetArrayFromImage(background_at_zero(
            bring_to_reference(small, "--t1", reference, "--flair", register=False)))
    assert np.array_equal(moved[300.0], moved[0.0])
    assert np.array_equal(moved[0.0][:, :, 4:], voxels[:, :, 4:])


def test_foreground_stays_out_of_air_brighter_than_a_tenth_of_the_head():
    voxels, head = _head_in_noisy_air(air_max=20.0)   # 10 % of the 99th percentile is 10
    leaked = foreground_mask(voxels, air=np.zeros((4, 4, 4)))     # the rule without the air
    assert leaked.sum() > 2 * head.sum()
    assert np.array_equal(foreground_mask(voxels), head)


def test_air_level_is_read_on_the_acquired_grid():
    """On a grid padded with zeros (an oblique image resampled onto the anatomical axes) the
    faces hold no air; the acquired image given as ``air`` still does."""
    voxels, head = _head_in_noisy_air(air_max=20.0)
    padded = np.pad(voxels, 6)
    assert air_level(padded) == 0.0
    assert np.array_equal(foreground_mask(padded, air=voxels), np.pad(head, 6))


def test_air_level_is_zero_for_a_skull_stripped_image_and_dark_air_changes_nothing():
    voxels, head = _head_in_noisy_air(air_max=4.0)
    assert 4.0 < air_level(voxels) < 10.0        # under 10 % of the head: the rule as before
    assert np.array_equal(foreground_mask(voxels), foreground_mask(voxels, air=np.zeros(8)))
    stripped = np.where(head, voxels, 0.0)
    assert air_level(stripped) == 0.0


def test_a_head_filling_the_field_of_view_is_not_taken_for_air():
    z, y, x = np.mgrid[:30, :30, :30] - 14.5
    voxels = np.full((30, 30, 30), 100.0, np.float32)    # tissue on every face
    voxels[x ** 2 + y ** 2 + z ** 2 < 6 ** 2] = 30.0     # darker tissue inside
    assert air_level(voxels) == 100.0
    assert foreground_mask(voxels).all()


def test_bias_correction_flattens_a_smooth_field():
    image = _head_phantom()
    voxels = sitk.GetArrayFromImage(image)
    mask = voxels > 50
    ramp = np.exp(np.linspace(-0.3, 0.3, voxels.shape[2]))[None, None, :]
    biased = sitk.GetImageFromArray((voxels * ramp).astype(np.float32))
    biased.CopyInformation(image)
    corrected = sitk.GetArrayFromImage(bias_correct(biased, mask, max_shrink=2))
    plateau = mask & (np.abs(voxels - 100) < 5)

    def spread(values):
        return np.std(values[plateau]) / np.mean(values[plateau])

    assert spread(corrected) < 0.5 * spread(voxels * ramp)


def test_spacing_warning_only_when_far_from_the_model(oblique_image):
    assert spacing_warning(oblique_image, "--flair", (1.0, 1.2, 2.5)) is None
    message = spacing_warning(oblique_image, "--flair", (1.0, 1.0, 1.0))
    assert message.startswith("--flair: spacing [1.0, 1.2, 2.5] mm is far from")
