"""`mslesionai report`: one patient's result folders → one self-contained HTML page (and PDF)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ..progress import Progress
from ..report.build import write_report


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write a per-patient HTML report from result folders",
        description="Counts and volumes, lesion tables and a picture of every lesion, from the "
                    "folders that `mslesionai wm`, `cortical` and `rim` wrote for one patient.")
    parser.add_argument("folders", nargs="+", type=Path, metavar="DIR",
                        help="result folders of one patient (at most one per pipeline)")
    parser.add_argument("--out", required=True, type=Path, help="new HTML file to write")
    parser.add_argument("--pdf", action="store_true",
                        help="also print it to a PDF beside it (needs Chromium)")
    parser.add_argument("--image", action="append", default=[], metavar="CONTRAST=PATH",
                        help="an input image the results' summary.json does not name "
                             "(e.g. flair=flair.nii.gz, phase=phase.nii.gz); repeatable")
    parser.add_argument("--patient", help="name in the title (default: the folders' parent)")
    parser.add_argument("--max-lesions", type=int, default=36,
                        help="pictures of at most this many lesions per pipeline, the largest "
                             "(default: 36)")
    parser.set_defaults(func=run)


def parse_images(options: list[str]) -> dict[str, Path]:
    """``["flair=a.nii.gz", …]`` → ``{"flair": Path("a.nii.gz"), …}``."""
    images = {}
    for option in options:
        contrast, separator, path = option.partition("=")
        if not separator or not contrast or not path:
            raise InputError(f"--image {option}: expected CONTRAST=PATH, e.g. flair=flair.nii.gz")
        images[contrast.strip().lower()] = Path(path)
    return images


def run(args: argparse.Namespace, progress: Progress) -> int:
    progress.update(0.0, "reading results")
    written = write_report(args.folders, args.out, images=parse_images(args.image),
                           patient=args.patient, max_lesions=args.max_lesions, pdf=args.pdf)
    progress.update(1.0, "done")
    print("report: " + ", ".join(str(path) for path in written))
    return 0
