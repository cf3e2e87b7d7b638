"""The rim pipeline: every candidate white-matter lesion gets P(paramagnetic rim) from a RimNet
or Deep-PRL bundle, a rim+/rim− call at the bundle's operating point, and the patient a PRL
count and the "≥ 4 PRL" (chronic active) flag.

Everything happens in the phase image's space: the other contrasts and the lesion mask are
resampled onto its grid, candidates are found there, and patches are sampled around their
centres of mass in physical space (`rim_patches`). Without a lesion mask the white-matter
pipeline segments the lesions first; with ``point_ras`` only the lesion under that point is
classified, or a patch centred on the point when no lesion is there.

Phase has no single sign convention: depending on the scanner's handedness and the
reconstruction, paramagnetic sources (veins, iron rims) are positive (bright) or negative
(dark). The networks learnt one convention (the bundle's ``paramagnetic_phase``, else the
phantom's, positive) and are not indifferent to it, so a phase in the other convention is
negated before its patches are made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch

from ..bundles import ModelBundle
from ..errors import InputError
from ..geometry import check_overlap, ras_to_index_zyx, ras_to_lps, resample_like
from ..imageio import array_to_image
from ..labels import CHRONIC_ACTIVE_MIN_PRL, PARAMAGNETIC_PHASE, RIM_SEGMENTS
from ..lesions import lesion_measures
from ..masks import checked_mask
from ..networks import load_network
from ..networks.rimnet import rim_probability
from ..phase_sign import sign_warning
from ..preprocessing import bring_to_reference, foreground_mask, neighbours, spacing_warning
from ..progress import Progress
from ..results import LesionResult, Segment
from ..rim_candidates import MIN_VOLUME_UL, Candidates, find_candidates
from ..rim_patches import PatchSpec, make_patches
from ..timing import StageTimer
from ..uni_background import noise_background

COLUMNS = ["lesion_id", "volume_ul", "voxels", "centroid_r", "centroid_a", "centroid_s",
           "rim_probability", "rim_positive", "split_from", "note"]
RIM_POSITIVE_VALUE, RIM_NEGATIVE_VALUE = 1, 2
LOST_LESION_FRACTION = 0.02   # lesion voxels beyond the phase's field of view: more than an edge
NO_LESION_AT_POINT = "no lesion at point"
NO_MASK_AT_POINT = "no lesion mask given: a patch centred at the point"
SMALL_LESION_AT_POINT = (f"a lesion under {MIN_VOLUME_UL} µL, too small to be a candidate: a "
                         "patch centred at the point")
WRAP_JUMP_FRACTION = 0.002
WRAP_END_FRACTION = 0.2  # "an end of the range": its lowest or highest fifth
BATCH_SIZE = 64


# Contrasts only the white-matter step reads (besides FLAIR), when it finds the candidates.
WM_STEP_CONTRASTS = ("t1", "t2")


@dataclass
class RimInputs:
    """The user's images; ``images`` holds the contrasts besides phase (flair, mp2rage, t2star,
    and the `WM_STEP_CONTRASTS`)."""

    phase: sitk.Image
    images: dict[str, sitk.Image] = field(default_factory=dict)
    lesion_mask: sitk.Image | None = None
    brain_mask: sitk.Image | None = None
    point_ras: tuple[float, float, float] | None = None
    paramagnetic_phase: str = "positive"  # one of PARAMAGNETIC_PHASE

    @property
    def segments_wm_lesions(self) -> bool:
        """No lesion mask and no point: the white-matter pipeline finds the candidates on
        FLAIR (with T1 and T2 when given) first."""
        return self.lesion_mask is None and self.point_ras is None


def run(inputs: RimInputs, *, bundle: ModelBundle, device: torch.device, progress: Progress,
        operating_point: float | None = None, wm_bundle: ModelBundle | None = None,
        register: bool = False) -> LesionResult:
    """Classify the candidate lesions (or the lesion / patch at ``inputs.point_ras``)."""
    timer, warnings = StageTimer(), []
    phase = inputs.phase
    with timer.stage("preprocessing"):
        images = _model_images(inputs, bundle, register)
        warnings += _unused_input_warnings(inputs, bundle)
        brain = _brain_mask(inputs, images, bundle.input_names, warnings)
        warnings += phase_warnings(sitk.GetArrayViewFromImage(phase), brain)
        spec = PatchSpec.from_metadata(bundle.metadata["patches"])
        warning = spacing_warning(phase, "phase", (spec.spacing_mm,) * 3, tolerance=1.0)
        warnings += [warning] if warning else []
    progress.update(0.1, "lesion mask")
    with timer.stage("lesion mask"):
        mask = _lesion_mask(inputs, phase, device, progress.sub(0.1, 0.6), wm_bundle, warnings)
    with timer.stage("candidates"):
        spacing_zyx = phase.GetSpacing()[::-1]
        candidates = find_candidates(mask, spacing_zyx) if mask is not None else Candidates(
            np.zeros(phase.GetSize()[::-1], np.int32))
        rows = _candidate_rows(candidates, phase)
        warnings += sign_warning(sitk.GetArrayViewFromImage(phase), candidates.lesion_ids,
                                 brain, inputs.paramagnetic_phase)
        if inputs.point_ras is not None:
            candidates, rows = _at_point(inputs.point_ras, candidates, rows, phase, brain,
                                         mask)
    progress.update(0.7, f"classifying {len(rows)} candidates")
    threshold = (operating_point if operating_point is not None
                 else bundle.metadata["operating_point"]["threshold"])
    with timer.stage("classification"):
        centres_lps = ras_to_lps(np.array([[r["centroid_r"], r["centroid_a"], r["centroid_s"]]
                                           for r in rows]).reshape(-1, 3))
        patches = make_patches(images, _mask_channel_labels(spec, mask, candidates), phase,
                               centres_lps, [r["lesion_id"] for r in rows], spec)
        probabilities = classify(load_network(bundle, device), patches, device,
                                 bundle.metadata.get("test_time_flips", [[]]))
    for row, probability in zip(rows, probabilities, strict=True):
        row["rim_probability"] = round(float(probability), 4)
        row["rim_positive"] = int(probability >= threshold)
    progress.update(1.0, "done")
    result = _result(phase, candidates, rows, bundle, threshold, timer, warnings)
    result.summary["paramagnetic_phase"] = inputs.paramagnetic_phase
    if inputs.point_ras is not None:   # one lesion: no patient-level flag
        result.summary["point"] = {"ras": list(inputs.point_ras),
                                   "lesion_id": rows[0]["lesion_id"], "note": rows[0]["note"]}
        result.summary["chronic_active"] = None
    return result


def classify(network: torch.nn.Module, patches: np.ndarray, device: torch.device,
             flips: list[list[int]]) -> np.ndarray:
    """P(rim+) per patch, averaged over the test-time flips (lists of patch axes 0-2)."""
    if len(patches) == 0:
        return np.zeros(0)
    network.eval().to(memory_format=torch.channels_last_3d)  # faster 3D convolutions on CPU
    total = torch.zeros(len(patches))
    with torch.inference_mode():
        for start in range(0, len(patches), BATCH_SIZE):
            batch = torch.from_numpy(patches[start:start + BATCH_SIZE]).to(
                device, memory_format=torch.channels_last_3d)
            for axes in flips:
                flipped = torch.flip(batch, [a + 2 for a in axes]) if axes else batch
                total[start:start + len(batch)] += rim_probability(network(flipped)).cpu()
    return (total / len(flips)).numpy()


def phase_warnings(phase_zyx: np.ndarray, brain: np.ndarray) -> list[str]:
    """A warning when the phase looks wrapped: many neighbouring brain voxels at opposite ends
    of its range (≈ −π next to ≈ +π), which an unwrapped (smooth) phase does not have. A vein
    or rim next to ordinary tissue is a large step too, but from the middle of the range to
    one end, so it does not count."""
    inside = phase_zyx[brain]
    if inside.size == 0:
        return []
    low, high = np.percentile(inside, [0.1, 99.9])
    margin = WRAP_END_FRACTION * (high - low)
    phase = phase_zyx.astype(np.float32)
    jumps = pairs = 0
    for axis in range(3):
        both = np.logical_and(*neighbours(brain, axis))
        first, second = (values[both] for values in neighbours(phase, axis))
        ends = (np.minimum(first, second) < low + margin) & (
            np.maximum(first, second) > high - margin)
        jumps += np.count_nonzero(ends)
        pairs += ends.size
    if pairs and jumps / pairs > WRAP_JUMP_FRACTION:
        return [f"phase: {jumps / pairs:.1%} of neighbouring brain voxels jump from one end of "
                f"the phase range to the other ({high - low:.2f}); the phase looks wrapped, and "
                "the model expects unwrapped phase: rim probabilities may be unreliable"]
    return []


def _unused_input_warnings(inputs: RimInputs, bundle: ModelBundle) -> list[str]:
    """The given contrasts nothing reads: those the rim model does not, less those the
    white-matter step reads when it runs; T1 and T2 when it does not."""
    wm_step = ("flair", *WM_STEP_CONTRASTS) if inputs.segments_wm_lesions else ()
    return ([f"--{name}: read only by the white-matter step, which does not run with "
             "--lesion-mask or --point; ignored"
             for name in WM_STEP_CONTRASTS if name in inputs.images and not wm_step]
            + bundle.unused_input_warnings(name for name in inputs.images
                                           if name not in (*wm_step, *WM_STEP_CONTRASTS)))


def _model_images(inputs: RimInputs, bundle: ModelBundle, register: bool) -> np.ndarray:
    """The bundle's image inputs, in its channel order, on the phase grid (C, z, y, x)."""
    volumes = []
    for name in bundle.input_names:
        if name == "phase":
            image = phase_as_trained(inputs.phase, inputs.paramagnetic_phase, bundle)
        elif name in inputs.images:
            image = bring_to_reference(inputs.images[name], f"--{name}", inputs.phase,
                                       "--phase", register=register)
        else:
            raise InputError(f"--{name}: model {bundle.id} needs it and it was not given")
        volumes.append(sitk.GetArrayFromImage(image).astype(np.float32))
    return np.stack(volumes)


def phase_as_trained(phase: sitk.Image, paramagnetic: str, bundle: ModelBundle) -> sitk.Image:
    """``phase`` in the convention the bundle learnt: negated when paramagnetic sources have
    the other sign on it."""
    if paramagnetic not in PARAMAGNETIC_PHASE:
        raise InputError(f"paramagnetic phase: '{paramagnetic}' is not one of "
                         f"{', '.join(PARAMAGNETIC_PHASE)}")
    trained = bundle.metadata.get("paramagnetic_phase", PARAMAGNETIC_PHASE[0])
    return phase if paramagnetic == trained else sitk.Cast(phase, sitk.sitkFloat32) * -1.0


def _brain_mask(inputs: RimInputs, images: np.ndarray, names: list[str],
                warnings: list[str]) -> np.ndarray:
    """The brain on the phase grid: the given mask, else the foreground of the structural
    image (the first model input that is not phase), less an MP2RAGE's salt-and-pepper air,
    which an intensity threshold would take for the head."""
    if inputs.brain_mask is not None:
        mask = checked_mask(inputs.brain_mask, "--brain-mask", inputs.phase, "--phase",
                            warnings, brain=True)
        mask = resample_like(mask, inputs.phase, "nearest")
        return sitk.GetArrayFromImage(mask) > 0
    structural = [(volume, name) for volume, name in zip(images, names, strict=True)
                  if name != "phase"]
    if not structural:
        return foreground_mask(np.abs(images[0]))
    volume, name = structural[0]
    if name == "mp2rage":
        volume = np.where(_uni_air(inputs.images["mp2rage"], inputs.phase), 0.0, volume)
    return foreground_mask(volume)


def _uni_air(mp2rage: sitk.Image, phase: sitk.Image) -> np.ndarray:
    """`uni_background.noise_background`, found on the MP2RAGE's own grid (interpolation
    would smooth the noise it looks for), on the phase grid."""
    air = noise_background(sitk.GetArrayFromImage(mp2rage)).astype(np.uint8)
    return sitk.GetArrayFromImage(resample_like(array_to_image(air, mp2rage), phase,
                                                "nearest")) > 0


def _lesion_mask(inputs: RimInputs, phase: sitk.Image, device: torch.device, progress: Progress,
                 wm_bundle: ModelBundle | None, warnings: list[str]) -> np.ndarray | None:
    """The lesion labelmap on the phase grid: the user's, or the white-matter pipeline's.
    None in click-to-classify mode without a mask."""
    mask, name = inputs.lesion_mask, "--lesion-mask"
    if inputs.segments_wm_lesions:
        mask = _segment_wm_lesions(inputs, device, progress, wm_bundle, warnings)
        name = "the white-matter step's lesions"
    elif mask is None:
        return None
    else:
        mask = checked_mask(mask, name, phase, "--phase", warnings)
    return _on_phase_grid(mask, name, phase, warnings)


def _on_phase_grid(mask: sitk.Image, name: str, phase: sitk.Image,
                   warnings: list[str]) -> np.ndarray:
    """The lesion labelmap on the phase grid; a warning when lesions lie beyond the phase
    image's field of view (and are lost), which the overlap check alone lets through."""
    field_of_view = sitk.Image(phase.GetSize(), sitk.sitkUInt8) + 1
    field_of_view.CopyInformation(phase)
    seen = sitk.GetArrayViewFromImage(resample_like(field_of_view, mask, "nearest")) > 0
    lesion = sitk.GetArrayViewFromImage(mask) > 0
    outside = np.count_nonzero(lesion & ~seen) / max(np.count_nonzero(lesion), 1)
    if outside > LOST_LESION_FRACTION:
        warnings.append(f"{name}: {outside:.0%} of the lesion voxels lie outside the phase "
                        "image's field of view; lesions there are not classified")
    return sitk.GetArrayFromImage(resample_like(mask, phase, "nearest"))


def _segment_wm_lesions(inputs: RimInputs, device: torch.device, progress: Progress,
                        wm_bundle: ModelBundle | None, warnings: list[str]) -> sitk.Image:
    from . import wm  # imported here: rim runs without the WM module when given a mask

    if "flair" not in inputs.images or wm_bundle is None:
        raise InputError("--lesion-mask: not given, and segmenting the white-matter lesions "
                         "first needs --flair and an installed white-matter model")
    check_overlap(inputs.images["flair"], "--flair", inputs.phase, "--phase")
    result = wm.run(inputs.images["flair"], inputs.images.get("t1"), inputs.images.get("t2"),
                    brain_mask=inputs.brain_mask, bundle=wm_bundle, device=device,
                    progress=progress)
    # The brain mask was checked (and warned about) once already, against the phase image.
    warnings += [f"white-matter lesions segmented by model {wm_bundle.id}",
                 *(f"white-matter step: {warning}" for warning in result.summary["warnings"]
                   if not warning.startswith("--brain-mask:"))]
    image = sitk.GetImageFromArray(result.lesion_ids.astype(np.uint32))
    image.CopyInformation(result.reference)
    return image


def _mask_channel_labels(spec: PatchSpec, mask: np.ndarray | None,
                         candidates: Candidates) -> np.ndarray:
    """What a mask channel is drawn from: the candidates, numbered as the rows, when it holds
    a patch's own candidate; else the lesion mask as given (too-small lesions included)."""
    if spec.mask_lesions == "candidate" or mask is None:
        return candidates.lesion_ids
    return mask


def _candidate_rows(candidates: Candidates, phase: sitk.Image) -> list[dict[str, Any]]:
    """One row per candidate; ``split_from`` names the lesions (rows of this table) that one
    confluent component was split into, e.g. "2+3" on rows 2 and 3."""
    parts: dict[int, list[int]] = {}
    for lesion_id, component in sorted(candidates.split_from.items()):
        parts.setdefault(component, []).append(lesion_id)
    rows = lesion_measures(candidates.lesion_ids, phase)
    for row in rows:
        component = candidates.split_from.get(row["lesion_id"])
        row["split_from"] = "" if component is None else "+".join(map(str, parts[component]))
        row["note"] = "large" if row["lesion_id"] in candidates.large else ""
    return rows


def _at_point(point_ras: tuple[float, float, float], candidates: Candidates,
              rows: list[dict[str, Any]], phase: sitk.Image, brain: np.ndarray,
              mask: np.ndarray | None) -> tuple[Candidates, list[dict[str, Any]]]:
    """Keep only the candidate under the point; else a lesion-free row at the point if it is
    inside the brain, its note saying why (no mask, a lesion too small, or none there); else
    refuse."""
    index = np.round(ras_to_index_zyx(phase, np.array(point_ras))).astype(int)
    inside_image = bool(np.all(index >= 0) and np.all(index < brain.shape))
    lesion_id = int(candidates.lesion_ids[tuple(index)]) if inside_image else 0
    if lesion_id:
        kept = np.where(candidates.lesion_ids == lesion_id, candidates.lesion_ids, 0)
        return (Candidates(kept, candidates.split_from, candidates.too_small,
                           [i for i in candidates.large if i == lesion_id]),
                [r for r in rows if r["lesion_id"] == lesion_id])
    if not (inside_image and brain[tuple(index)]):
        raise InputError(f"--point: {', '.join(f'{v:g}' for v in point_ras)} (RAS) is outside "
                         "every candidate lesion and outside the brain")
    note = (NO_MASK_AT_POINT if mask is None else
            SMALL_LESION_AT_POINT if mask[tuple(index)] else NO_LESION_AT_POINT)
    row = {"lesion_id": 0, "volume_ul": 0.0, "voxels": 0, "centroid_r": point_ras[0],
           "centroid_a": point_ras[1], "centroid_s": point_ras[2], "split_from": "",
           "note": note}
    return Candidates(np.zeros_like(candidates.lesion_ids), {}, candidates.too_small, []), [row]


def _result(phase: sitk.Image, candidates: Candidates, rows: list[dict[str, Any]],
            bundle: ModelBundle, threshold: float, timer: StageTimer,
            warnings: list[str]) -> LesionResult:
    positive = np.zeros(candidates.count + 1, bool)
    for row in rows:
        positive[row["lesion_id"]] = bool(row["rim_positive"]) and row["lesion_id"] > 0
    ids = candidates.lesion_ids
    class_labels = np.where(ids > 0, np.where(positive[ids], RIM_POSITIVE_VALUE,
                                              RIM_NEGATIVE_VALUE), 0).astype(np.uint8)
    segments = [Segment(RIM_POSITIVE_VALUE if rim else RIM_NEGATIVE_VALUE, name, color)
                for rim, (name, color) in sorted(RIM_SEGMENTS.items(), reverse=True)]
    prl_count = sum(row["rim_positive"] for row in rows)
    summary = {
        "task": "rim",
        "prl_count": prl_count,
        "chronic_active": prl_count >= CHRONIC_ACTIVE_MIN_PRL,
        "candidates": len(rows),
        "excluded": {"too_small": candidates.too_small, "min_volume_ul": MIN_VOLUME_UL},
        "large": candidates.large,
        "split": _split_summary(rows),
        "model": {**bundle.describe(), "architecture": bundle.metadata["architecture"]},
        "operating_point": {**bundle.metadata["operating_point"], "threshold": threshold},
        "timings_s": timer.as_dict(),
        "warnings": warnings,
    }
    return LesionResult("rim", phase, ids, class_labels, segments, COLUMNS, rows, summary)


def _split_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lesions each split component became, from the rows' ``split_from``."""
    groups = dict.fromkeys(row["split_from"] for row in rows if row["split_from"])
    return [{"into": [int(part) for part in group.split("+")]} for group in groups]
