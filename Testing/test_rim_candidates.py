"""Rim candidates: 6-connectivity, the 12.3 µL exclusion, watershed splitting, large lesions."""

from __future__ import annotations

import numpy as np

from MSLesionAILib.rim_candidates import LARGE_VOLUME_UL, find_candidates


def _ball(shape: tuple[int, int, int], centre_zyx: tuple[float, float, float], radius_mm: float,
          spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    grid = np.indices(shape).astype(float)
    offsets = [(g - c) * s for g, c, s in zip(grid, centre_zyx, spacing_mm, strict=True)]
    return sum(o**2 for o in offsets) <= radius_mm**2


def test_diagonal_neighbours_are_separate_candidates() -> None:
    mask = np.zeros((12, 12, 12), np.uint8)
    mask[2:5, 2:5, 2:5] = 1
    mask[5:8, 5:8, 5:8] = 1  # touches the first cube at one corner only
    candidates = find_candidates(mask, (1.0, 1.0, 1.0), min_volume_ul=1.0)
    assert candidates.count == 2 and candidates.split_from == {}


def test_lesions_under_12_3_ul_are_excluded_and_counted() -> None:
    mask = np.zeros((20, 20, 20), np.uint8)
    mask[2:4, 2:4, 2:5] = 1     # 12 voxels of 1 µL: too small
    mask[10:12, 10:12, 10:14] = 1  # 16 voxels: kept
    candidates = find_candidates(mask, (1.0, 1.0, 1.0))
    assert candidates.count == 1 and candidates.too_small == 1
    # With 0.5 mm slices the second lesion is only 8 µL: both are too small.
    assert find_candidates(mask, (0.5, 1.0, 1.0)).too_small == 2


def test_two_touching_spheres_are_split_and_recorded() -> None:
    spacing = (1.2, 0.8, 0.8)
    mask = (_ball((30, 40, 60), (15, 20, 20), 5.0, spacing)
            | _ball((30, 40, 60), (15, 20, 30), 5.0, spacing)).astype(np.uint8)
    mask |= _ball((30, 40, 60), (15, 20, 50), 4.0, spacing)  # a single, separate lesion
    candidates = find_candidates(mask, spacing)
    assert candidates.count == 3
    parts = sorted(candidates.split_from)
    assert len(parts) == 2 and len(set(candidates.split_from.values())) == 1
    left, right = (np.argwhere(candidates.lesion_ids == p)[:, 2].mean() for p in parts)
    assert abs(abs(left - right) - 10) < 1.5  # one part per sphere
    single = set(range(1, 4)) - set(parts)
    assert np.argwhere(candidates.lesion_ids == single.pop())[:, 2].mean() > 45


def test_one_sphere_and_a_labelmap_are_not_split_but_kept_apart() -> None:
    sphere = _ball((30, 30, 30), (15, 15, 15), 7.0).astype(np.uint8)
    assert find_candidates(sphere, (1.0, 1.0, 1.0)).count == 1
    labelmap = sphere.copy()
    labelmap[:, :, 15:] *= 2  # two touching labels of a labelmap stay two lesions
    candidates = find_candidates(labelmap, (1.0, 1.0, 1.0), split=False)
    assert candidates.count == 2


def test_very_large_lesions_are_flagged() -> None:
    radius_mm = (3 * LARGE_VOLUME_UL / (4 * np.pi)) ** (1 / 3) + 1.5
    mask = _ball((40, 40, 40), (20, 20, 20), radius_mm).astype(np.uint8)
    assert find_candidates(mask, (1.0, 1.0, 1.0)).large == [1]
