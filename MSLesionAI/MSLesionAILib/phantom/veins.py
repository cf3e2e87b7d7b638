"""Veins: thin paramagnetic tubes (deoxyhaemoglobin), drawn as wandering centrelines and
blurred to their calibre. Medullary veins run out from the ventricles through the white
matter; pial veins run along the brain surface.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..labels import Tissue
from .anatomy import CaseAnatomy
from .shapes import GridFrame

_STEP_MM = 0.3
_VEIN_SIGMA_MM = 0.45


class VeinCanvas:
    """Centrelines accumulated on the case grid; `fraction` blurs them into tubes (0..1)."""

    def __init__(self, anatomy: CaseAnatomy) -> None:
        self.frame = GridFrame(anatomy.grid)
        self.mm_to_index = np.linalg.inv(self.frame.index_to_mm)
        self.lines = np.zeros(anatomy.tissue.shape, np.float32)
        self.count = 0

    def draw(self, rng: np.random.Generator, start_zyx: np.ndarray, direction_mm: np.ndarray,
             length_mm: float, wander: float = 0.25, strength: float = 1.0) -> None:
        """A vein from ``start_zyx`` (index) along ``direction_mm`` (physical), wandering."""
        direction = direction_mm / (np.linalg.norm(direction_mm) + 1e-9)
        steps = int(length_mm / _STEP_MM)
        turns = np.cumsum(rng.normal(scale=wander * np.sqrt(_STEP_MM / 5.0), size=(steps, 3)),
                          axis=0)
        headings = direction + turns
        headings /= np.linalg.norm(headings, axis=1, keepdims=True)
        self.draw_path(start_zyx, np.cumsum(headings * _STEP_MM, axis=0), strength)

    def draw_path(self, start_zyx: np.ndarray, path_mm: np.ndarray, strength: float) -> None:
        """A vein through ``path_mm`` (physical offsets from ``start_zyx``, an index), whose
        points must lie `_STEP_MM` apart: each point stands for that much of the vein."""
        points = np.round(start_zyx + path_mm @ self.mm_to_index).astype(int)
        inside = np.all((points >= 0) & (points < self.lines.shape), axis=1)
        points = points[inside]
        sigma_voxels = _VEIN_SIGMA_MM / self.frame.spacing_zyx
        weight = strength * _STEP_MM * 2 * np.pi * np.prod(sigma_voxels) ** (2 / 3) / np.mean(
            self.frame.spacing_zyx)
        np.add.at(self.lines, tuple(points.T), weight)
        self.count += 1

    def draw_polyline(self, start_zyx: np.ndarray, corners_mm: np.ndarray,
                      strength: float) -> None:
        """A vein through the corners (physical offsets from ``start_zyx``), straight between
        them."""
        lengths = np.linalg.norm(np.diff(corners_mm, axis=0), axis=1)
        along = np.concatenate([[0.0], np.cumsum(lengths)])
        steps = np.arange(0.0, along[-1], _STEP_MM)
        path_mm = np.stack([np.interp(steps, along, axis) for axis in corners_mm.T], axis=1)
        self.draw_path(start_zyx, path_mm, strength)

    def fraction(self) -> np.ndarray:
        blurred = ndimage.gaussian_filter(self.lines, _VEIN_SIGMA_MM / self.frame.spacing_zyx)
        return np.clip(blurred, 0.0, 1.0)


def draw_background_veins(rng: np.random.Generator, anatomy: CaseAnatomy, canvas: VeinCanvas,
                          density_per_ml: float) -> int:
    """Medullary veins (radial, from near the ventricles) and pial veins (along the surface)."""
    brain_ml = anatomy.brain.sum() * np.prod(anatomy.spacing_zyx_mm) / 1000.0
    count = int(density_per_ml * brain_ml)
    wm = np.flatnonzero((anatomy.tissue == Tissue.WHITE_MATTER)
                        & (anatomy.ventricle_distance_mm < 12.0))
    surface = np.flatnonzero((anatomy.tissue == Tissue.CSF) & (anatomy.cortex_distance_mm < 1.5))
    ventricle_voxels = np.argwhere(anatomy.tissue == Tissue.VENTRICLES)
    centre = ventricle_voxels.mean(0) if len(ventricle_voxels) else np.array(
        anatomy.tissue.shape) / 2
    for _ in range(count):
        medullary = rng.random() < 0.6 and wm.size
        pool = wm if medullary else surface
        if not pool.size:
            continue
        start = np.array(np.unravel_index(rng.choice(pool), anatomy.tissue.shape), float)
        if medullary:
            direction = (start - centre) @ canvas.frame.index_to_mm + rng.normal(size=3) * 5
        else:
            direction = rng.normal(size=3)
        canvas.draw(rng, start, direction, rng.uniform(8.0, 35.0),
                    strength=rng.uniform(0.5, 1.0))
    return count
