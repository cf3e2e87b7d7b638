"""The rim training's thick-slice augmentation: what a thick-slice acquisition, resampled
back onto the patch grid, does to a patch's images and its lesion-mask channel."""

from __future__ import annotations

import numpy as np

from MSLesionAILib.training.rim_data import interpolation_weights, thick_slices


def test_interpolation_weights_interpolate_and_clamp() -> None:
    grid = np.array([0.0, 2.0, 4.0])
    weights = interpolation_weights(np.array([-1.0, 1.0, 3.5, 9.0]), grid, nearest=False)
    np.testing.assert_allclose(weights @ np.array([10.0, 20.0, 40.0]), [10, 15, 35, 40])
    nearest = interpolation_weights(np.array([0.9, 1.1]), grid, nearest=True)
    np.testing.assert_allclose(nearest @ np.array([10.0, 20.0, 40.0]), [10, 20])


def test_thick_slices_act_along_one_axis_only() -> None:
    rng = np.random.default_rng(0)
    patch = np.zeros((3, 20, 20, 20), np.float32)
    patch[:2] = 1.0 + rng.random((2, 20, 1, 1))           # varies along axis 1 only
    patch[:2, :, :, 10] += 5.0                              # a thin bright sheet across axis 3
    patch[2, 6:14, 6:14, 6:14] = 1.0                        # the lesion mask
    out = thick_slices(patch, 2, axis=3, thickness_vox=3.0, offset_vox=1.0)
    assert out.shape == patch.shape and out.dtype == np.float32
    # Along axis 3 the sheet is spread over neighbouring voxels and lowered...
    assert out[0, 5, 5, 10] < patch[0, 5, 5, 10] - 1.0
    assert out[0, 5, 5, 8] > patch[0, 5, 5, 8] + 0.5
    # ...while what varies only across the other axes is kept (constant along axis 3).
    np.testing.assert_allclose(out[:2, :, :, 0], patch[:2, :, :, 0], atol=1e-5)
    # The mask stays binary, unchanged across the other axes, blocky along axis 3.
    assert set(np.unique(out[2])) <= {0.0, 1.0}
    np.testing.assert_array_equal(out[2].any(axis=(1, 2)), patch[2].any(axis=(1, 2)))
    assert out[2].sum() != patch[2].sum()


def test_thin_slices_change_nothing_much() -> None:
    rng = np.random.default_rng(1)
    patch = rng.random((3, 16, 16, 16)).astype(np.float32)
    patch[2] = patch[2] > 0.5
    out = thick_slices(patch, 2, axis=1, thickness_vox=1.0, offset_vox=0.0)
    np.testing.assert_array_equal(out[2], patch[2])
    assert np.abs(out[:2] - patch[:2]).mean() < 0.1
