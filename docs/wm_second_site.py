"""How the white-matter model fares when held-out phantom cases are acquired as another site
would acquire them (docs/wm.md, "A second-site check").

    .venv/bin/python docs/wm_second_site.py OUT --cases CASE… [--model BUNDLE]
        [--conditions CONDITION…]

Each case is seen as acquired, and through each shift below; every version runs through
`mslesionai wm` (no brain mask, as the benchmark) and is scored with MSSEG-2016's rules against
the truth on the version's own FLAIR grid. Prints one markdown row per condition (means over
cases). Outputs are kept under OUT/CONDITION/CASE, so a rerun only scores.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from MSLesionAILib.cli import main as cli_main
from MSLesionAILib.geometry import resample_like, slice_axis
from MSLesionAILib.imageio import array_to_image
from MSLesionAILib.metrics.msseg import wm_metrics
from MSLesionAILib.phantom import KIND_CONTRASTS
from MSLesionAILib.phantom.fields import bias_field
from MSLesionAILib.phantom.site import bend_contrast, thick_slices

CONTRASTS = KIND_CONTRASTS["wm"]   # the case folders' contrasts, FLAIR first
NOISE_OF_P99 = 0.03
BIAS_CORRELATION_MM = 80.0
COLUMNS = ("dice", "f1", "sensitivity", "precision", "volume_difference")

Images = dict[str, sitk.Image]   # flair, t1, t2 (any present), truth, brainmask


def thick_flair(thickness_mm: float) -> Callable[[Images, int], Images]:
    """FLAIR (and the truth drawn on it) with thick slices along its own slice axis; T1 and T2
    stay on their grid, so the pipeline registers them."""
    def shift(images: Images, seed: int) -> Images:
        axis = slice_axis(images["flair"])
        return {**images, "flair": thick_slices(images["flair"], thickness_mm, axis),
                "truth": thick_slices(images["truth"], thickness_mm, axis, label=True)}
    return shift


def bent(power: float) -> Callable[[Images, int], Images]:
    """Every contrast through `bend_contrast` (another sequence's contrast, 3 % noise)."""
    def shift(images: Images, seed: int) -> Images:
        return {**images, **{name: bend_contrast(images[name], images["brainmask"], power,
                                                 NOISE_OF_P99, seed + index)
                             for index, name in enumerate(CONTRASTS) if name in images}}
    return shift


def shaded(strength: float) -> Callable[[Images, int], Images]:
    """Every contrast times one smooth receive-coil field, exp(strength · unit noise varying
    over `BIAS_CORRELATION_MM`), drawn on FLAIR's grid and resampled onto the others'."""
    def shift(images: Images, seed: int) -> Images:
        flair = images["flair"]
        shading = bias_field(flair.GetSize()[::-1], np.array(flair.GetSpacing()[::-1]),
                             strength, BIAS_CORRELATION_MM, np.random.default_rng(seed))
        field = array_to_image(shading.astype(np.float32), flair)
        return {**images, **{name: sitk.Cast(images[name], sitk.sitkFloat32)
                             * resample_like(field, images[name], default_value=1.0)
                             for name in CONTRASTS if name in images}}
    return shift


def without(*names: str) -> Callable[[Images, int], Images]:
    """The case with these contrasts not given."""
    def shift(images: Images, seed: int) -> Images:
        return {name: image for name, image in images.items() if name not in names}
    return shift


CONDITIONS: dict[str, Callable[[Images, int], Images]] = {
    "as acquired": lambda images, seed: images,
    "FLAIR only": without("t1", "t2"),
    "FLAIR and T1": without("t2"),
    "FLAIR 3 mm slices": thick_flair(3.0),
    "FLAIR 5 mm slices": thick_flair(5.0),
    "contrast bent, power 1.6": bent(1.6),
    "contrast bent, power 0.6": bent(0.6),
    "bias field 0.3": shaded(0.3),
}


def read_images(case: Path) -> Images:
    names = [name for name in CONTRASTS if (case / f"{name}.nii.gz").is_file()]
    images = {name: sitk.ReadImage(str(case / f"{name}.nii.gz")) for name in names}
    images["brainmask"] = sitk.ReadImage(str(case / "brainmask.nii.gz"))
    images["truth"] = sitk.ReadImage(str(case / "truth" / "wm_lesions.nii.gz"))
    return images


def score_case(case: Path, condition: str, folder: Path, model: str | None) -> dict[str, float]:
    """Write the shifted case into ``folder``, run the pipeline there, score it."""
    prediction = folder / "pred" / "wm_lesions.nii.gz"
    if not prediction.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        images = CONDITIONS[condition](read_images(case), int(case.name.split("_")[-1]))
        for name in (*CONTRASTS, "truth"):
            if name in images:
                sitk.WriteImage(images[name], str(folder / f"{name}.nii.gz"))
        inputs = [arg for name in CONTRASTS if name in images
                  for arg in (f"--{name}", str(folder / f"{name}.nii.gz"))]
        code = cli_main(["--progress", "none", "wm", *inputs, "--device", "cpu",
                         *(["--model", model] if model else []), "--out", str(folder / "pred")])
        if code:
            raise SystemExit(f"mslesionai wm failed on {case} ({condition})")
    truth = sitk.ReadImage(str(folder / "truth.nii.gz"))
    predicted = sitk.GetArrayFromImage(sitk.ReadImage(str(prediction)))
    return wm_metrics(sitk.GetArrayFromImage(truth), predicted, truth.GetSpacing()[::-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--cases", type=Path, nargs="+", required=True)
    parser.add_argument("--model", help="bundle folder or id (default: the automatic choice for "
                                        "the contrasts each condition gives)")
    parser.add_argument("--conditions", nargs="+", choices=tuple(CONDITIONS),
                        default=tuple(CONDITIONS), metavar="CONDITION",
                        help="a subset of the conditions (default: all)")
    args = parser.parse_args()
    print(f"| condition | cases | {' | '.join(COLUMNS)} |")
    print("| --- | --- |" + " --- |" * len(COLUMNS))
    for condition in args.conditions:
        folder = args.out / condition.replace(" ", "_").replace(",", "")
        scores = [score_case(case, condition, folder / case.name, args.model)
                  for case in args.cases]
        means = [np.nanmean([score[column] for score in scores]) for column in COLUMNS]
        print(f"| {condition} | {len(scores)} | "
              + " | ".join(f"{mean:.3f}" for mean in means) + " |", flush=True)


if __name__ == "__main__":
    main()
