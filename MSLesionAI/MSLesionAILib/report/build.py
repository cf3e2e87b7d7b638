"""Write one patient's report: read the result folders, draw, write the page (and a PDF)."""

from __future__ import annotations

import os
from collections import Counter
from datetime import datetime
from pathlib import Path

from ..atomic import refuse_existing
from ..errors import InputError, MSLesionAIError
from . import browser
from .collect import mismatched_inputs, read_patient
from .figures import lesion_lightbox
from .html import render_report


def write_report(folders: list[str | Path], out_html: str | Path, *,
                 images: dict[str, Path] | None = None, patient: str | None = None,
                 max_lesions: int = 36, pdf: bool = False) -> list[Path]:
    """Write ``out_html`` (and, with ``pdf``, the same name with ``.pdf``) for one patient's
    result folders (at most one per pipeline); return the files written.

    Existing files are never replaced. ``images`` (contrast → path) stand in for the input
    images a result folder's summary does not name or that have moved.
    """
    if max_lesions < 1:
        raise InputError(f"--max-lesions: {max_lesions}; give at least 1")
    out_html = Path(out_html)
    outputs = [out_html, out_html.with_suffix(".pdf")] if pdf else [out_html]
    refuse_existing(outputs, "--out")
    results = read_patient(folders, images)
    repeated = [task for task, n in Counter(r.task for r in results).items() if n > 1]
    if repeated:
        raise InputError(f"more than one {repeated[0]} result given; a report is for one "
                         "patient, with at most one result folder per pipeline")
    sections = [(result, lesion_lightbox(result, max_lesions)) for result in results]
    _write_whole(out_html, render_report(patient or _patient_name(folders), sections,
                                         datetime.now().strftime("%Y-%m-%d %H:%M"),
                                         mismatched_inputs(results)))
    if pdf:
        try:
            browser.print_pdf(out_html, outputs[1])
        except MSLesionAIError as error:
            raise MSLesionAIError(f"{out_html} written, but not the PDF: {error}") from error
    return outputs


def _write_whole(path: Path, text: str) -> None:
    """Write through a hidden temporary file, so the page appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    partial.rename(path)


def _patient_name(folders: list[str | Path]) -> str:
    """The folder the result folders share (e.g. ``case07`` for ``case07/wm``, ``case07/rim``)."""
    parents = {Path(folder).resolve().parent for folder in folders}
    return parents.pop().name if len(parents) == 1 else "patient"
