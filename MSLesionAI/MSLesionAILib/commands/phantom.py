"""`mslesionai phantom`, `phantom-dataset`, `phantom-calibrate`: the synthetic MS phantom."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..phantom import KINDS, MODES, generate_case, write_case
from ..phantom.dataset import write_dataset
from ..progress import Progress


def register(subparsers: argparse._SubParsersAction) -> None:
    case = subparsers.add_parser(
        "phantom", help="generate synthetic MS cases with exact truth (docs/phantom.md)",
        description="One seed writes OUT_DIR itself; several seeds write OUT_DIR/case_NNNN/.")
    case.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    case.add_argument("--seed", type=int, nargs="+", required=True, help="one or more seeds")
    _case_options(case)
    case.set_defaults(func=run_phantom)
    dataset = subparsers.add_parser(
        "phantom-dataset", help="generate a training set of phantom cases with a manifest")
    dataset.add_argument("out_dir", type=Path, metavar="OUT")
    dataset.add_argument("--n", type=int, required=True, help="number of cases")
    dataset.add_argument("--seed", type=int, default=0,
                         help="first seed; case i gets seed + i (default 0)")
    _case_options(dataset)
    dataset.set_defaults(func=run_dataset)


def _case_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=KINDS, default="all",
                        help="which contrasts and lesions (default all)")
    parser.add_argument("--mode", choices=MODES, default="realistic",
                        help="realistic tissue values, or domain-randomised ones for training")
    parser.add_argument("--spacing-mm", type=float, nargs="+", metavar="MM",
                        help="voxel size: one value (isotropic) or three (x y z); "
                             "drawn per case when omitted")
    parser.add_argument("--crop-mm", type=float, default=None,
                        help="edge of a cubic field of view in mm (cortical default 64; "
                             "0 keeps the whole brain)")


def _spacing(values: list[float] | None) -> float | tuple[float, ...] | None:
    if values is None or len(values) not in (1, 3):
        if values is not None:
            raise SystemExit("mslesionai phantom: --spacing-mm takes one or three values")
        return None
    return values[0] if len(values) == 1 else tuple(values)


def run_phantom(args: argparse.Namespace, progress: Progress) -> int:
    seeds = args.seed
    for index, seed in enumerate(seeds):
        out_dir = args.out_dir if len(seeds) == 1 else args.out_dir / f"case_{seed:04d}"
        case = generate_case(seed, args.kind, mode=args.mode, spacing_mm=_spacing(args.spacing_mm),
                             crop_mm=args.crop_mm,
                             progress=progress.sub(index / len(seeds), (index + 1) / len(seeds)))
        write_case(case, out_dir)
        print(f"{out_dir}: seed {seed}, {len(case.lesions)} lesions")
    return 0


def run_dataset(args: argparse.Namespace, progress: Progress) -> int:
    manifest = write_dataset(args.out_dir, args.n, args.seed, args.kind, mode=args.mode,
                             spacing_mm=_spacing(args.spacing_mm), crop_mm=args.crop_mm,
                             progress=progress)
    print(f"{args.out_dir}: {len(manifest['cases'])} cases, manifest.json")
    return 0
