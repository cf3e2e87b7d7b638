"""A phantom case as another site's scanner would give it: thick slices, other contrast.

Used to ask how far a model trained on this phantom carries to a "second hospital"
(docs/wm_second_site.py, docs/cortical_second_site.py). The transforms act on finished images,
so the same anatomy and truth are seen through another acquisition.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..geometry import resample_to_spacing

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def thick_slices(image: sitk.Image, thickness_mm: float, axis: int,
                 label: bool = False) -> sitk.Image:
    """``image`` acquired with ``thickness_mm`` slices along grid axis ``axis`` (x, y, z).

    An intensity image is blurred by a Gaussian slice profile (FWHM = the thickness) along the
    axis, then resampled (linear) onto a grid with that spacing along it; a labelmap
    (``label``) is resampled by nearest neighbour, as a rater would draw on those slices.
    Direction and the field of view's centre are kept, so oblique slices stay oblique.
    """
    spacing = list(image.GetSpacing())
    if thickness_mm <= spacing[axis]:
        raise ValueError(f"{thickness_mm} mm slices are not thicker than the image's "
                         f"{spacing[axis]:.2f} mm along axis {axis}")
    spacing[axis] = thickness_mm
    if label:
        return resample_to_spacing(image, tuple(spacing), "nearest")
    profile = sitk.RecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32),
                                     thickness_mm / FWHM_PER_SIGMA, direction=axis)
    thick = resample_to_spacing(profile, tuple(spacing), "linear")
    return sitk.Cast(thick, image.GetPixelID())


def bend_contrast(image: sitk.Image, brain: sitk.Image, power: float, noise_of_p99: float,
                  seed: int) -> sitk.Image:
    """``image`` as another sequence renders it, on a scanner's int16 scale: intensities over
    their 99th percentile in ``brain``, raised to ``power``, plus Gaussian noise of
    ``noise_of_p99`` times that percentile."""
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    p99 = np.percentile(values[sitk.GetArrayFromImage(brain) > 0], 99)
    noise = np.random.default_rng(seed).normal(0.0, noise_of_p99, values.shape)
    bent = np.clip(values / p99, 0.0, None) ** power + noise
    result = sitk.GetImageFromArray(np.clip(bent * p99, 0, 32767).astype(np.int16))
    result.CopyInformation(image)
    return result
