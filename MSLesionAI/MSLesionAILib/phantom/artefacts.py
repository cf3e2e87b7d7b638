"""What a scanner adds to the ideal image: FLAIR's own artefacts, blur (resolution), bias
field, small misregistration between contrasts, Rician noise, a site's scaling and offset,
skull stripping, and integer storage.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial.transform import Rotation

from ..labels import Tissue
from .anatomy import CaseAnatomy
from .fields import bias_field, smooth_noise


def draw_scanner(rng: np.random.Generator, mode: str) -> dict:
    """One contrast's acquisition parameters."""
    realistic = mode == "realistic"
    return {
        "blur_voxels": float(rng.uniform(0.3, 0.7) if realistic else rng.uniform(0.2, 1.2)),
        "bias_strength": float(rng.uniform(0.03, 0.2) if realistic else rng.uniform(0.0, 0.4)),
        "bias_scale_mm": float(rng.uniform(50.0, 120.0)),
        "noise_fraction": float(rng.uniform(0.02, 0.06) if realistic else rng.uniform(0.0, 0.12)),
        "wm_level": float(rng.uniform(200.0, 1500.0)),
        "offset_fraction": float(rng.uniform(0.0, 0.05) if realistic else rng.uniform(-0.1, 0.2)),
        "misregistration_mm": float(rng.uniform(0.0, 0.8)),
        "misregistration_deg": float(rng.uniform(0.0, 1.0)),
    }


def flair_artefacts(image: np.ndarray, anatomy: CaseAnatomy, rng: np.random.Generator,
                    mode: str) -> dict:
    """Bright ependyma / periventricular band and septum, and CSF flow in ventricles and
    cisterns; both fool a plain FLAIR threshold, as in real scans."""
    band_gain = rng.uniform(0.05, 0.3)
    band_width_mm = rng.uniform(1.0, 3.5)
    brain_tissue = anatomy.fractions["wm"] + anatomy.fractions["gm"]
    image += band_gain * brain_tissue * np.exp(-anatomy.ventricle_distance_mm / band_width_mm)
    flow_gain = rng.uniform(0.2, 1.2) if mode == "realistic" else rng.uniform(0.0, 1.5)
    flow = np.clip(smooth_noise(image.shape, 3.0 / np.array(anatomy.spacing_zyx_mm), rng) - 1.3,
                   0.0, None)
    csf = anatomy.fractions["csf"] * (anatomy.tissue != Tissue.BACKGROUND)
    image += flow_gain * flow * csf
    return {"ependyma_gain": band_gain, "ependyma_width_mm": band_width_mm,
            "csf_flow_gain": flow_gain}


def bias_and_blur(image: np.ndarray, anatomy: CaseAnatomy, scanner: dict,
                  rng: np.random.Generator) -> np.ndarray:
    spacing = np.array(anatomy.spacing_zyx_mm)
    bias = bias_field(image.shape, spacing, scanner["bias_strength"], scanner["bias_scale_mm"],
                      rng)
    return ndimage.gaussian_filter(image * bias, scanner["blur_voxels"]).astype(np.float32)


def misregister(image: np.ndarray, grid: sitk.Image, scanner: dict,
                rng: np.random.Generator) -> np.ndarray:
    """Move the content by a small rigid transform about the grid's centre (not the grid)."""
    transform = sitk.Euler3DTransform()
    centre_index = (np.array(grid.GetSize()) - 1) / 2.0
    transform.SetCenter(grid.TransformContinuousIndexToPhysicalPoint(centre_index.tolist()))
    angles = Rotation.random(random_state=rng).as_rotvec()
    angles *= np.deg2rad(scanner["misregistration_deg"]) / max(np.linalg.norm(angles), 1e-9)
    transform.SetRotation(*angles.tolist())
    shift = rng.normal(size=3)
    transform.SetTranslation((shift / np.linalg.norm(shift) * scanner["misregistration_mm"])
                             .tolist())
    moving = sitk.GetImageFromArray(image)
    moving.CopyInformation(grid)
    return sitk.GetArrayFromImage(sitk.Resample(moving, grid, transform, sitk.sitkLinear, 0.0,
                                                useNearestNeighborExtrapolator=True))


def rician_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the complex signal plus Gaussian noise on both channels."""
    real = image + sigma * rng.standard_normal(image.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(image.shape, dtype=np.float32)
    return np.sqrt(real * real + imaginary * imaginary)


def store(image: np.ndarray, brain: np.ndarray, scanner: dict, skull_stripped: bool,
          rng: np.random.Generator) -> np.ndarray:
    """Noise (relative to the brain's median signal), the site's scale and offset, skull
    stripping, and int16 storage."""
    sigma = scanner["noise_fraction"] * float(np.median(image[brain > 0]))
    noisy = rician_noise(image, sigma, rng)
    scaled = scanner["wm_level"] * (noisy + scanner["offset_fraction"])
    if skull_stripped:
        scaled = scaled * brain
    return np.clip(np.round(scaled), -32768, 32767).astype(np.int16)
