"""A training set: N cases with consecutive seeds in one folder, and a manifest."""

from __future__ import annotations

from pathlib import Path

from ..atomic import output_directory
from ..jsonfiles import write_json
from ..progress import Progress
from .case import GENERATOR_VERSION, generate_case, write_case

MANIFEST = "manifest.json"


def write_dataset(out_dir: str | Path, n: int, first_seed: int, kind: str, *,
                  mode: str = "realistic", spacing_mm: float | tuple | None = None,
                  crop_mm: float | None = None, progress: Progress | None = None) -> dict:
    """Write ``case_SEED/`` folders for seeds first_seed … first_seed + n - 1 and the manifest.

    The whole folder appears only when every case is written (see `atomic.output_directory`).
    """
    progress = progress or Progress()
    cases = []
    with output_directory(out_dir) as folder:
        for index in range(n):
            seed = first_seed + index
            case = generate_case(seed, kind, mode=mode, spacing_mm=spacing_mm, crop_mm=crop_mm,
                                 progress=progress.sub(index / n, (index + 1) / n))
            name = f"case_{seed:04d}"
            write_case(case, folder / name)
            cases.append({"folder": name, "seed": seed, "lesions": len(case.lesions)})
        manifest = {"generator_version": GENERATOR_VERSION, "kind": kind, "mode": mode,
                    "spacing_mm": spacing_mm, "crop_mm": crop_mm, "cases": cases}
        write_json(folder / MANIFEST, manifest)
    return manifest
