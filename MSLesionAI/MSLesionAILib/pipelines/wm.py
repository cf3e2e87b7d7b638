"""White-matter lesions and brain tissue from FLAIR (T1, T2 optional), DeepSCAN-style.

The plan, every setting read from the bundle's metadata (training replays `prepare_inputs`):

1. T1/T2 are brought onto FLAIR's grid (rigid mutual-information registration when they are not
   already on it; padded with their own background where their field of view ends); an image
   that does not overlap FLAIR is refused.
2. Every contrast, its background brought to 0 (`preprocessing.background_at_zero`: files with
   an intensity offset or already normalised), is resampled onto the model's canonical grid:
   axis-aligned with the patient axes (identity LPS direction, so numpy axes are axial, coronal
   and sagittal and x is left-right) at the bundle's spacing, covering FLAIR's field of view,
   cropped to the brain.
3. Each contrast is z-scored inside the brain mask, after N4 bias-field correction inside it
   when the bundle was trained so (`bias_correction`). Without a mask the statistics come from
   an intensity foreground mask (`preprocessing.foreground_mask`), and the brain is then the
   network's own tissue prediction (tissue ≠ background); the model was trained both ways.
   Missing contrasts are zeros (the model was trained with input-channel dropout).
4. The network runs along the three axes and on a left-right mirrored copy (logits averaged;
   with thick FLAIR slices the pass in the acquisition plane weighs more, `slice_plane_weights`).
5. Lesion probability and uncertainty go back to FLAIR's grid linearly, tissue labels by
   nearest neighbour; lesions are the thresholded probability inside the brain, split into
   connected components, measured and located from the tissue labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch

from ..bundles import ModelBundle
from ..errors import BundleError, InputError
from ..geometry import axis_aligned_grid, resample_like, slice_anisotropy, slice_direction_lps
from ..imageio import array_to_image
from ..labels import TISSUE_COLORS, TISSUE_NAMES, WM_LESION_SEGMENT, WM_LOCATIONS, Tissue
from ..lesions import label_components, lesion_measures, wm_lesion_locations
from ..masks import checked_mask
from ..networks import load_network
from ..networks.deepscan import predict_volume, slice_plane_weights
from ..preprocessing import (
    ZSCORE_CLIP_PERCENTILES,
    background_at_zero,
    bias_correct,
    bring_to_reference,
    foreground_mask,
    spacing_warning,
    zscore,
)
from ..progress import Progress
from ..results import LesionResult, Segment
from ..timing import StageTimer

NAME = "wm"
LESION_VALUE = max(Tissue) + 1  # the lesion's value in wm.seg.nrrd, above the tissue values
CROP_MARGIN_VOXELS = 4
# Brain on a face of the field of view: a cut, not a graze (a 2 mm cap of a 70 mm brain is
# 9 cm²; the brainstem leaving an axial scan 1-4 cm²).
MIN_CUT_AREA_MM2 = 1000.0
LPS_TO_RAS = np.array([-1.0, -1.0, 1.0])
RAS_SIDES = (("left", "right"), ("posterior", "anterior"), ("inferior", "superior"))
MIN_BRAIN_SPAN_MM = 15.0   # narrower than any brain, even a slab of one: a few bright voxels
MIN_VOLUME_UL = 3.0     # default smallest lesion and connectivity, as MSSEG-2016
CONNECTIVITY = 18
PASS_NAMES = ("axial", "coronal", "sagittal")   # the canonical grid's numpy axes (z, y, x)
# The figures name their models, so the warning stays true whichever model --model picks
# (benchmark/RESULTS.md; docs/wm.md).
FLAIR_ONLY_WARNING = ("FLAIR only: without T1 and T2 fewer lesions are found and more false ones "
                      "(on the real sample case lesion F1 0.25 with the FLAIR-only model "
                      "wm-deepscan-flair, 0.48 with wm-deepscan and all three contrasts); give "
                      "--t1 and --t2 when you have them")
COLUMNS = ["lesion_id", "class", "volume_ul", "voxels", "centroid_r", "centroid_a",
           "centroid_s", "location", "probability", "uncertainty"]


@dataclass
class ModelInput:
    """What the network sees: z-scored contrasts (c, z, y, x) on ``grid`` and the mask used."""

    channels: np.ndarray
    normalisation_mask: np.ndarray
    grid: sitk.Image


def _crop_to(mask: np.ndarray, grid: sitk.Image) -> tuple[tuple[slice, ...], sitk.Image]:
    """The mask's bounding box plus a margin, as numpy slices and as the matching sub-grid."""
    if not mask.any():
        box = tuple(slice(0, n) for n in mask.shape)
    else:
        nonzero = np.nonzero(mask)
        box = tuple(slice(max(int(i.min()) - CROP_MARGIN_VOXELS, 0),
                          min(int(i.max()) + CROP_MARGIN_VOXELS + 1, n))
                    for i, n in zip(nonzero, mask.shape, strict=True))
    z, y, x = box
    return box, grid[x, y, z]


def _refuse_small_brain(mask: np.ndarray, grid: sitk.Image, name: str) -> None:
    """One line for an image whose brain (or foreground) is a few voxels, which would reach
    the network as slices too small for it."""
    nonzero = np.nonzero(mask)
    span_mm = [(int(i.max()) - int(i.min()) + 1) * spacing if i.size else 0.0
               for i, spacing in zip(nonzero, grid.GetSpacing()[::-1], strict=True)]
    if min(span_mm) < MIN_BRAIN_SPAN_MM:
        spans = " × ".join(f"{span:.0f}" for span in span_mm[::-1])
        raise InputError(f"{name}: the brain found spans only {spans} mm (x × y × z); expected "
                         f"a brain image (at least {MIN_BRAIN_SPAN_MM:.0f} mm each way)")


def prepare_inputs(contrasts: dict[str, sitk.Image | None], brain_mask: sitk.Image | None,
                   metadata: dict[str, Any]) -> ModelInput:
    """Resample, crop and normalise the contrasts (the bundle's input order) as trained.

    ``contrasts`` must hold FLAIR; the others may be None. Images may have any geometry.
    """
    grid = axis_aligned_grid(contrasts["flair"], tuple(metadata["spacing_mm"]))
    images = {name: background_at_zero(image) for name, image in contrasts.items()
              if image is not None}
    arrays = {name: sitk.GetArrayFromImage(resample_like(image, grid, "linear"))
              for name, image in images.items()}
    if brain_mask is not None:
        mask = sitk.GetArrayFromImage(resample_like(brain_mask != 0, grid, "nearest")) > 0
    else:
        mask = foreground_mask(arrays["flair"], air=sitk.GetArrayFromImage(images["flair"]))
    _refuse_small_brain(mask, grid, "--brain-mask" if brain_mask is not None else "--flair")
    box, cropped_grid = _crop_to(mask, grid)
    mask = mask[box]
    clip_percentiles = zscore_clip_percentiles(metadata)
    channels = np.zeros((len(metadata["inputs"]), *mask.shape), np.float32)
    for index, spec in enumerate(metadata["inputs"]):
        if spec["name"] in arrays:
            voxels = arrays[spec["name"]][box]
            if corrects_bias(metadata):
                voxels = without_bias_field(voxels, mask, cropped_grid)
            channels[index] = zscore(voxels, mask, clip_percentiles)
    return ModelInput(channels, mask, cropped_grid)


def zscore_clip_percentiles(metadata: dict[str, Any]) -> tuple[float, float]:
    """The bundle's normalisation: a z-score inside the mask after clipping to these
    percentiles (bundles without the block were trained with the default ones)."""
    normalisation = metadata.get("normalisation", {})
    if normalisation.get("method", "zscore") != "zscore":
        raise BundleError(f"model {metadata.get('id')}: normalisation "
                         f"'{normalisation['method']}' is not one this version can apply "
                         "(zscore)")
    low, high = normalisation.get("clip_percentiles", ZSCORE_CLIP_PERCENTILES)
    return float(low), float(high)


def corrects_bias(metadata: dict[str, Any]) -> bool:
    """Whether the bundle was trained on N4-corrected contrasts (bundles without the key were
    not: the benchmark's cached baselines predate it)."""
    return bool(metadata.get("bias_correction", False))


def without_bias_field(voxels: np.ndarray, mask: np.ndarray, grid: sitk.Image) -> np.ndarray:
    """`preprocessing.bias_correct` of one contrast on ``grid``, inside ``mask``."""
    image = array_to_image(voxels.astype(np.float32), grid)
    return sitk.GetArrayFromImage(bias_correct(image, mask))


def _to_reference(voxels: np.ndarray, grid: sitk.Image, reference: sitk.Image,
                  interpolation: str) -> np.ndarray:
    return sitk.GetArrayFromImage(resample_like(array_to_image(voxels, grid), reference,
                                                interpolation))


def _segments() -> list[Segment]:
    """The lesion first: the top row of Slicer's segment list, also for wm.seg.nrrd loaded
    without the module (one labelmap layer: each voxel is in one segment, whatever the order)."""
    lesion_name, lesion_color = WM_LESION_SEGMENT
    return ([Segment(int(LESION_VALUE), lesion_name, lesion_color)]
            + [Segment(int(t), TISSUE_NAMES[t], TISSUE_COLORS[t]) for t in TISSUE_NAMES])


def _summarise_locations(rows: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {location: 0 for location in WM_LOCATIONS}
    volumes = {location: 0.0 for location in WM_LOCATIONS}
    for row in rows:
        counts[row["location"]] += 1
        volumes[row["location"]] += row["volume_ul"]
    return {"lesion_count": len(rows),
            "total_lesion_volume_ul": round(sum(volumes.values()), 3),
            "count_by_location": counts,
            "volume_ul_by_location": {k: round(v, 3) for k, v in volumes.items()}}


@dataclass
class LesionMaps:
    """The network's output on FLAIR's grid, before any threshold."""

    probability: np.ndarray     # lesion probability (z, y, x)
    uncertainty: np.ndarray     # spread of the passes' lesion probabilities
    tissue: np.ndarray          # `labels.Tissue`, background outside the brain
    brain: np.ndarray           # where lesions may be: the given mask, else tissue != background
    warnings: list[str]
    pass_weights: dict[str, float]  # axial, coronal, sagittal (`slice_plane_weights`)


def predict_maps(flair: sitk.Image, t1: sitk.Image | None = None, t2: sitk.Image | None = None,
                 brain_mask: sitk.Image | None = None, *, bundle: ModelBundle,
                 device: torch.device, progress: Progress | None = None,
                 timer: StageTimer | None = None) -> LesionMaps:
    """Steps 1-5 up to the threshold: lesion probability, uncertainty and tissue on FLAIR."""
    progress, timer = progress or Progress(), timer or StageTimer()
    metadata, warnings = bundle.metadata, []
    with timer.stage("registration"):
        progress.update(0.0, "bringing T1/T2 to FLAIR")
        others = {name: bring_to_reference(image, f"--{name}", flair, "--flair")
                  for name, image in (("t1", t1), ("t2", t2)) if image is not None}
        if brain_mask is not None:
            brain_mask = bring_to_reference(
                checked_mask(brain_mask, "--brain-mask", flair, "--flair", warnings, brain=True),
                "--brain-mask", flair, "--flair", register=False, interpolation="nearest")
    with timer.stage("preprocessing"):
        progress.update(0.1, "resampling, bias-field correcting and normalising"
                        if corrects_bias(metadata) else "resampling and normalising")
        given = {"--flair": flair, "--t1": t1, "--t2": t2}  # as acquired, before resampling
        warnings += [warning for name, image in given.items() if image is not None and (
            warning := spacing_warning(image, name, tuple(metadata["spacing_mm"])))]
        warnings += [FLAIR_ONLY_WARNING] if t1 is None and t2 is None else []
        model_input = prepare_inputs({"flair": flair, **others}, brain_mask, metadata)
    with timer.stage("inference"):
        network = load_network(bundle, device)
        weights = slice_plane_weights(slice_direction_lps(flair), slice_anisotropy(flair))
        prediction = predict_volume(
            network, torch.from_numpy(model_input.channels), device,
            axes=metadata["inference"]["axes"], mirror=metadata["inference"]["mirror"],
            progress=progress.sub(0.15, 0.85), axis_weights=weights)
    with timer.stage("postprocessing"):
        progress.update(0.86, "lesions and tissue on FLAIR's grid")
        grid = model_input.grid
        tissue = _to_reference(prediction.tissue_logits.argmax(0).numpy().astype(np.uint8),
                               grid, flair, "nearest")
        if brain_mask is not None:
            brain = sitk.GetArrayFromImage(brain_mask) > 0
            tissue[~brain] = Tissue.BACKGROUND
        else:
            brain = tissue != Tissue.BACKGROUND
        warnings += cut_brain_warnings(brain, flair)
        return LesionMaps(
            _to_reference(prediction.lesion_probability.numpy(), grid, flair, "linear"),
            _to_reference(prediction.lesion_uncertainty.numpy(), grid, flair, "linear"),
            tissue, brain, warnings,
            {name: round(weight, 3) for name, weight in zip(PASS_NAMES, weights, strict=True)})


def cut_brain_warnings(brain: np.ndarray, flair: sitk.Image) -> list[str]:
    """A warning when FLAIR's field of view cuts the brain: more than `MIN_CUT_AREA_MM2` of
    brain that is also image foreground (not air the network took for brain) on a face of the
    grid."""
    brain = brain & foreground_mask(sitk.GetArrayFromImage(background_at_zero(flair)))
    spacing_zyx = np.array(flair.GetSpacing()[::-1])
    direction = np.reshape(flair.GetDirection(), (3, 3))
    sides = []
    for axis in range(3):
        face_mm2 = float(np.prod(np.delete(spacing_zyx, axis)))
        for index, sign in ((0, -1.0), (-1, 1.0)):
            outward_ras = sign * direction[:, 2 - axis] * LPS_TO_RAS   # numpy z, y, x: ITK 2, 1, 0
            dominant = int(np.argmax(np.abs(outward_ras)))
            side = RAS_SIDES[dominant][int(outward_ras[dominant] > 0)]
            cut_mm2 = np.count_nonzero(np.take(brain, index, axis)) * face_mm2
            if cut_mm2 > MIN_CUT_AREA_MM2 and side not in sides:
                sides.append(side)
    if not sides:
        return []
    return [f"--flair: its field of view cuts the brain on the {' and '.join(sides)} "
            f"side{'s' * (len(sides) > 1)}: lesions there may be cut or missed, and located "
            "(juxtacortical, periventricular, infratentorial) from tissue the image does not "
            "show"]


def lesion_components(maps: LesionMaps, threshold: float, connectivity: int,
                      min_volume_ul: float, spacing_zyx_mm: tuple[float, ...]) -> np.ndarray:
    """Instance labels (1 = largest) of the thresholded probability inside the brain."""
    return label_components((maps.probability > threshold) & maps.brain, connectivity,
                            min_volume_ul, spacing_zyx_mm)


def run(flair: sitk.Image, t1: sitk.Image | None = None, t2: sitk.Image | None = None,
        brain_mask: sitk.Image | None = None, *, bundle: ModelBundle, device: torch.device,
        min_volume_ul: float = MIN_VOLUME_UL, connectivity: int = CONNECTIVITY,
        progress: Progress | None = None) -> LesionResult:
    """Segment white-matter lesions and tissue; every output is on FLAIR's grid."""
    timer = StageTimer()
    maps = predict_maps(flair, t1, t2, brain_mask, bundle=bundle, device=device,
                        progress=progress, timer=timer)
    with timer.stage("postprocessing"):
        result = _lesion_result(flair, maps, bundle, min_volume_ul, connectivity)
    result.summary.update({
        "inputs": {"flair": True, "t1": t1 is not None, "t2": t2 is not None,
                   "brain_mask": brain_mask is not None},
        "brain_mask_method": "given" if brain_mask is not None else
        "network tissue prediction (tissue != background)",
        "bias_field_correction": "N4 inside the normalisation mask"
        if corrects_bias(bundle.metadata) else "none",
        "inference_pass_weights": maps.pass_weights,
        "warnings": maps.warnings, "timings_s": timer.as_dict()})
    return result


def _lesion_result(flair: sitk.Image, maps: LesionMaps, bundle: ModelBundle,
                   min_volume_ul: float, connectivity: int) -> LesionResult:
    threshold = bundle.metadata["thresholds"]["lesion_probability"]
    spacing_zyx = flair.GetSpacing()[::-1]
    lesion_ids = lesion_components(maps, threshold, connectivity, min_volume_ul, spacing_zyx)
    locations = wm_lesion_locations(lesion_ids, maps.tissue, spacing_zyx)
    rows = lesion_measures(lesion_ids, flair, maps.probability, maps.uncertainty)
    for row in rows:
        row.update({"class": "wm", "location": locations[row["lesion_id"]]})
        row["volume_ul"] = round(row["volume_ul"], 3)
    class_labels = np.where(lesion_ids > 0, LESION_VALUE, maps.tissue).astype(np.uint8)
    summary = {**_summarise_locations(rows), "model": bundle.describe(),
               "threshold": threshold, "min_volume_ul": min_volume_ul,
               "connectivity": connectivity}
    return LesionResult(NAME, flair, lesion_ids, class_labels, _segments(), COLUMNS, rows,
                        summary, extra_images={"wm_tissue": maps.tissue})
