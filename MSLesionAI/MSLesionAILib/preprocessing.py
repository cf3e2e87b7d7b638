"""Preprocessing shared by the pipelines: co-registration, resampling, masks, normalisation.

Which steps run and with which settings is read from a model bundle's metadata (see
`bundles.py`), so training and inference replay the same plan.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from .geometry import check_overlap, resample_like, same_grid

N4_MIN_VOXELS = 32   # per axis of the shrunken image N4 fits its field on


def register_rigid(moving: sitk.Image, fixed: sitk.Image) -> sitk.Transform:
    """Rigid (6-parameter) registration by Mattes mutual information, coarse to fine."""
    fixed_f = sitk.Cast(fixed, sitk.sitkFloat32)
    moving_f = sitk.Cast(moving, sitk.sitkFloat32)
    initial = sitk.CenteredTransformInitializer(
        fixed_f, moving_f, sitk.Euler3DTransform(),
        sitk.CenteredTransformInitializerFilter.GEOMETRY)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.05, seed=0)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=1e-3, numberOfIterations=100)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2, 1, 0])
    method.SetInitialTransform(initial, inPlace=False)
    return method.Execute(fixed_f, moving_f)


def bring_to_reference(moving: sitk.Image, moving_name: str, reference: sitk.Image,
                       reference_name: str, register: bool = True,
                       interpolation: str = "linear") -> sitk.Image:
    """``moving`` on ``reference``'s grid: unchanged when already there, otherwise checked for
    overlap, optionally rigidly registered, and resampled. Where its field of view ends, it is
    padded with its own background (`background_level`), not 0: an image with an intensity
    offset would otherwise get a step there that no later shift of its background undoes."""
    if same_grid(moving, reference):
        return moving
    check_overlap(moving, moving_name, reference, reference_name)
    transform = register_rigid(moving, reference) if register else None
    return resample_like(moving, reference, interpolation, background_level(moving), transform)


def foreground_mask(voxels: np.ndarray, air: np.ndarray | None = None) -> np.ndarray:
    """Head/brain foreground of a (skull-stripped or not) image: above a low intensity
    threshold, largest connected component, holes filled. Used for normalisation when no
    brain mask is given, not as a skull-stripping method.

    The threshold is 10 % of the 99th percentile, raised above the air (`air_level`) of
    ``air``, the image on its acquired grid (default: ``voxels``): where the background noise
    passes 10 %, it would otherwise join the head and the whole field of view would be
    normalised as foreground. An "air" above half the 99th percentile is taken for a head
    that fills the field of view, and ignored.
    """
    positive = voxels[voxels > 0]
    if positive.size == 0:
        return np.zeros(voxels.shape, bool)
    p99 = np.percentile(positive, 99)
    air_threshold = air_level(voxels if air is None else air)
    threshold = max(0.1 * p99, air_threshold if air_threshold < 0.5 * p99 else 0.0)
    mask = voxels > threshold
    labels, count = ndimage.label(mask)
    if count > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = labels == sizes.argmax()
    return ndimage.binary_fill_holes(mask)


def neighbours(array: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Every voxel and its next neighbour along ``axis``, as two equally shaped arrays."""
    size = array.shape[axis]
    return np.take(array, range(size - 1), axis), np.take(array, range(1, size), axis)


def face_voxels(voxels: np.ndarray) -> np.ndarray:
    """The voxels on the array's six faces (the edge of the field of view), flattened."""
    return np.concatenate([np.moveaxis(voxels, axis, 0)[end].ravel()
                           for axis in range(voxels.ndim) for end in (0, -1)])


def air_level(voxels: np.ndarray) -> float:
    """The brightest the air gets: median + 6 median absolute deviations of the voxels on the
    array's six faces (about the 99.8th percentile of noise; robust to a head that touches up
    to half of the faces). 0 for a skull-stripped or zero-filled background."""
    faces = face_voxels(voxels)
    median = np.median(faces)
    return float(median + 6.0 * np.median(np.abs(faces - median)))


def background_at_zero(image: sitk.Image) -> sitk.Image:
    """``image`` as float32, shifted so that the darkest voxel of its six faces is 0.

    The intensity rules downstream (`foreground_mask`, zero padding outside the field of view
    when resampling) assume the background is dark and near 0, as scanners write it. A file
    with an offset (background at a constant above 0) or already normalised (background
    negative) would otherwise be masked and padded wrongly. Scanner images, whose faces reach
    0, are unchanged."""
    return sitk.Cast(image, sitk.sitkFloat32) - background_level(image)


def background_level(image: sitk.Image) -> float:
    """The darkest voxel on the six faces of ``image``'s field of view: its background."""
    return float(face_voxels(sitk.GetArrayViewFromImage(image)).min())


# The intensity percentiles a z-score clips to first, unless a model's metadata says otherwise.
ZSCORE_CLIP_PERCENTILES = (0.5, 99.5)


def zscore(voxels: np.ndarray, mask: np.ndarray,
           clip_percentiles: tuple[float, float] = ZSCORE_CLIP_PERCENTILES) -> np.ndarray:
    """Zero mean, unit variance inside ``mask``, clipped to its ``clip_percentiles`` first
    (robust to the tails); 0 outside."""
    inside = voxels[mask].astype(np.float64)
    low, high = np.percentile(inside, clip_percentiles)
    inside = np.clip(inside, low, high)
    scale = inside.std() or 1.0
    normalised = (np.clip(voxels, low, high) - inside.mean()) / scale
    return np.where(mask, normalised, 0.0).astype(np.float32)


def bias_correct(image: sitk.Image, mask: np.ndarray, max_shrink: int = 4) -> sitk.Image:
    """N4 bias-field correction inside ``mask``, fitted on the image shrunk by up to
    ``max_shrink`` while every axis keeps `N4_MIN_VOXELS` voxels (a small or coarse image is
    fitted at full size)."""
    shrink = int(np.clip(min(image.GetSize()) // N4_MIN_VOXELS, 1, max_shrink))
    image_f = sitk.Cast(image, sitk.sitkFloat32)
    mask_image = sitk.GetImageFromArray(mask.astype(np.uint8))
    mask_image.CopyInformation(image)
    small = sitk.Shrink(image_f, [shrink] * 3)
    small_mask = sitk.Shrink(mask_image, [shrink] * 3)
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([25, 25, 25])
    corrector.Execute(small, small_mask)
    log_field = corrector.GetLogBiasFieldAsImage(image_f)
    return image_f / sitk.Exp(log_field)


def spacing_warning(image: sitk.Image, name: str, target_spacing_mm: tuple[float, ...],
                    tolerance: float = 0.5) -> str | None:
    """A warning when the input's spacing is far (relative ``tolerance``) from the model's."""
    spacing = np.array(image.GetSpacing())
    target = np.array(target_spacing_mm, dtype=float)
    if np.any(np.abs(spacing - target) > tolerance * target):
        return (f"{name}: spacing {np.round(spacing, 2).tolist()} mm is far from the model's "
                f"{target.tolist()} mm; resampled, results may be less reliable")
    return None
