"""Does the phase look like the sign convention it was declared in?

White-matter lesions have lost myelin, which is diamagnetic, and many hold iron or a vein:
most are paramagnetic against the white matter around them, and rims are paramagnetic by
definition. Read with the declared sign, most candidate lesions should therefore be more
paramagnetic than a shell around them. When significantly fewer than half are, the sign was
probably declared wrong: the pipeline warns, and changes nothing (a guess could be
confidently wrong on unusual data).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, stats

from .labels import PARAMAGNETIC_PHASE

MIN_LESIONS = 8
SIGNIFICANCE = 0.05
NEAR_VOXELS, SHELL_VOXELS = 1, 4  # the lesion and 1 voxel around it, against 2-4 voxels out
APPEARANCE = {"positive": "bright", "negative": "dark"}  # of veins and rims, by convention


def lesion_contrasts(phase: np.ndarray, lesion_ids: np.ndarray, brain: np.ndarray) -> list[float]:
    """Per lesion: mean phase over the lesion and one voxel around it, minus the mean over a
    shell further out (brain, no lesion); lesions with too small a shell are left out."""
    contrasts = []
    for lesion_id, box in enumerate(ndimage.find_objects(lesion_ids), start=1):
        if box is None:
            continue
        padded = tuple(slice(max(s.start - SHELL_VOXELS - 1, 0), s.stop + SHELL_VOXELS + 1)
                       for s in box)
        lesion = lesion_ids[padded] == lesion_id
        near = ndimage.binary_dilation(lesion, iterations=NEAR_VOXELS)
        shell = (ndimage.binary_dilation(lesion, iterations=SHELL_VOXELS) & ~near
                 & brain[padded] & (lesion_ids[padded] == 0))
        if shell.sum() >= 10:
            values = phase[padded]
            contrasts.append(float(values[near].mean() - values[shell].mean()))
    return contrasts


def sign_warning(phase: np.ndarray, lesion_ids: np.ndarray, brain: np.ndarray,
                 declared: str) -> list[str]:
    """A warning when significantly fewer than half of the lesions (one-sided sign test, at
    least `MIN_LESIONS`) are paramagnetic against their surroundings on ``phase`` (as given,
    paramagnetic ``declared``: positive or negative)."""
    paramagnetic_positive = phase if declared == "positive" else -phase
    contrasts = lesion_contrasts(paramagnetic_positive, lesion_ids, brain)
    if len(contrasts) < MIN_LESIONS:
        return []
    brighter = sum(c > 0 for c in contrasts)
    if stats.binomtest(brighter, len(contrasts), 0.5, alternative="less").pvalue >= SIGNIFICANCE:
        return []
    other = PARAMAGNETIC_PHASE[1 - PARAMAGNETIC_PHASE.index(declared)]
    return [f"phase: only {brighter} of {len(contrasts)} lesions are paramagnetic against their "
            f"surroundings with paramagnetic {declared} (most lesions are): is the phase sign "
            f"declared right? If veins and rims are {APPEARANCE[other]} on it, run again with "
            f"--paramagnetic-phase {other}"]
