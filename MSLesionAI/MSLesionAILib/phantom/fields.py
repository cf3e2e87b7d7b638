"""Random smooth fields: the raw material of deformations, bias fields, textures and artefacts."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

_FILTER_BELOW_VOXELS = 4.0


def smooth_noise(shape_zyx: tuple[int, ...], correlation_voxels: np.ndarray | float,
                 rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance noise that varies over about ``correlation_voxels`` voxels.

    Short correlations: white noise through a Gaussian filter. Long ones: a coarse lattice
    interpolated up one axis at a time (three small matrix products), so the cost does not grow
    with the correlation length.
    """
    correlation = np.broadcast_to(np.asarray(correlation_voxels, dtype=float), (3,))
    if correlation.max() < _FILTER_BELOW_VOXELS:
        white = rng.standard_normal(shape_zyx, dtype=np.float32)
        field = ndimage.gaussian_filter(white, correlation / 2.0)
    else:
        coarse_shape = [int(np.ceil(n / max(c, 1.0))) + 2
                        for n, c in zip(shape_zyx, correlation, strict=True)]
        field = rng.standard_normal(coarse_shape).astype(np.float32)
        for axis, n in enumerate(shape_zyx):
            weights = _linear_interpolation(coarse_shape[axis], n)
            field = np.moveaxis(np.tensordot(weights, field, axes=([1], [axis])), 0, axis)
    return ((field - field.mean()) / (field.std() + 1e-6)).astype(np.float32)


def _linear_interpolation(coarse: int, fine: int) -> np.ndarray:
    """The (fine x coarse) matrix interpolating a coarse lattice spanning the fine samples."""
    positions = np.linspace(0.5, coarse - 1.5, fine)
    low = np.floor(positions).astype(int)
    weight_high = (positions - low).astype(np.float32)
    matrix = np.zeros((fine, coarse), np.float32)
    matrix[np.arange(fine), low] = 1.0 - weight_high
    matrix[np.arange(fine), low + 1] = weight_high
    return matrix


def bias_field(shape_zyx: tuple[int, ...], spacing_zyx_mm: np.ndarray, strength: float,
               correlation_mm: float, rng: np.random.Generator) -> np.ndarray:
    """A receive coil's multiplicative shading: exp(``strength`` · unit smooth noise varying
    over ``correlation_mm``)."""
    return np.exp(strength * smooth_noise(shape_zyx, correlation_mm / spacing_zyx_mm, rng))
