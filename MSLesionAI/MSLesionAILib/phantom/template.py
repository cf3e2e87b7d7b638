"""The anatomy every phantom case starts from: the MNI ICBM152 2009 template shipped by nilearn.

nilearn gives the T1 template and grey/white-matter probability maps (1 mm, offline). From them
we derive soft maps of CSF, ventricles, deep grey matter and the infratentorial region, so that a
case can resample them all at once through its own deformation. Ventricles are the CSF
components deep inside the brain; deep grey matter and the infratentorial region (brainstem and
cerebellum) are cut out by MNI coordinates, which is coarse but anatomically faithful at the
scale lesions are placed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

# Order of the components of `TemplateAnatomy.maps`.
MAP_NAMES = ("csf", "gm", "wm", "ventricles", "deep_gm", "infratentorial")

_VENTRICLE_MIN_DEPTH_MM = 12.0
_VENTRICLE_MIN_VOXELS = 300
_DEEP_GM_MIN_DEPTH_MM = 16.0
_BOUNDARY_WIDTH_MM = 2.0
_CACHE_NAME = "phantom_template_v1.npz"


@dataclass(frozen=True)
class TemplateAnatomy:
    """Soft tissue maps on the template grid (LPS geometry), by name (`MAP_NAMES`)."""

    maps: dict[str, sitk.Image]
    brain_centre_lps: np.ndarray
    brain_extent_lps: np.ndarray  # (2, 3): lowest and highest LPS corner of the brain
    ventricle_centre_lps: np.ndarray
    brain_surface_lps: np.ndarray  # (n, 3): points of the brain's outer surface


@lru_cache(maxsize=1)
def template_anatomy() -> TemplateAnatomy:
    """The template anatomy: derived once per machine (about 5 s; cached under
    ``~/.cache/mslesionai``, regenerated when missing), loaded once per process.

    The maps are rounded to float16 whichever way they come, so a case is the same with or
    without the cache file.
    """
    cached = _load_cache()
    soft, affine = cached if cached is not None else _save_cache(*_derive())
    soft = {name: voxels.astype(np.float32) for name, voxels in soft.items()}
    maps = {name: _template_image(soft[name], affine) for name in MAP_NAMES}
    brain = soft["csf"] + soft["gm"] + soft["wm"] > 0.5
    brain_lps = _lps_points(affine, np.argwhere(brain))
    surface = brain & ~ndimage.binary_erosion(brain)
    ventricle_lps = _lps_points(affine, np.argwhere(soft["ventricles"] > 0.5))
    return TemplateAnatomy(maps=maps,
                           brain_centre_lps=(brain_lps.min(0) + brain_lps.max(0)) / 2,
                           brain_extent_lps=np.stack([brain_lps.min(0), brain_lps.max(0)]),
                           ventricle_centre_lps=ventricle_lps.mean(0),
                           brain_surface_lps=_lps_points(affine, np.argwhere(surface)[::7]))


def cache_path() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "mslesionai" / _CACHE_NAME


def _load_cache() -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    try:
        with np.load(cache_path()) as stored:
            return {name: stored[name] for name in MAP_NAMES}, stored["affine"]
    except (OSError, KeyError, ValueError):
        return None


def _save_cache(soft: dict[str, np.ndarray],
                affine: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Round to float16 and store (atomically: parallel processes may race); a read-only home
    only costs the next process the derivation again."""
    soft = {name: voxels.astype(np.float16) for name, voxels in soft.items()}
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.npz")
        np.savez_compressed(partial, affine=affine, **soft)
        partial.replace(path)
    except OSError:
        pass
    return soft, affine


def _derive() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Soft maps (numpy z, y, x) from nilearn's template files, and their RAS affine."""
    from nilearn import datasets

    images = {"gm": datasets.load_mni152_gm_template(resolution=1),
              "wm": datasets.load_mni152_wm_template(resolution=1),
              "brain": datasets.load_mni152_brain_mask(resolution=1)}
    affine = images["brain"].affine
    arrays = {name: np.asarray(image.get_fdata(), dtype=np.float32).transpose(2, 1, 0)
              for name, image in images.items()}  # numpy (z, y, x) = RAS (S, A, R)
    brain = arrays["brain"] > 0.5
    gm, wm = arrays["gm"] * brain, arrays["wm"] * brain
    csf = np.clip(brain - gm - wm, 0.0, 1.0)
    ras_zyx = _ras_coordinates(affine, brain.shape)
    depth_mm = ndimage.distance_transform_edt(brain)
    return {"csf": csf, "gm": gm, "wm": wm,
            "ventricles": _ventricles(csf, gm, wm, depth_mm, ras_zyx),
            "deep_gm": _deep_gm(gm, wm, csf, depth_mm, ras_zyx),
            "infratentorial": _infratentorial(ras_zyx) * brain}, affine


def _ras_coordinates(affine: np.ndarray, shape_zyx: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Broadcastable R, A, S coordinate arrays (mm) of the template's axis-aligned grid."""
    k, j, i = (np.arange(n, dtype=np.float32) for n in shape_zyx)
    r = affine[0, 0] * i + affine[0, 3]
    a = affine[1, 1] * j + affine[1, 3]
    s = affine[2, 2] * k + affine[2, 3]
    return r[None, None, :], a[None, :, None], s[:, None, None]


def _lps_points(affine: np.ndarray, index_zyx: np.ndarray) -> np.ndarray:
    ras = index_zyx[:, ::-1] @ affine[:3, :3].T + affine[:3, 3]
    return ras * np.array([-1.0, -1.0, 1.0])


def _template_image(voxels_zyx: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """A SimpleITK image in LPS of a (z, y, x) array of the RAS-aligned nilearn grid."""
    image = sitk.GetImageFromArray(voxels_zyx.astype(np.float32))
    image.SetOrigin((-affine[0, 3], -affine[1, 3], affine[2, 3]))
    image.SetDirection((-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0))
    return image


def _sigmoid(distance_mm: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-distance_mm / _BOUNDARY_WIDTH_MM * 4.0))


def _ventricles(csf: np.ndarray, gm: np.ndarray, wm: np.ndarray, depth_mm: np.ndarray,
                ras: tuple[np.ndarray, ...]) -> np.ndarray:
    """Weight (0..1) of CSF that is ventricular: large CSF components deep in the brain.

    The search is limited to a central MNI box without the interhemispheric fissure (midline
    CSF above the third ventricle and in front of it), which is deep but not ventricular.
    """
    r, a, s = ras
    box = (np.abs(r) < 32) & (a > -48) & (a < 35) & (s > -18) & (s < 32)
    fissure = (np.abs(r) < 2.5) & ((s > 16) | (a > 8))
    csf_dominant = (csf > np.maximum(gm, wm)) & (csf > 0.3) & box & ~fissure
    seeds = csf_dominant & (depth_mm > _VENTRICLE_MIN_DEPTH_MM)
    components, count = ndimage.label(seeds)
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    keep = np.flatnonzero(sizes >= _VENTRICLE_MIN_VOXELS)
    keep = keep[keep > 0]
    core = np.isin(components, keep)
    # Grow back to the walls, staying within CSF and away from the brain surface.
    grown = ndimage.binary_propagation(core, mask=csf_dominant & (depth_mm > 6.0))
    return ndimage.gaussian_filter(grown.astype(np.float32), 0.7)


def _deep_gm(gm: np.ndarray, wm: np.ndarray, csf: np.ndarray, depth_mm: np.ndarray,
             ras: tuple[np.ndarray, ...]) -> np.ndarray:
    """Weight (0..1) of grey matter that is deep (thalamus, basal ganglia), by MNI box."""
    r, a, s = ras
    box = (_sigmoid(32.0 - np.abs(r)) * _sigmoid(a + 35.0) * _sigmoid(28.0 - a)
           * _sigmoid(s + 12.0) * _sigmoid(24.0 - s))
    deep = _sigmoid(depth_mm - _DEEP_GM_MIN_DEPTH_MM)
    return (box * deep).astype(np.float32)


def _infratentorial(ras: tuple[np.ndarray, ...]) -> np.ndarray:
    """Weight (0..1) of brainstem and cerebellum: below the tentorium, by MNI coordinates."""
    r, a, s = ras
    # The tentorium is a tent: highest at the midline, sloping down laterally and backwards.
    tentorium_s = -4.0 + 0.3 * np.minimum(a + 40.0, 0.0) - 0.3 * np.abs(r)
    cerebellum = _sigmoid(-40.0 - a) * _sigmoid(tentorium_s - s)
    brainstem = _sigmoid(14.0 - np.abs(r)) * _sigmoid(-10.0 - a) * _sigmoid(-6.0 - s)
    return np.maximum(cerebellum, brainstem).astype(np.float32)
