"""White-matter lesions: how many, where, how big, how bright; typed by the library's own
McDonald-style location rules (`MSLesionAILib.lesions.wm_lesion_locations`), so the truth table
and the pipelines speak the same language.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..geometry import index_zyx_to_ras, voxel_volume_ul
from ..labels import (
    DEEP_WHITE_MATTER,
    INFRATENTORIAL,
    JUXTACORTICAL,
    PERIVENTRICULAR,
    WM_FAMILY,
    Tissue,
)
from ..lesions import wm_lesion_locations
from .anatomy import CaseAnatomy
from .shapes import GridFrame, carve, commit, draw_blob

MIN_LESION_UL = 3.0
_TYPE_SHARES = {PERIVENTRICULAR: 0.35, JUXTACORTICAL: 0.2, DEEP_WHITE_MATTER: 0.35,
                INFRATENTORIAL: 0.1}
_SIZE_FACTOR = {PERIVENTRICULAR: 2.0, JUXTACORTICAL: 0.7, DEEP_WHITE_MATTER: 1.0,
                INFRATENTORIAL: 1.2}
_WHOLE_BRAIN_UL = 1.4e6
_MAX_LESION_UL = 8000.0


@dataclass
class LesionSet:
    """Instance labels (numpy z, y, x), the soft lesion fraction × severity, one row per lesion.

    Row keys beyond the table's are kept in ``case.json`` (severity, shape, rim details).
    """

    labels: np.ndarray
    fraction: np.ndarray
    rows: list[dict] = field(default_factory=list)


def draw_wm_load(rng: np.random.Generator, mode: str, brain_ul: float) -> int:
    """Lesion count: none to > 100 (log-normal around 20 for a whole realistic brain)."""
    if mode == "realistic":
        count = 0 if rng.random() < 0.06 else int(np.exp(rng.normal(np.log(20.0), 0.9)))
    else:
        count = int(140 * rng.random() ** 2)
    return int(round(min(count, 160) * min(brain_ul / _WHOLE_BRAIN_UL, 1.0)))


def place_wm_lesions(rng: np.random.Generator, anatomy: CaseAnatomy, count: int,
                     mode: str) -> LesionSet:
    fractions = anatomy.fractions
    in_white_matter = np.isin(anatomy.tissue, (Tissue.WHITE_MATTER, Tissue.INFRATENTORIAL))
    wm_dominant = in_white_matter & (fractions["wm"] >= np.maximum(fractions["gm"],
                                                                    fractions["csf"]))
    candidates = _candidates(anatomy, wm_dominant)
    frame = GridFrame(anatomy.grid)
    voxel_ul = voxel_volume_ul(anatomy.grid)
    min_voxels = max(2, int(np.ceil(MIN_LESION_UL / voxel_ul)))
    lesions = LesionSet(labels=np.zeros(anatomy.tissue.shape, np.uint16),
                        fraction=np.zeros(anatomy.tissue.shape, np.float32))
    ventricle_centre = _centre_of(anatomy.tissue == Tissue.VENTRICLES)
    for centre, volume_ul, wanted_type in _lesion_plan(rng, candidates, count, anatomy):
        long_axis = None
        if wanted_type == PERIVENTRICULAR and ventricle_centre is not None:
            long_axis = (centre - ventricle_centre) @ frame.index_to_mm
        blob = draw_blob(rng, volume_ul, elongation=2.5, irregular=rng.random() < 0.4,
                         long_axis=long_axis if np.any(long_axis) else None)
        severity = _severity(rng, mode)
        lesion_id = len(lesions.rows) + 1
        carving = carve(lesions.labels, frame, centre, blob, wm_dominant, min_voxels)
        if carving is not None:
            commit(carving, lesions.labels, lesions.fraction, lesion_id, severity)
            lesions.rows.append({"lesion_id": lesion_id, "family": WM_FAMILY,
                                 "planned_type": wanted_type, "severity": round(severity, 4),
                                 "planned_volume_ul": round(volume_ul, 2)})
    _finish_rows(lesions, anatomy)
    return lesions


def _candidates(anatomy: CaseAnatomy, wm_dominant: np.ndarray) -> dict[str, np.ndarray]:
    """Flat voxel indices where a lesion of each type may be centred."""
    infra = anatomy.tissue == Tissue.INFRATENTORIAL
    supratentorial_wm = wm_dominant & ~infra
    ventricle_mm, cortex_mm = anatomy.ventricle_distance_mm, anatomy.cortex_distance_mm
    masks = {PERIVENTRICULAR: supratentorial_wm & (ventricle_mm < 4.0),
             JUXTACORTICAL: supratentorial_wm & (cortex_mm < 2.5) & (ventricle_mm > 6.0),
             DEEP_WHITE_MATTER: supratentorial_wm & (ventricle_mm > 6.0) & (cortex_mm > 4.0),
             INFRATENTORIAL: wm_dominant & infra}
    return {name: np.flatnonzero(mask) for name, mask in masks.items()}


def _lesion_plan(rng: np.random.Generator, candidates: dict[str, np.ndarray], count: int,
                 anatomy: CaseAnatomy):
    """Yield (centre index zyx, volume µL, type) for every lesion, confluent clusters included."""
    types = [t for t in _TYPE_SHARES if candidates[t].size]
    if not types or count == 0:
        return
    shares = np.array([_TYPE_SHARES[t] for t in types])
    shape = anatomy.tissue.shape
    clusters = rng.integers(1, 4) if count >= 8 and rng.random() < 0.6 else 0
    for _ in range(count):
        wanted = types[rng.choice(len(types), p=shares / shares.sum())]
        centre = np.array(np.unravel_index(rng.choice(candidates[wanted]), shape), float)
        volume_ul = _draw_volume_ul(rng, wanted)
        yield centre, volume_ul, wanted
        if clusters and wanted == PERIVENTRICULAR:
            clusters -= 1
            yield from _confluent_cluster(rng, centre, volume_ul, anatomy)


def _confluent_cluster(rng: np.random.Generator, centre_zyx: np.ndarray, volume_ul: float,
                       anatomy: CaseAnatomy):
    """Lesions packed around one periventricular lesion so that they merge into a cap."""
    spacing = np.array(anatomy.spacing_zyx_mm)
    radius_mm = (3.0 * volume_ul / (4.0 * np.pi)) ** (1.0 / 3.0)
    for _ in range(rng.integers(2, 6)):
        step_mm = rng.normal(size=3)
        step_mm *= rng.uniform(0.8, 1.4) * radius_mm / np.linalg.norm(step_mm)
        neighbour = np.clip(centre_zyx + step_mm / spacing, 0, np.array(anatomy.tissue.shape) - 1)
        yield neighbour, volume_ul * rng.uniform(0.4, 1.2), PERIVENTRICULAR


def _draw_volume_ul(rng: np.random.Generator, lesion_type: str) -> float:
    volume_ul = np.exp(rng.normal(np.log(18.0), 1.2)) * _SIZE_FACTOR[lesion_type]
    return float(np.clip(volume_ul, MIN_LESION_UL * 1.5, _MAX_LESION_UL))


def _severity(rng: np.random.Generator, mode: str) -> float:
    """How far a lesion's signal goes from normal tissue towards the case's lesion value."""
    low = 0.4 if mode == "realistic" else 0.6
    return float(rng.uniform(low, 1.0))


def _centre_of(mask: np.ndarray) -> np.ndarray | None:
    return np.array(ndimage.center_of_mass(mask)) if mask.any() else None


def _finish_rows(lesions: LesionSet, anatomy: CaseAnatomy) -> None:
    """Type every painted lesion by its final shape, find confluent groups, measure all."""
    types = wm_lesion_locations(lesions.labels, anatomy.tissue, anatomy.spacing_zyx_mm)
    groups = confluent_groups(lesions.labels)
    for row in lesions.rows:
        row.update(type=types[row["lesion_id"]], rim=0,
                   confluent_group=groups.get(row["lesion_id"], 0))
    measure_rows(lesions.rows, lesions.labels, anatomy)


def confluent_groups(labels: np.ndarray) -> dict[int, int]:
    """Group number (1, 2, …) of lesions that touch another lesion (26-connectivity)."""
    components, _ = ndimage.label(labels > 0, structure=np.ones((3, 3, 3)))
    ids, first = np.unique(labels[labels > 0], return_index=True)
    component_of = dict(zip(ids.tolist(), components[labels > 0][first].tolist(), strict=True))
    members: dict[int, list[int]] = {}
    for lesion_id, component in component_of.items():
        members.setdefault(component, []).append(lesion_id)
    groups = {}
    for number, ids_in_group in enumerate(sorted(m for m in members.values() if len(m) > 1), 1):
        groups.update(dict.fromkeys(ids_in_group, number))
    return groups


def measure_rows(rows: list[dict], labels: np.ndarray, anatomy: CaseAnatomy) -> None:
    """Add ``volume_ul`` and the RAS centroid (mm) to each row, from the labelmap."""
    if not rows:
        return
    index_zyx = np.nonzero(labels)
    ids = labels[index_zyx]
    counts = np.bincount(ids)
    sums = np.stack([np.bincount(ids, weights=axis) for axis in index_zyx], axis=1)
    wanted = [row["lesion_id"] for row in rows]
    counts = counts[wanted]
    ras = index_zyx_to_ras(anatomy.grid, sums[wanted] / counts[:, None])
    voxel_ul = voxel_volume_ul(anatomy.grid)
    for row, voxels, (r, a, s) in zip(rows, counts, ras, strict=True):
        row.update(volume_ul=round(float(voxels) * voxel_ul, 3), centroid_r=round(float(r), 3),
                   centroid_a=round(float(a), 3), centroid_s=round(float(s), 3))
