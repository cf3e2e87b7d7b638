"""CLAIMS: cortical lesions on 7 T MP2RAGE (optionally with T2*), in two classes.

Inputs → optional contrasts registered to the MP2RAGE → every contrast resampled onto an
axis-aligned grid at the bundle's spacing → z-score of the non-zero voxels → Gaussian-blended
sliding-window U-Net → class probabilities resampled back onto the MP2RAGE's own grid →
voxels whose p(lesion) = 1 − p(background) reaches the bundle's threshold, split into
components, each classed by the majority of its voxels. Components that touch the
white-matter lesion mask, when one is given, are kept but flagged and not counted as cortical
(CLAIMS does not count them as false positives either: leukocortical and juxtacortical are hard
to tell apart).

`geometry.axis_aligned_grid` and `model_channels` are also the training data's preprocessing,
so training and inference replay the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

from ..bundles import ModelBundle
from ..devices import choose_device
from ..geometry import axis_aligned_grid, resample_like
from ..imageio import CORTICAL_REGION, array_to_image, load_image
from ..inference import predict_sliding_window
from ..labels import (
    CLAIMS_MIN_VOLUMES_UL,
    CORTICAL_CLASSES,
    CORTICAL_SEGMENTS,
    INTRACORTICAL_SUBPIAL,
    LEUKOCORTICAL,
    OVERLAPS_WM_LESION,
    WM_LESION_SEGMENT,
)
from ..lesions import label_components, lesion_measures
from ..masks import checked_mask, load_mask
from ..networks import load_network
from ..preprocessing import background_at_zero, bring_to_reference, zscore
from ..progress import Progress
from ..results import LesionResult, Segment
from ..timing import StageTimer
from ..uni_background import noise_background

MIN_VOLUME_CHOICES_UL = CLAIMS_MIN_VOLUMES_UL
COARSEST_RELIABLE_SPACING_MM = 1.2
NO_WM_LESIONS_WARNING = ("no --wm-lesions: white-matter lesions the model takes for cortical ones "
                         "are counted as cortical; give a white-matter lesion mask (e.g. from "
                         "mslesionai wm) to flag them")
SPACING_TOLERANCE_MM = 1e-3   # a header's float rounding (1.2000000477) is not coarser
CONNECTIVITY = 18
COLUMNS = ["lesion_id", "class", "volume_ul", "voxels", "centroid_r", "centroid_a",
           "centroid_s", "probability", OVERLAPS_WM_LESION]
# Label values in the .seg.nrrd: the two CLAIMS classes, then lesions flagged as white matter.
CLASS_VALUES = {name: value for value, name in enumerate(CORTICAL_CLASSES, start=1)}
WM_OVERLAP_VALUE = len(CORTICAL_CLASSES) + 1


@dataclass(frozen=True)
class CorticalInputs:
    """Image files; only the MP2RAGE (uniform image) is required."""

    mp2rage: Path
    t2star_gre: Path | None = None
    t2star_epi: Path | None = None
    wm_lesions: Path | None = None

    def contrasts(self) -> dict[str, Path]:
        """The intensity images given, by bundle input name."""
        named = {"mp2rage": self.mp2rage, "t2star_gre": self.t2star_gre,
                 "t2star_epi": self.t2star_epi}
        return {name: Path(path) for name, path in named.items() if path is not None}


@dataclass(frozen=True)
class CorticalOptions:
    min_volume_ul: float = 1.0
    device: str = "auto"


@dataclass
class CorticalLesions:
    """Post-processed lesions: an instance map (ids 1..n), the p(lesion) map it was thresholded
    on, and, per id (index id - 1), the class and whether the lesion touches the white-matter
    lesion mask."""

    lesion_ids: np.ndarray
    probability: np.ndarray
    classes: list[str]
    overlaps_wm: list[bool]


def load_contrasts(inputs: CorticalInputs, warnings: list[str],
                   ) -> tuple[dict[str, sitk.Image], sitk.Image | None]:
    """Every given image read, checked and brought onto the MP2RAGE's grid (T2* rigidly
    registered; the WM-lesion mask only resampled, nearest neighbour). Images that do not
    overlap the MP2RAGE are refused before any long work."""
    mp2rage = load_image(inputs.mp2rage, "--mp2rage", field_of_view=CORTICAL_REGION)
    images = {"mp2rage": mp2rage}
    for name, path in inputs.contrasts().items():
        if name != "mp2rage":
            option = "--" + name.replace("_", "-")
            images[name] = bring_to_reference(load_image(path, option), option, mp2rage,
                                              "--mp2rage")
    wm_mask = None
    if inputs.wm_lesions is not None:
        wm_mask = checked_mask(load_mask(inputs.wm_lesions, "--wm-lesions"), "--wm-lesions",
                               mp2rage, "--mp2rage", warnings)
        wm_mask = bring_to_reference(wm_mask, "--wm-lesions", mp2rage, "--mp2rage",
                                     register=False, interpolation="nearest")
    return images, wm_mask


def model_channels(images: dict[str, sitk.Image], input_names: list[str],
                   grid: sitk.Image) -> np.ndarray:
    """(C, z, y, x) float32 network input on ``grid``: each contrast, its background brought
    to 0 (`background_at_zero`: a skull-stripped file with an intensity offset would otherwise
    count its background as head), linearly resampled and z-scored over its non-zero voxels;
    a contrast not given is a channel of zeros (the network was trained with such inputs
    dropped)."""
    channels = []
    for name in input_names:
        if name not in images:
            channels.append(np.zeros(grid.GetSize()[::-1], np.float32))
            continue
        voxels = sitk.GetArrayFromImage(resample_like(background_at_zero(images[name]), grid))
        channels.append(zscore(voxels, voxels != 0))
    return np.stack(channels)


def image_box(channels: np.ndarray, margin_voxels: int = 8) -> tuple[slice, ...]:
    """The bounding box of the non-zero input voxels, with a margin: an oblique or skull-stripped
    image leaves much of the axis-aligned grid empty, and the network need not visit it."""
    boxes = ndimage.find_objects(np.any(channels != 0, axis=0).astype(np.uint8))
    if not boxes:
        return tuple(slice(0, size) for size in channels.shape[1:])
    return tuple(slice(max(b.start - margin_voxels, 0), min(b.stop + margin_voxels, size))
                 for b, size in zip(boxes[0], channels.shape[1:], strict=True))


def class_probabilities(network: torch.nn.Module, channels: np.ndarray, bundle: ModelBundle,
                        device: torch.device, warnings: list[str],
                        progress: Progress) -> np.ndarray:
    """Softmax probabilities (classes, z, y, x) on the working grid; background outside the
    image's box."""
    inference = bundle.metadata["inference"]
    box = (slice(None), *image_box(channels))
    logits = predict_sliding_window(network, torch.from_numpy(channels[box])[None],
                                    inference["roi_size"], device, warnings, progress,
                                    batch_size=inference.get("batch_size", 1),
                                    overlap=inference["overlap"])
    probabilities = np.zeros((logits.shape[1], *channels.shape[1:]), np.float32)
    probabilities[0] = 1.0
    probabilities[box] = torch.softmax(logits.float(), dim=1)[0].numpy()
    return probabilities


def to_reference(probabilities: np.ndarray, grid: sitk.Image,
                 reference: sitk.Image) -> np.ndarray:
    """The lesion-class probabilities (classes 1.., z, y, x) resampled onto the reference grid;
    0 where the reference lies outside the working grid."""
    return np.stack([sitk.GetArrayFromImage(resample_like(array_to_image(p, grid), reference))
                     for p in probabilities[1:]])


def lesion_probabilities(images: dict[str, sitk.Image], network: torch.nn.Module,
                         bundle: ModelBundle, device: torch.device, warnings: list[str],
                         progress: Progress, timer: StageTimer) -> tuple[np.ndarray, ...]:
    """p(leukocortical) and p(intracortical/subpial) on the MP2RAGE's own grid."""
    reference = images["mp2rage"]
    with timer.stage("preprocessing"):
        grid = axis_aligned_grid(reference, tuple(bundle.metadata["spacing_mm"]))
        channels = model_channels(images, bundle.input_names, grid)
    with timer.stage("inference"):
        probabilities = class_probabilities(network, channels, bundle, device, warnings,
                                            progress.sub(0.05, 0.95))
    with timer.stage("resampling"):
        return tuple(to_reference(probabilities, grid, reference))


def find_lesions(leukocortical: np.ndarray, intracortical_subpial: np.ndarray,
                 spacing_mm_zyx: tuple[float, ...], min_volume_ul: float = 1.0,
                 threshold: float = 0.5, wm_mask: np.ndarray | None = None,
                 background: np.ndarray | None = None) -> CorticalLesions:
    """CLAIMS's post-processing of the two class-probability maps (numpy z, y, x).

    A voxel is lesion when its p(lesion) = p(leukocortical) + p(intracortical/subpial) reaches
    ``threshold``. (CLAIMS's code counts p(intracortical/subpial) half, against 0.5: with any
    threshold above 0.5 no intracortical or subpial lesion could ever be found.) No voxel of
    ``background`` (outside the head) is lesion. Components smaller than ``min_volume_ul`` are
    dropped; each lesion takes the class most of its voxels prefer (a tie goes to
    intracortical/subpial).
    """
    probability = leukocortical + intracortical_subpial
    if background is not None:
        probability = np.where(background, 0.0, probability)
    lesion_ids = label_components(probability >= threshold, CONNECTIVITY, min_volume_ul,
                                  spacing_mm_zyx)
    count = int(lesion_ids.max(initial=0))
    inside = lesion_ids > 0
    ids = lesion_ids[inside]
    voxels = np.bincount(ids, minlength=count + 1)
    leuko_votes = np.bincount(ids, weights=leukocortical[inside] > intracortical_subpial[inside],
                              minlength=count + 1)
    classes = [LEUKOCORTICAL if 2 * leuko_votes[i] > voxels[i] else INTRACORTICAL_SUBPIAL
               for i in range(1, count + 1)]
    touching = np.zeros(count + 1, bool)
    if wm_mask is not None:
        touching[np.unique(lesion_ids[inside & (wm_mask != 0)])] = True
    return CorticalLesions(lesion_ids, probability, classes, touching[1:].tolist())


def segments(with_wm_overlap: bool) -> list[Segment]:
    """The .seg.nrrd's segments: the two CLAIMS classes (and flagged lesions, when flagged)."""
    result = [Segment(CLASS_VALUES[name], *CORTICAL_SEGMENTS[name]) for name in CORTICAL_CLASSES]
    if with_wm_overlap:
        result.append(Segment(WM_OVERLAP_VALUE, *WM_LESION_SEGMENT))
    return result


def class_labelmap(lesions: CorticalLesions) -> np.ndarray:
    """Segment label per voxel: the lesion's class value, or `WM_OVERLAP_VALUE` if flagged."""
    value_of_id = np.zeros(len(lesions.classes) + 1, np.uint8)
    for index, (name, flagged) in enumerate(zip(lesions.classes, lesions.overlaps_wm,
                                                strict=True), start=1):
        value_of_id[index] = WM_OVERLAP_VALUE if flagged else CLASS_VALUES[name]
    return value_of_id[lesions.lesion_ids]


def lesion_rows(lesions: CorticalLesions, reference: sitk.Image) -> list[dict[str, Any]]:
    """The lesion table: measures in RAS, class, mean lesion probability, WM-overlap flag."""
    rows = lesion_measures(lesions.lesion_ids, reference, probability=lesions.probability)
    for row in rows:
        index = row["lesion_id"] - 1
        row["class"] = lesions.classes[index]
        row[OVERLAPS_WM_LESION] = int(lesions.overlaps_wm[index])
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and volumes per class; lesions touching white-matter lesions counted apart."""
    cortical = [row for row in rows if not row[OVERLAPS_WM_LESION]]
    counts = {name: sum(row["class"] == name for row in cortical) for name in CORTICAL_CLASSES}
    volumes = {name: round(sum(row["volume_ul"] for row in cortical if row["class"] == name), 3)
               for name in CORTICAL_CLASSES}
    return {"counts": {**counts, "cortical_total": len(cortical),
                       "overlapping_wm_lesions": len(rows) - len(cortical)},
            "volumes_ul": {**volumes, "cortical_total": round(sum(volumes.values()), 3)}}


def input_warnings(images: dict[str, sitk.Image], bundle: ModelBundle) -> list[str]:
    """Resolution and unused-contrast warnings for summary.json."""
    warnings = []
    spacing = np.array(images["mp2rage"].GetSpacing())
    if spacing.max() > COARSEST_RELIABLE_SPACING_MM + SPACING_TOLERANCE_MM:
        warnings.append(
            f"--mp2rage: voxel size {np.round(spacing, 2).tolist()} mm is coarser than "
            f"{COARSEST_RELIABLE_SPACING_MM} mm; cortical lesion detection drops steeply with "
            "resolution (CLAIMS), treat these results with caution")
    return warnings + bundle.unused_input_warnings(images)


def uni_noise(mp2rage: sitk.Image, warnings: list[str]) -> np.ndarray:
    """The MP2RAGE's salt-and-pepper background (`uni_background`), with a warning when there is
    one: no lesion is looked for there."""
    background = noise_background(sitk.GetArrayFromImage(mp2rage))
    if background.any():
        warnings.append(f"--mp2rage: {background.mean():.0%} of the field of view is "
                        "salt-and-pepper background (a UNI image that is not skull-stripped); "
                        "no lesion is looked for there")
    return background


def run(inputs: CorticalInputs, bundle: ModelBundle, options: CorticalOptions,
        progress: Progress) -> LesionResult:
    """The whole pipeline; the result is in the MP2RAGE's geometry."""
    timer, warnings = StageTimer(), []
    with timer.stage("loading"):
        images, wm_mask_image = load_contrasts(inputs, warnings)
        device = choose_device(options.device)
        network = load_network(bundle, device)
    reference = images["mp2rage"]
    warnings += input_warnings(images, bundle)
    warnings += [NO_WM_LESIONS_WARNING] if inputs.wm_lesions is None else []
    progress.update(0.1, "inputs loaded")
    leuko, intra = lesion_probabilities(images, network, bundle, device, warnings,
                                        progress.sub(0.1, 0.9), timer)
    with timer.stage("postprocessing"):
        wm_mask = None if wm_mask_image is None else sitk.GetArrayFromImage(wm_mask_image)
        post = bundle.metadata["postprocessing"]
        background = uni_noise(reference, warnings)
        lesions = find_lesions(leuko, intra, reference.GetSpacing()[::-1], options.min_volume_ul,
                               post["threshold"], wm_mask, background)
        rows = lesion_rows(lesions, reference)
    progress.update(1.0, f"{len(rows)} lesions")
    summary = {
        "pipeline": "cortical",
        **summarise(rows),
        "min_volume_ul": options.min_volume_ul,
        "inputs": {name: str(path) for name, path in inputs.contrasts().items()}
        | ({"wm_lesions": str(inputs.wm_lesions)} if inputs.wm_lesions else {}),
        "mp2rage_spacing_mm": list(reference.GetSpacing()),
        "model_spacing_mm": bundle.metadata["spacing_mm"],
        "model": bundle.describe(),
        "device": str(device),
        "timings_s": timer.as_dict(),
        "warnings": warnings,
    }
    return LesionResult("cortical", reference, lesions.lesion_ids, class_labelmap(lesions),
                        segments(wm_mask is not None), COLUMNS, rows, summary)
