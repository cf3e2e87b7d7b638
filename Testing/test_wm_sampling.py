"""Where the white-matter training samples are centred: lesions, bright white matter that is
not lesion (the mimics a false positive comes from), and the rest of the brain."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from MSLesionAILib.labels import Tissue
from MSLesionAILib.training.wm_data import (
    CONTRAST_DROPOUT,
    LESION_CENTRED,
    MIMIC_CENTRED,
    SliceSampler,
    TrainingCase,
    mimic_voxels,
)


def test_mimics_are_the_brightest_non_lesion_white_matter() -> None:
    rng = np.random.default_rng(0)
    tissue = np.full((20, 20, 20), Tissue.WHITE_MATTER, np.uint8)
    tissue[:, :, :4] = Tissue.CORTICAL_GM
    flair = rng.normal(0.0, 0.1, tissue.shape)
    flair[:, :, :4] += 3.0                      # bright grey matter: not white matter
    lesion = np.zeros(tissue.shape, np.uint8)
    lesion[2:5, 10:13, 10:13] = 1
    flair[lesion > 0] += 5.0                    # the lesion itself: not a mimic
    flair[12:15, 12:15, 12:15] += 1.5           # a patch of dirty-appearing white matter
    found = {tuple(v) for v in mimic_voxels(flair, lesion, tissue)}
    dawm = {(z, y, x) for z in range(12, 15) for y in range(12, 15) for x in range(12, 15)}
    assert dawm <= found
    assert len(found) <= 0.04 * (tissue == Tissue.WHITE_MATTER).sum()
    assert all(lesion[v] == 0 and tissue[v] == Tissue.WHITE_MATTER for v in found)


def test_no_white_matter_gives_no_mimics() -> None:
    shape = (6, 6, 6)
    assert mimic_voxels(np.ones(shape), np.zeros(shape, np.uint8),
                        np.full(shape, Tissue.CSF, np.uint8)).shape == (0, 3)


def _case(mimics: bool, lesions: bool = True) -> TrainingCase:
    shape = (100, 100, 100)
    none = np.empty((0, 3), np.int64)
    return TrainingCase(np.zeros((3, *shape), np.float16), np.zeros(shape, np.uint8),
                        np.zeros(shape, np.uint8), np.array([[10, 10, 10]]) if lesions else none,
                        np.array([[90, 90, 90]]), np.array([[50, 50, 50]]) if mimics else none)


def _shares(case: TrainingCase, draws: int = 3000) -> dict[int, float]:
    sampler = SliceSampler([case], slices=5, crop=4, seed=0)   # jitter of at most 1 voxel
    centres = np.array([sampler._centre(case) for _ in range(draws)])
    nearest = np.round(centres[:, 0] / 40) * 40 + 10          # 10, 50 or 90
    return {where: float(np.mean(nearest == where)) for where in (10, 50, 90)}


def test_samples_are_centred_on_lesions_mimics_and_brain_in_their_shares() -> None:
    shares = _shares(_case(mimics=True))
    assert abs(shares[10] - LESION_CENTRED) < 0.03
    assert abs(shares[50] - MIMIC_CENTRED) < 0.03
    assert abs(shares[90] - (1 - LESION_CENTRED - MIMIC_CENTRED)) < 0.03


def test_without_mimics_those_samples_go_to_the_brain() -> None:
    shares = _shares(_case(mimics=False))
    assert shares[50] == 0.0
    assert abs(shares[90] - (1 - LESION_CENTRED)) < 0.03


def test_a_case_without_lesions_keeps_the_mimic_share() -> None:
    shares = _shares(_case(mimics=True, lesions=False))
    assert shares[10] == 0.0
    assert abs(shares[50] - MIMIC_CENTRED) < 0.03


@pytest.mark.parametrize("dropout", [CONTRAST_DROPOUT, 0.6])
def test_augmented_batches_keep_labels_on_their_lesions_and_drop_only_t1_and_t2(
        dropout: float) -> None:
    """Flips, affine, blur and intensity changes move image and labels together; FLAIR is
    always there, T1 and T2 each missing (zeros) in about ``dropout`` of the samples."""
    shape, slices = (40, 40, 40), 3
    brain = np.zeros(shape, bool)
    brain[4:36, 4:36, 4:36] = True
    lesion = np.zeros(shape, np.uint8)
    lesion[14:20, 12:17, 22:26] = 1                     # off-centre: a flip would show
    channels = np.stack([brain + 3.0 * lesion, brain * 1.0, brain * 1.0]).astype(np.float16)
    case = TrainingCase(channels, lesion, np.where(brain, Tissue.WHITE_MATTER, 0).astype(
        np.uint8), np.argwhere(lesion), np.argwhere(brain)[::50], np.empty((0, 3), np.int64))
    sampler = SliceSampler([case], slices=slices, crop=16, seed=4, contrast_dropout=dropout)
    images, labels = zip(*(sampler.batch(8) for _ in range(40)), strict=True)
    image, label = torch.cat(images), torch.cat(labels)     # (320, 3 * slices, 16, 16)
    present = image.flatten(2).abs().amax(2) > 0            # (samples, contrast * slice)
    flair_present = present[:, :slices].any(1)
    assert flair_present.float().mean() > 0.95 and flair_present[present.any(1)].all()
    for contrast in (1, 2):
        dropped = ~present[flair_present, contrast * slices:(contrast + 1) * slices].any(1)
        assert abs(dropped.float().mean() - dropout) < 0.08
    flair, lesion_label = image[:, slices // 2], label[:, 0] > 0
    with_lesion = lesion_label.flatten(1).sum(1) >= 5
    assert with_lesion.sum() > 50
    for sample in np.flatnonzero(with_lesion.numpy()):
        brain_only = (flair[sample] != 0) & ~lesion_label[sample]
        assert flair[sample][lesion_label[sample]].mean() > flair[sample][brain_only].mean() + 1
