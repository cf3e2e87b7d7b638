"""Paramagnetic rim lesions and their mimics, as a susceptibility map (ppm, relative).

A subset of white-matter lesions of at least `MIN_RIM_LESION_UL` get an iron rim: a shell at
their border, complete or partial, of varying width and strength. Rim− lesions get the things
that make phase hard to read: a central vein, a diffuse or core susceptibility change, a vein
touching the border, or nothing. `phase.py` turns the map into phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .anatomy import CaseAnatomy
from .lesions import LesionSet
from .veins import VeinCanvas, draw_background_veins

MIN_RIM_LESION_UL = 12.3  # RimNet's candidate threshold
_TISSUE_CHI_PPM = {"csf": 0.0, "gm": 0.01, "deep_gm": 0.06, "wm": -0.025}
_VEIN_CHI_PPM = 0.3
_MIMICS = ("none", "central_vein", "diffuse", "core", "touching_vein")
_MIMIC_SHARES = (0.3, 0.3, 0.15, 0.1, 0.15)


@dataclass
class Susceptibility:
    chi_ppm: np.ndarray          # whole case, tissue + veins + lesions
    rim_chi_ppm: np.ndarray      # the lesion rims only (they darken T2* magnitude)
    vein_fraction: np.ndarray
    parameters: dict


def draw_susceptibility(rng: np.random.Generator, anatomy: CaseAnatomy, wm: LesionSet,
                        mode: str, with_rims: bool) -> Susceptibility:
    """Tissue susceptibility, veins, rims (when ``with_rims``) and mimics; marks rim rows."""
    canvas = VeinCanvas(anatomy)
    vein_density = rng.uniform(0.15, 0.4)
    veins = draw_background_veins(rng, anatomy, canvas, vein_density)
    rims = np.zeros(anatomy.tissue.shape, np.float32)
    lesion_chi = np.zeros(anatomy.tissue.shape, np.float32)
    rim_share = rng.uniform(0.0, 0.5) if with_rims else 0.0
    boxes = ndimage.find_objects(wm.labels)
    spacing = np.array(anatomy.spacing_zyx_mm)
    for row in wm.rows:
        box = _padded(boxes[row["lesion_id"] - 1], spacing, anatomy.tissue.shape)
        lesion = wm.labels[box] == row["lesion_id"]
        eligible = row["volume_ul"] >= MIN_RIM_LESION_UL
        row["rim"] = int(eligible and rng.random() < rim_share)
        if row["rim"]:
            row["rim_details"] = _paint_rim(rng, rims[box], lesion, spacing, mode)
        mimic = _MIMICS[rng.choice(len(_MIMICS), p=_MIMIC_SHARES)]
        row["phase_mimic"] = mimic
        _paint_mimic(rng, mimic, lesion, box, lesion_chi, canvas, spacing)
    vein_fraction = canvas.fraction()
    chi = _tissue_chi(anatomy) + _VEIN_CHI_PPM * vein_fraction + rims + lesion_chi
    return Susceptibility(chi_ppm=chi.astype(np.float32), rim_chi_ppm=rims,
                          vein_fraction=vein_fraction,
                          parameters={"background_veins": veins, "veins": canvas.count,
                                      "vein_density_per_ml": vein_density,
                                      "rim_share": rim_share})


def _tissue_chi(anatomy: CaseAnatomy) -> np.ndarray:
    f = anatomy.fractions
    deep = f["deep_gm"] * (1.0 - f["infratentorial"])
    return (f["gm"] * (1 - deep) * _TISSUE_CHI_PPM["gm"] + f["gm"] * deep
            * _TISSUE_CHI_PPM["deep_gm"] + f["wm"] * _TISSUE_CHI_PPM["wm"])


def _padded(box: tuple[slice, ...], spacing: np.ndarray, shape: tuple[int, ...]
            ) -> tuple[slice, ...]:
    pad = np.ceil(3.0 / spacing).astype(int) + 1
    return tuple(slice(max(b.start - p, 0), min(b.stop + p, n))
                 for b, p, n in zip(box, pad, shape, strict=True))


def _paint_rim(rng: np.random.Generator, rims: np.ndarray, lesion: np.ndarray,
               spacing: np.ndarray, mode: str) -> dict:
    """A thin shell on the lesion's edge (a little inside), complete or covering part of it."""
    inside_mm = ndimage.distance_transform_edt(lesion, sampling=spacing)
    outside_mm = ndimage.distance_transform_edt(~lesion, sampling=spacing)
    depth_mm = inside_mm - outside_mm  # > 0 inside
    width_mm = rng.uniform(0.8, 2.0)
    strength = rng.uniform(0.12, 0.4) if mode == "realistic" else rng.uniform(0.06, 0.5)
    shell = np.exp(-((depth_mm - width_mm / 4) / (width_mm / 2)) ** 2)  # at the edge
    complete = rng.random() < 0.5
    coverage = 1.0 if complete else rng.uniform(0.5, 0.9)
    if not complete:
        offsets = (np.argwhere(np.ones_like(lesion)) - np.argwhere(lesion).mean(0)) * spacing
        toward = rng.normal(size=3)
        cosine = offsets @ (toward / np.linalg.norm(toward)) / (
            np.linalg.norm(offsets, axis=1) + 1e-6)
        shell *= (cosine.reshape(lesion.shape) > 1.0 - 2.0 * coverage)
    rims += strength * shell
    return {"complete": complete, "coverage": round(coverage, 3),
            "width_mm": round(width_mm, 3), "strength_ppm": round(strength, 4)}


def _paint_mimic(rng: np.random.Generator, mimic: str, lesion: np.ndarray,
                 box: tuple[slice, ...], lesion_chi: np.ndarray, canvas: VeinCanvas,
                 spacing: np.ndarray) -> None:
    corner = np.array([b.start for b in box], float)
    centre = corner + np.argwhere(lesion).mean(0)
    extent_mm = float(np.max((np.array(lesion.shape)) * spacing))
    if mimic == "central_vein":
        direction = rng.normal(size=3)
        start = centre - (direction / np.linalg.norm(direction)) @ canvas.mm_to_index * extent_mm
        canvas.draw(rng, start, direction, 2.0 * extent_mm, wander=0.05,
                    strength=rng.uniform(0.3, 0.8))  # thinner than a voxel: partial volume
    elif mimic == "touching_vein":
        border = np.argwhere(lesion & ~ndimage.binary_erosion(lesion))
        point = corner + border[rng.integers(len(border))]
        tangent = np.cross(rng.normal(size=3), (point - centre) @ canvas.frame.index_to_mm)
        start = point - (tangent / (np.linalg.norm(tangent) + 1e-9)) @ canvas.mm_to_index * (
            extent_mm / 2)
        canvas.draw(rng, start, tangent, extent_mm * 1.5, wander=0.1,
                    strength=rng.uniform(0.3, 0.8))
    elif mimic == "diffuse":
        lesion_chi[box] += rng.uniform(0.01, 0.05) * ndimage.gaussian_filter(
            lesion.astype(np.float32), 1.0)
    elif mimic == "core":
        core = ndimage.binary_erosion(lesion, iterations=2)
        lesion_chi[box] += rng.uniform(0.02, 0.08) * ndimage.gaussian_filter(
            core.astype(np.float32), 1.0)
