"""The `mslesionai` subcommands, one module each.

Each module defines ``register(subparsers)``, which adds its parser and sets ``func`` to a
function ``(args, progress) -> int``. The command line discovers the modules of this package,
so a new subcommand is a new file here.
"""
