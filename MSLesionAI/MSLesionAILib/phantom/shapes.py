"""Lesion shapes: ovoid or irregular (several lobes, wavy borders) blobs in physical space,
painted into a labelmap as one connected instance with a soft partial-volume edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial.transform import Rotation

_EDGE_WIDTH_MM = 0.8
_WAVES = 6


@dataclass(frozen=True)
class Blob:
    """A blob around a centre: ellipsoidal lobes (mm, physical LPS axes) plus border waves.

    `inside` is about the depth below the border in mm: > 0 inside, < 0 outside.
    """

    semi_axes_mm: np.ndarray           # (3,) of the main lobe
    rotation: np.ndarray               # (3, 3) physical orientation of the main lobe
    lobe_offsets_mm: np.ndarray        # (n, 3), the first is 0
    lobe_scales: np.ndarray            # (n,)
    wave_vectors: np.ndarray           # (_WAVES, 3) in radians per mm
    wave_phases: np.ndarray            # (_WAVES,)
    waviness: float

    @property
    def radius_mm(self) -> float:
        """Radius of a ball that holds the whole blob."""
        reach = np.linalg.norm(self.lobe_offsets_mm, axis=1) + self.lobe_scales * max(
            self.semi_axes_mm)
        return float(reach.max() * (1.0 + self.waviness) + _EDGE_WIDTH_MM)

    def inside_mm(self, offsets_mm: np.ndarray) -> np.ndarray:
        """Approximate signed depth (mm) of points given relative to the centre (..., 3)."""
        mean_axis_mm = float(np.mean(self.semi_axes_mm))
        depth = np.full(offsets_mm.shape[:-1], -np.inf, dtype=np.float32)
        for offset, scale in zip(self.lobe_offsets_mm, self.lobe_scales, strict=True):
            local = (offsets_mm - offset) @ self.rotation / (self.semi_axes_mm * scale)
            depth = np.maximum(depth, (1.0 - np.sum(local**2, axis=-1)) * mean_axis_mm * scale / 2)
        waves = np.cos(offsets_mm @ self.wave_vectors.T + self.wave_phases).mean(axis=-1)
        return depth + self.waviness * mean_axis_mm * waves


def draw_blob(rng: np.random.Generator, volume_ul: float, *, elongation: float = 1.5,
              irregular: bool = False, long_axis: np.ndarray | None = None,
              flatness: float = 1.0, short_axis: np.ndarray | None = None) -> Blob:
    """A blob of about ``volume_ul`` (before being clipped to its tissue).

    ``long_axis`` (physical, unit) orients the longest axis (Dawson's fingers point away from the
    ventricles); ``flatness`` < 1 squashes the third axis, oriented along ``short_axis`` when
    given (band-like subpial lesions lie flat along the pial surface).
    """
    ratios = np.array([rng.uniform(1.0, elongation), 1.0, flatness * rng.uniform(0.7, 1.0)])
    radius_mm = (3.0 * volume_ul / (4.0 * np.pi * np.prod(ratios))) ** (1.0 / 3.0)
    rotation = Rotation.random(random_state=rng).as_matrix()
    if long_axis is not None:
        rotation = _frame_with_first_axis(long_axis, rotation, short_axis)
    lobes = rng.integers(2, 5) if irregular else 1
    offsets = np.zeros((lobes, 3))
    offsets[1:] = rng.normal(size=(lobes - 1, 3)) * radius_mm * 0.8
    scales = np.concatenate([[1.0], rng.uniform(0.4, 0.8, lobes - 1)])
    directions = rng.normal(size=(_WAVES, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    frequencies = rng.uniform(1.0, 3.0, (_WAVES, 1)) / max(radius_mm, 0.5)
    waviness = rng.uniform(0.15, 0.45) if irregular else rng.uniform(0.0, 0.12)
    return Blob(semi_axes_mm=radius_mm * ratios, rotation=rotation, lobe_offsets_mm=offsets,
                lobe_scales=scales, wave_vectors=directions * frequencies,
                wave_phases=rng.uniform(0, 2 * np.pi, _WAVES), waviness=waviness)


def _frame_with_first_axis(axis: np.ndarray, rotation: np.ndarray,
                           third: np.ndarray | None) -> np.ndarray:
    """An orthonormal frame whose first column is ``axis`` and third as near ``third`` as
    possible (otherwise taken from ``rotation``)."""
    first = axis / np.linalg.norm(axis)
    hint = rotation[:, 2] if third is None else np.asarray(third, float)
    last = hint - first * (first @ hint)
    last /= np.linalg.norm(last)
    return np.stack([first, np.cross(last, first), last], axis=1)


class GridFrame:
    """Local boxes of a grid and the physical offsets (mm) of their voxels from a centre."""

    def __init__(self, grid: sitk.Image) -> None:
        self.shape_zyx = tuple(grid.GetSize()[::-1])
        self.spacing_zyx = np.array(grid.GetSpacing()[::-1])
        direction = np.array(grid.GetDirection()).reshape(3, 3)
        # index offset (z, y, x) -> physical offset (x, y, z) in mm
        self.index_to_mm = (direction * np.array(grid.GetSpacing()))[:, ::-1].T

    def box(self, centre_zyx: np.ndarray, radius_mm: float) -> tuple[tuple[slice, ...],
                                                                   np.ndarray]:
        """The slices of a box holding a ball around the centre, and its voxels' offsets."""
        half = np.ceil(radius_mm / self.spacing_zyx).astype(int) + 1
        centre = np.round(centre_zyx).astype(int)
        low = np.maximum(centre - half, 0)
        high = np.minimum(centre + half + 1, self.shape_zyx)
        box = tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))
        grids = np.meshgrid(*[np.arange(a, b) - c for a, b, c in
                              zip(low, high, centre_zyx, strict=True)], indexing="ij")
        offsets_mm = np.stack(grids, axis=-1).astype(np.float32) @ self.index_to_mm
        return box, offsets_mm


@dataclass(frozen=True)
class Carving:
    """Where a blob would become a lesion: the box, its voxels there, its soft profile."""

    box: tuple[slice, ...]
    mask: np.ndarray
    soft: np.ndarray

    @property
    def voxels(self) -> int:
        return int(self.mask.sum())


def carve(labels: np.ndarray, frame: GridFrame, centre_zyx: np.ndarray, blob: Blob,
          allowed: np.ndarray, min_voxels: int) -> Carving | None:
    """Cut a blob to where it is allowed and not yet taken, keeping its largest (26-)connected
    part so that every lesion is one piece; None when that is under ``min_voxels``."""
    box, offsets_mm = frame.box(centre_zyx, blob.radius_mm)
    depth_mm = blob.inside_mm(offsets_mm)
    free = allowed[box] & (labels[box] == 0)
    components, count = ndimage.label((depth_mm > 0) & free, structure=np.ones((3, 3, 3)))
    if count == 0:
        return None
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    if sizes.max() < min_voxels:
        return None
    mask = components == np.argmax(sizes)
    near = ndimage.binary_dilation(mask, iterations=2) & (free | mask)
    soft = np.clip(0.5 + depth_mm / _EDGE_WIDTH_MM, 0.0, 1.0) * near
    return Carving(box=box, mask=mask, soft=soft.astype(np.float32))


def commit(carving: Carving, labels: np.ndarray, fraction: np.ndarray, lesion_id: int,
           intensity: float) -> None:
    """Write a carving as lesion ``lesion_id``; ``fraction`` keeps the highest soft value."""
    labels[carving.box][carving.mask] = lesion_id
    np.maximum(fraction[carving.box], carving.soft * intensity, out=fraction[carving.box])
