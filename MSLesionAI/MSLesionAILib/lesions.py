"""Lesions as connected components: labelling, per-lesion measures and white-matter location.

Conventions shared by every pipeline and by the evaluation:

- Arrays are numpy (z, y, x); ``spacing_mm`` is given in the same (z, y, x) order, i.e.
  ``image.GetSpacing()[::-1]``.
- `label_components` numbers lesions 1..n by descending volume; lesions of equal volume keep
  the raster order (z, then y, then x) of their first voxel. So id 1 is the largest lesion and
  the numbering is the same on every run.
- Connectivity is 6 (faces), 18 (faces and edges) or 26 (faces, edges and corners).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from .errors import InputError
from .geometry import index_zyx_to_ras, voxel_volume_ul
from .labels import (
    DEEP_WHITE_MATTER,
    INFRATENTORIAL,
    JUXTACORTICAL,
    PERIVENTRICULAR,
    Tissue,
)

_RANK_OF_CONNECTIVITY = {6: 1, 18: 2, 26: 3}

# McDonald-style location rules: distances between voxel centres, in mm.
PERIVENTRICULAR_DISTANCE_MM = 3.0
JUXTACORTICAL_DISTANCE_MM = 1.5


def structuring_element(connectivity: int) -> np.ndarray:
    """The 3 x 3 x 3 neighbourhood of a connectivity (6, 18 or 26)."""
    if connectivity not in _RANK_OF_CONNECTIVITY:
        raise InputError(f"connectivity: {connectivity} is not one of 6, 18, 26")
    return ndimage.generate_binary_structure(3, _RANK_OF_CONNECTIVITY[connectivity])


def min_voxels_for_volume(min_volume_ul: float, spacing_mm: Sequence[float]) -> int:
    """The fewest voxels whose volume reaches ``min_volume_ul`` (at least 1)."""
    voxel_ul = float(np.prod(spacing_mm))
    return max(1, math.ceil(min_volume_ul / voxel_ul - 1e-9))


def remove_small_lesions(lesion_ids: np.ndarray, min_voxels: int) -> np.ndarray:
    """A copy with every lesion of fewer than ``min_voxels`` voxels set to 0; ids are kept."""
    sizes = lesion_sizes(lesion_ids)
    kept = np.where(sizes >= min_voxels, np.arange(len(sizes)), 0)
    return _map_ids(lesion_ids, kept.astype(lesion_ids.dtype))


def renumber_by_size(lesion_ids: np.ndarray) -> np.ndarray:
    """Renumber the lesions present 1..n (int32) by descending size, ties by ascending old id."""
    sizes = lesion_sizes(lesion_ids)
    present = np.flatnonzero(sizes)
    order = present[np.argsort(-sizes[present], kind="stable")]
    new_id = np.zeros(len(sizes), dtype=np.int32)
    new_id[order] = np.arange(1, len(order) + 1, dtype=np.int32)
    return _map_ids(lesion_ids, new_id)


def lesion_sizes(lesion_ids: np.ndarray) -> np.ndarray:
    """Voxel count of each id (index 0 is left 0), counting only the lesion voxels."""
    sizes = np.bincount(lesion_ids[lesion_ids != 0].ravel(), minlength=1)
    sizes[0] = 0
    return sizes


def _map_ids(lesion_ids: np.ndarray, new_id: np.ndarray) -> np.ndarray:
    """``new_id[lesion_ids]``, visiting only the lesion voxels (most of a brain is background)."""
    mapped = np.zeros(lesion_ids.shape, dtype=new_id.dtype)
    voxels = np.nonzero(lesion_ids)
    mapped[voxels] = new_id[lesion_ids[voxels]]
    return mapped


def label_components(mask: np.ndarray, connectivity: int = 18, min_volume_ul: float = 0.0,
                     spacing_mm: Sequence[float] = (1.0, 1.0, 1.0),
                     min_voxels: int | None = None) -> np.ndarray:
    """Connected components of the non-zero voxels, numbered 1..n by descending volume (int32).

    Components smaller than ``min_volume_ul`` (volume ≥ the minimum is kept) are removed;
    ``min_voxels``, when given, replaces the volume rule by a voxel count.
    """
    structure = structuring_element(connectivity)
    components, _ = ndimage.label(np.asarray(mask) != 0, structure=structure)
    if min_voxels is None:
        min_voxels = min_voxels_for_volume(min_volume_ul, spacing_mm)
    return renumber_by_size(remove_small_lesions(components, min_voxels))


def lesion_measures(lesion_ids: np.ndarray, reference_image: sitk.Image,
                    probability: np.ndarray | None = None,
                    uncertainty: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One row per lesion id present, in id order.

    Keys: ``lesion_id, voxels, volume_ul, centroid_r, centroid_a, centroid_s`` (the centre of
    mass in Slicer RAS mm), plus ``probability`` / ``uncertainty`` (the lesion's mean) when
    those maps are given. Only lesion voxels are visited, so 100+ lesions cost one pass.
    """
    expected_shape = tuple(reference_image.GetSize())[::-1]
    for name, array in (("lesion ids", lesion_ids), ("probability", probability),
                        ("uncertainty", uncertainty)):
        if array is not None and array.shape != expected_shape:
            raise InputError(f"{name}: shape {array.shape} does not match the reference image "
                             f"(z, y, x) {expected_shape}")
    voxel_index = np.nonzero(lesion_ids)
    ids = lesion_ids[voxel_index].astype(np.int64)
    counts = np.bincount(ids)
    present = np.flatnonzero(counts)
    means = {"z": voxel_index[0], "y": voxel_index[1], "x": voxel_index[2]}
    if probability is not None:
        means["probability"] = probability[voxel_index]
    if uncertainty is not None:
        means["uncertainty"] = uncertainty[voxel_index]
    mean_of = {key: np.bincount(ids, weights=values.astype(float))[present] / counts[present]
               for key, values in means.items()}
    centroids_zyx = np.column_stack([mean_of["z"], mean_of["y"], mean_of["x"]])
    centroids_ras = index_zyx_to_ras(reference_image, centroids_zyx) if len(present) else []
    voxel_ul = voxel_volume_ul(reference_image)
    rows = []
    for row, lesion_id in enumerate(present):
        measures = {"lesion_id": int(lesion_id), "voxels": int(counts[lesion_id]),
                    "volume_ul": float(counts[lesion_id] * voxel_ul),
                    "centroid_r": float(centroids_ras[row][0]),
                    "centroid_a": float(centroids_ras[row][1]),
                    "centroid_s": float(centroids_ras[row][2])}
        for key in ("probability", "uncertainty"):
            if key in mean_of:
                measures[key] = float(mean_of[key][row])
        rows.append(measures)
    return rows


def wm_lesion_location(lesion_mask: np.ndarray, tissue_labels: np.ndarray,
                       spacing_mm: Sequence[float]) -> str:
    """McDonald-style location of one white-matter lesion, from a tissue labelmap (`Tissue`).

    Precedence, first rule that holds:
    1. infratentorial — more than half of the lesion's voxels are `Tissue.INFRATENTORIAL`;
    2. periventricular — touching `Tissue.VENTRICLES` or within `PERIVENTRICULAR_DISTANCE_MM`;
    3. juxtacortical — touching `Tissue.CORTICAL_GM` or within `JUXTACORTICAL_DISTANCE_MM`;
    4. deep (white matter) otherwise.
    "Touching" means a tissue voxel in the lesion's 26-neighbourhood (whatever the spacing);
    distances are between voxel centres in mm, so anisotropic voxels are handled.
    """
    locations = wm_lesion_locations(np.asarray(lesion_mask != 0, dtype=np.uint8), tissue_labels,
                                    spacing_mm)
    if not locations:
        raise InputError("lesion mask: is empty; no lesion to locate")
    return locations[1]


def wm_lesion_locations(lesion_ids: np.ndarray, tissue_labels: np.ndarray,
                        spacing_mm: Sequence[float]) -> dict[int, str]:
    """`wm_lesion_location` of every lesion of an instance labelmap, by lesion id.

    Each lesion is judged in a crop around its bounding box, padded by the largest distance
    rule, so the cost grows with the lesions' size, not with the volume's.
    """
    pad = [math.ceil(PERIVENTRICULAR_DISTANCE_MM / s) + 1 for s in spacing_mm]
    locations = {}
    for lesion_id, box in enumerate(ndimage.find_objects(lesion_ids), start=1):
        if box is not None:
            crop = tuple(slice(max(b.start - p, 0), b.stop + p)
                         for b, p in zip(box, pad, strict=True))
            locations[lesion_id] = _location(lesion_ids[crop] == lesion_id, tissue_labels[crop],
                                             spacing_mm)
    return locations


def _location(lesion: np.ndarray, tissue_labels: np.ndarray, spacing_mm: Sequence[float]) -> str:
    in_infratentorial = np.count_nonzero(tissue_labels[lesion] == Tissue.INFRATENTORIAL)
    if in_infratentorial > np.count_nonzero(lesion) / 2:
        return INFRATENTORIAL
    touching = ndimage.binary_dilation(lesion, structure=structuring_element(26))
    distance_mm = ndimage.distance_transform_edt(~lesion, sampling=spacing_mm)
    for tissue, max_distance_mm, location in (
            (Tissue.VENTRICLES, PERIVENTRICULAR_DISTANCE_MM, PERIVENTRICULAR),
            (Tissue.CORTICAL_GM, JUXTACORTICAL_DISTANCE_MM, JUXTACORTICAL)):
        tissue_voxels = tissue_labels == tissue
        if tissue_voxels.any() and (touching[tissue_voxels].any()
                                    or distance_mm[tissue_voxels].min() <= max_distance_mm):
            return location
    return DEEP_WHITE_MATTER
