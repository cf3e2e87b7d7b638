"""Rim training data: lesion patches from phantom rim cases, extracted once and kept in memory.

Each truth lesion of at least 12.3 µL becomes a patch centred on its centre of mass in the
phase grid, in the bundle's channel order, stored a few voxels larger than the model's patch
so that batches can shift the centre. Extra copies are sampled through random rotations and
scalings of the patch grid (physical-space affine augmentation); rim+ lesions get more copies,
as RimNet's and Deep-PRL's positives did. `Batches` then draws balanced, augmented batches:
centre shifts, flips, 90° rotations, thick slices, noise, contrast.

Phase around a paramagnetic rim is dipolar along B0, the scanner's head-foot (S) axis, which
is patch axis 0. So rotations turn only about that axis; flips (which keep the dipole's
pattern) may be along any axis.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage
from scipy.spatial.transform import Rotation

from ..geometry import ras_to_lps, resample_like, same_grid
from ..imageio import read_image
from ..lesions import lesion_measures, min_voxels_for_volume
from ..phantom.site import FWHM_PER_SIGMA
from ..progress import Progress
from ..rim_candidates import MIN_VOLUME_UL
from ..rim_patches import PatchSpec, centre_crop, make_patches
from ._loop import found_cases

MAX_SCALE_CHANGE = 0.15
# Thick slices in training: 1.125–3 mm (1.5–4 voxels of a 0.75 mm patch), in 40 % of patches.
THICK_SLICE_CHANCE, THICK_SLICE_MM = 0.4, (1.125, 3.0)


@dataclass
class PatchSet:
    """Stored patches (N, C, S, S, S, float16), rim labels (N,) and each patch's case index."""

    patches: np.ndarray
    labels: np.ndarray
    cases: np.ndarray
    original: np.ndarray  # True for the unaugmented copy of each lesion

    def __len__(self) -> int:
        return len(self.labels)


def case_folders(folders: Iterable[str | Path], option: str = "--data") -> list[Path]:
    """The phantom case folders (with ``case.json``) in or under each folder, sorted; an
    error naming ``option`` for a folder that holds none."""
    cases: list[Path] = []
    for folder in map(Path, folders):
        found = [folder] if (folder / "case.json").is_file() else sorted(
            p.parent for p in folder.glob("*/case.json"))
        cases += found_cases(option, [folder], found, "case.json")
    return cases


def read_case(folder: Path, inputs: list[str]) -> tuple[sitk.Image, np.ndarray, np.ndarray,
                                                         dict[int, int]]:
    """The phase image, the inputs (C, z, y, x) and truth lesion ids on its grid, and the rim
    truth by lesion id."""
    phase = read_image(folder / "phase.nii.gz", f"{folder.name}/phase")
    volumes = []
    for name in inputs:
        image = read_image(folder / f"{name}.nii.gz", f"{folder.name}/{name}")
        image = image if same_grid(image, phase) else resample_like(image, phase)
        volumes.append(sitk.GetArrayFromImage(image).astype(np.float32))
    truth = read_image(folder / "truth" / "wm_lesions.nii.gz", f"{folder.name}/truth")
    truth = truth if same_grid(truth, phase) else resample_like(truth, phase, "nearest")
    with open(folder / "truth" / "lesions.csv", encoding="utf-8", newline="") as stream:
        rim = {int(row["lesion_id"]): int(row["rim"]) for row in csv.DictReader(stream)}
    images = np.stack(volumes) if volumes else np.zeros((0, *phase.GetSize()[::-1]), np.float32)
    return phase, images, sitk.GetArrayFromImage(truth).astype(np.int32), rim


def random_affines(count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 3, 3) random rotations about the S (B0) axis times per-axis scalings of up to
    ±15 %, acting on LPS offsets."""
    angles = rng.uniform(0.0, 2 * np.pi, count)
    rotations = Rotation.from_rotvec(angles[:, None] * np.array([0.0, 0.0, 1.0])).as_matrix()
    scales = rng.uniform(1 - MAX_SCALE_CHANGE, 1 + MAX_SCALE_CHANGE, (count, 1, 3))
    return rotations * scales


def eligible_lesions(phase: sitk.Image, truth: np.ndarray, rim: dict[int, int]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids, centres of mass (LPS, mm) and rim labels of the truth lesions ≥ 12.3 µL."""
    min_voxels = min_voxels_for_volume(MIN_VOLUME_UL, phase.GetSpacing()[::-1])
    rows = [r for r in lesion_measures(truth, phase) if r["voxels"] >= min_voxels]
    ids = np.array([r["lesion_id"] for r in rows], dtype=np.int64)
    labels = np.array([rim.get(r["lesion_id"], 0) for r in rows], dtype=np.uint8)
    centres = ras_to_lps(np.array([[r["centroid_r"], r["centroid_a"], r["centroid_s"]]
                                   for r in rows]).reshape(-1, 3))
    return ids, centres, labels


def copy_counts(labels: np.ndarray, copies: tuple[int, int]) -> np.ndarray:
    """Extra copies per lesion: ``copies`` = (per rim− lesion, per rim+ lesion)."""
    return np.where(labels == 1, copies[1], copies[0])


def case_patches(folder: Path, inputs: list[str], spec: PatchSpec, stored_size_vox: int,
                 copies: tuple[int, int], rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Patches, labels and "original" flags of one case's truth lesions ≥ 12.3 µL;
    ``copies`` = (extra copies per rim− lesion, per rim+ lesion)."""
    phase, images, truth, rim = read_case(folder, inputs)
    ids, centres, labels = eligible_lesions(phase, truth, rim)
    extra = copy_counts(labels, copies)
    repeat = np.repeat(np.arange(len(labels)), 1 + extra)
    original = np.zeros(len(repeat), bool)
    original[np.cumsum(1 + extra) - (1 + extra)] = True   # each lesion's first, unturned copy
    affines = np.repeat(np.eye(3)[None], len(repeat), axis=0)
    affines[~original] = random_affines(int(np.count_nonzero(~original)), rng)
    patches = make_patches(images, truth, phase, centres[repeat], ids[repeat], spec,
                           stored_size_vox, affines)
    return patches.astype(np.float16), labels[repeat], original


def patch_count(folder: Path, copies: tuple[int, int]) -> int:
    """How many patches `case_patches` makes of a case (reads only its phase and truth)."""
    phase, _, truth, rim = read_case(folder, [])
    _, _, labels = eligible_lesions(phase, truth, rim)
    return int(np.sum(1 + copy_counts(labels, copies)))


def load_patch_set(folders: list[Path], inputs: list[str], spec: PatchSpec,
                   stored_size_vox: int, copies: tuple[int, int], seed: int,
                   progress: Progress) -> PatchSet:
    """Every case's patches, extracted once (``copies`` = (0, 0) for evaluation data).

    The patches are counted first and written into one array, so that loading needs the
    set's memory once rather than twice (its parts and their concatenation)."""
    rng = np.random.default_rng(seed)
    counts = []
    for index, folder in enumerate(folders):
        progress.update(0.2 * index / len(folders), f"counting the lesions of {folder.name}")
        counts.append(patch_count(folder, copies))
    starts = np.concatenate([[0], np.cumsum(counts)])
    patches, labels = None, np.zeros(starts[-1], np.uint8)
    original = np.zeros(starts[-1], bool)
    for index, folder in enumerate(folders):
        progress.update(0.2 + 0.8 * index / len(folders), f"patches of {folder.name}")
        rows = slice(starts[index], starts[index + 1])
        case_set, labels[rows], original[rows] = case_patches(folder, inputs, spec,
                                                              stored_size_vox, copies, rng)
        if patches is None:
            patches = np.empty((starts[-1], *case_set.shape[1:]), np.float16)
        patches[rows] = case_set
    cases = np.repeat(np.arange(len(folders)), counts)
    progress.update(1.0, f"{len(labels)} patches, {int(labels.sum())} rim+")
    return PatchSet(patches, labels, cases, original)


class Batches:
    """Balanced, augmented training batches drawn from a `PatchSet`.

    ``image_channels`` get intensity augmentation; any later channel (the lesion mask) is only
    moved with the patch. Positives may be shifted further than negatives (Deep-PRL: ±5).
    """

    def __init__(self, data: PatchSet, spec: PatchSpec, image_channels: int, batch_size: int,
                 shift_vox: tuple[int, int], positive_fraction: float, target: str,
                 rng: np.random.Generator) -> None:
        self.data, self.spec, self.image_channels = data, spec, image_channels
        self.batch_size, self.shift_vox = batch_size, shift_vox
        self.positive_fraction, self.target, self.rng = positive_fraction, target, rng
        self.by_label = [np.flatnonzero(data.labels == label) for label in (0, 1)]

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        positives = self.rng.binomial(self.batch_size, self.positive_fraction)
        chosen = np.concatenate([self.rng.choice(self.by_label[1], positives),
                                 self.rng.choice(self.by_label[0], self.batch_size - positives)])
        patches = np.stack([self._augment(self.data.patches[i], self.data.labels[i])
                            for i in chosen])
        labels = torch.from_numpy(self.data.labels[chosen].astype(np.int64))
        targets = labels if self.target == "class" else labels[:, None].float()
        return torch.from_numpy(patches), targets

    def _augment(self, stored: np.ndarray, label: int) -> np.ndarray:
        rng, limit = self.rng, self.shift_vox[int(label)]
        patch = centre_crop(stored, self.spec.size_vox, rng.integers(-limit, limit + 1, 3))
        patch = np.flip(patch, tuple(1 + np.flatnonzero(rng.random(3) < 0.5)))
        if rng.random() < 0.5:  # a 90° rotation about the S axis (with the flips)
            patch = np.swapaxes(patch, 2, 3)
        patch = patch.astype(np.float32)
        if rng.random() < THICK_SLICE_CHANCE:  # anisotropic voxels along a random axis
            thickness_vox = rng.uniform(*THICK_SLICE_MM) / self.spec.spacing_mm
            patch = thick_slices(patch, self.image_channels, 1 + int(rng.integers(3)),
                                 thickness_vox, rng.uniform(0.0, thickness_vox))
        images = patch[:self.image_channels]
        low, high = images.min(axis=(1, 2, 3), keepdims=True), images.max(axis=(1, 2, 3),
                                                                           keepdims=True)
        gamma = np.exp(rng.normal(0.0, 0.15, (len(images), 1, 1, 1)))
        unit = ((images - low) / np.maximum(high - low, 1e-6)) ** gamma
        images = low + unit * (high - low)
        images = images + rng.uniform(0.0, 0.03) * rng.standard_normal(images.shape)
        return np.ascontiguousarray(np.concatenate([images, patch[self.image_channels:]]),
                                    dtype=np.float32)


def thick_slices(patch: np.ndarray, image_channels: int, axis: int, thickness_vox: float,
                  offset_vox: float) -> np.ndarray:
    """``patch`` (channels first) as an acquisition with slices ``thickness_vox`` thick along
    ``axis`` gives it once resampled onto the patch grid: the first ``image_channels``
    averaged over the slice profile (Gaussian, FWHM = thickness), sampled at the slice centres
    and interpolated back linearly; the later channels (the lesion mask) sampled and brought
    back by nearest neighbour, blocky as a mask drawn on thick slices is. (Deep-PRL v7, trained
    with a blur alone, lost 3.5 points of ROC AUC on its test cases resliced at 2 mm; 26 more
    minutes with this augmentation did not win them back, docs/rim.md.)"""
    size = patch.shape[axis]
    centres = np.arange(offset_vox - thickness_vox, size + thickness_vox, thickness_vox)

    def through_slices(volume: np.ndarray, nearest: bool) -> np.ndarray:
        operator = (interpolation_weights(np.arange(size), centres, nearest)
                    @ interpolation_weights(centres, np.arange(size), nearest))
        return np.moveaxis(np.tensordot(operator, np.moveaxis(volume, axis, 0), axes=1),
                           0, axis).astype(np.float32)

    blurred = ndimage.gaussian_filter1d(patch[:image_channels], thickness_vox / FWHM_PER_SIGMA,
                                        axis=axis)
    return np.concatenate([through_slices(blurred, nearest=False),
                           through_slices(patch[image_channels:], nearest=True)])


def interpolation_weights(positions: np.ndarray, grid: np.ndarray, nearest: bool) -> np.ndarray:
    """(len(positions), len(grid)) weights that interpolate values on the uniform ``grid`` at
    ``positions`` (linearly, or nearest neighbour), clamped at the grid's ends."""
    index = np.clip((positions - grid[0]) / (grid[1] - grid[0]), 0, len(grid) - 1)
    lower = np.rint(index).astype(int) if nearest else np.floor(index).astype(int)
    fraction = 0.0 if nearest else index - lower
    upper = np.minimum(lower + 1, len(grid) - 1)
    weights = np.zeros((len(positions), len(grid)))
    rows = np.arange(len(positions))
    np.add.at(weights, (rows, lower), 1 - fraction)
    np.add.at(weights, (rows, upper), fraction)
    return weights
