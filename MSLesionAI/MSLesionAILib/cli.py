"""The `mslesionai` command line: subcommands from `MSLesionAILib.commands`, errors as one line.

Progress goes to a bar on a terminal, or, with ``--progress lines``, to machine-readable lines
on stdout (how the Slicer modules follow a run). SIGINT/SIGTERM cancel: the running command
stops at once and its partial outputs are removed (see `atomic.output_directory`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import signal
import sys
from collections.abc import Sequence

from . import __version__, commands
from .errors import Cancelled, MSLesionAIError
from .progress import Progress, bar_sink, line_sink

EXIT_ERROR = 2
EXIT_CANCELLED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mslesionai",
        description="AI assessment of multiple sclerosis lesions on MRI (MSLesionAI).")
    parser.add_argument("--version", action="version", version=f"mslesionai {__version__}")
    parser.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto",
                        help="progress display: a bar on a terminal (auto), machine-readable "
                             "lines on stdout (for the Slicer modules), or none")
    parser.add_argument("--verbose", action="store_true", help="log details to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not module_info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{module_info.name}").register(subparsers)
    return parser


def make_progress(mode: str) -> Progress:
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "none"
    sink = {"bar": bar_sink, "lines": line_sink}.get(mode)
    return Progress(sink() if sink else None)


def _raise_cancelled(signal_number: int, _frame: object) -> None:
    raise Cancelled(f"cancelled by signal {signal.Signals(signal_number).name}")


# Options whose value may start with "-" (a negative coordinate), which argparse would take for
# an option: ``--point -12.5,3,40`` is read as ``--point=-12.5,3,40``.
DASHED_VALUE_OPTIONS = ("--point",)


def attach_dashed_values(argv: Sequence[str]) -> list[str]:
    """``OPTION VALUE`` as ``OPTION=VALUE`` for the `DASHED_VALUE_OPTIONS`."""
    joined, args = [], iter(argv)
    for arg in args:
        value = next(args, None) if arg in DASHED_VALUE_OPTIONS else None
        joined.append(arg if value is None else f"{arg}={value}")
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(attach_dashed_values(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help()
        return EXIT_ERROR
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="mslesionai: %(levelname)s: %(message)s")
    signal.signal(signal.SIGTERM, _raise_cancelled)
    signal.signal(signal.SIGINT, _raise_cancelled)
    try:
        return int(args.func(args, make_progress(args.progress)) or 0)
    except Cancelled as error:
        print(f"mslesionai: {error}", file=sys.stderr)
        return EXIT_CANCELLED
    except MSLesionAIError as error:
        print(f"mslesionai: error: {error}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
