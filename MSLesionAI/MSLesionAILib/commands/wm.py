"""`mslesionai wm`: white-matter lesions and brain tissue from FLAIR (T1, T2 optional)."""

from __future__ import annotations

import argparse

from ..argtypes import volume_ul
from ..bundles import find_bundle
from ..devices import choose_device
from ..geometry import check_overlap
from ..imageio import BRAIN, load_image
from ..masks import load_mask
from ..pipelines import wm
from ..progress import Progress
from ._pipeline import add_pipeline_options, input_files, run_and_write


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "wm", help="white-matter lesions + brain tissue (DeepSCAN-style)",
        description="Segment MS white-matter lesions and brain tissue; every lesion with its "
                    "volume, RAS centroid, location, probability and uncertainty.")
    parser.add_argument("--flair", required=True, help="FLAIR image (the reference grid)")
    parser.add_argument("--t1", help="T1-weighted image (optional; registered to FLAIR)")
    parser.add_argument("--t2", help="T2-weighted image (optional; registered to FLAIR)")
    parser.add_argument("--brain-mask", help="brain mask (default: estimated by the network)")
    parser.add_argument("--min-volume-ul", type=volume_ul, default=wm.MIN_VOLUME_UL,
                        help="smallest lesion kept, in µL (default 3)")
    parser.add_argument("--connectivity", type=int, choices=(6, 18, 26), default=wm.CONNECTIVITY,
                        help="voxel connectivity of a lesion (default 18, as MSSEG-2016)")
    add_pipeline_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    """Check every input (readable, 3D, brain-sized, overlapping FLAIR) before any work."""
    flair = load_image(args.flair, "--flair", field_of_view=BRAIN)
    others = {name: load_image(getattr(args, name), f"--{name}", field_of_view=BRAIN)
              for name in ("t1", "t2") if getattr(args, name)}
    brain_mask = load_mask(args.brain_mask, "--brain-mask") if args.brain_mask else None
    named = {f"--{name}": image for name, image in others.items()}
    if brain_mask is not None:
        named["--brain-mask"] = brain_mask
    for name, image in named.items():
        check_overlap(image, name, flair, "--flair")
    bundle = find_bundle(args.model, "wm", {"flair", *others})
    device = choose_device(args.device)
    run_and_write(args.out, progress, lambda stage: wm.run(
        flair, others.get("t1"), others.get("t2"), brain_mask, bundle=bundle, device=device,
        min_volume_ul=args.min_volume_ul, connectivity=args.connectivity, progress=stage),
        input_files(args, ("flair", "t1", "t2", "brain_mask")))
    return 0
