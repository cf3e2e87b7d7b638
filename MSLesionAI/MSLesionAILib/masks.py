"""A user's mask (brain or lesions), checked before a pipeline relies on it.

A mask is taken as given, so what it leaves out is silently missing from the result: lesions
beyond a cropped lesion mask, brain beyond a cropped brain mask. Such masks are used, with a
warning that says what they leave out; a probability map is read as a mask at 0.5; an
empty brain mask, which would leave nothing to look at, is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import InputError
from .geometry import check_overlap, overlap_fraction
from .imageio import read_image, validate_volume
from .preprocessing import neighbours

# A mask covering less of the reference's field of view than this, with voxels on its own
# edge, is taken to be cropped.
MIN_COVERAGE = 0.98
PROBABILITY_THRESHOLD = 0.5
# Neighbouring non-zero voxels that differ in value, above which a whole-number mask reads as
# a probability map (0-255, 0-100, ...): a labelmap has them only where two lesions touch.
PROBABILITY_MAP_NEIGHBOUR_FRACTION = 0.5
# Without its commonest value, a mask is judged again only if this share of its neighbour
# pairs is left: a few voxels besides one big lesion say nothing.
MIN_REMAINING_PAIR_FRACTION = 0.1


def load_mask(path: str | Path, name: str) -> sitk.Image:
    """A 3D label image; unlike intensity images it may be empty (no lesions) or constant (a
    brain mask filling its field of view). A 4D image of one volume is read as 3D."""
    return validate_volume(read_image(path, name), name)


def checked_mask(mask: sitk.Image, name: str, reference: sitk.Image, reference_name: str,
                 warnings: list[str], *, brain: bool = False) -> sitk.Image:
    """``mask`` as a labelmap, refused if it does not overlap ``reference`` (or, for a brain
    mask, is empty); a warning appended for negative values (read as 0), a probability map
    (read as ≥ 0.5), an empty lesion mask and a mask that looks cropped."""
    check_overlap(mask, name, reference, reference_name)
    mask, kept = _as_labels(mask, name, warnings)
    values = sitk.GetArrayViewFromImage(mask)
    if not values.any():
        if brain:
            raise InputError(f"{name}: is empty (no voxel {kept})")
        warnings.append(f"{name}: has no lesion voxels (no voxel {kept}); read as no lesions")
    elif _touches_edge(values) and (fraction := overlap_fraction(mask, reference)) < MIN_COVERAGE:
        left_out = "nothing beyond it counts as brain" if brain else "lesions beyond it are missed"
        warnings.append(f"{name}: covers {fraction:.0%} of {reference_name}'s field of view and "
                        f"reaches its own edge, so it looks cropped: {left_out}")
    return mask


def _as_labels(mask: sitk.Image, name: str, warnings: list[str]) -> tuple[sitk.Image, str]:
    """Whole, non-negative labels (what every pipeline reads: a voxel is in when above 0), and
    which voxels were kept, in words."""
    values = sitk.GetArrayFromImage(mask)
    if not np.isfinite(values).all():
        raise InputError(f"{name}: has NaN or infinite values; expected a mask or labelmap")
    if (values < 0).any():
        warnings.append(f"{name}: has negative values, read as 0 (outside the mask)")
        values = np.clip(values, 0, None)
    if np.any(values != np.round(values)):
        warnings.append(f"{name}: has values between whole numbers (a probability map?); "
                        f"read as a mask where they are {PROBABILITY_THRESHOLD} or more")
        values = (values >= PROBABILITY_THRESHOLD).astype(np.uint8)
        kept = f"of {PROBABILITY_THRESHOLD} or more"
    else:
        kept = "above 0"
        if _varies_like_a_probability_map(values):
            warnings.append(f"{name}: its whole-number values change from voxel to voxel inside "
                            f"the mask, as in a probability map stored as integers (0 to "
                            f"{values.max():g}?); read as a labelmap, every voxel above 0 is in "
                            "the mask: threshold it first if it is a probability map")
    labels = sitk.GetImageFromArray(values)
    labels.CopyInformation(mask)
    return labels, kept


def _varies_like_a_probability_map(values: np.ndarray) -> bool:
    """Most neighbouring non-zero voxels differ: a smooth map of many values. In a labelmap
    (instance ids or classes) neighbours inside a lesion share its value; they differ only
    where two lesions (or tissue classes) touch. Checked again without the commonest non-zero
    value, so that a map whose floor is a constant (say 1 all over the brain) is caught too: a
    labelmap without its largest lesion or class is still a labelmap. (A map on two floors is
    not caught.)"""
    differing, pairs = _neighbour_pairs(values)
    if differing > PROBABILITY_MAP_NEIGHBOUR_FRACTION * pairs:
        return True
    rest_differing, rest_pairs = _neighbour_pairs(np.where(values == _commonest(values), 0, values))
    return (rest_pairs >= MIN_REMAINING_PAIR_FRACTION * pairs > 0
            and rest_differing > PROBABILITY_MAP_NEIGHBOUR_FRACTION * rest_pairs)


def _neighbour_pairs(values: np.ndarray) -> tuple[int, int]:
    """Neighbouring pairs of non-zero voxels that differ in value, and all such pairs."""
    differing = pairs = 0
    for axis in range(values.ndim):
        first, second = neighbours(values, axis)
        both = (first > 0) & (second > 0)
        differing += np.count_nonzero(first[both] != second[both])
        pairs += np.count_nonzero(both)
    return differing, pairs


def _commonest(values: np.ndarray) -> float:
    """The commonest non-zero value of a whole-number mask (counted, not sorted, when small)."""
    non_zero = values[values > 0]
    if non_zero.size and non_zero.max() < 1 << 16:
        return float(np.argmax(np.bincount(non_zero.astype(np.int64))))
    labels, counts = np.unique(non_zero, return_counts=True)
    return float(labels[np.argmax(counts)]) if labels.size else 0.0


def _touches_edge(values: np.ndarray) -> bool:
    """True when a non-zero voxel lies on one of the array's six faces."""
    return any(np.take(values, index, axis).any()
               for axis in range(values.ndim) for index in (0, -1))
