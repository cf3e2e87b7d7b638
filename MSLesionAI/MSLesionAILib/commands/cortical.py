"""`mslesionai cortical`: cortical lesions on 7 T MP2RAGE (+ optional T2*), CLAIMS's two classes."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..bundles import find_bundle
from ..pipelines import cortical
from ..progress import Progress
from ._pipeline import add_pipeline_options, input_files, run_and_write


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cortical", help="detect cortical lesions and class them leukocortical or "
                         "intracortical/subpial (CLAIMS, 7 T MP2RAGE)")
    parser.add_argument("--mp2rage", required=True, type=Path,
                        help="MP2RAGE uniform image (0.5-1 mm); results are in its geometry")
    parser.add_argument("--t2star-gre", type=Path, help="optional T2*-weighted GRE")
    parser.add_argument("--t2star-epi", type=Path, help="optional T2*-weighted EPI")
    parser.add_argument("--wm-lesions", type=Path,
                        help="optional white-matter lesion mask: lesions touching it are "
                             "flagged, not counted as cortical")
    parser.add_argument("--min-volume-ul", type=float, default=1.0,
                        choices=cortical.MIN_VOLUME_CHOICES_UL,
                        help="smallest lesion kept, in µL (CLAIMS's choices; default 1)")
    add_pipeline_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    inputs = cortical.CorticalInputs(args.mp2rage, args.t2star_gre, args.t2star_epi,
                                     args.wm_lesions)
    bundle = find_bundle(args.model, "cortical", set(inputs.contrasts()))
    options = cortical.CorticalOptions(args.min_volume_ul, args.device)
    run_and_write(args.out, progress, lambda part: cortical.run(inputs, bundle, options, part),
                  input_files(args, ("mp2rage", "t2star_gre", "t2star_epi", "wm_lesions")))
    return 0
