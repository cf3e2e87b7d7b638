"""The report page: one self-contained HTML document (inline CSS, pictures as base64 PNG data
URIs, no script, no external asset), so it can be mailed, archived or printed as it is."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from html import escape
from typing import Any

from .. import __version__
from ..labels import CHRONIC_ACTIVE_MIN_PRL, POINT_RESULT_NOTE
from .collect import PipelineResult
from .figures import BACKGROUNDS, Lightbox, lesions_to_show
from .groups import (
    GROUPINGS,
    TASK_TITLES,
    chronic_active,
    counted,
    prl_count,
    tally,
    title_of,
)

Section = tuple[PipelineResult, Lightbox | None]
COLUMN_TITLES = {"lesion_id": "#", "volume_ul": "volume (µL)", "centroid_r": "R (mm)",
                 "centroid_a": "A (mm)", "centroid_s": "S (mm)", "rim_positive": "rim",
                 "rim_probability": "rim probability", "split_from": "split from"}
DECIMALS = {"probability": 2, "rim_probability": 2, "uncertainty": 2}
GROUPED_COLUMNS = {column for column, _ in GROUPINGS.values()}

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
       color: #1d2433; margin: 0 auto; max-width: 1120px; padding: 24px; }
header { border-bottom: 3px solid #2b5d9b; margin-bottom: 16px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 28px 0 8px; }
.meta, figcaption, .note { color: #5b6577; font-size: 12.5px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 16px 0; }
.card { border: 1px solid #d5dae3; border-radius: 8px; padding: 10px 16px; min-width: 200px; }
.card .number { font-size: 28px; font-weight: 700; } .card .label { color: #5b6577; }
.flag { display: inline-block; border-radius: 4px; padding: 2px 8px; font-weight: 700; }
.flag.on { background: #c62828; color: white; } .flag.off { background: #e3e8ef; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 12.5px; }
th, td { border-bottom: 1px solid #e3e8ef; padding: 3px 10px; text-align: right; }
th { background: #f2f5f9; } td.text, th.text { text-align: left; }
figure { margin: 8px 0 16px; break-inside: avoid; }
figure img { max-width: 100%; display: block; background: black; }
.warning { color: #8a4b00; }
footer { margin-top: 32px; border-top: 1px solid #d5dae3; padding-top: 8px; }
@page { margin: 14mm; }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
"""


def render_report(patient: str, sections: list[Section], generated: str,
                  warnings: Iterable[str] = ()) -> str:
    """The whole page for one patient: warnings about the page as a whole and key numbers
    first, then one section per pipeline."""
    body = [f"<header><h1>MSLesionAI report — {escape(patient)}</h1>"
            f"<div class='meta'>Generated {escape(generated)} by MSLesionAI {__version__} from "
            f"{len(sections)} result folder(s).</div>{_warning_list(warnings)}</header>",
            "<div class='cards'>" + "".join(_card(result) for result, _ in sections) + "</div>",
            *(_section(result, lightbox) for result, lightbox in sections),
            "<footer class='note'>Automated analysis for research and teaching; every lesion "
            "must be checked by a qualified reader. Volumes in µL (1 µL = 1 mm³); positions in "
            "Slicer's RAS coordinates (mm).</footer>"]
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>MSLesionAI report — {escape(patient)}</title><style>{STYLE}</style>"
            "</head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _card(result: PipelineResult) -> str:
    if result.task == "rim" and "point" in result.summary:
        return _card_html(prl_count(result), "paramagnetic rim lesions (PRL)",
                          escape(POINT_RESULT_NOTE))
    if result.task == "rim":
        count = prl_count(result)
        flag = chronic_active(result)
        text = (f"≥ {CHRONIC_ACTIVE_MIN_PRL} PRL: chronic active" if flag
                else f"< {CHRONIC_ACTIVE_MIN_PRL} PRL")
        return _card_html(count, "paramagnetic rim lesions (PRL)",
                          f"<span class='flag {'on' if flag else 'off'}'>{escape(text)}</span>")
    groups = tally(result)
    total = counted(groups)
    parts = [f"{total.volume_ul / 1000:.2f} mL"] + [f"{group.count} {group.title}"
                                                    for group in groups if group.count]
    return _card_html(total.count, TASK_TITLES[result.task].lower(), escape(" · ".join(parts)))


def _card_html(number: int, label: str, detail: str) -> str:
    return (f"<div class='card'><div class='number'>{number}</div>"
            f"<div class='label'>{escape(label)}</div><div>{detail}</div></div>")


def _section(result: PipelineResult, lightbox: Lightbox | None) -> str:
    return "\n".join([f"<section id='{result.task}'><h2>{TASK_TITLES[result.task]}</h2>",
                      _facts(result), _counts_table(result), _figure(result, lightbox),
                      _lesion_table(result), "</section>"])


def _facts(result: PipelineResult) -> str:
    summary = result.summary
    facts = [f"Results: {escape(summary['source'])}" if "source" in summary
             else f"Results: <code>{escape(str(result.folder))}</code>"]
    if "model" in summary:
        facts.append(f"Model: {escape(_model_name(summary['model']))}")
    for key in ("candidates", "excluded"):
        if key in summary:
            facts.append(f"{key.capitalize()}: {escape(_count_text(summary[key]))}")
    return f"<p class='meta'>{' · '.join(facts)}</p>" + _warning_list(summary.get("warnings", []))


def _warning_list(warnings: Iterable[Any]) -> str:
    items = "".join(f"<li class='warning'>{escape(str(w))}</li>" for w in warnings)
    return f"<ul>{items}</ul>" if items else ""


def _model_name(model: Any) -> str:
    if isinstance(model, dict):
        return " ".join(str(model[key]) for key in ("id", "version") if key in model)
    return str(model)


def _count_text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{_key_title(key)} {item}" for key, item in value.items())
    return str(len(value)) if isinstance(value, list) else str(value)


def _key_title(key: str) -> str:
    """A summary key as words, its unit suffix in brackets: ``min_volume_ul`` → min volume (µL)."""
    for suffix, unit in (("_ul", "µL"), ("_mm", "mm"), ("_s", "s")):
        if key.endswith(suffix):
            return f"{key.removesuffix(suffix).replace('_', ' ')} ({unit})"
    return key.replace("_", " ")


def _counts_table(result: PipelineResult) -> str:
    column, _ = GROUPINGS[result.task]
    groups = tally(result)
    rows = [[group.title, str(group.count), f"{group.volume_ul:.1f}"]
            for group in [*groups, counted(groups)]]
    return _table([COLUMN_TITLES.get(column, column), "count", "volume (µL)"], rows, {0})


def _figure(result: PipelineResult, lightbox: Lightbox | None) -> str:
    if lightbox is None:
        return f"<p class='note'>{escape(_why_no_figure(result))}</p>"
    what = "rim+ lesions" if result.task == "rim" else "lesions"
    shown = (f"the {lightbox.shown} largest of {lightbox.total} {what}"
             if lightbox.shown < lightbox.total else f"all {lightbox.total} {what}")
    outline = ("bare (left) and outlined (right)" if result.task == "rim"
               else "with the segmentation outlined")
    data = base64.b64encode(lightbox.png).decode("ascii")
    return (f"<figure><img alt='{what} on {lightbox.contrast}' "
            f"src='data:image/png;base64,{data}'>"
            f"<figcaption>Axial slice through {shown}, on {escape(lightbox.contrast)}, "
            f"{outline}; radiological convention (patient's right on the left, anterior up), "
            "each panel windowed to its own grey levels. Titles: lesion number (table row), "
            "volume.</figcaption></figure>")


def _why_no_figure(result: PipelineResult) -> str:
    if not lesions_to_show(result):
        return "No rim+ lesion to show." if result.task == "rim" else "No lesion to show."
    wanted = " or ".join(BACKGROUNDS[result.task])
    missing = "; ".join(f"{name}: {path} not found" for name, path in result.missing_images.items())
    return (f"No picture: the {wanted} image of this result was not found"
            + (f" ({missing})" if missing else "")
            + f"; give it with --image {BACKGROUNDS[result.task][0]}=PATH.")


def _lesion_table(result: PipelineResult) -> str:
    if not result.rows:
        return "<p class='note'>The lesion table is empty.</p>"
    columns = list(result.rows[0])
    text_columns = {i for i, column in enumerate(columns) if column in GROUPED_COLUMNS}
    return _table([COLUMN_TITLES.get(column, column.replace("_", " ")) for column in columns],
                  [[_cell(column, row[column]) for column in columns] for row in result.rows],
                  text_columns)


def _cell(column: str, value: str | None) -> str:
    value = (value or "").strip()
    if column in GROUPED_COLUMNS:
        return title_of(value)
    try:
        number = float(value)
    except ValueError:
        return value
    if value.lstrip("-").isdigit():
        return value
    return f"{number:.{DECIMALS.get(column, 1)}f}"


def _table(header: list[str], rows: Iterable[list[str]], text_columns: set[int]) -> str:
    def cells(tag: str, values: list[str]) -> str:
        return "".join(f"<{tag}{' class=text' if i in text_columns else ''}>{escape(v)}</{tag}>"
                       for i, v in enumerate(values))

    return ("<table><thead><tr>" + cells("th", header) + "</tr></thead><tbody>"
            + "".join(f"<tr>{cells('td', row)}</tr>" for row in rows) + "</tbody></table>")
