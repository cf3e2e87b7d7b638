"""Read pipeline result folders (the files `results.write_result` wrote) for the report.

The lesion table is the source of the report's counts and volumes: it is the one file every
pipeline writes with fixed columns, and the one the user edits ("Update table" in Slicer).
The summary adds what the table cannot know (inputs, model, candidates, warnings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..geometry import same_grid
from ..imageio import read_image
from ..jsonfiles import read_json
from ..results import read_table_csv

TASKS = ("wm", "cortical", "rim")


@dataclass
class PipelineResult:
    """One pipeline's result folder: its table rows (strings, as in the CSV) and input images."""

    task: str
    folder: Path
    rows: list[dict[str, str]]
    summary: dict[str, Any]
    lesions_path: Path
    images: dict[str, Path] = field(default_factory=dict)
    missing_images: dict[str, Path] = field(default_factory=dict)


def read_result_folder(folder: str | Path, images: dict[str, Path] | None = None) -> PipelineResult:
    """Read one result folder; ``images`` (contrast → path) override the summary's inputs."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder of pipeline results")
    summary = _read_summary(folder)
    files = summary.get("files", {})
    lesions_path = folder / files.get("lesions", _find_lesions_file(folder).name)
    task = lesions_path.name.removesuffix("_lesions.nii.gz")
    if task not in TASKS:
        raise InputError(f"{folder}: unknown result type {task!r} (expected one of {TASKS})")
    table_path = folder / files.get("table", "lesions.csv")
    if not table_path.exists():
        raise InputError(f"{folder}: no lesion table ({table_path.name})")
    found, missing = _resolve_images({**summary.get("inputs", {}), **(images or {})}, folder)
    return PipelineResult(task, folder, read_table_csv(table_path), summary, lesions_path,
                          found, missing)


def read_patient(folders: list[str | Path],
                 images: dict[str, Path] | None = None) -> list[PipelineResult]:
    """One patient's result folders, in the report's order (wm, cortical, rim)."""
    results = [read_result_folder(folder, images) for folder in folders]
    return sorted(results, key=lambda result: TASKS.index(result.task))


def mismatched_inputs(results: list[PipelineResult]) -> list[str]:
    """A warning for each contrast (not mask) that two results were made from different images of:
    folders of different patients or sessions, which one report must not mix. Images are
    compared by grid and voxels, not by path, so a copy, or the same volume exported twice
    from a Slicer scene, is the same image."""
    named: dict[str, tuple[str, Path]] = {}
    warnings = []
    for result in results:
        for contrast, path in result.images.items():
            if _is_mask(contrast):   # each pipeline's mask is on its own grid
                continue
            first_task, first_path = named.setdefault(contrast, (result.task, path))
            if first_path != path and not _same_image(first_path, path, contrast):
                warnings.append(f"the {first_task} and {result.task} results were made from "
                                f"different {contrast} images ({first_path}, {path}): check "
                                "that they are of one patient and session")
    return warnings


def _is_mask(input_name: str) -> bool:
    """Brain and lesion masks (brain_mask, lesion_mask, wm_lesions), not contrasts."""
    return "mask" in input_name or "lesion" in input_name


def _same_image(a: Path, b: Path, contrast: str) -> bool:
    image_a, image_b = read_image(a, contrast), read_image(b, contrast)
    return same_grid(image_a, image_b) and np.array_equal(
        sitk.GetArrayViewFromImage(image_a), sitk.GetArrayViewFromImage(image_b))


def _read_summary(folder: Path) -> dict[str, Any]:
    path = folder / "summary.json"
    if not path.exists():
        return {}
    try:
        return read_json(path)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from error


def _find_lesions_file(folder: Path) -> Path:
    candidates = sorted(folder.glob("*_lesions.nii.gz"))
    if len(candidates) != 1:
        raise InputError(f"{folder}: expected one *_lesions.nii.gz labelmap, found "
                         f"{len(candidates)}")
    return candidates[0]


def _resolve_images(paths: dict[str, Any],
                    folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Split input images into those that exist and those that do not; a relative path is
    tried against the result folder first, then the working directory. Values that are not
    paths (e.g. ``"t1": false`` for an input not given) are ignored."""
    found, missing = {}, {}
    for contrast, value in paths.items():
        if not isinstance(value, str | Path) or not str(value):
            continue
        path = Path(value)
        candidates = [path] if path.is_absolute() else [folder / path, path]
        existing = next((candidate for candidate in candidates if candidate.exists()), None)
        if existing is None:
            missing[contrast] = path
        else:
            found[contrast] = existing.resolve()
    return found, missing
