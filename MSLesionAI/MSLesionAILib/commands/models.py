"""`mslesionai models`: the installed model bundles and what they need."""

from __future__ import annotations

import argparse
import json

from ..bundles import inputs_text, list_bundles
from ..progress import Progress


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the installed model bundles")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    rows = [{"id": b.id, "task": b.task, "version": b.metadata["version"],
             "inputs": b.input_names, "required": b.required_inputs,
             "chosen_for": b.chosen_for_inputs, "path": str(b.path)}
            for b in list_bundles()]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            chosen_for = (f"; chosen automatically only for {inputs_text(row['chosen_for'])} "
                          "alone" if row["chosen_for"] else "")
            print(f"{row['id']:<28} {row['task']:<9} v{row['version']:<8} "
                  f"inputs: {', '.join(row['inputs'])} (required: {', '.join(row['required'])}"
                  f"{chosen_for})")
        if not rows:
            print("no model bundles installed")
    return 0
