"""A case's own anatomy: the template's soft maps seen through the case's transform, with a
thinner cortex when the case is atrophic, and the hard tissue labels (`labels.Tissue`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..labels import Tissue
from .grid import CaseGeometry
from .template import TemplateAnatomy


@dataclass
class CaseAnatomy:
    """Tissue fractions (0..1, numpy z, y, x) on the case grid and the labels derived from them.

    ``fractions``: csf, gm, wm, deep_gm (share of gm that is deep), ventricles (share of csf
    that is ventricular), infratentorial (weight).
    """

    grid: sitk.Image
    fractions: dict[str, np.ndarray]
    tissue: np.ndarray

    @property
    def spacing_zyx_mm(self) -> tuple[float, float, float]:
        return tuple(self.grid.GetSpacing()[::-1])

    @property
    def brain(self) -> np.ndarray:
        return self.tissue != Tissue.BACKGROUND

    @cached_property
    def ventricle_distance_mm(self) -> np.ndarray:
        return self._distance_to(self.tissue == Tissue.VENTRICLES)

    @cached_property
    def cortex_distance_mm(self) -> np.ndarray:
        return self._distance_to(self.tissue == Tissue.CORTICAL_GM)

    def _distance_to(self, mask: np.ndarray) -> np.ndarray:
        """Distance (mm, between voxel centres) to the nearest voxel of ``mask``; 0 inside."""
        if not mask.any():
            return np.full(mask.shape, np.inf, dtype=np.float32)
        image = sitk.GetImageFromArray(mask.astype(np.uint8))
        image.SetSpacing(self.grid.GetSpacing())
        distance = sitk.SignedMaurerDistanceMap(image, insideIsPositive=False,
                                                squaredDistance=False, useImageSpacing=True)
        return np.clip(sitk.GetArrayFromImage(distance), 0.0, None).astype(np.float32)


def case_anatomy(geometry: CaseGeometry, template: TemplateAnatomy, cortical_thinning: float,
                 sharpness: float) -> CaseAnatomy:
    """Resample the template maps through the case's transform, sharpen the tissue borders
    (``sharpness`` ≥ 1; the template is an average of 152 brains, blurrier than one brain),
    thin the cortex, label."""
    fractions = {name: sitk.GetArrayFromImage(sitk.Resample(
        image, geometry.grid, geometry.to_template, sitk.sitkLinear, 0.0, sitk.sitkFloat32))
        for name, image in template.maps.items()}
    _sharpen(fractions, sharpness)
    _thin_cortex(fractions, cortical_thinning, geometry.grid.GetSpacing())
    return CaseAnatomy(grid=geometry.grid, fractions=fractions, tissue=tissue_labels(fractions))


def _sharpen(fractions: dict[str, np.ndarray], power: float) -> None:
    """Raise the CSF/GM/WM fractions to a power and rescale to the same total: less partial
    volume at the borders, the same brain."""
    names = ("csf", "gm", "wm")
    total = sum(fractions[n] for n in names)
    powered = {n: fractions[n] ** power for n in names}
    scale = total / np.maximum(sum(powered.values()), 1e-6)
    for name in names:
        fractions[name] = (powered[name] * scale).astype(np.float32)


def _thin_cortex(fractions: dict[str, np.ndarray], thinning: float,
                 spacing_mm: tuple[float, ...]) -> None:
    """Turn the outer (pial) part of the cortical ribbon into CSF, as cortical atrophy does."""
    if thinning <= 0:
        return
    sigma_voxels = [1.2 / s for s in spacing_mm[::-1]]
    near_csf = np.clip(3.0 * ndimage.gaussian_filter(fractions["csf"], sigma_voxels), 0.0, 1.0)
    cortical = 1.0 - fractions["deep_gm"] * (1.0 - fractions["infratentorial"])
    loss = thinning * fractions["gm"] * near_csf * cortical
    fractions["gm"] -= loss
    fractions["csf"] += loss


def tissue_labels(fractions: dict[str, np.ndarray]) -> np.ndarray:
    """The dominant tissue of each voxel; background where tissue covers under half a voxel."""
    csf, gm, wm = fractions["csf"], fractions["gm"], fractions["wm"]
    infra = fractions["infratentorial"] > 0.5
    deep = fractions["deep_gm"] > 0.5
    ventricular = fractions["ventricles"] > 0.5
    dominant = np.argmax(np.stack([csf, gm, wm]), axis=0)
    tissue = np.choose(dominant, [Tissue.CSF, Tissue.CORTICAL_GM, Tissue.WHITE_MATTER]).astype(
        np.uint8)
    tissue[(dominant == 0) & ventricular] = Tissue.VENTRICLES
    tissue[(dominant == 1) & deep] = Tissue.DEEP_GM
    tissue[(dominant > 0) & infra] = Tissue.INFRATENTORIAL
    tissue[csf + gm + wm < 0.5] = Tissue.BACKGROUND
    return tissue
