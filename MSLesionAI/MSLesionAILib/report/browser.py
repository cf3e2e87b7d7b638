"""Headless Chromium: print the report to PDF, or take a screenshot of it (docs and tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import MSLesionAIError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 120


def find_chromium() -> str | None:
    """The path of an installed Chromium (or Chrome), or None."""
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


def print_pdf(html_path: str | Path, pdf_path: str | Path) -> Path:
    """Print a page to PDF (A4 by the page's CSS, no browser header or footer)."""
    pdf_path = Path(pdf_path).resolve()
    _run_chromium([f"--print-to-pdf={pdf_path}", "--no-pdf-header-footer"], html_path, pdf_path)
    return pdf_path


def screenshot(html_path: str | Path, png_path: str | Path,
               window_size: tuple[int, int] = (1200, 1600)) -> Path:
    """A PNG of the top ``window_size`` (width, height in CSS pixels) of a page."""
    png_path = Path(png_path).resolve()
    _run_chromium([f"--screenshot={png_path}", "--window-size={},{}".format(*window_size),
                   "--hide-scrollbars"], html_path, png_path)
    return png_path


def _run_chromium(options: list[str], html_path: str | Path, output: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        raise MSLesionAIError("no Chromium found (looked for " + ", ".join(CHROMIUM_NAMES)
                              + "); install it, e.g. `apt-get install chromium`")
    output.unlink(missing_ok=True)
    # A fresh profile per run: parallel runs must not share (and lock) one.
    with tempfile.TemporaryDirectory(prefix="mslesionai-chromium-") as profile:
        command = [chromium, "--headless", "--disable-gpu", "--no-first-run",
                   "--no-default-browser-check", f"--user-data-dir={profile}", *options,
                   Path(html_path).resolve().as_uri()]
        if os.geteuid() == 0:  # Chromium refuses to run its sandbox as root
            command.insert(1, "--no-sandbox")
        completed = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    if not output.exists():
        last_line = (completed.stderr.strip().splitlines() or ["no message"])[-1]
        raise MSLesionAIError(f"Chromium wrote no {output.name} (exit {completed.returncode}): "
                              f"{last_line}")
