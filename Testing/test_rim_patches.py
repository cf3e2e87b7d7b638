"""Rim patches: centred in physical space on oblique, anisotropic images; scaling; mask."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from MSLesionAILib.geometry import index_zyx_to_lps
from MSLesionAILib.rim_patches import (
    PatchSpec,
    centre_crop,
    make_patches,
    sample_own_lesion,
    sample_patches,
)


def _oblique_image() -> sitk.Image:
    image = sitk.Image([50, 40, 30], sitk.sitkFloat32)
    image.SetSpacing((0.7, 0.9, 2.0))
    image.SetOrigin((12.0, -30.0, 7.0))
    rotation = sitk.Euler3DTransform()
    rotation.SetRotation(0.4, -0.3, 0.6)
    image.SetDirection(rotation.GetMatrix())
    return image


def _blob_image(image: sitk.Image, centre_lps: np.ndarray, sigma_mm: float = 2.5) -> np.ndarray:
    """A Gaussian blob defined in physical space, sampled on the image's voxels."""
    index = np.indices(image.GetSize()[::-1]).reshape(3, -1).T
    points = index_zyx_to_lps(image, index)
    distance2 = np.sum((points - centre_lps) ** 2, axis=1)
    return np.exp(-distance2 / (2 * sigma_mm**2)).reshape(image.GetSize()[::-1])


def _centre_of_mass(patch: np.ndarray) -> np.ndarray:
    weights = patch / patch.sum()
    return np.array([np.sum(weights * g) for g in np.indices(patch.shape)])


def test_patch_is_centred_and_oriented_in_physical_space() -> None:
    image = _oblique_image()
    centre = index_zyx_to_lps(image, np.array([15.3, 20.6, 25.2]))[0]
    # In the patch (S, P, L order, 1 mm) a blob 6 mm superior (LPS +S) of the centre sits
    # 6 voxels further along axis 0, whatever the image's direction and spacing.
    for offset_mm, expected in (([0.0, 0.0, 0.0], [14, 14, 14]),
                                ([0.0, 0.0, 6.0], [20, 14, 14]),
                                ([-5.0, 0.0, 0.0], [14, 14, 9])):
        voxels = _blob_image(image, centre + offset_mm)
        patch = sample_patches(voxels[None], image, centre[None], 29, 1.0)[0, 0]
        assert np.allclose(_centre_of_mass(patch), expected, atol=0.6), offset_mm


def test_scaling_and_mask_channel() -> None:
    image = _oblique_image()
    rng = np.random.default_rng(0)
    voxels = rng.normal(5.0, 2.0, (2, *image.GetSize()[::-1])).astype(np.float32)
    lesion = np.zeros(image.GetSize()[::-1], bool)
    lesion[14:17, 18:23, 23:28] = True
    centre = index_zyx_to_lps(image, np.array([15.0, 20.0, 25.0]))
    symmetric = make_patches(voxels, lesion, image, centre, [1], PatchSpec())
    assert symmetric.shape == (1, 2, 28, 28, 28)
    assert symmetric.min() == -1.0 and symmetric.max() == 1.0
    unit = make_patches(voxels, lesion, image, centre, [1],
                        PatchSpec(value_range=(0.0, 1.0), mask_dilation_vox=2))
    assert unit.shape == (1, 3, 28, 28, 28) and unit[:, :2].min() == 0.0
    mask = unit[0, 2]
    assert set(np.unique(mask)) == {0.0, 1.0} and mask[13, 13, 13] == 1.0
    undilated = make_patches(voxels, lesion, image, centre, [1],
                             PatchSpec(value_range=(0.0, 1.0), mask_dilation_vox=1))[0, 2]
    assert mask.sum() > undilated.sum() > 0


def test_centre_crop_shifts_the_centre() -> None:
    stored = np.arange(34**3, dtype=float).reshape(1, 1, 34, 34, 34)
    assert centre_crop(stored, 28).shape == (1, 1, 28, 28, 28)
    shifted = centre_crop(stored, 28, (2, -3, 0))
    assert shifted[0, 0, 0, 0, 0] == stored[0, 0, 5, 0, 3]


def _two_touching_lesions(image: sitk.Image) -> np.ndarray:
    """Lesion 1 and lesion 2 side by side (touching), lesion 3 cut by the image's edge."""
    labels = np.zeros(image.GetSize()[::-1], np.int32)
    labels[13:18, 17:22, 22:27] = 1
    labels[13:18, 22:26, 22:27] = 2
    labels[0:3, 0:4, 40:46] = 3
    return labels


def test_own_lesion_is_sampled_as_from_the_whole_volume() -> None:
    """Sampling from each lesion's box gives what a whole 0/1 volume of that lesion gives,
    rotated and scaled patches and a lesion at the image's edge included."""
    image = _oblique_image()
    labels = _two_touching_lesions(image)
    centres = index_zyx_to_lps(image, np.array([[15.0, 19.5, 24.0], [15.0, 23.5, 24.0],
                                                [1.0, 1.0, 43.0], [15.0, 19.5, 24.0]]))
    affines = np.stack([np.eye(3), np.diag([1.1, 0.9, 1.0]), np.eye(3), np.eye(3)[[1, 0, 2]]])
    ids = [1, 2, 3, 0]
    own = sample_own_lesion(labels, ids, image, centres, 20, 0.6, affines)
    for patch, lesion_id in enumerate(ids):
        whole = sample_patches((labels == lesion_id)[None].astype(np.float32), image,
                               centres[patch:patch + 1], 20, 0.6, affines[patch:patch + 1])
        np.testing.assert_allclose(own[patch], whole[0, 0] if lesion_id else 0.0, atol=1e-6)
    assert own[0].max() == 1.0 and own[2].max() > 0.5


def test_candidate_mask_channel_leaves_the_neighbour_out() -> None:
    image = _oblique_image()
    labels = _two_touching_lesions(image)
    voxels = np.random.default_rng(1).normal(size=(2, *labels.shape)).astype(np.float32)
    centre = index_zyx_to_lps(image, np.array([15.0, 19.0, 24.0]))
    channels = {mode: make_patches(voxels, labels, image, centre, [1],
                                   PatchSpec(value_range=(0.0, 1.0), mask_dilation_vox=1,
                                             mask_lesions=mode))[0, 2]
                for mode in ("all", "candidate")}
    own = sample_own_lesion(labels, [1], image, centre, 28, 0.75)[0] > 0.5
    neighbour = sample_own_lesion(labels, [2], image, centre, 28, 0.75)[0] > 0.5
    beyond_dilation = neighbour & ~ndimage.binary_dilation(own)
    assert beyond_dilation.sum() > 50
    assert channels["all"][beyond_dilation].all()
    assert not channels["candidate"][beyond_dilation].any()
    assert channels["candidate"][own].all()


def test_unknown_mask_lesions_is_refused() -> None:
    with pytest.raises(ValueError, match="mask_lesions"):
        PatchSpec(mask_lesions="neighbours")
