"""Patches around rim-lesion candidates, sampled in physical space.

A patch is a cube of ``size_vox``³ voxels of ``spacing_mm`` on a grid aligned with the patient
axes (L, P, S), centred on a lesion's centre of mass, whatever the image's own spacing and
direction: oblique or anisotropic images give the same patches as the model was trained on.
Numpy order inside a patch is (S, P, L), like an axial ITK image's (z, y, x). Training samples
the same grids through random affine maps (rotation, scaling) as augmentation, and stores
patches a few voxels larger than the model's so that the centre can be shifted cheaply.

Intensities are scaled per patch and channel from robust extremes (the 5th and 95th
percentiles, clipped) to [-1, 1] (RimNet) or [0, 1] (Deep-PRL): with the plain minimum and
maximum, the veins in a phase patch set the range and squash a faint rim into a few grey
levels. A mask channel (Deep-PRL) is a lesion mask dilated in the patch grid: every lesion
of the mask (the paper's dilated lesion mask), or only the candidate the patch is centred on,
which tells a lesion from the neighbours it touches (``PatchSpec.mask_lesions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

MASK_CHANNEL = "lesion_mask"
MASK_LESIONS = ("all", "candidate")


@dataclass(frozen=True)
class PatchSpec:
    """How a bundle's patches are made (stored as ``metadata["patches"]``)."""

    size_vox: int = 28
    spacing_mm: float = 0.75
    value_range: tuple[float, float] = (-1.0, 1.0)
    clip_percentiles: tuple[float, float] = (5.0, 95.0)
    mask_dilation_vox: int = 0
    mask_lesions: str = "all"   # what the mask channel holds: every lesion, or the candidate

    def __post_init__(self) -> None:
        if self.mask_lesions not in MASK_LESIONS:
            raise ValueError(f"patches: mask_lesions must be one of {', '.join(MASK_LESIONS)}, "
                             f"not {self.mask_lesions!r}")

    @classmethod
    def from_metadata(cls, metadata: dict) -> PatchSpec:
        values = dict(metadata)
        for key in ("value_range", "clip_percentiles"):
            values[key] = tuple(values[key])
        return cls(**values)

    def to_metadata(self) -> dict:
        return asdict(self)


def lps_to_index_zyx(image: sitk.Image, points_lps: np.ndarray) -> np.ndarray:
    """Physical LPS points (..., 3) to continuous voxel indices in numpy (z, y, x) order."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    index_to_lps = direction * np.array(image.GetSpacing())
    index_xyz = (np.asarray(points_lps) - np.array(image.GetOrigin())) @ np.linalg.inv(
        index_to_lps).T
    return index_xyz[..., ::-1]


def grid_offsets_mm(size_vox: int, spacing_mm: float) -> np.ndarray:
    """(size, size, size, 3) LPS offsets of a patch's voxel centres from the patch centre."""
    axis = (np.arange(size_vox) - (size_vox - 1) / 2.0) * spacing_mm
    s, p, lat = np.meshgrid(axis, axis, axis, indexing="ij")
    return np.stack([lat, p, s], axis=-1)


def patch_indices(image: sitk.Image, centres_lps: np.ndarray, size_vox: int, spacing_mm: float,
                  affines: np.ndarray | None = None) -> np.ndarray:
    """Continuous (z, y, x) indices in ``image`` of each patch's voxels: (N, 3, s³).

    ``affines`` (N, 3, 3), when given, map each patch's offsets (rotation, scaling)."""
    centres_lps = np.atleast_2d(np.asarray(centres_lps, dtype=float))
    offsets = grid_offsets_mm(size_vox, spacing_mm).reshape(-1, 3)
    if affines is None:
        points = centres_lps[:, None, :] + offsets[None]
    else:
        points = centres_lps[:, None, :] + offsets @ np.swapaxes(affines, 1, 2)
    return np.swapaxes(lps_to_index_zyx(image, points), 1, 2)


def sample_patches(volumes: np.ndarray, image: sitk.Image, centres_lps: np.ndarray,
                   size_vox: int, spacing_mm: float,
                   affines: np.ndarray | None = None, order: int = 1) -> np.ndarray:
    """Patches (N, C, s, s, s) of ``volumes`` (C, z, y, x, on ``image``'s grid) at each centre
    (``affines`` as in `patch_indices`). Outside the image, the nearest edge value is used."""
    index = patch_indices(image, centres_lps, size_vox, spacing_mm, affines)
    flat = np.swapaxes(index, 0, 1).reshape(3, -1)
    patches = np.stack([ndimage.map_coordinates(volume, flat, order=order, mode="nearest")
                        for volume in volumes])
    return patches.reshape(len(volumes), len(index), *(size_vox,) * 3).swapaxes(0, 1)


def sample_own_lesion(labels: np.ndarray, lesion_ids: Sequence[int], image: sitk.Image,
                      centres_lps: np.ndarray, size_vox: int, spacing_mm: float,
                      affines: np.ndarray | None = None) -> np.ndarray:
    """(N, s, s, s): each patch's own lesion (``lesion_ids``, one per centre, 0 for none) of
    the integer labelmap ``labels``, sampled as `sample_patches` samples a 0/1 volume of that
    lesion alone.

    Each lesion is sampled from its bounding box grown by one voxel: beyond that margin the
    0/1 volume is 0 (or, at the image's edge, the box's edge is the image's), so the result is
    the whole volume's, without making one per lesion."""
    index = patch_indices(image, centres_lps, size_vox, spacing_mm, affines)
    if len(lesion_ids) != len(index):
        raise ValueError(f"{len(lesion_ids)} lesion ids for {len(index)} patch centres")
    boxes = ndimage.find_objects(labels)
    sampled = np.zeros((len(index), index.shape[2]), np.float32)   # (patch, voxel)
    for patch, lesion_id in enumerate(lesion_ids):
        if not 0 < lesion_id <= len(boxes) or boxes[lesion_id - 1] is None:
            continue
        start = [max(side.start - 1, 0) for side in boxes[lesion_id - 1]]
        stop = [min(side.stop + 1, edge)
                for side, edge in zip(boxes[lesion_id - 1], labels.shape, strict=True)]
        own = labels[tuple(map(slice, start, stop))] == lesion_id
        sampled[patch] = ndimage.map_coordinates(own.astype(np.float32),
                                                 index[patch] - np.array(start)[:, None],
                                                 order=1, mode="nearest")
    return sampled.reshape(-1, *(size_vox,) * 3)


def scale_patches(patches: np.ndarray, spec: PatchSpec) -> np.ndarray:
    """Each patch and channel linearly from its robust extremes to ``spec.value_range``."""
    if len(patches) == 0:
        return patches.astype(np.float32)
    low, high = np.percentile(patches, spec.clip_percentiles, axis=(2, 3, 4), keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    unit = np.clip((patches - low) / span, 0.0, 1.0)
    out_low, out_high = spec.value_range
    return (out_low + unit * (out_high - out_low)).astype(np.float32)


def mask_channel(mask_patches: np.ndarray, dilation_vox: int) -> np.ndarray:
    """Sampled lesion-mask patches (N, s, s, s) as a binary channel dilated in the patch grid."""
    binary = mask_patches > 0.5
    if dilation_vox > 0:
        structure = ndimage.generate_binary_structure(4, 1)
        structure[0] = structure[2] = False
        binary = ndimage.binary_dilation(binary, structure, iterations=dilation_vox)
    return binary.astype(np.float32)[:, None]


def make_patches(images: np.ndarray, lesion_labels: np.ndarray, reference: sitk.Image,
                 centres_lps: np.ndarray, lesion_ids: Sequence[int], spec: PatchSpec,
                 size_vox: int | None = None, affines: np.ndarray | None = None) -> np.ndarray:
    """Model-ready patches (N, C, s, s, s): the scaled image channels, then the dilated mask
    channel when the spec asks for one (``spec.mask_dilation_vox`` > 0).

    ``images`` (C, z, y, x) and the lesion labelmap ``lesion_labels`` (z, y, x) lie on
    ``reference``'s grid; patch n is centred on lesion ``lesion_ids[n]`` (0: none), which the
    mask channel holds alone if ``spec.mask_lesions`` is "candidate", else with every other
    lesion of the labelmap. ``size_vox`` overrides the spec's size (training stores larger
    patches).
    """
    size_vox = size_vox or spec.size_vox
    patches = scale_patches(sample_patches(images, reference, centres_lps, size_vox,
                                           spec.spacing_mm, affines), spec)
    if spec.mask_dilation_vox <= 0:
        return patches
    if spec.mask_lesions == "candidate":
        mask = sample_own_lesion(lesion_labels, lesion_ids, reference, centres_lps, size_vox,
                                 spec.spacing_mm, affines)
    else:
        mask = sample_patches((lesion_labels > 0)[None].astype(np.float32), reference,
                              centres_lps, size_vox, spec.spacing_mm, affines)[:, 0]
    return np.concatenate([patches, mask_channel(mask, spec.mask_dilation_vox)], axis=1)


def centre_crop(patches: np.ndarray, size_vox: int,
                shift_vox: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """The ``size_vox``³ crop of larger patches, its centre moved by ``shift_vox`` (z, y, x)."""
    starts = [(edge - size_vox) // 2 + shift
              for edge, shift in zip(patches.shape[-3:], shift_vox, strict=True)]
    return patches[..., starts[0]:starts[0] + size_vox, starts[1]:starts[1] + size_vox,
                   starts[2]:starts[2] + size_vox]
