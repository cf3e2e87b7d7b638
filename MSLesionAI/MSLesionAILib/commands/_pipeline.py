"""What the three pipeline commands (wm, cortical, rim) share: options and the write step."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from ..atomic import output_directory
from ..devices import DEVICE_CHOICES
from ..progress import Progress
from ..results import LesionResult, write_result


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path,
                        help="new folder for the results (an existing non-empty one is refused)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                        help="where the network runs (auto: CUDA GPU if present, else CPU)")
    parser.add_argument("--model", default=None,
                        help="model bundle id or folder (default: the installed model preferred "
                             "for the contrasts given; `mslesionai models` lists them)")


def input_files(args: argparse.Namespace, names: Iterable[str]) -> dict[str, str]:
    """The absolute paths of the input images given on the command line, by contrast name."""
    return {name: str(Path(getattr(args, name)).resolve())
            for name in names if getattr(args, name, None)}


def run_and_write(out_dir: Path, progress: Progress, run: Callable[[Progress], LesionResult],
                  inputs: dict[str, str]) -> LesionResult:
    """Run a pipeline and write its files atomically into ``out_dir``; print a one-line summary,
    and the run's warnings (also in summary.json) on stderr, where a script's user sees them.

    ``inputs`` (contrast → path) goes into summary.json, so a report can show the images. The
    output folder is checked before the work starts, and on failure or cancel nothing is left
    behind.
    """
    with output_directory(out_dir) as partial:
        result = run(progress.sub(0.0, 0.95))
        result.summary["inputs"] = inputs
        progress.update(0.96, "writing results")
        write_result(result, partial)
    progress.update(1.0, "done")
    for warning in result.summary.get("warnings", []):
        print(f"mslesionai: warning: {warning}", file=sys.stderr)
    count = result.lesion_count
    print(f"{result.name}: {count} lesion{'s' * (count != 1)}; results in {out_dir}")
    return result
