"""Second-site renderings of a case: thick slices and a bent contrast."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from MSLesionAILib.geometry import index_zyx_to_lps, slice_axis
from MSLesionAILib.phantom.site import bend_contrast, thick_slices


def _oblique(voxels: np.ndarray, spacing_mm: tuple[float, float, float]) -> sitk.Image:
    image = sitk.GetImageFromArray(voxels)
    image.SetSpacing(spacing_mm)
    image.SetOrigin((-20.0, 31.0, 7.0))
    rotation = sitk.VersorTransform((0.0, 0.0, 1.0), 0.3).GetMatrix()
    image.SetDirection(rotation)
    return image


def _centre_lps(image: sitk.Image) -> np.ndarray:
    return index_zyx_to_lps(image, (np.array(image.GetSize()[::-1]) - 1) / 2.0)


def test_thick_slices_keep_direction_and_centre_and_blur_across_slices_only():
    voxels = np.zeros((40, 30, 30), np.float32)
    voxels[20] = 100.0                                   # one bright slice (z = 20)
    voxels[:, 15, :] += 50.0                             # and a bright plane across the slices
    image = _oblique(voxels, (1.0, 1.0, 1.0))
    thick = thick_slices(image, 4.0, axis=2)
    assert thick.GetSpacing() == (1.0, 1.0, 4.0)
    assert thick.GetSize() == (30, 30, 10)
    assert thick.GetDirection() == image.GetDirection()
    assert np.allclose(_centre_lps(thick), _centre_lps(image), atol=1e-6)
    values = sitk.GetArrayFromImage(thick)
    assert values[:, 0, 0].max() < 50.0                  # the slice spread along z
    assert np.allclose(values[3:7, 15, 10] - values[3:7, 0, 10], 50.0, atol=0.5)  # not in-plane


def test_thick_slices_of_a_labelmap_keep_its_values():
    labels = np.zeros((30, 20, 20), np.uint16)
    labels[10:18, 5:10, 5:10] = 3
    labels[12:14, 12:16, 12:16] = 7
    thick = thick_slices(_oblique(labels, (1.0, 1.0, 1.0)), 3.0, axis=2, label=True)
    assert thick.GetPixelID() == sitk.sitkUInt16
    assert set(np.unique(sitk.GetArrayFromImage(thick))) == {0, 3, 7}


def test_thick_slices_must_be_thicker_than_the_image():
    image = _oblique(np.zeros((10, 10, 10), np.float32), (1.0, 1.0, 2.0))
    assert slice_axis(image) == 2
    with pytest.raises(ValueError, match="not thicker"):
        thick_slices(image, 2.0, axis=2)


def test_bend_contrast_is_monotone_seeded_and_int16():
    ramp = np.tile(np.linspace(0, 1000, 50, dtype=np.float32), (10, 10, 1))
    image, brain = _oblique(ramp, (1.0, 1.0, 1.0)), _oblique(np.ones_like(ramp), (1.0,) * 3)
    brain = sitk.Cast(brain, sitk.sitkUInt8)
    plain = sitk.GetArrayFromImage(bend_contrast(image, brain, 1.0, 0.0, seed=0))
    assert np.allclose(plain, ramp, atol=1.0)             # power 1, no noise: the image
    flat = sitk.GetArrayFromImage(bend_contrast(image, brain, 0.5, 0.0, seed=0))
    assert np.all(np.diff(flat[0, 0].astype(float)) >= 0) and flat[0, 0, 25] > ramp[0, 0, 25]
    noisy = bend_contrast(image, brain, 0.5, 0.03, seed=4)
    assert noisy.GetPixelID() == sitk.sitkInt16
    assert np.array_equal(sitk.GetArrayFromImage(noisy),
                          sitk.GetArrayFromImage(bend_contrast(image, brain, 0.5, 0.03, seed=4)))
