"""One phantom case: draw everything from a seed, in stages, and write the case folder.

Each stage draws from its own random stream (spawned from the seed), so a case is the same
byte for byte on every run, and changing one stage's draws leaves the others unchanged.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .. import __version__
from ..atomic import output_directory
from ..errors import InputError
from ..imageio import array_to_image, write_image
from ..jsonfiles import write_json
from ..labels import Tissue
from ..progress import Progress
from . import artefacts
from .anatomy import CaseAnatomy, case_anatomy
from .contrasts import draw_dawm, draw_texture, draw_tissue_values, synthesize
from .cortical import draw_cortical_load, place_cortical_lesions
from .epi import render_epi
from .grid import draw_geometry
from .lesions import LesionSet, draw_wm_load, place_wm_lesions
from .phase import phase_image
from .rim import Susceptibility, draw_susceptibility
from .template import template_anatomy

GENERATOR_VERSION = f"{__version__}+phantom.8"
KINDS = ("wm", "rim", "cortical", "all")
MODES = ("realistic", "randomised")
KIND_CONTRASTS = {
    "wm": ("flair", "t1", "t2"),
    "rim": ("flair", "t1", "mp2rage", "t2star", "phase"),
    "cortical": ("mp2rage", "t2star"),
    "all": ("flair", "t1", "t2", "mp2rage", "t2star", "phase"),
}
# Kinds that also get a T2* EPI (`epi.render_epi`, from the T2* GRE's ideal image).
EPI_KINDS = ("cortical", "all")
# The image files of a case folder (``NAME.nii.gz``) by kind: the contrasts, then the EPI.
KIND_IMAGES = {kind: (*contrasts, *(("t2star_epi",) if kind in EPI_KINDS else ()))
               for kind, contrasts in KIND_CONTRASTS.items()}
# The contrast the truth is drawn for; the others are slightly misregistered to it.
REFERENCE_CONTRAST = {"wm": "flair", "rim": "phase", "cortical": "mp2rage", "all": "flair"}
TABLE_COLUMNS = ["lesion_id", "family", "type", "rim", "volume_ul", "centroid_r", "centroid_a",
                 "centroid_s", "confluent_group"]
_T2STAR_RIM_DARKENING = 4.0  # per ppm: iron shortens T2*
# Appended stages leave the earlier ones' streams, and so their images, unchanged.
_STAGES = ("geometry", "anatomy", "wm_lesions", "cortical_lesions", "rim", "contrasts",
           "scanner", "epi")


@dataclass
class PhantomCase:
    """A generated case: images by contrast name, truth images, lesion table, parameters."""

    seed: int
    kind: str
    mode: str
    images: dict[str, sitk.Image]
    brainmask: sitk.Image
    truth: dict[str, sitk.Image]
    lesions: list[dict]
    parameters: dict = field(default_factory=dict)


def generate_case(seed: int, kind: str = "all", *, mode: str = "realistic",
                  spacing_mm: float | tuple[float, float, float] | None = None,
                  crop_mm: float | None = None, wm_lesion_count: int | None = None,
                  cortical_lesion_count: int | None = None,
                  progress: Progress | None = None) -> PhantomCase:
    """Generate the case of ``seed``.

    ``spacing_mm``: voxel size (x, y, z) or one isotropic value; drawn per kind when None.
    ``crop_mm``: edge of a cubic field of view (cortical cases default to 64 mm); None or 0
    keeps the whole brain. ``wm_lesion_count`` / ``cortical_lesion_count`` force the number
    of lesions planned (those that do not fit are dropped).
    """
    _check_options(kind, mode)
    progress = progress or Progress()
    streams = dict(zip(_STAGES, (np.random.default_rng(s) for s in
                                 np.random.SeedSequence(seed).spawn(len(_STAGES))), strict=True))
    template = template_anatomy()
    progress.update(0.05, "anatomy")
    atrophy = float(streams["anatomy"].uniform(0.0, 1.0))
    geometry = draw_geometry(streams["geometry"], template, kind, mode, spacing_mm, crop_mm,
                             atrophy=0.05 + 0.25 * atrophy)
    sharpness = float(streams["anatomy"].uniform(1.0, 2.5))
    anatomy = case_anatomy(geometry, template, cortical_thinning=0.4 * atrophy,
                           sharpness=sharpness)
    progress.update(0.3, "lesions")
    wm = _wm_lesions(streams["wm_lesions"], anatomy, mode, wm_lesion_count)
    cortical = _cortical_lesions(streams["cortical_lesions"], anatomy, kind, mode,
                                 cortical_lesion_count, wm)
    contrasts = KIND_CONTRASTS[kind]
    susceptibility = None
    if {"t2star", "phase"} & set(contrasts):
        progress.update(0.4, "veins and rims")
        susceptibility = draw_susceptibility(streams["rim"], anatomy, wm, mode,
                                             with_rims=kind in ("rim", "all"))
    images, rendering = render_contrasts(streams, anatomy, kind, mode, wm, cortical,
                                         susceptibility, progress.sub(0.45, 0.98))
    rows = wm.rows + cortical.rows
    parameters = {"seed": seed, "generator_version": GENERATOR_VERSION, "kind": kind,
                  "mode": mode, "atrophy": atrophy, "sharpness": sharpness,
                  "geometry": geometry.parameters,
                  **rendering,
                  "susceptibility": susceptibility.parameters if susceptibility else None,
                  "lesions": rows}
    truth = {"wm_lesions": array_to_image(wm.labels, anatomy.grid),
             "cortical_lesions": array_to_image(cortical.labels, anatomy.grid),
             "tissue": array_to_image(anatomy.tissue, anatomy.grid)}
    progress.update(1.0, "case generated")
    return PhantomCase(seed=seed, kind=kind, mode=mode, images=images,
                       brainmask=array_to_image(anatomy.brain.astype(np.uint8), anatomy.grid),
                       truth=truth, lesions=[{k: row[k] for k in TABLE_COLUMNS} for row in rows],
                       parameters=parameters)


def _wm_lesions(rng: np.random.Generator, anatomy: CaseAnatomy, mode: str,
                count: int | None) -> LesionSet:
    if count is None:
        brain_ul = float(anatomy.brain.sum() * np.prod(anatomy.spacing_zyx_mm))
        count = draw_wm_load(rng, mode, brain_ul)
    return place_wm_lesions(rng, anatomy, count, mode)


def _cortical_lesions(rng: np.random.Generator, anatomy: CaseAnatomy, kind: str, mode: str,
                      count: int | None, wm: LesionSet) -> LesionSet:
    if kind not in ("cortical", "all"):
        return LesionSet(labels=np.zeros_like(wm.labels), fraction=np.zeros_like(wm.fraction))
    if count is None:
        cortex_ml = float((anatomy.tissue == Tissue.CORTICAL_GM).sum()
                          * np.prod(anatomy.spacing_zyx_mm) / 1000.0)
        count = draw_cortical_load(rng, mode, cortex_ml)
    return place_cortical_lesions(rng, anatomy, count, len(wm.rows) + 1, wm.labels)


def render_contrasts(streams: dict[str, np.random.Generator], anatomy: CaseAnatomy, kind: str,
                     mode: str, wm: LesionSet, cortical: LesionSet,
                     susceptibility: Susceptibility | None,
                     progress: Progress) -> tuple[dict[str, sitk.Image], dict]:
    """Every contrast of the kind, through its own scanner; the parameters drawn."""
    contrasts = KIND_CONTRASTS[kind]
    values = draw_tissue_values(streams["contrasts"], mode, contrasts)
    texture = draw_texture(anatomy, streams["contrasts"])
    dawm = draw_dawm(anatomy, streams["contrasts"], mode)
    veins = susceptibility.vein_fraction if susceptibility else np.zeros_like(wm.fraction)
    brain = anatomy.brain.astype(np.uint8)
    scanner_rng = streams["scanner"]
    skull_stripped = bool(scanner_rng.random() < (0.7 if mode == "realistic" else 0.5))
    images, scanners = {}, {}
    for index, contrast in enumerate(contrasts):
        progress.update(index / len(contrasts), contrast)
        scanner = artefacts.draw_scanner(scanner_rng, mode)
        name = "t2star" if contrast == "phase" else contrast
        ideal = synthesize(anatomy, values[name], wm.fraction, cortical.fraction, veins, texture,
                           dawm)
        if contrast == "phase":
            voxels, scanner["phase"] = phase_image(susceptibility.chi_ppm, ideal, brain,
                                                   anatomy.grid, scanner_rng, mode)
        else:
            if contrast == "flair":
                scanner["flair"] = artefacts.flair_artefacts(ideal, anatomy, scanner_rng, mode)
            if contrast == "t2star" and susceptibility is not None:
                ideal *= np.exp(-_T2STAR_RIM_DARKENING * susceptibility.rim_chi_ppm)
            if contrast == "t2star" and kind in EPI_KINDS:
                epi, scanners["t2star_epi"] = render_epi(ideal, anatomy, brain,
                                                         skull_stripped, streams["epi"], mode)
                images["t2star_epi"] = array_to_image(epi, anatomy.grid)
            voxels = artefacts.bias_and_blur(ideal, anatomy, scanner, scanner_rng)
        if contrast != REFERENCE_CONTRAST[kind]:
            voxels = artefacts.misregister(voxels, anatomy.grid, scanner, scanner_rng)
        if contrast != "phase":
            voxels = artefacts.store(voxels, brain, scanner, skull_stripped, scanner_rng)
        images[contrast] = array_to_image(voxels, anatomy.grid)
        scanners[contrast] = scanner
    return images, {"tissue_values": values, "scanner": scanners,
                    "skull_stripped": skull_stripped}


def _check_options(kind: str, mode: str) -> None:
    if kind not in KINDS:
        raise InputError(f"--kind: {kind!r} is not one of {', '.join(KINDS)}")
    if mode not in MODES:
        raise InputError(f"--mode: {mode!r} is not one of {', '.join(MODES)}")


def write_case(case: PhantomCase, out_dir: str | Path) -> Path:
    """Write the case folder (see docs/phantom.md); refuses an existing non-empty folder."""
    out_dir = Path(out_dir)
    with output_directory(out_dir) as folder:
        for name, image in case.images.items():
            write_image(image, folder / f"{name}.nii.gz")
        write_image(case.brainmask, folder / "brainmask.nii.gz")
        for name, image in case.truth.items():
            write_image(image, folder / "truth" / f"{name}.nii.gz")
        with open(folder / "truth" / "lesions.csv", "w", encoding="utf-8", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=TABLE_COLUMNS)
            writer.writeheader()
            writer.writerows(case.lesions)
        write_json(folder / "case.json", case.parameters)
    return out_dir
