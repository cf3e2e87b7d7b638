"""Unwrapped, background-removed phase from a susceptibility map, as a scanner would give it.

Convention: paramagnetic (iron, deoxyhaemoglobin) is positive, so rims and veins are bright.
The phase mixes two models, with a weight drawn per case: the local one (phase follows the
high-pass filtered susceptibility, as homodyne-filtered clinical phase roughly does) and the
physical one (the field is the susceptibility convolved with the unit dipole along B0, in
k-space 1/3 − kz²/k², so a round rim shows a dipolar pattern: its sign changes between the
poles and the equator). To it we add what background-field removal leaves behind (a smooth
residue) and noise that grows where the magnitude is low.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import fft, ndimage

from .fields import smooth_noise

B0_LPS = np.array([0.0, 0.0, 1.0])  # the scanner's axis: head-foot
_HIGH_PASS_MM = 4.0


def dipole_field(chi_ppm: np.ndarray, grid: sitk.Image) -> np.ndarray:
    """The relative field (ppm) of ``chi_ppm`` on ``grid``, B0 along the scanner's z axis."""
    shape = chi_ppm.shape
    padded = [fft.next_fast_len(int(n * 1.25)) for n in shape]  # room against wrap-around
    spacing_zyx = np.array(grid.GetSpacing()[::-1])
    direction = np.array(grid.GetDirection()).reshape(3, 3)
    b0_zyx = (direction.T @ B0_LPS)[::-1]  # B0 in the grid's own (z, y, x) axes
    frequencies = np.meshgrid(*[fft.fftfreq(n, d) if axis < 2 else fft.rfftfreq(n, d)
                                for axis, (n, d) in enumerate(zip(padded, spacing_zyx,
                                                                   strict=True))],
                              indexing="ij", sparse=True)
    along_b0 = sum(k * b for k, b in zip(frequencies, b0_zyx, strict=True))
    squared = sum(k * k for k in frequencies)
    with np.errstate(invalid="ignore", divide="ignore"):
        kernel = (1.0 / 3.0 - along_b0**2 / squared).astype(np.float32)
    kernel[0, 0, 0] = 0.0
    spectrum = fft.rfftn(chi_ppm, s=padded, workers=-1)
    field = fft.irfftn(spectrum * kernel, s=padded, workers=-1)
    return field[tuple(slice(0, n) for n in shape)].astype(np.float32)


def phase_image(chi_ppm: np.ndarray, magnitude: np.ndarray, brain: np.ndarray,
                grid: sitk.Image, rng: np.random.Generator, mode: str) -> tuple[np.ndarray,
                                                                                 dict]:
    """Phase in radians inside the brain (0 outside), and the parameters drawn."""
    radians_per_ppm = rng.uniform(8.0, 16.0)  # γ·B0·TE: field strength and echo time
    local_weight = rng.uniform(0.5, 1.0) if mode == "realistic" else rng.uniform(0.3, 1.0)
    residue_rad = rng.uniform(0.02, 0.25) if mode == "realistic" else rng.uniform(0.0, 0.5)
    noise_rad = rng.uniform(0.02, 0.08) if mode == "realistic" else rng.uniform(0.01, 0.15)
    spacing = np.array(grid.GetSpacing()[::-1])
    residue = residue_rad * smooth_noise(chi_ppm.shape, rng.uniform(20.0, 50.0) / spacing, rng)
    local = chi_ppm - ndimage.gaussian_filter(chi_ppm, _HIGH_PASS_MM / spacing)
    field = local_weight * local + (1.0 - local_weight) * dipole_field(chi_ppm, grid)
    phase = radians_per_ppm * field + residue
    phase += noise_rad / np.clip(magnitude, 0.2, None) * rng.standard_normal(
        chi_ppm.shape, dtype=np.float32)
    return (phase * brain).astype(np.float32), {
        "radians_per_ppm": radians_per_ppm, "local_weight": local_weight,
        "background_residue_rad": residue_rad,
        "noise_rad": noise_rad}
