"""Training samples for the white-matter model: phantom cases prepared exactly as the pipeline
prepares its inputs, cut into slice stacks along a random axis, augmented with MONAI.

A sample is a stack of neighbouring slices of every contrast around a centre voxel (a lesion
voxel, a bright white-matter voxel that is not lesion, or any brain voxel), cropped in-plane,
with the central slice's lesion and tissue labels. Augmentation: small in-plane affine,
left-right flip, per-contrast intensity scale/shift, gamma, bias field, noise and blur (blur
across the stack too: thick slices), and dropout of the optional contrasts (FLAIR is always
kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from monai import transforms
from monai.utils import convert_to_tensor

from ..geometry import resample_like
from ..imageio import read_image
from ..labels import Tissue
from ..pipelines.wm import prepare_inputs
from ._parallel import map_in_processes

MASK_DROPOUT = 0.5          # fraction of cases normalised without their brain mask
CONTRAST_DROPOUT = 0.3      # default chance of dropping each optional contrast in a sample
LESION_CENTRED = 0.6        # fraction of samples centred on a lesion voxel
MIMIC_CENTRED = 0.2         # fraction centred on a bright white-matter voxel that is not lesion
MIMIC_PERCENTILE = 97.0     # "bright": FLAIR above this percentile of non-lesion white matter
INTENSITY_SCALE = 0.25      # per-contrast factor drawn in 1 ± this
INTENSITY_SHIFT = 0.3       # per-contrast offset drawn in ± this (z-score units)
LEFT_RIGHT_FLIP = 0.5       # chance of a left-right flip per sample
# The MONAI transforms' settings, drawn per batch (a stack's axes: stack, then in-plane).
AFFINE = {"prob": 0.7, "rotate_range": 0.26, "scale_range": 0.12, "shear_range": 0.05}
GAMMA = {"prob": 0.5, "gamma": (0.6, 1.6)}
BIAS_FIELD = {"prob": 0.4, "degree": 3, "coeff_range": (0.0, 0.3)}
BLUR = {"prob": 0.4, "sigma_x": (0.0, 1.2), "sigma_y": (0.2, 1.5), "sigma_z": (0.2, 1.5)}
NOISE = {"prob": 0.5, "std": 0.15}


def augmentation_record(contrast_dropout: float = CONTRAST_DROPOUT) -> dict[str, Any]:
    """Every augmentation setting, for the bundle's metadata (``training.settings``)."""
    return {"in_plane_affine": AFFINE, "gamma": GAMMA, "bias_field": BIAS_FIELD, "blur": BLUR,
            "noise": NOISE, "left_right_flip": LEFT_RIGHT_FLIP,
            "intensity_scale": INTENSITY_SCALE, "intensity_shift": INTENSITY_SHIFT,
            "contrast_dropout": contrast_dropout, "cases_without_brain_mask": MASK_DROPOUT}


@dataclass
class TrainingCase:
    channels: np.ndarray    # (contrasts, z, y, x) float16, z-scored
    lesion: np.ndarray      # (z, y, x) uint8, 0/1
    tissue: np.ndarray      # (z, y, x) uint8, `labels.Tissue`
    lesion_voxels: np.ndarray   # (n, 3) indices of lesion voxels
    brain_voxels: np.ndarray    # (m, 3) indices of normalisation-mask voxels (subsampled)
    mimic_voxels: np.ndarray    # (k, 3) indices of bright non-lesion white matter


def case_folders(roots: list[Path]) -> list[Path]:
    """Every case folder (one holding flair.nii.gz) among ``roots`` and their children,
    sorted; hidden folders (a generator's unfinished ``.NAME.partial-*``) are skipped."""
    found = [p.parent for root in map(Path, roots)
             for p in [root / "flair.nii.gz", *root.glob("*/flair.nii.gz")] if p.is_file()]
    return sorted(folder for folder in found if not folder.name.startswith("."))


def load_case(folder: Path, metadata: dict[str, Any], use_mask: bool) -> TrainingCase:
    """A phantom case through `prepare_inputs`, with its truth on the same cropped grid."""
    contrasts = {spec["name"]: read_image(folder / f"{spec['name']}.nii.gz", spec["name"])
                 for spec in metadata["inputs"] if (folder / f"{spec['name']}.nii.gz").is_file()}
    mask = read_image(folder / "brainmask.nii.gz", "brainmask") if use_mask else None
    model_input = prepare_inputs(contrasts, mask, metadata)

    def truth(name: str) -> np.ndarray:
        image = read_image(folder / "truth" / f"{name}.nii.gz", name)
        return sitk.GetArrayFromImage(resample_like(image, model_input.grid, "nearest"))

    lesion = (truth("wm_lesions") > 0).astype(np.uint8)
    tissue = truth("tissue").astype(np.uint8)
    brain_voxels = np.argwhere(model_input.normalisation_mask)[::7]
    return TrainingCase(model_input.channels.astype(np.float16), lesion, tissue,
                        np.argwhere(lesion), brain_voxels,
                        mimic_voxels(model_input.channels[0], lesion, tissue))


def mimic_voxels(flair: np.ndarray, lesion: np.ndarray, tissue: np.ndarray) -> np.ndarray:
    """Indices of the brightest non-lesion white matter on FLAIR (above `MIMIC_PERCENTILE`):
    dirty-appearing white matter, lesion haloes, bright tracts. Centring samples there teaches
    the network what a lesion is not, where a false positive is likeliest."""
    candidates = (lesion == 0) & (tissue == Tissue.WHITE_MATTER)
    if not candidates.any():
        return np.empty((0, 3), np.int64)
    bright = flair > np.percentile(flair[candidates], MIMIC_PERCENTILE)
    return np.argwhere(candidates & bright)


def load_cases(folders: list[Path], metadata: dict[str, Any], rng: np.random.Generator,
               workers: int = 0) -> list[TrainingCase]:
    """Every case, a random ``MASK_DROPOUT`` of them normalised without their brain mask."""
    use_masks = [rng.random() >= MASK_DROPOUT for _ in folders]
    return map_in_processes(load_case, workers, folders, [metadata] * len(folders), use_masks)


class SliceSampler:
    """Draws augmented batches of slice stacks; reproducible from ``seed``.

    ``contrast_dropout``: the chance of dropping each optional contrast (T1, T2) in a sample;
    both are dropped, leaving FLAIR alone, in its square of the samples.
    """

    def __init__(self, cases: list[TrainingCase], slices: int, crop: int, seed: int,
                 contrast_dropout: float = CONTRAST_DROPOUT) -> None:
        self.cases, self.slices, self.crop = cases, slices, crop
        self.contrast_dropout = contrast_dropout
        self.rng = np.random.default_rng(seed)
        self.spatial = transforms.RandAffined(keys=("image", "label"), **AFFINE,
                                              mode=("bilinear", "nearest"),
                                              padding_mode="zeros")
        self.intensity = transforms.Compose([
            transforms.RandAdjustContrast(**GAMMA, retain_stats=True),
            transforms.RandBiasField(**BIAS_FIELD),
            transforms.RandGaussianSmooth(**BLUR),
            transforms.RandGaussianNoise(**NOISE),
        ])
        self.spatial.set_random_state(seed=seed)
        self.intensity.set_random_state(seed=seed + 1)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs (b, contrasts * slices, crop, crop), targets (b, 2, crop, crop)): targets
        hold the lesion (0/1) and the tissue label of the central slice.

        Cutting, flips, intensity scale/shift and contrast dropout are drawn per sample and
        contrast; the MONAI transforms per batch (one affine, one bias field ...), which keeps
        a CPU step cheap.
        """
        images, labels = zip(*(self.sample() for _ in range(size)), strict=True)
        image, label = torch.stack(images), torch.stack(labels)   # (b, c, k, h, w), (b, 2, h, w)
        b, c, k, h, w = image.shape
        inside = image != 0
        image = convert_to_tensor(self.intensity(image.reshape(b * c, k, h, w)),
                                  track_meta=False).reshape(b, c, k, h, w)
        image = torch.where(inside, image, torch.zeros(()))
        spatial = self.spatial({"image": image.reshape(b * c * k, h, w),
                                "label": label.reshape(b * 2, h, w)})
        return (convert_to_tensor(spatial["image"], track_meta=False).reshape(b, c * k, h, w),
                convert_to_tensor(spatial["label"], track_meta=False).reshape(b, 2, h, w))

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One stack (contrasts, slices, crop, crop) and its labels (2, crop, crop), flipped
        left-right half of the time, each contrast scaled and shifted inside the brain, the
        optional contrasts sometimes dropped (zeros)."""
        case = self.cases[self.rng.integers(len(self.cases))]
        axis = int(self.rng.integers(3))
        image, label = self._cut(case, axis, self._centre(case))
        if self.rng.random() < LEFT_RIGHT_FLIP:  # in-plane x, or the stack order if sagittal
            image = image.flip(1) if axis == 2 else image.flip(-1)
            label = label if axis == 2 else label.flip(-1)
        scale = self.rng.uniform(1 - INTENSITY_SCALE, 1 + INTENSITY_SCALE, image.shape[0])
        shift = self.rng.uniform(-INTENSITY_SHIFT, INTENSITY_SHIFT, image.shape[0])
        keep = np.concatenate([[1.0], self.rng.random(image.shape[0] - 1) >= self.contrast_dropout])
        factors = torch.as_tensor(scale * keep, dtype=torch.float32)[:, None, None, None]
        offsets = torch.as_tensor(shift * keep, dtype=torch.float32)[:, None, None, None]
        return torch.where(image != 0, image * factors + offsets, 0.0), label

    def _centre(self, case: TrainingCase) -> np.ndarray:
        draw = self.rng.random()    # [0, lesion share) lesion, then the mimic share, then brain
        if len(case.lesion_voxels) and draw < LESION_CENTRED:
            voxels = case.lesion_voxels
        elif len(case.mimic_voxels) and LESION_CENTRED <= draw < LESION_CENTRED + MIMIC_CENTRED:
            voxels = case.mimic_voxels
        else:
            voxels = case.brain_voxels
        jitter = self.rng.integers(-self.crop // 4, self.crop // 4 + 1, size=3)
        return voxels[self.rng.integers(len(voxels))] + jitter

    def _cut(self, case: TrainingCase, axis: int, centre: np.ndarray
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """The stack (contrasts, slices, crop, crop) and labels (2, crop, crop) around centre,
        zero outside the volume."""
        half_sizes = [self.crop // 2] * 3
        half_sizes[axis] = self.slices // 2
        sizes = [self.crop] * 3
        sizes[axis] = self.slices
        shape = case.lesion.shape
        centre = np.clip(centre, 0, np.array(shape) - 1)
        starts = [int(c) - h for c, h in zip(centre, half_sizes, strict=True)]
        source = tuple(slice(max(s, 0), min(s + n, dim))
                       for s, n, dim in zip(starts, sizes, shape, strict=True))
        target = tuple(slice(src.start - s, src.stop - s)
                       for src, s in zip(source, starts, strict=True))
        image = np.zeros((case.channels.shape[0], *sizes), np.float32)
        image[(slice(None), *target)] = case.channels[(slice(None), *source)]
        labels = np.zeros((2, *sizes), np.float32)
        labels[(0, *target)] = case.lesion[source]
        labels[(1, *target)] = case.tissue[source]
        image = np.moveaxis(image, axis + 1, 1)  # the in-plane axes keep their order
        central = np.take(labels, self.slices // 2, axis=axis + 1)
        return torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(central)
