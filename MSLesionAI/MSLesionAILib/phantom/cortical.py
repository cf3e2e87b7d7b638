"""Cortical lesions, built on the case's fine grid (0.5–0.7 mm in cortical cases):

- leukocortical: spanning the grey/white boundary (voxels in both cortex and white matter);
- intracortical: inside the ribbon, touching neither the pial nor the white-matter surface;
- subpial: touching the pial surface, band-like along it, not reaching the white matter.

"Touching" is face adjacency (6-neighbourhood). Each type is painted only where its definition
allows, and checked again once painted (`cortical_type_holds`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..geometry import voxel_volume_ul
from ..labels import CORTICAL_FAMILY, INTRACORTICAL, LEUKOCORTICAL, SUBPIAL, Tissue
from .anatomy import CaseAnatomy
from .lesions import LesionSet, measure_rows
from .shapes import Carving, GridFrame, carve, commit, draw_blob

MIN_CORTICAL_UL = 1.0
_TYPE_SHARES = {LEUKOCORTICAL: 0.45, INTRACORTICAL: 0.25, SUBPIAL: 0.3}
_VOLUME_RANGE_UL = {LEUKOCORTICAL: (4.0, 50.0), INTRACORTICAL: (1.0, 12.0),
                    SUBPIAL: (3.0, 50.0)}
_FACES = ndimage.generate_binary_structure(3, 1)
_CORTEX_PER_REGION_ML = 25.0
# How far a lesion's signal goes towards the case's cortical-lesion value. Raters draw a
# cortical lesion only where it is visible on two slices (CLAIMS's rule), so none is barely so.
_SEVERITY_RANGE = (0.5, 1.0)


def cortical_surfaces(tissue: np.ndarray) -> dict[str, np.ndarray]:
    """Cortex voxels next to CSF/outside (pial), next to white matter, and neither (interior)."""
    cortex = tissue == Tissue.CORTICAL_GM
    outside = (tissue == Tissue.CSF) | (tissue == Tissue.BACKGROUND)
    pial = cortex & ndimage.binary_dilation(outside, _FACES)
    white = cortex & ndimage.binary_dilation(tissue == Tissue.WHITE_MATTER, _FACES)
    return {"cortex": cortex, "pial": pial, "white": white, "interior": cortex & ~pial & ~white}


def cortical_type_holds(lesion: np.ndarray, lesion_type: str, tissue: np.ndarray) -> bool:
    """Whether a lesion mask (cropped with a margin) obeys its type's definition."""
    in_cortex = tissue[lesion] == Tissue.CORTICAL_GM
    in_wm = tissue[lesion] == Tissue.WHITE_MATTER
    touching = ndimage.binary_dilation(lesion, _FACES) & ~lesion
    near = tissue[touching]
    touches_outside = np.isin(near, (Tissue.CSF, Tissue.BACKGROUND)).any()
    touches_wm = (near == Tissue.WHITE_MATTER).any()
    if lesion_type == LEUKOCORTICAL:
        return bool(in_cortex.any() and in_wm.any() and (in_cortex | in_wm).all())
    if lesion_type == INTRACORTICAL:
        return bool(in_cortex.all() and not touches_outside and not touches_wm)
    return bool(in_cortex.all() and touches_outside and not touches_wm and not in_wm.any())


def draw_cortical_load(rng: np.random.Generator, mode: str, cortex_ml: float) -> int:
    regions = cortex_ml / _CORTEX_PER_REGION_ML
    per_region = rng.uniform(0.0, 6.0) if mode == "realistic" else rng.uniform(0.0, 10.0)
    return int(round(per_region * regions))


def place_cortical_lesions(rng: np.random.Generator, anatomy: CaseAnatomy, count: int,
                           first_id: int, wm_labels: np.ndarray) -> LesionSet:
    """Paint ``count`` planned cortical lesions (ids from ``first_id``); keep those that fit."""
    surfaces = cortical_surfaces(anatomy.tissue)
    free_wm = (anatomy.tissue == Tissue.WHITE_MATTER) & (wm_labels == 0)
    allowed = {LEUKOCORTICAL: surfaces["cortex"] | free_wm,
               INTRACORTICAL: surfaces["interior"],
               SUBPIAL: surfaces["cortex"] & ~surfaces["white"]}
    centres = {LEUKOCORTICAL: np.flatnonzero(surfaces["white"]),
               INTRACORTICAL: np.flatnonzero(surfaces["interior"]),
               SUBPIAL: np.flatnonzero(surfaces["pial"])}
    types = [t for t in _TYPE_SHARES if centres[t].size]
    frame = GridFrame(anatomy.grid)
    min_voxels = max(2, int(np.ceil(MIN_CORTICAL_UL / voxel_volume_ul(anatomy.grid))))
    lesions = LesionSet(labels=np.zeros(anatomy.tissue.shape, np.uint16),
                        fraction=np.zeros(anatomy.tissue.shape, np.float32))
    shares = np.array([_TYPE_SHARES[t] for t in types])
    for _ in range(count if types else 0):
        lesion_type = types[rng.choice(len(types), p=shares / shares.sum())]
        flat = rng.choice(centres[lesion_type])
        centre = np.array(np.unravel_index(flat, anatomy.tissue.shape), float)
        volume_ul = np.exp(rng.uniform(*np.log(_VOLUME_RANGE_UL[lesion_type])))
        blob = _cortical_blob(rng, lesion_type, volume_ul, anatomy, centre, frame)
        lesion_id = first_id + len(lesions.rows)
        severity = float(rng.uniform(*_SEVERITY_RANGE))
        carving = carve(lesions.labels, frame, centre, blob, allowed[lesion_type], min_voxels)
        if carving is not None and _obeys(carving, lesion_type, anatomy.tissue):
            commit(carving, lesions.labels, lesions.fraction, lesion_id, severity)
            lesions.rows.append({"lesion_id": lesion_id, "family": CORTICAL_FAMILY,
                                 "type": lesion_type, "rim": 0, "confluent_group": 0,
                                 "severity": round(severity, 4)})
    measure_rows(lesions.rows, lesions.labels, anatomy)
    return lesions


def _cortical_blob(rng: np.random.Generator, lesion_type: str, volume_ul: float,
                   anatomy: CaseAnatomy, centre_zyx: np.ndarray, frame: GridFrame):
    """Subpial lesions are bands: thin across the cortex, wide along the pial surface."""
    if lesion_type != SUBPIAL:
        return draw_blob(rng, volume_ul, elongation=1.8, irregular=rng.random() < 0.3)
    normal = _outward_normal(anatomy.fractions["csf"], centre_zyx, frame)
    tangent = np.cross(normal, rng.normal(size=3))
    return draw_blob(rng, volume_ul, elongation=3.0, flatness=0.4, long_axis=tangent,
                     short_axis=normal)


def _outward_normal(csf: np.ndarray, centre_zyx: np.ndarray, frame: GridFrame) -> np.ndarray:
    """Physical direction towards the CSF at a point: the local gradient of the CSF fraction."""
    box, _ = frame.box(centre_zyx, 2.0)
    gradient_zyx = np.array([g.mean() for g in np.gradient(csf[box])]) / frame.spacing_zyx
    normal = gradient_zyx @ frame.index_to_mm
    return normal if np.any(normal) else np.array([0.0, 0.0, 1.0])


def _obeys(carving: Carving, lesion_type: str, tissue: np.ndarray) -> bool:
    """Check a carving against its type's definition, with a one-voxel margin around it."""
    box = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in carving.box)
    lesion = np.zeros(tissue[box].shape, bool)
    inner = tuple(slice(c.start - b.start, c.start - b.start + (c.stop - c.start))
                  for b, c in zip(box, carving.box, strict=True))
    lesion[inner] = carving.mask
    return cortical_type_holds(lesion, lesion_type, tissue[box])
