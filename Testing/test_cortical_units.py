"""CLAIMS building blocks on tiny arrays: the U-Net, the masked focal loss, post-processing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from MSLesionAILib.geometry import axis_aligned_grid
from MSLesionAILib.labels import INTRACORTICAL_SUBPIAL, LEUKOCORTICAL
from MSLesionAILib.networks import build_network
from MSLesionAILib.pipelines.cortical import (
    WM_OVERLAP_VALUE,
    CorticalLesions,
    class_labelmap,
    find_lesions,
    image_box,
    model_channels,
    summarise,
)
from MSLesionAILib.training.cortical import MaskedFocalLoss, bumped_version
from MSLesionAILib.training.cortical_data import (
    CROP_MARGIN,
    SEQUENCE_DROPOUT,
    PatchSampler,
    TrainingCase,
    augmentation,
    crop,
)

SPACING_MM = (0.5, 0.5, 0.5)   # 8 voxels per µL


def test_unet_has_four_levels_and_keeps_the_patch_shape():
    network = build_network("claims_unet", in_channels=2, out_channels=3)
    convolutions = [m for m in network.modules() if isinstance(m, torch.nn.Conv3d)]
    assert sorted({c.out_channels for c in convolutions}) == [3, 16, 32, 64, 128]
    logits = network(torch.zeros(2, 2, 24, 16, 32))
    assert logits.shape == (2, 3, 24, 16, 32)


@pytest.mark.parametrize("dice_weight", [0.0, 1.0])
def test_focal_loss_ignores_white_matter_lesion_voxels(dice_weight):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 3, 8, 8, 8, generator=generator)
    labels = torch.randint(0, 3, (1, 1, 8, 8, 8), generator=generator).float()
    weights = torch.ones(1, 1, 8, 8, 8)
    weights[..., :4] = 0                          # "white-matter lesion" half
    loss = MaskedFocalLoss(dice_weight=dice_weight)
    reference = loss(logits, torch.cat([labels, weights], 1))
    changed = logits.clone()
    changed[..., :4] = 100 * torch.randn(1, 3, 8, 8, 4, generator=generator)
    changed_labels = labels.clone()
    changed_labels[..., :4] = 2 - changed_labels[..., :4]
    assert loss(changed, torch.cat([changed_labels, weights], 1)) == pytest.approx(
        float(reference), rel=1e-6)
    changed[..., 4:] += 5 * torch.randn(1, 3, 8, 8, 4, generator=generator)
    assert float(loss(changed, torch.cat([labels, weights], 1))) != pytest.approx(
        float(reference), rel=1e-3)


@pytest.mark.parametrize("dice_weight", [0.0, 1.0])
def test_focal_loss_gradients_are_zero_on_weighted_out_voxels(dice_weight):
    logits = torch.randn(1, 3, 4, 4, 4, requires_grad=True)
    targets = torch.cat([torch.ones(1, 1, 4, 4, 4), torch.ones(1, 1, 4, 4, 4)], 1)
    targets[:, 1, 0] = 0
    MaskedFocalLoss(dice_weight=dice_weight)(logits, targets).backward()
    assert torch.all(logits.grad[:, :, 0] == 0)
    assert torch.any(logits.grad[:, :, 1:] != 0)


def blob(shape, centre, radius):
    z, y, x = np.ogrid[tuple(slice(0, s) for s in shape)]
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius ** 2


def two_lesion_maps():
    """Lesion A mostly leukocortical, lesion B mostly intracortical/subpial (both ~ 4 µL)."""
    shape = (24, 24, 24)
    leuko, intra = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    a, b = blob(shape, (6, 6, 6), 2), blob(shape, (16, 16, 16), 2)
    leuko[a], intra[a] = 0.7, 0.2
    leuko[a & (np.arange(24)[None, None, :] == 4)] = 0.1       # a few voxels vote the other way
    intra[a & (np.arange(24)[None, None, :] == 4)] = 0.85
    leuko[b], intra[b] = 0.1, 0.6                          # p(lesion) 0.7 ≥ 0.5
    return leuko, intra, a, b


def test_lesions_are_thresholded_on_p_lesion_and_classed_by_majority():
    leuko, intra, a, b = two_lesion_maps()
    lesions = find_lesions(leuko, intra, SPACING_MM)
    assert lesions.lesion_ids.max() == 2
    class_of = {tuple(np.argwhere(lesions.lesion_ids == i).mean(0).round()): c
                for i, c in enumerate(lesions.classes, start=1)}
    assert class_of[(6.0, 6.0, 6.0)] == LEUKOCORTICAL
    assert class_of[(16.0, 16.0, 16.0)] == INTRACORTICAL_SUBPIAL
    assert lesions.overlaps_wm == [False, False]


def test_an_intracortical_lesion_passes_any_threshold_its_probability_reaches():
    """Counting p(intracortical/subpial) half (CLAIMS's code) would hide every such lesion
    behind a threshold above 0.5."""
    shape = (12, 12, 12)
    only_intra = np.zeros(shape, np.float32)
    only_intra[blob(shape, (6, 6, 6), 2)] = 0.9
    lesions = find_lesions(np.zeros(shape, np.float32), only_intra, SPACING_MM, threshold=0.8)
    assert lesions.classes == [INTRACORTICAL_SUBPIAL]
    assert find_lesions(np.zeros(shape, np.float32), only_intra, SPACING_MM,
                        threshold=0.95).classes == []


def test_lesions_touching_white_matter_lesions_are_flagged_and_not_counted():
    leuko, intra, a, b = two_lesion_maps()
    wm = np.zeros(a.shape, np.uint8)
    wm[16, 16, 18] = 1                                      # touches lesion B's edge
    lesions = find_lesions(leuko, intra, SPACING_MM, wm_mask=wm)
    flagged = [c for c, f in zip(lesions.classes, lesions.overlaps_wm, strict=True) if f]
    assert flagged == [INTRACORTICAL_SUBPIAL]
    labelmap = class_labelmap(lesions)
    assert np.all(labelmap[b] == WM_OVERLAP_VALUE) and np.all(labelmap[a] == 1)
    rows = [{"class": c, "volume_ul": 4.0, "overlaps_wm_lesion": int(f)}
            for c, f in zip(lesions.classes, lesions.overlaps_wm, strict=True)]
    counts = summarise(rows)["counts"]
    assert counts == {LEUKOCORTICAL: 1, INTRACORTICAL_SUBPIAL: 0, "cortical_total": 1,
                      "overlapping_wm_lesions": 1}


@pytest.mark.parametrize(("min_volume_ul", "kept"), [(1, 2), (3, 1), (6, 0)])
def test_minimum_volume_drops_small_lesions(min_volume_ul, kept):
    shape = (20, 20, 20)
    leuko = np.zeros(shape, np.float32)
    leuko[2:5, 2:5, 2:4] = 0.9          # 18 voxels = 2.25 µL
    leuko[10:14, 10:14, 10:13] = 0.9
    leuko[10, 10, 10] = 0.0             # 47 voxels = 5.875 µL, just under 6 µL
    lesions = find_lesions(leuko, np.zeros(shape, np.float32), SPACING_MM, min_volume_ul)
    assert len(lesions.classes) == kept


def test_no_lesions_is_an_empty_result():
    zeros = np.zeros((10, 10, 10), np.float32)
    lesions = find_lesions(zeros, zeros, SPACING_MM, wm_mask=np.ones_like(zeros))
    assert lesions.classes == [] and not lesions.lesion_ids.any()
    assert summarise([])["counts"]["cortical_total"] == 0
    empty = CorticalLesions(lesions.lesion_ids, lesions.probability, [], [])
    assert class_labelmap(empty).max() == 0


def test_crop_pads_outside_the_volume():
    volume = np.arange(4 * 5 * 6, dtype=np.float32).reshape(1, 4, 5, 6) + 1
    cube = crop(volume, np.array([0, 0, 0]), 4)
    assert cube.shape == (1, 4, 4, 4)
    assert cube[0, 2, 2, 2] == volume[0, 0, 0, 0] and cube[0, 0, 0, 0] == 0


def test_fine_tuned_versions_are_bumped():
    assert bumped_version("1.0.0") == "1.1.0"
    assert bumped_version("1.1.0") == "1.2.0"
    assert bumped_version("3") == "3.1"


def test_inference_box_skips_the_empty_grid_around_the_image():
    channels = np.zeros((2, 40, 30, 20), np.float32)
    channels[0, 10:20, 5:25, 8:12] = 1.0
    assert image_box(channels, margin_voxels=2) == (slice(8, 22), slice(3, 27), slice(6, 14))
    assert image_box(np.zeros((1, 4, 4, 4)), 2) == (slice(0, 4),) * 3


def test_a_skull_stripped_mp2rage_with_an_intensity_offset_gives_the_same_input(
        oblique_image) -> None:
    """Its background must stay out of the z-score, as the scanner file's zeros do."""
    voxels = np.zeros(oblique_image.GetSize()[::-1], np.float32)
    voxels[3:9, 4:12, 5:15] = np.random.default_rng(0).uniform(50, 100, (6, 8, 10))
    mp2rage = sitk.GetImageFromArray(voxels)
    mp2rage.CopyInformation(oblique_image)
    grid = axis_aligned_grid(mp2rage, (1.0, 1.0, 1.0))
    expected = model_channels({"mp2rage": mp2rage}, ["mp2rage", "t2star"], grid)
    shifted = model_channels({"mp2rage": mp2rage + 300.0}, ["mp2rage", "t2star"], grid)
    np.testing.assert_allclose(shifted, expected, atol=1e-4)
    assert not expected[1].any()                 # T2* not given: a channel of zeros


def _two_type_case() -> TrainingCase:
    """90 leukocortical lesion voxels and 10 subpial ones."""
    lesion_voxels = np.argwhere(np.ones((10, 10, 1), bool))
    labels = np.zeros((10, 10, 1), np.uint8)
    labels[:9] = 1
    labels[9:] = 2
    return TrainingCase("case", np.ones((1, 10, 10, 1), np.float16), labels,
                        np.ones_like(labels), lesion_voxels, lesion_voxels,
                        [lesion_voxels[:90], lesion_voxels[90:]])


@pytest.mark.parametrize("sampling, subpial_share", [("voxel", 0.1), ("type", 0.5)])
def test_lesion_centred_patches_see_each_type_as_often_with_type_sampling(sampling,
                                                                         subpial_share):
    case = _two_type_case()
    sampler = PatchSampler([case], 8, 1, seed=0, lesion_sampling=sampling)
    centres = [sampler.lesion_candidates(case) for _ in range(400)]
    shares = [np.mean(case.labels[tuple(c.T)] == 2) for c in centres]
    assert abs(np.mean(shares) - subpial_share) < 0.06


def _code(labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """0 on white-matter lesions (weight 0), else 1 + the class label."""
    return np.where(weights == 0, 0, 1 + labels)


def _coded_volume(size: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Blocks of 3³ voxels, each a white-matter lesion, background, leukocortical or
    intracortical/subpial at random: (image, labels, weights), float32 (size³); the image is
    the code of the label and the weight, so a patch shows whether they moved together."""
    blocks = np.random.default_rng(seed).integers(0, 4, (math.ceil(size / 3),) * 3)
    codes = np.kron(blocks, np.ones((3, 3, 3)))[:size, :size, :size].astype(np.float32)
    labels = np.maximum(codes - 1, 0)
    weights = (codes != 0).astype(np.float32)
    assert np.array_equal(_code(labels, weights), codes)
    return codes, labels, weights


def test_augmentation_moves_labels_and_weights_with_the_image() -> None:
    """Flips, 90° rotations and the affine move the image, the labels and the weights alike:
    in every patch the (intensity-augmented) image still follows the labels' and weights'
    code, though the patches drawn from one crop differ."""
    patch = 16
    image, labels, weights = _coded_volume(math.ceil(patch * CROP_MARGIN))   # the sampler's crop
    transform = augmentation(patch)
    transform.set_random_state(seed=0)
    codes = set()
    for _ in range(20):
        out = transform({"image": image[None], "label": labels[None], "weight": weights[None]})
        code = _code(np.asarray(out["label"][0]), np.asarray(out["weight"][0]))
        assert code.shape == (patch,) * 3
        assert np.corrcoef(np.asarray(out["image"][0]).ravel(), code.ravel())[0, 1] > 0.5
        codes.add(code.tobytes())
    assert len(codes) >= 15


def test_sequence_dropout_zeroes_the_t2star_channel_in_its_share_of_patches_only() -> None:
    """Of 300 patches, the T2* channel is zero in SEQUENCE_DROPOUT of them (± 0.1, about 3.5
    standard deviations), the MP2RAGE channel in none."""
    image, labels, weights = _coded_volume(24)
    lesion_voxels = np.argwhere(labels > 0)
    case = TrainingCase("case", np.stack([image, np.ones_like(image)]).astype(np.float16),
                        labels.astype(np.uint8), weights.astype(np.uint8), lesion_voxels,
                        np.argwhere(image >= 0)[::7], [lesion_voxels])
    sampler = PatchSampler([case], 8, 1, seed=0)
    patches = [sampler.sample()[0] for _ in range(300)]
    assert all(patch[0].any() for patch in patches)         # the MP2RAGE is never dropped
    dropped = np.mean([not patch[1].any() for patch in patches])
    assert abs(dropped - SEQUENCE_DROPOUT) < 0.1
