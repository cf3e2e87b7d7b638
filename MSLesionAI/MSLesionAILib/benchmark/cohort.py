"""Held-out phantom cohorts: cases whose seeds no model in the benchmark was trained on.

A bundle's metadata records its training data (``training.data``, and ``fine_tuning.data`` for
a fine-tuned bundle): dataset or case folders, sometimes seeds. Every seed that can be read
from that record counts as used, whatever the phantom kind or mode: a ``seed``/``seeds`` entry,
the ``seed`` in the case.json of a recorded folder or of its children, and the number that ends
a recorded folder's name (``case_0042``, ``realistic-1000``). Counting too many only narrows
the seeds a cohort may take; a bundle whose record yields no seed at all cannot be checked, so
the benchmark refuses to run rather than report figures that might come from training cases.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bundles import ModelBundle
from ..errors import MSLesionAIError
from ..jsonfiles import read_json
from ..phantom import GENERATOR_VERSION, generate_case, write_case
from ..progress import Progress

TRAILING_NUMBER = re.compile(r"(\d+)$")
RECORD_SECTIONS = ("training", "fine_tuning", "derivation")  # sections naming used cases



class TrainingCaseError(MSLesionAIError):
    """A figure would be computed on a case a model was trained on, or that cannot be ruled out."""


@dataclass(frozen=True)
class CohortSpec:
    """What `write_cohort` generates: ``cases`` phantom cases of ``kind`` with consecutive
    seeds from ``first_seed`` (moved past any used seed)."""

    kind: str
    cases: int
    first_seed: int
    crop_mm: float | None = None
    spacing_mm: float | None = None
    mode: str = "realistic"


FULL_COHORTS = {"wm": CohortSpec("wm", 10, 900_000),
                "cortical": CohortSpec("cortical", 10, 910_000),
                "rim": CohortSpec("rim", 10, 920_000)}
QUICK_COHORTS = {"wm": CohortSpec("wm", 2, 900_000, crop_mm=64.0, spacing_mm=2.0),
                 "cortical": CohortSpec("cortical", 2, 910_000, crop_mm=16.0, spacing_mm=1.0),
                 "rim": CohortSpec("rim", 2, 920_000, crop_mm=96.0, spacing_mm=1.5)}
# Baseline training / threshold calibration cases when no shipped model records its own.
CALIBRATION_FIRST_SEED = {"wm": 930_000, "cortical": 940_000}
CALIBRATION_CASES = 5


def used_seeds(bundles: Iterable[ModelBundle]) -> dict[int, str]:
    """Every phantom seed the bundles' training records name, mapped to a bundle id."""
    used: dict[int, str] = {}
    for bundle in bundles:
        records = [bundle.metadata[s].get("data", {}) for s in RECORD_SECTIONS
                   if s in bundle.metadata]
        seeds = set().union(*(recorded_seeds(record) for record in records))
        if not seeds:
            raise TrainingCaseError(
                f"model {bundle.id}: its training record names no phantom seed that can be read "
                "(recorded folders missing?), so held-out cases cannot be guaranteed")
        used.update(dict.fromkeys(seeds, bundle.id))
    return used


def recorded_seeds(record: Any) -> set[int]:
    """The seeds in a training-data record (nested dicts, lists, folder paths)."""
    if isinstance(record, dict):
        seeds = set()
        for key, value in record.items():
            if key in ("seed", "seeds"):
                seeds |= {int(v) for v in (value if isinstance(value, list) else [value])}
            else:
                seeds |= recorded_seeds(value)
        return seeds
    if isinstance(record, list):
        return set().union(*map(recorded_seeds, record)) if record else set()
    if isinstance(record, str) and "/" in record:
        return folder_seeds(Path(record))
    return set()


def folder_seeds(folder: Path) -> set[int]:
    """Seeds of a case folder or a dataset folder: its name's trailing number and case.json."""
    seeds = {int(m.group(1)) for m in [TRAILING_NUMBER.search(folder.name)] if m}
    if folder.is_dir():
        for case_json in [folder / "case.json", *folder.glob("*/case.json")]:
            if case_json.is_file():
                seeds.add(case_seed(case_json.parent))
                seeds |= {int(m.group(1)) for m in [TRAILING_NUMBER.search(
                    case_json.parent.name)] if m}
    return seeds


def case_record(folder: Path) -> dict[str, Any]:
    """A phantom case's case.json: seed, kind, mode and everything drawn."""
    return read_json(Path(folder) / "case.json")


def case_seed(folder: Path) -> int:
    return int(case_record(folder)["seed"])


def check_held_out(folders: Iterable[Path], used: dict[int, str]) -> None:
    """Refuse, naming them, any case whose seed a model was trained on."""
    clashes = [f"{Path(f).name} (seed {case_seed(f)}, trained on by {used[case_seed(f)]})"
               for f in folders if case_seed(f) in used]
    if clashes:
        raise TrainingCaseError("refusing to report figures on training cases: "
                                + ", ".join(clashes))


def free_first_seed(start: int, count: int, used: Iterable[int]) -> int:
    """The lowest seed ≥ ``start`` that begins ``count`` consecutive unused seeds."""
    used = set(used)
    seed = start
    while used & set(range(seed, seed + count)):
        seed = max(s for s in used if seed <= s < seed + count) + 1
    return seed


def write_cohort(folder: Path, spec: CohortSpec, used: dict[int, str],
                 progress: Progress | None = None) -> list[Path]:
    """The cohort's case folders, checked; each case is generated (`phantom.generate_case`)
    unless ``folder`` already holds it, so a cohort can grow between runs."""
    progress = progress or Progress()
    first = free_first_seed(spec.first_seed, spec.cases, used)
    folders = [folder / f"case_{seed:04d}" for seed in range(first, first + spec.cases)]
    for index, case_folder in enumerate(folders):
        seed = first + index
        if not (case_folder / "case.json").is_file():
            case = generate_case(seed, spec.kind, mode=spec.mode, spacing_mm=spec.spacing_mm,
                                 crop_mm=spec.crop_mm, progress=progress.sub(
                                     index / spec.cases, (index + 1) / spec.cases))
            write_case(case, case_folder)
        recorded = case_record(case_folder)
        if (recorded["seed"], recorded["kind"], recorded["mode"]) != (seed, spec.kind, spec.mode):
            raise TrainingCaseError(f"{case_folder} holds another case; remove it or choose "
                                    "another --out")
        if recorded.get("generator_version") != GENERATOR_VERSION:
            raise TrainingCaseError(
                f"{case_folder} was made by phantom generator "
                f"{recorded.get('generator_version')}, this is {GENERATOR_VERSION}; its cached "
                "results would mix generators: remove the work folder or choose another --out")
    check_held_out(folders, used)
    return folders
