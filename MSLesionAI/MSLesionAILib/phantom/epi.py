"""A T2*-weighted segmented EPI, the third contrast CLAIMS reads beside MP2RAGE and T2* GRE.

The same tissue T2* as the GRE, seen at a shorter echo time (CLAIMS: 23 ms against the GRE's
echoes of 11–56 ms, averaged), so with flatter contrast: if the GRE's signal is
exp(−TE_gre · R2*), the EPI's is that to the power TE_epi / TE_gre. Off-resonance displaces the
signal along the phase-encoding axis (the image's second axis, anterior–posterior in an axial
acquisition) by a smooth field, piling it up where the displacement compresses the image and
thinning it where it stretches. Then the usual scanner: bias, blur, misregistration, noise.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import artefacts
from .anatomy import CaseAnatomy
from .fields import smooth_noise

PHASE_ENCODING_AXIS = 1     # numpy (z, y, x) order: the image's second axis
DISTORTION_SCALE_MM = 30.0  # off-resonance varies over about this distance
EXTRA_BLUR_VOXELS = 0.3     # T2* decay along the echo train widens the point spread


def render_epi(t2star_ideal: np.ndarray, anatomy: CaseAnatomy, brain: np.ndarray,
               skull_stripped: bool, rng: np.random.Generator,
               mode: str) -> tuple[np.ndarray, dict]:
    """The stored EPI (int16, on the case's grid) from the GRE's ideal image; its parameters."""
    realistic = mode == "realistic"
    echo_ratio = float(rng.uniform(0.55, 0.8) if realistic else rng.uniform(0.4, 1.0))
    shift_sd_mm = float(rng.uniform(0.3, 1.5) if realistic else rng.uniform(0.0, 2.5))
    image = np.power(np.clip(t2star_ideal, 0.0, None), echo_ratio).astype(np.float32)
    image = distort(image, anatomy.spacing_zyx_mm, shift_sd_mm, rng)
    scanner = artefacts.draw_scanner(rng, mode)
    scanner["blur_voxels"] += EXTRA_BLUR_VOXELS
    scanner.update(echo_time_ratio=echo_ratio, distortion_sd_mm=shift_sd_mm,
                   phase_encoding_axis="second image axis")
    voxels = artefacts.bias_and_blur(image, anatomy, scanner, rng)
    voxels = artefacts.misregister(voxels, anatomy.grid, scanner, rng)
    return artefacts.store(voxels, brain, scanner, skull_stripped, rng), scanner


def distort(image: np.ndarray, spacing_zyx_mm: tuple[float, ...], shift_sd_mm: float,
            rng: np.random.Generator) -> np.ndarray:
    """``image`` displaced along `PHASE_ENCODING_AXIS` by a smooth field of standard deviation
    ``shift_sd_mm``, its intensity scaled by the stretch (signal conservation: what is squeezed
    into fewer voxels is brighter)."""
    spacing = np.asarray(spacing_zyx_mm, dtype=float)
    shift_voxels = (shift_sd_mm / spacing[PHASE_ENCODING_AXIS]
                    * smooth_noise(image.shape, DISTORTION_SCALE_MM / spacing, rng))
    coordinates = np.indices(image.shape, dtype=np.float32)
    coordinates[PHASE_ENCODING_AXIS] += shift_voxels
    stretch = 1.0 + np.gradient(shift_voxels, axis=PHASE_ENCODING_AXIS)
    moved = ndimage.map_coordinates(image, coordinates, order=1, mode="nearest")
    return (moved * np.clip(stretch, 0.3, 3.0)).astype(np.float32)
