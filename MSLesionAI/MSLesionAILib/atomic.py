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

    An existing non-empty ``out_dir`` is refused: results go to new folders; an empty one is
    replaced by the results, which take its group and permissions (`_like`). On any exception
    (cancel included) the temporary folder is removed, so no half-written output is left.
    """
    out_dir = _followed_link(Path(out_dir))
    _refuse_non_empty(out_dir)
    make_folder(out_dir.parent, "--out")
    partial = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    make_folder(partial, "--out")
    if out_dir.is_dir():
        _like(out_dir, partial)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    try:
        if out_dir.exists():
            out_dir.rmdir()
        partial.rename(out_dir)
    except OSError as error:
        why = ("was filled by another run meanwhile" if out_dir.is_dir() and any(out_dir.iterdir())
               else f"could not take the results ({error.strerror or error})")
        raise InputError(f"--out: {out_dir} {why}; these results are in {partial}") from error


def _like(folder: Path, partial: Path) -> None:
    """Give ``partial`` the group and mode of the empty folder it will replace, before anything
    is written into it, so that a folder made for a group (setgid, group-writable) keeps the
    results shared: files then take the folder's group. A group the user is not in is left."""
    try:
        os.chown(partial, -1, folder.stat().st_gid)
    except PermissionError:
        pass
    shutil.copymode(folder, partial)


def _followed_link(out_dir: Path) -> Path:
    """A link to a folder stands for that folder (the results go there); a link to nothing
    is refused before any work."""
    if not out_dir.is_symlink():
        return out_dir
    if not out_dir.exists():
        raise InputError(f"--out: {out_dir} is a link to {os.readlink(out_dir)}, which does "
                         "not exist; give a folder")
    return out_dir.resolve()


def _refuse_non_empty(out_dir: Path) -> None:
    if out_dir.is_file():
        raise InputError(f"--out: {out_dir} is a file; give a new folder")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"--out: {out_dir} already exists and is not empty; "
                         "choose a new folder (existing results are never overwritten)")


def make_folder(folder: Path, option: str) -> None:
    """Create ``folder`` and its parents; one clear line when that is impossible (a file in
    the way, no permission, a full disk)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{option}: cannot create {folder}: {error.strerror or error}") from error


def refuse_existing(paths: list[Path], option: str) -> None:
    """Output files must be new: existing files are never overwritten."""
    for path in paths:
        if path.exists():
            raise InputError(f"{option}: {path} already exists; choose a new name "
                             "(existing files are never overwritten)")
