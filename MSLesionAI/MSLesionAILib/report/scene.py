"""The report from Slicer nodes, for the modules' Report button (MRML only, no Qt).

The result nodes as they are now — after the user's corrections and "Update table" — are
written as a result folder (the files a pipeline writes, plus the input images the pictures are
drawn on) and reported like any other folder, so the page shows what the user sees.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import mrml
from ..imageio import write_image
from ..jsonfiles import write_json
from ..results import write_table_csv
from ..tasks import TASK_ATTRIBUTE, TASKS
from .build import write_report

# (task name, the run's result nodes, its input volume nodes by contrast, e.g. {"flair": node})
SceneResult = tuple[str, mrml.ResultNodes, dict[str, Any]]


def export_result_nodes(task: str, nodes: mrml.ResultNodes, image_nodes: dict[str, Any],
                        folder: str | Path) -> Path:
    """Write a result folder from result nodes: lesion ids, table, summary, input images."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    lesions = write_image(mrml.image_from_volume(nodes.lesion_ids),
                          folder / f"{task}_lesions.nii.gz")
    columns, rows = mrml.rows_from_table(nodes.table)
    write_table_csv(folder / "lesions.csv", columns, rows)
    inputs = {contrast: write_image(mrml.image_from_volume(node),
                                    folder / "inputs" / f"{contrast}.nii.gz").relative_to(folder)
              for contrast, node in image_nodes.items() if node is not None}
    summary = {**nodes.summary, "source": f"Slicer scene: {nodes.table.GetName()}",
               "inputs": {k: str(v) for k, v in inputs.items()},
               "files": {"lesions": lesions.name, "table": "lesions.csv"}}
    write_json(folder / "summary.json", summary)
    return folder


def write_scene_report(results: Sequence[SceneResult], out_html: str | Path, *,
                       patient: str | None = None, pdf: bool = False) -> list[Path]:
    """One patient's report from the scene: each module's latest result nodes and inputs."""
    with tempfile.TemporaryDirectory(prefix="mslesionai-report-") as work:
        folders = [export_result_nodes(task, nodes, images, Path(work) / task)
                   for task, nodes, images in results]
        return write_report(folders, out_html, patient=patient or "patient", pdf=pdf)


def write_result_report(table_node: Any, folder: str | Path) -> Path:
    """The Report button: one module result (the lesion table a run made, with its segmentation
    and lesion ids as they are now) as a new HTML file in ``folder``; the file written.

    The pictures are drawn on the volume the result's segmentation was made on (its reference
    geometry: the run's reference input, the contrast the report prefers for each task).
    """
    task = TASKS[table_node.GetAttribute(TASK_ATTRIBUTE)]
    nodes = mrml.result_nodes(table_node)
    reference = mrml.segmentation_reference_volume(nodes.segmentation)
    images = {task.reference_input: reference} if reference else {}
    out = new_report_path(folder, nodes.segmentation.GetName())
    write_scene_report([(task.name, nodes, images)], out,
                       patient=patient_name(reference or table_node))
    return out


def new_report_path(folder: str | Path, name: str, now: datetime | None = None) -> Path:
    """A file in ``folder`` that does not exist yet: ``NAME report YYYY-MM-DD HHMM.html`` (the
    name reduced to characters safe in file names), `` (2)``, `` (3)``… added when taken."""
    stem = re.sub(r"[^\w.+-]+", "_", name).strip("._") or "result"
    stem = f"{stem} report {(now or datetime.now()).strftime('%Y-%m-%d %H%M')}"
    path, number = Path(folder) / f"{stem}.html", 1
    while path.exists():
        number += 1
        path = Path(folder) / f"{stem} ({number}).html"
    return path


def patient_name(node: Any) -> str:
    """The top subject hierarchy folder holding the node (the patient of DICOM data, or the
    folder the data were put in), else the node's own name."""
    hierarchy = node.GetScene().GetSubjectHierarchyNode()
    item, top = hierarchy.GetItemByDataNode(node), None
    while item and item != hierarchy.GetSceneItemID():
        item, top = hierarchy.GetItemParent(item), item
    own = hierarchy.GetItemByDataNode(node)
    return hierarchy.GetItemName(top) if top and top != own else node.GetName()
