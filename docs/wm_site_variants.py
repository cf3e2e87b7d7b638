"""Training cases as another site would acquire them: every contrast with thick slices, and
half of them FLAIR only (docs/wm.md, "A robustness continuation").

    .venv/bin/python docs/wm_site_variants.py OUT --cases CASE… [--seed S]

Each phantom case folder is written again under OUT/CASE with its contrasts through
`phantom.site.thick_slices` (a slice thickness drawn in 3–6 mm, along the case's own slice
axis, the same for every contrast so that they stay on one grid), T1 and T2 left out with a
chance of one half. The truth and the brain mask are copied unchanged: the training target stays
the fine truth, which the training loader resamples onto the model's 1 mm grid. Reproducible
from ``--seed``; case i of the list draws from seed + i.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from MSLesionAILib.geometry import slice_axis
from MSLesionAILib.phantom import KIND_CONTRASTS
from MSLesionAILib.phantom.site import thick_slices

THICKNESS_MM = (3.0, 6.0)
FLAIR_ONLY = 0.5
CONTRASTS = KIND_CONTRASTS["wm"]   # the case folders' contrasts, FLAIR first


def write_variant(case: Path, out: Path, rng: np.random.Generator) -> tuple[float, bool]:
    """The thick-slice variant of ``case`` in ``out``; returns (thickness_mm, flair_only)."""
    thickness_mm = float(rng.uniform(*THICKNESS_MM))
    flair_only = bool(rng.random() < FLAIR_ONLY)
    images = {name: sitk.ReadImage(str(case / f"{name}.nii.gz"))
              for name in (CONTRASTS[:1] if flair_only else CONTRASTS)
              if (case / f"{name}.nii.gz").is_file()}
    axis = slice_axis(images["flair"])
    out.mkdir(parents=True)
    for name, image in images.items():
        sitk.WriteImage(thick_slices(image, thickness_mm, axis), str(out / f"{name}.nii.gz"))
    shutil.copytree(case / "truth", out / "truth")
    for name in ("brainmask.nii.gz", "case.json"):
        shutil.copy2(case / name, out / name)
    return thickness_mm, flair_only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--cases", type=Path, nargs="+", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for index, case in enumerate(args.cases):
        rng = np.random.default_rng(args.seed + index)
        thickness_mm, flair_only = write_variant(case, args.out / case.name, rng)
        print(f"{case.name}: {thickness_mm:.1f} mm slices"
              + (", FLAIR only" if flair_only else ""), flush=True)


if __name__ == "__main__":
    main()
