"""`mslesionai phantom`, `phantom-dataset`, `phantom-calibrate`: the synthetic MS phantom."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..argtypes import non_negative, number
from ..errors import InputError
from ..imageio import load_image
from ..phantom import KINDS, MODES, generate_case, write_case
from ..phantom.calibration import TASKS, calibrate
from ..phantom.dataset import write_dataset
from ..progress import Progress

# Voxel sizes a phantom is made at: finer would not fit in memory for a whole brain.
SPACING_RANGE_MM = (0.3, 5.0)


def register(subparsers: argparse._SubParsersAction) -> None:
    case = subparsers.add_parser(
        "phantom", help="generate synthetic MS cases with exact truth (docs/phantom.md)",
        description="One seed writes OUT_DIR itself; several seeds write OUT_DIR/case_NNNN/.")
    case.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    case.add_argument("--seed", type=seed_of_several, nargs="+", required=True,
                      help="one or more seeds")
    _case_options(case)
    case.set_defaults(func=run_phantom)
    dataset = subparsers.add_parser(
        "phantom-dataset", help="generate a training set of phantom cases with a manifest")
    dataset.add_argument("out_dir", type=Path, metavar="OUT")
    dataset.add_argument("--n", type=int, required=True, help="number of cases")
    dataset.add_argument("--seed", type=seed, default=0,
                         help="first seed; case i gets seed + i (default 0)")
    _case_options(dataset)
    dataset.set_defaults(func=run_dataset)
    calibration = subparsers.add_parser(
        "phantom-calibrate", help="score naive FLAIR / phase-rim / MP2RAGE baselines on the "
                                  "phantom (and on a real case) to show how hard it is")
    calibration.add_argument("--n", type=int, default=3, help="cases per task (default 3)")
    calibration.add_argument("--seed", type=seed, default=1000,
                             help="first seed (default 1000)")
    calibration.add_argument("--mode", choices=MODES, default="realistic")
    calibration.add_argument("--real-flair", type=Path, help="a real FLAIR (skull-stripped)")
    calibration.add_argument("--real-truth", type=Path, help="its white-matter lesion mask")
    calibration.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS),
                             help="which baselines (default all three)")
    calibration.add_argument("--out", type=Path, help="also write the report as JSON here")
    calibration.set_defaults(func=run_calibration)


def _case_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=KINDS, default="all",
                        help="which contrasts and lesions (default all)")
    parser.add_argument("--mode", choices=MODES, default="realistic",
                        help="realistic tissue values, or domain-randomised ones for training")
    parser.add_argument("--spacing-mm", type=voxel_size_mm, nargs="+", metavar="MM",
                        help="voxel size: one value (isotropic) or three (x y z); "
                             "drawn per case when omitted")
    parser.add_argument("--crop-mm", type=non_negative("a size in mm"), default=None,
                        help="edge of a cubic field of view in mm (cortical default 64; "
                             "0 keeps the whole brain)")


def seed(text: str) -> int:
    """An argparse type: a whole number, 0 or more (numpy's generators take no others)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not a seed (a whole number, 0 or more)")
    return int(text)


def seed_of_several(text: str) -> int:
    """`seed`, for an option that takes every value after it."""
    try:
        return seed(text)
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"{error}{_order_hint(text)}") from None


def voxel_size_mm(text: str) -> float:
    """An argparse type: a voxel size a phantom can be made at (`SPACING_RANGE_MM`), for an
    option that takes every value after it."""
    low, high = SPACING_RANGE_MM
    value = number(text)
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"'{text}' is not a voxel size of {low}–{high} mm"
                                         + _order_hint(text))
    return value


def _order_hint(text: str) -> str:
    """For a word that cannot be a mistyped number (a name, a path), most likely OUT_DIR given
    after an option that takes every value after it."""
    if text[:1] in "0123456789.+-":
        return ""
    return "; give OUT_DIR first (options of several values take every value after them)"


def _spacing(values: list[float] | None) -> float | tuple[float, ...] | None:
    if values is None:
        return None
    if len(values) not in (1, 3):
        raise InputError(f"--spacing-mm: {values} is not one or three voxel sizes")
    return values[0] if len(values) == 1 else tuple(values)


def _refuse_non_empty(out_dir: Path) -> None:
    """Refuse at once, not after minutes of generation (`write_case` would refuse too)."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"{out_dir}: already exists and is not empty; choose a new folder")


def run_phantom(args: argparse.Namespace, progress: Progress) -> int:
    seeds = args.seed
    out_dirs = [args.out_dir] if len(seeds) == 1 else [args.out_dir / f"case_{seed:04d}"
                                                      for seed in seeds]
    for out_dir in out_dirs:
        _refuse_non_empty(out_dir)
    for index, (seed, out_dir) in enumerate(zip(seeds, out_dirs, strict=True)):
        case = generate_case(seed, args.kind, mode=args.mode, spacing_mm=_spacing(args.spacing_mm),
                             crop_mm=args.crop_mm,
                             progress=progress.sub(index / len(seeds), (index + 1) / len(seeds)))
        write_case(case, out_dir)
        print(f"{out_dir}: seed {seed}, {len(case.lesions)} lesions")
    return 0


def run_dataset(args: argparse.Namespace, progress: Progress) -> int:
    _refuse_non_empty(args.out_dir)
    manifest = write_dataset(args.out_dir, args.n, args.seed, args.kind, mode=args.mode,
                             spacing_mm=_spacing(args.spacing_mm), crop_mm=args.crop_mm,
                             progress=progress)
    print(f"{args.out_dir}: {len(manifest['cases'])} cases, manifest.json")
    return 0


def run_calibration(args: argparse.Namespace, progress: Progress) -> int:
    real = {}
    if args.real_flair and args.real_truth:
        real = {"real_flair": load_image(args.real_flair, "--real-flair"),
                "real_truth": load_image(args.real_truth, "--real-truth")}
    report = calibrate(args.n, args.seed, args.mode, tasks=args.tasks, progress=progress, **real)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
