"""Tissue contrast: what each tissue and lesion looks like on each magnitude contrast.

Realistic mode draws each case's values around literature-like ratios (white matter = 1),
with case-to-case spread as between scanners and protocols; domain-randomised mode draws every
value at random (SynthSeg's idea), so that a model has to learn shape and context, not grey
levels. Values mix by tissue fraction, which gives partial volume for free.
"""

from __future__ import annotations

import numpy as np

from .anatomy import CaseAnatomy
from .fields import smooth_noise

MAGNITUDE_CONTRASTS = ("flair", "t1", "t2", "mp2rage", "t2star")
TISSUES = ("csf", "gm", "deep_gm", "wm", "wm_lesion", "cortical_lesion", "vein", "dawm")

# Realistic values relative to white matter: (low, high) of a uniform draw per case. The
# cortical-lesion entry is relative to grey matter. On 7 T MP2RAGE it follows from T1: cortex
# ~1.9-2.0 s, cortical lesions 0.2-0.45 s longer, and the uniform image falls by about 0.3 of
# grey matter's value per second of T1 there, hence 10-25 % darker than cortex (phantom.6 had
# 5-15 %, times a lower severity: most lesions were below the noise and the cortex's texture,
# which no rater would have drawn). "dawm" is the relative change of "dirty-appearing" white
# matter: diffuse, ill-defined, not a lesion.
_REALISTIC = {
    "flair": {"csf": (0.08, 0.2), "gm": (1.12, 1.3), "deep_gm": (0.95, 1.15), "wm": (1.0, 1.0),
              "wm_lesion": (1.35, 1.9), "cortical_lesion": (1.05, 1.15), "vein": (0.9, 1.0),
              "dawm": (0.08, 0.3)},
    "t1": {"csf": (0.18, 0.35), "gm": (0.55, 0.7), "deep_gm": (0.7, 0.85), "wm": (1.0, 1.0),
           "wm_lesion": (0.5, 0.85), "cortical_lesion": (0.9, 0.97), "vein": (0.8, 1.0),
           "dawm": (-0.12, -0.03)},
    "t2": {"csf": (2.5, 3.6), "gm": (1.25, 1.45), "deep_gm": (0.95, 1.2), "wm": (1.0, 1.0),
           "wm_lesion": (1.6, 2.4), "cortical_lesion": (1.05, 1.15), "vein": (0.7, 0.9),
           "dawm": (0.08, 0.3)},
    "mp2rage": {"csf": (0.05, 0.15), "gm": (0.6, 0.75), "deep_gm": (0.75, 0.88),
                "wm": (1.0, 1.0), "wm_lesion": (0.55, 0.8), "cortical_lesion": (0.75, 0.9),
                "vein": (0.85, 1.0), "dawm": (-0.12, -0.03)},
    "t2star": {"csf": (1.3, 1.8), "gm": (1.1, 1.3), "deep_gm": (0.75, 0.95), "wm": (1.0, 1.0),
               "wm_lesion": (1.15, 1.45), "cortical_lesion": (1.05, 1.2), "vein": (0.3, 0.55),
               "dawm": (0.03, 0.1)},
}
_MIN_RANDOM_LESION_CONTRAST = 0.12


def draw_tissue_values(rng: np.random.Generator, mode: str,
                       contrasts: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Per contrast, per tissue: the value of a voxel full of that tissue (white matter ~ 1)."""
    values = {}
    for contrast in MAGNITUDE_CONTRASTS:  # all drawn, so a case's draws do not depend on kind
        if mode == "realistic":
            drawn = {t: rng.uniform(*_REALISTIC[contrast][t]) for t in TISSUES}
            drawn["cortical_lesion"] *= drawn["gm"]
        else:
            drawn = _randomised_values(rng)
        if contrast in contrasts:
            values[contrast] = {t: round(float(v), 4) for t, v in drawn.items()}
    return values


def _randomised_values(rng: np.random.Generator) -> dict[str, float]:
    drawn = {t: rng.uniform(0.05, 1.0) for t in TISSUES}
    drawn["dawm"] = rng.uniform(-0.3, 0.3)
    for lesion, tissue in (("wm_lesion", "wm"), ("cortical_lesion", "gm")):
        if abs(drawn[lesion] - drawn[tissue]) < _MIN_RANDOM_LESION_CONTRAST:
            drawn[lesion] = drawn[tissue] + rng.choice([-1, 1]) * rng.uniform(
                _MIN_RANDOM_LESION_CONTRAST, 0.4)
    return drawn


def synthesize(anatomy: CaseAnatomy, values: dict[str, float], wm_lesion_fraction: np.ndarray,
               cortical_lesion_fraction: np.ndarray, vein_fraction: np.ndarray,
               texture: np.ndarray, dawm: np.ndarray) -> np.ndarray:
    """The noise-free image: tissues mixed by fraction, then lesions and veins mixed in.

    ``texture`` (about 1) is the case's fine tissue heterogeneity and ``dawm`` (0..1) its
    dirty-appearing white matter, both shared by all contrasts.
    """
    f = anatomy.fractions
    deep = f["deep_gm"] * (1.0 - f["infratentorial"])
    image = (f["csf"] * values["csf"] + f["gm"] * (1.0 - deep) * values["gm"]
             + f["gm"] * deep * values["deep_gm"]
             + f["wm"] * values["wm"] * (1.0 + values["dawm"] * dawm))
    tissue_total = f["csf"] + f["gm"] + f["wm"]
    image = _whole_voxel(image, wm_lesion_fraction, values["wm_lesion"], tissue_total)
    image = _cortical_lesion(image, cortical_lesion_fraction, values, f)
    image = _whole_voxel(image, vein_fraction, values["vein"], tissue_total)
    return (image * texture).astype(np.float32)


def _whole_voxel(image: np.ndarray, fraction: np.ndarray, value: float,
                 tissue_total: np.ndarray) -> np.ndarray:
    """A white-matter lesion or a vein takes ``fraction`` of the whole voxel (under 2 % of a
    white-matter lesion's signal is CSF)."""
    return image * (1.0 - fraction) + fraction * value * tissue_total


def _cortical_lesion(image: np.ndarray, fraction: np.ndarray, values: dict[str, float],
                     f: dict[str, np.ndarray]) -> np.ndarray:
    """A cortical lesion takes ``fraction`` of the voxel's grey and white matter; its CSF stays
    CSF. Most voxels of a thin cortex are partly CSF, and CSF differs from a cortical lesion
    far more than grey matter does: a lesion painted over it too (phantom.5 and before)
    brightened subpial voxels on MP2RAGE and cancelled intracortical lesions' own contrast."""
    csf_signal = f["csf"] * values["csf"]
    parenchyma = f["gm"] + f["wm"]
    return image + fraction * (values["cortical_lesion"] * parenchyma - (image - csf_signal))


def draw_dawm(anatomy: CaseAnatomy, rng: np.random.Generator, mode: str) -> np.ndarray:
    """Patches (0..1) of dirty-appearing white matter: smooth, ill-bounded, case-dependent."""
    extent = rng.uniform(0.6, 1.8) if mode == "realistic" else rng.uniform(0.3, 2.5)
    field = smooth_noise(anatomy.tissue.shape, rng.uniform(6.0, 14.0) / np.array(
        anatomy.spacing_zyx_mm), rng)
    return np.clip(field - extent, 0.0, 1.0)


def draw_texture(anatomy: CaseAnatomy, rng: np.random.Generator) -> np.ndarray:
    """Fine multiplicative heterogeneity of tissue (a few per cent, over ~2 mm)."""
    strength = rng.uniform(0.015, 0.05)
    return 1.0 + strength * smooth_noise(anatomy.tissue.shape,
                                         2.0 / np.array(anatomy.spacing_zyx_mm), rng)
