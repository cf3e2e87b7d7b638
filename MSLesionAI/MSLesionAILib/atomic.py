"""Outputs appear whole or not at all, and never replace what the user already has."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError


@contextmanager
def output_directory(out_dir: str | Path) -> Iterator[Path]:
    """Yield a hidden temporary folder beside ``out_dir``; rename it to ``out_dir`` on success.

    An existing non-empty ``out_dir`` is refused: results go to new folders; an empty one is
    replaced by the results, which take its group and permissions (`_shared_like`). On any exception
    (cancel included) the temporary folder is removed, so no half-written output is left.
    """
    out_dir = _followed_link(Path(out_dir))
    _refuse_non_empty(out_dir)
    make_folder(out_dir.parent, "--out")
    partial = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    make_folder(partial, "--out")
    mode = stat.S_IMODE(out_dir.stat().st_mode) if out_dir.is_dir() else None
    try:
        if mode is not None:
            _shared_like(out_dir, partial, mode)
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    try:
        if out_dir.exists():
            out_dir.rmdir()
        if mode is not None:
            _set_mode(partial, mode)
        partial.rename(out_dir)
    except OSError as error:
        why = ("was filled by another run meanwhile" if out_dir.is_dir() and any(out_dir.iterdir())
               else f"could not take the results ({error.strerror or error})")
        raise InputError(f"--out: {out_dir} {why}; these results are in {partial}") from error


def _shared_like(folder: Path, partial: Path, mode: int) -> None:
    """Give ``partial`` the group and mode of the empty folder it will replace, before anything
    is written into it, so that a folder made for a group (setgid, group-writable) keeps the
    results shared: files then take the folder's group. The owner may write meanwhile (the
    exact mode is set at the end); a group the user is not in, or a file system without
    groups or modes, leaves the default."""
    if hasattr(os, "chown"):   # not on Windows
        try:
            os.chown(partial, -1, folder.stat().st_gid)
        except OSError:
            pass
    _set_mode(partial, mode | stat.S_IRWXU)


def _set_mode(path: Path, mode: int) -> None:
    try:
        path.chmod(mode)
    except OSError:
        pass


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
