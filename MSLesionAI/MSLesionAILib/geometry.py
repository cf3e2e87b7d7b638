"""Physical space: ITK (LPS) versus Slicer (RAS) coordinates, resampling, and overlap checks.

Numpy arrays from SimpleITK are indexed (z, y, x); ITK indices are (x, y, z). The helpers here
take and return numpy order for arrays and name the coordinate system in every function name.
"""

from __future__ import annotations

import itertools

import numpy as np
import SimpleITK as sitk

from .errors import InputError

LPS_TO_RAS = np.array([-1.0, -1.0, 1.0])


def lps_to_ras(points_lps: np.ndarray) -> np.ndarray:
    """Flip the first two axes: ITK's LPS to Slicer's RAS (the map is its own inverse)."""
    return np.asarray(points_lps, dtype=float) * LPS_TO_RAS


ras_to_lps = lps_to_ras


def index_zyx_to_lps(image: sitk.Image, index_zyx: np.ndarray) -> np.ndarray:
    """Continuous voxel indices (N x 3, numpy z, y, x order) to physical LPS points in mm."""
    index_xyz = np.atleast_2d(np.asarray(index_zyx, dtype=float))[:, ::-1]
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = np.array(image.GetSpacing())
    origin = np.array(image.GetOrigin())
    return origin + (index_xyz * spacing) @ direction.T


def index_zyx_to_ras(image: sitk.Image, index_zyx: np.ndarray) -> np.ndarray:
    """Continuous voxel indices (N x 3, numpy order) to Slicer RAS points in mm."""
    return lps_to_ras(index_zyx_to_lps(image, index_zyx))


def ras_to_index_zyx(image: sitk.Image, point_ras: np.ndarray) -> np.ndarray:
    """One RAS point in mm to the continuous voxel index in numpy (z, y, x) order."""
    point_lps = ras_to_lps(np.asarray(point_ras, dtype=float))
    index_xyz = image.TransformPhysicalPointToContinuousIndex(point_lps.tolist())
    return np.array(index_xyz[::-1])


def voxel_volume_ul(image: sitk.Image) -> float:
    """Volume of one voxel in microlitres (1 µL = 1 mm³)."""
    return float(np.prod(image.GetSpacing()))


def corners_lps(image: sitk.Image) -> np.ndarray:
    """The eight physical corners (LPS, mm) of the image's voxel grid, voxel edges included."""
    size = np.array(image.GetSize())
    corners_xyz = np.array(list(itertools.product(*[(-0.5, s - 0.5) for s in size])))
    return index_zyx_to_lps(image, corners_xyz[:, ::-1])


def same_grid(a: sitk.Image, b: sitk.Image, tolerance_mm: float = 1e-3) -> bool:
    """True when two images share size, spacing, origin and direction."""
    return (a.GetSize() == b.GetSize()
            and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tolerance_mm)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=tolerance_mm)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-4))


def same_voxels(a: sitk.Image, b: sitk.Image, tolerance: float = 1e-3) -> bool:
    """True when ``a``'s voxel centres are ``b``'s, in another order: the same field of view
    stored with its axes permuted or flipped (RAS against LAS, say). Nearest-neighbour
    resampling between such grids moves voxels without changing any. ``tolerance`` is in
    voxels, at the far corner of the grid: a small spacing difference adds up over it."""
    to_b = np.linalg.inv(_index_to_lps(b))
    matrix = to_b @ _index_to_lps(a)
    offset = to_b @ (np.array(a.GetOrigin()) - np.array(b.GetOrigin()))
    permutation = np.round(matrix)
    drift = np.abs(matrix - permutation) @ (np.array(a.GetSize()) - 1)
    if not ((drift < tolerance).all()
            and np.allclose(offset, np.round(offset), atol=tolerance)):
        return False
    if not np.array_equal(np.abs(permutation) @ np.ones(3), np.ones(3)):
        return False
    far_corner = permutation @ (np.array(a.GetSize()) - 1) + np.round(offset)
    corners = np.stack([np.round(offset), far_corner])
    return (np.array_equal(np.abs(permutation) @ a.GetSize(), b.GetSize())
            and corners.min() >= 0 and (corners.max(0) <= np.array(b.GetSize()) - 1).all())


def _index_to_lps(image: sitk.Image) -> np.ndarray:
    """The 3 x 3 map from an ITK (x, y, z) index step to an LPS displacement in mm."""
    return np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())


def orientation_code(image: sitk.Image) -> str:
    """Where the voxel axes x, y, z point, as three letters (nibabel's convention: the identity
    direction of ITK is "LPS", a NIfTI written by FSL is often "LAS")."""
    return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection())


def overlap_fraction(moving: sitk.Image, reference: sitk.Image) -> float:
    """Fraction of the reference's bounding box (axis-aligned, LPS) inside the moving one's."""
    box_m, box_r = corners_lps(moving), corners_lps(reference)
    low = np.maximum(box_m.min(0), box_r.min(0))
    high = np.minimum(box_m.max(0), box_r.max(0))
    intersection = np.prod(np.clip(high - low, 0, None))
    return float(intersection / np.prod(box_r.max(0) - box_r.min(0)))


def check_overlap(moving: sitk.Image, moving_name: str, reference: sitk.Image,
                  reference_name: str, min_fraction: float = 0.5) -> None:
    """Refuse images meant to be combined that do not share enough physical space."""
    fraction = overlap_fraction(moving, reference)
    if fraction < min_fraction:
        raise InputError(
            f"{moving_name}: does not overlap {reference_name} in physical space "
            f"({fraction:.0%} of {reference_name}'s extent is covered); check that both are "
            "from the same patient and session, with their orientation preserved")


_INTERPOLATORS = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor,
                  "bspline": sitk.sitkBSpline}


def resample_like(image: sitk.Image, reference: sitk.Image, interpolation: str = "linear",
                  default_value: float = 0.0,
                  transform: sitk.Transform | None = None) -> sitk.Image:
    """Resample ``image`` onto ``reference``'s grid (optionally through ``transform``)."""
    return sitk.Resample(image, reference, transform or sitk.Transform(),
                         _INTERPOLATORS[interpolation], default_value, image.GetPixelID())


def resample_to_spacing(image: sitk.Image, spacing_mm: tuple[float, float, float],
                        interpolation: str = "linear") -> sitk.Image:
    """Resample onto a grid of the given spacing covering the same physical box and direction."""
    old_spacing = np.array(image.GetSpacing())
    old_size = np.array(image.GetSize())
    new_spacing = np.array(spacing_mm, dtype=float)
    new_size = np.maximum(np.round(old_size * old_spacing / new_spacing), 1).astype(int)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    # Keep the physical centre of the field of view fixed.
    centre_index = (old_size - 1) / 2.0
    centre = np.array(image.GetOrigin()) + direction @ (centre_index * old_spacing)
    new_origin = centre - direction @ ((new_size - 1) / 2.0 * new_spacing)
    grid = sitk.Image([int(s) for s in new_size], image.GetPixelID())
    grid.SetSpacing(new_spacing.tolist())
    grid.SetDirection(image.GetDirection())
    grid.SetOrigin(new_origin.tolist())
    return resample_like(image, grid, interpolation)


def slice_axis(image: sitk.Image) -> int:
    """The grid axis (x, y, z) with the coarsest spacing: the acquisition's slice axis."""
    return int(np.argmax(image.GetSpacing()))


def slice_direction_lps(image: sitk.Image) -> np.ndarray:
    """Unit LPS vector along the slice axis (`slice_axis`), oblique grids included."""
    return np.array(image.GetDirection()).reshape(3, 3)[:, slice_axis(image)]


def slice_anisotropy(image: sitk.Image) -> float:
    """How much coarser the slice axis is than the finer in-plane one: the coarsest spacing over
    the middle one (1 for isotropic voxels, 5 for 1 × 1 × 5 mm)."""
    _, middle, coarsest = sorted(image.GetSpacing())
    return coarsest / middle


def axis_aligned_grid(reference: sitk.Image,
                      spacing_mm: tuple[float, float, float]) -> sitk.Image:
    """An empty grid with identity direction (LPS axes) at ``spacing_mm`` (x, y, z) covering
    ``reference``'s whole physical box: the networks see oblique and anisotropic inputs on the
    anatomical axes they were trained on."""
    corners = corners_lps(reference)
    low, high = corners.min(axis=0), corners.max(axis=0)
    spacing = np.asarray(spacing_mm, dtype=float)
    size = np.maximum(np.ceil((high - low) / spacing - 1e-6), 1).astype(int)
    grid = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
    grid.SetSpacing(spacing.tolist())
    grid.SetOrigin((low + spacing / 2).tolist())
    return grid
