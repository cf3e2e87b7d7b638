"""Training samples for CLAIMS: annotated case folders prepared exactly as the cortical
pipeline prepares its inputs, cut into augmented 3D patches.

A case folder (the phantom's format, also the fine-tuning format): ``mp2rage.nii.gz``
[``t2star_gre.nii.gz`` or ``t2star.nii.gz``, ``t2star_epi.nii.gz``],
``truth/cortical_lesions.nii.gz`` (instance ids), ``truth/lesions.csv`` (``lesion_id, family,
type``: the type of each cortical id) and optionally ``truth/wm_lesions.nii.gz`` (voxels
weighted 0 in the loss).

Augmentation, as CLAIMS: affine (rotations up to 15°, scaling up to 10 %), flips and 90°
rotations in the three planes (together: rotations up to 180°), intensity shift (offset 0.1)
and scale, plus gamma, bias field, noise and blur for other scanners' contrast, resolution and
SNR; input-sequence dropout
(each optional contrast zeroed half of the time; the MP2RAGE is always kept).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from monai import transforms

from ..errors import InputError
from ..geometry import axis_aligned_grid, resample_like
from ..imageio import read_image
from ..labels import CORTICAL_FAMILY, CORTICAL_TYPES, INTRACORTICAL_SUBPIAL, LEUKOCORTICAL
from ..pipelines.cortical import (
    CLASS_VALUES,
    CorticalInputs,
    image_box,
    load_contrasts,
    model_channels,
)
from ..results import read_table_csv

# Files a case may use for a bundle input besides ``<input>.nii.gz`` (the phantom's T2*).
CASE_FILE_ALIASES = {"t2star_gre": ("t2star.nii.gz",)}
LESION_CENTRED = 0.67       # default fraction of patches centred on a cortical lesion voxel
# How a lesion-centred patch picks its centre: any lesion voxel ("voxel"), or first a lesion type
# among the case's, then a voxel of it ("type"), so that each type is seen as often however few
# voxels it has.
LESION_SAMPLING = ("voxel", "type")
SEQUENCE_DROPOUT = 0.5      # chance of zeroing each optional contrast in a patch
CROP_MARGIN = 1.3           # crop this much larger than the patch before the affine


@dataclass
class TrainingCase:
    name: str
    channels: np.ndarray        # (contrasts, z, y, x) float16, z-scored
    labels: np.ndarray          # (z, y, x) uint8: 0, then `CLASS_VALUES`
    weights: np.ndarray         # (z, y, x) uint8: 0 on white-matter lesions, 1 elsewhere
    lesion_voxels: np.ndarray   # (n, 3) indices of cortical lesion voxels
    image_voxels: np.ndarray    # (m, 3) indices of non-zero MP2RAGE voxels (subsampled)
    voxels_by_type: list[np.ndarray]  # lesion voxels of each type present (CORTICAL_TYPES first)


def case_folders(roots: list[Path]) -> list[Path]:
    """Every case folder (one holding mp2rage.nii.gz) among ``roots`` and their children."""
    folders = []
    for root in map(Path, roots):
        folders += [root] if (root / "mp2rage.nii.gz").is_file() else \
            sorted(p.parent for p in root.glob("*/mp2rage.nii.gz"))
    return folders


def case_inputs(folder: Path, input_names: list[str]) -> CorticalInputs:
    """The contrast files of a case folder that the model uses."""
    found = {}
    for name in input_names:
        candidates = [f"{name}.nii.gz", *CASE_FILE_ALIASES.get(name, ())]
        existing = [folder / c for c in candidates if (folder / c).is_file()]
        if existing:
            found[name] = existing[0]
    return CorticalInputs(**found)


def type_of_ids(table: Path) -> dict[int, str]:
    """Cortical lesion id → its type (`labels.CORTICAL_TYPES`)."""
    return {int(row["lesion_id"]): row["type"]
            for row in read_table_csv(table) if row["family"] == CORTICAL_FAMILY}


def class_value(lesion_type: str) -> int:
    """The label value a type is trained as: leukocortical, or intracortical/subpial."""
    return CLASS_VALUES[LEUKOCORTICAL if lesion_type == LEUKOCORTICAL else INTRACORTICAL_SUBPIAL]


def load_case(folder: Path, input_names: list[str],
              spacing_mm: tuple[float, float, float]) -> TrainingCase:
    """A case through the pipeline's preprocessing, with its truth on the same grid."""
    images, _ = load_contrasts(case_inputs(folder, input_names), warnings=[])
    grid = axis_aligned_grid(images["mp2rage"], spacing_mm)
    channels = model_channels(images, input_names, grid)

    def truth(name: str) -> np.ndarray:
        path = folder / "truth" / f"{name}.nii.gz"
        if not path.is_file():
            return np.zeros(grid.GetSize()[::-1], np.int32)
        image = sitk.Cast(read_image(path, str(path)), sitk.sitkInt32)
        return sitk.GetArrayFromImage(resample_like(image, grid, "nearest"))

    ids = truth("cortical_lesions")
    types = type_of_ids(folder / "truth" / "lesions.csv")
    unknown = set(np.unique(ids[ids > 0]).tolist()) - set(types)
    if unknown:
        raise InputError(f"{folder}: cortical lesion ids {sorted(unknown)[:5]} have no "
                         "cortical row in truth/lesions.csv")
    # Types a user's table may name besides the three (any of them trains class 2) come last.
    kinds = [*CORTICAL_TYPES, *sorted(set(types.values()) - set(CORTICAL_TYPES))]
    type_lookup = np.zeros(max([int(ids.max()), *types]) + 1, np.uint8)  # 1 + index in kinds
    for lesion_id, lesion_type in types.items():
        type_lookup[lesion_id] = 1 + kinds.index(lesion_type)
    class_lookup = np.array([0, *map(class_value, kinds)], np.uint8)
    box = image_box(channels, margin_voxels=0)
    channels, type_labels = channels[(slice(None), *box)], type_lookup[ids][box]
    lesion_voxels = np.argwhere(type_labels > 0)
    voxel_types = type_labels[tuple(lesion_voxels.T)]
    weights = (truth("wm_lesions")[box] == 0).astype(np.uint8)
    return TrainingCase(folder.name, channels.astype(np.float16), class_lookup[type_labels],
                        weights, lesion_voxels, np.argwhere(channels[0] != 0)[::5],
                        [lesion_voxels[voxel_types == v] for v in np.unique(voxel_types)])


def augmentation(patch_size: int) -> transforms.Compose:
    """MONAI dictionary transforms on ``image`` (C, …), ``label`` and ``weight`` (1, …)."""
    keys = ["image", "label", "weight"]
    return transforms.Compose([
        transforms.RandAffined(keys, spatial_size=(patch_size,) * 3, prob=0.8,
                      rotate_range=(math.radians(15),) * 3, scale_range=(0.1,) * 3,
                      mode=("bilinear", "nearest", "nearest"), padding_mode="zeros"),
        *[transforms.RandFlipd(keys, prob=0.5, spatial_axis=axis) for axis in range(3)],
        *[transforms.RandRotate90d(keys, prob=0.5, spatial_axes=axes)
          for axes in ((0, 1), (0, 2), (1, 2))],
        transforms.RandScaleIntensityd("image", factors=0.15, prob=0.5, channel_wise=True),
        transforms.RandShiftIntensityd("image", offsets=0.1, prob=0.5, channel_wise=True),
        transforms.RandAdjustContrastd("image", gamma=(0.7, 1.5), prob=0.3, retain_stats=True),
        transforms.RandBiasFieldd("image", coeff_range=(0.0, 0.2), prob=0.3),
        transforms.RandGaussianSmoothd("image", sigma_x=(0.3, 1.0), sigma_y=(0.3, 1.0),
                              sigma_z=(0.3, 1.0), prob=0.2),
        transforms.RandGaussianNoised("image", std=0.1, prob=0.3),
    ])


class PatchSampler:
    """``sampler(step)`` → (inputs (B, C, p, p, p), targets (B, 2, p, p, p)): targets hold the
    class labels and the loss weights."""

    def __init__(self, cases: list[TrainingCase], patch_size: int, batch_size: int,
                 seed: int, lesion_centred: float = LESION_CENTRED,
                 lesion_sampling: str = "voxel") -> None:
        self.cases, self.patch_size, self.batch_size = cases, patch_size, batch_size
        self.lesion_centred, self.per_type = lesion_centred, lesion_sampling == "type"
        self.rng = np.random.default_rng(seed)
        self.transform = augmentation(patch_size)
        self.transform.set_random_state(seed=seed)
        self.crop_size = int(math.ceil(patch_size * CROP_MARGIN))

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        samples = [self.sample() for _ in range(self.batch_size)]
        return (torch.stack([s[0] for s in samples]), torch.stack([s[1] for s in samples]))

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        case = self.cases[self.rng.integers(len(self.cases))]
        use_lesion = len(case.lesion_voxels) and self.rng.random() < self.lesion_centred
        candidates = self.lesion_candidates(case) if use_lesion else case.image_voxels
        centre = candidates[self.rng.integers(len(candidates))]
        data = {"image": crop(case.channels, centre, self.crop_size).astype(np.float32),
                "label": crop(case.labels[None], centre, self.crop_size).astype(np.float32),
                "weight": crop(case.weights[None], centre, self.crop_size).astype(np.float32)}
        data = self.transform(data)
        image = torch.as_tensor(data["image"]).float().clone()
        for channel in range(1, image.shape[0]):
            if self.rng.random() < SEQUENCE_DROPOUT:
                image[channel] = 0
        targets = torch.cat([torch.as_tensor(data["label"]), torch.as_tensor(data["weight"])])
        return image, targets.float()

    def lesion_candidates(self, case: TrainingCase) -> np.ndarray:
        """The voxels a lesion-centred patch is centred on: every lesion voxel, or those of
        one lesion type drawn among the case's."""
        if not self.per_type:
            return case.lesion_voxels
        return case.voxels_by_type[self.rng.integers(len(case.voxels_by_type))]


def crop(volume: np.ndarray, centre_zyx: np.ndarray, size: int) -> np.ndarray:
    """A (C, size, size, size) cube of a (C, z, y, x) array around a voxel, zero-padded."""
    start = np.asarray(centre_zyx) - size // 2
    out = np.zeros((volume.shape[0], size, size, size), volume.dtype)
    low = np.maximum(start, 0)
    high = np.minimum(start + size, volume.shape[1:])
    source = (slice(None), *(slice(a, b) for a, b in zip(low, high, strict=True)))
    target = (slice(None), *(slice(a - s, b - s) for a, b, s in zip(low, high, start,
                                                                     strict=True)))
    out[target] = volume[source]
    return out
