"""Outputs appear whole or not at all, and never replace what the user already has."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError


@contextmanager
def output_directory(out_dir: str | Path) -> Iterator[Path]:
    """Yield a hidden temporary folder beside ``out_dir``; rename it to ``out_dir`` on success.

    An existing non-empty ``out_dir`` is refused: results go to new folders. On any exception
    (cancel included) the temporary folder is removed, so no half-written output is left.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"--out: {out_dir} already exists and is not empty; "
                         "choose a new folder (existing results are never overwritten)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out_dir.exists():
        out_dir.rmdir()
    partial.rename(out_dir)
