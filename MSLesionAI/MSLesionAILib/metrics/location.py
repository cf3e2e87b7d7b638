"""How often a found lesion's location (periventricular, juxtacortical, infratentorial, deep)
is its true lesion's, where the truth types its lesions (the phantom does)."""

from __future__ import annotations

import numpy as np


def location_agreement(pred_ids: np.ndarray, truth_ids: np.ndarray,
                       pred_locations: dict[int, str],
                       truth_locations: dict[int, str]) -> tuple[int, int]:
    """(agreeing, matched): each predicted lesion is matched to the typed truth lesion it
    overlaps most, by voxels; it agrees when its location is that lesion's type."""
    both = (pred_ids > 0) & (truth_ids > 0)
    pairs, counts = np.unique(np.stack([pred_ids[both], truth_ids[both]]), axis=1,
                              return_counts=True)
    best: dict[int, tuple[int, int]] = {}
    for (pred_id, truth_id), count in zip(pairs.T.tolist(), counts.tolist(), strict=True):
        if truth_id in truth_locations and count > best.get(pred_id, (0, 0))[1]:
            best[pred_id] = (truth_id, count)
    agreeing = sum(pred_locations.get(pred_id) == truth_locations[truth_id]
                   for pred_id, (truth_id, _) in best.items())
    return agreeing, len(best)
