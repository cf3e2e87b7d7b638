"""Rim-lesion candidates from a white-matter lesion mask (binary or instance labelmap).

As in RimNet: a candidate is a 6-connected component (of each label value, so lesions a
labelmap keeps apart stay apart); components under 12.3 µL are excluded and counted as "too
small"; very large ones are kept and flagged. Unlike RimNet, whose confluent lesions were
split by a technician, confluent lesions are split here automatically by a watershed of the
distance transform, seeded by its h-maxima: two lesions that touch through a neck narrower
than each lesion's own radius by ``SPLIT_DEPTH_MM`` become two candidates, each recording the
component it was split from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from .lesions import min_voxels_for_volume, renumber_by_size, structuring_element

MIN_VOLUME_UL = 12.3
# RimNet excluded lesions over 10,000 voxels (0.65 mm phase voxels): they do not fit a patch.
LARGE_VOLUME_UL = 10_000 * 0.65**3
SPLIT_DEPTH_MM = 1.0


@dataclass
class Candidates:
    """Candidate lesions numbered 1..n by descending volume (``lesion_ids``, int32, z y x)."""

    lesion_ids: np.ndarray
    split_from: dict[int, int] = field(default_factory=dict)
    too_small: int = 0
    large: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        return int(self.lesion_ids.max(initial=0))


def find_candidates(mask: np.ndarray, spacing_mm: Sequence[float],
                    min_volume_ul: float = MIN_VOLUME_UL, split: bool = True) -> Candidates:
    """Candidates of a lesion mask; ``spacing_mm`` in numpy (z, y, x) order.

    ``split_from`` maps a candidate to the number of the component it came from, components
    being numbered 1..m by descending volume before splitting.
    """
    components = six_connected_components(mask)
    min_voxels = min_voxels_for_volume(min_volume_ul, spacing_mm)
    sizes = np.bincount(components.ravel())[1:]
    too_small = int(np.count_nonzero((sizes > 0) & (sizes < min_voxels)))
    components = renumber_by_size(np.where(np.isin(components, np.flatnonzero(
        sizes >= min_voxels) + 1), components, 0))
    parts, origin = (split_confluent(components, spacing_mm, min_voxels) if split
                     else (components, {}))
    lesion_ids = renumber_by_size(parts)
    new_id = _id_map(parts, lesion_ids)
    split_from = {int(new_id[part]): source for part, source in origin.items()}
    volumes_ul = np.bincount(lesion_ids.ravel())[1:] * float(np.prod(spacing_mm))
    large = [int(i) + 1 for i in np.flatnonzero(volumes_ul > LARGE_VOLUME_UL)]
    return Candidates(lesion_ids, split_from, too_small, large)


def six_connected_components(mask: np.ndarray) -> np.ndarray:
    """6-connected components of each non-zero value of ``mask`` (int32, arbitrary order)."""
    values = np.rint(np.asarray(mask)).astype(np.int64)
    values[values < 0] = 0
    components = np.zeros(values.shape, np.int32)
    next_id = 1
    for value, box in enumerate(ndimage.find_objects(values), start=1):
        if box is None:
            continue
        labels, count = ndimage.label(values[box] == value, structure=structuring_element(6))
        inside = labels > 0
        components[box][inside] = labels[inside] + next_id - 1
        next_id += count
    return components


def split_confluent(components: np.ndarray, spacing_mm: Sequence[float],
                    min_voxels: int) -> tuple[np.ndarray, dict[int, int]]:
    """Split each component with several distance-transform basins of ≥ ``min_voxels``.

    Returns the new labelmap (ids not ordered) and ``{new id: component id}`` for every part
    of a split component.
    """
    parts = components.copy()
    origin: dict[int, int] = {}
    next_id = int(components.max(initial=0)) + 1
    for component, box in enumerate(ndimage.find_objects(components), start=1):
        if box is None or np.count_nonzero(components[box] == component) < 2 * min_voxels:
            continue
        pieces = _watershed_pieces(components[box] == component, spacing_mm, min_voxels)
        if pieces.max() < 2:
            continue
        view = parts[box]
        for piece in range(1, int(pieces.max()) + 1):
            view[pieces == piece] = next_id
            origin[next_id] = component
            next_id += 1
    return parts, origin


def _watershed_pieces(lesion: np.ndarray, spacing_mm: Sequence[float],
                      min_voxels: int) -> np.ndarray:
    """Watershed pieces 1..k of one lesion (k = 1: no split); pieces under ``min_voxels``
    give their seed up and are absorbed by their neighbours."""
    padded = np.pad(lesion, 1)
    distance_mm = ndimage.distance_transform_edt(padded, sampling=spacing_mm)
    seeds, _ = ndimage.label(h_maxima(distance_mm, SPLIT_DEPTH_MM), structure=np.ones((3,) * 3))
    while seeds.max() > 1:
        pieces = watershed(-distance_mm, seeds, mask=padded)
        sizes = np.bincount(pieces.ravel(), minlength=seeds.max() + 1)[1:]
        if sizes.min() >= min_voxels:
            return pieces[1:-1, 1:-1, 1:-1]
        seeds[seeds == int(np.argmin(sizes)) + 1] = 0
        seeds, _ = ndimage.label(seeds > 0, structure=np.ones((3,) * 3))
    return lesion.astype(np.int32)


def _id_map(old_ids: np.ndarray, new_ids: np.ndarray) -> np.ndarray:
    """``mapping[old] = new`` for two labelmaps that differ only by renumbering."""
    mapping = np.zeros(int(old_ids.max(initial=0)) + 1, np.int32)
    mapping[old_ids[old_ids > 0]] = new_ids[old_ids > 0]
    return mapping
