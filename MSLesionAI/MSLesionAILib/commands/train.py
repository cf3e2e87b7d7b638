"""`mslesionai train TASK …`: one sub-subcommand per module of `MSLesionAILib.training`.

Each training module defines ``register(subparsers)`` like the command modules do, so a new
trainable task is a new file in ``training/``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

from .. import training


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model bundle from phantom datasets")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    for module_info in sorted(pkgutil.iter_modules(training.__path__), key=lambda m: m.name):
        if not module_info.name.startswith("_"):
            module = importlib.import_module(f"{training.__name__}.{module_info.name}")
            if hasattr(module, "register"):
                module.register(tasks)
