"""What each module's logic does, with MRML only (no Qt): run a pipeline on volume nodes and
turn its files into new nodes; then the editing loop on those nodes.

A run: `start` exports the input nodes to a temporary folder, starts ``mslesionai TASK …``
through an injectable `Runner`, and returns a `Job`; the widget polls the job from a timer,
scripts and tests call `Job.finish`. Nothing in the scene changes before `Job.finish` loads
the results into new nodes, so a cancelled or failed run leaves the scene as it was, and input
nodes are only read.

Editing: after the user edits a result segmentation, `update_table` recomputes the lesion table
(lesions keep their ids where they are still there); after the user edits a lesion's class in
the table (rim status, cortical class) or its flag (a cortical lesion on a white-matter lesion),
`apply_table_classes` moves it between segments.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from . import mrml
from .errors import InputError
from .labels import CHRONIC_ACTIVE_MIN_PRL, POINT_RESULT_NOTE, TISSUE_NAMES
from .lesions import label_components, lesion_measures, wm_lesion_locations
from .process import EXIT_CANCELLED as EXIT_CANCELLED  # for the module logic's tests
from .process import Run, Runner, ScratchJob, run_cli
from .tasks import CORTICAL as CORTICAL  # the tasks, re-exported for the module logic
from .tasks import RIM, TASK_ATTRIBUTE, Task
from .tasks import TASKS as TASKS
from .tasks import WM as WM
from .tasks import match_inputs as match_inputs

# --- running a pipeline ---------------------------------------------------------------------

class Job(ScratchJob):
    """A pipeline run in progress; its results become nodes only in `finish`."""

    def __init__(self, task: Task, reference: Any, run: Run, folder: Path) -> None:
        super().__init__(run, folder)
        self.task, self.reference = task, reference  # reference: the reference input node
        self.name = f"{reference.GetName()} {task.title}"

    def finish(self) -> mrml.ResultNodes:
        """Wait for the run, then load its results as new nodes beside the reference input."""
        try:
            self.wait_for_success(self.task.name)
            nodes = mrml.load_result_folder(self.reference.GetScene(), self.folder / "out",
                                            self.reference, self.name)
        finally:
            self.discard()
        nodes.table.SetAttribute(TASK_ATTRIBUTE, self.task.name)
        mrml.place_beside(nodes.nodes(), self.reference)
        _show_only_lesions(self.task, nodes.segmentation)
        return nodes


def start(task: Task, inputs: dict[str, Any], options: dict[str, Any] | None = None,
          runner: Runner = run_cli) -> Job:
    """Export the input nodes (CLI option name → volume or segmentation node, or None) and
    start ``mslesionai TASK``; ``options`` become ``--name value`` (True: a bare flag)."""
    reference = inputs.get(task.reference_input)
    if reference is None:
        raise InputError(f"{task.reference_input}: required; select a volume")
    folder = Path(tempfile.mkdtemp(prefix=f"mslesionai-{task.name}-"))
    try:
        reference_image = mrml.image_from_volume(reference)
        args = [task.name, "--out", str(folder / "out")]
        for option, node in inputs.items():
            if node is not None:
                path = folder / f"{option}.nrrd"
                image = reference_image if node is reference else _input_image(node, reference)
                sitk.WriteImage(image, str(path))
                args += [f"--{option}", str(path)]
        return Job(task, reference, runner(args + option_arguments(options or {})), folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def run(task: Task, inputs: dict[str, Any], options: dict[str, Any] | None = None,
        runner: Runner = run_cli) -> mrml.ResultNodes:
    """`start` and `Job.finish`: for scripts and self-tests."""
    return start(task, inputs, options, runner).finish()


def option_arguments(options: dict[str, Any]) -> list[str]:
    """``--name=value`` (the ``=`` keeps a value such as ``-12.5,3,40`` from reading as an
    option), ``--name`` for True; None, False and "" leave the option out."""
    args = []
    for name, value in options.items():
        if value is True:
            args.append(f"--{name}")
        elif value not in (None, False, ""):
            args.append(f"--{name}={value}")
    return args


def _input_image(node: Any, reference: Any) -> sitk.Image:
    """An input node in the reference volume's coordinates (so transforms that align it there
    count): a volume as it is, a segmentation as a binary mask of its lesion segments (all
    segments when none is named "… lesion") on the reference's grid."""
    if not node.IsA("vtkMRMLSegmentationNode"):
        return mrml.image_from_volume(node, frame_node=reference)
    grid = mrml.image_from_volume(reference)
    names = {sid: node.GetSegmentation().GetSegment(sid).GetName()
             for sid in mrml.segment_ids(node)}
    chosen = [sid for sid, name in names.items() if name.endswith("lesion")] or list(names)
    mask = np.zeros(sitk.GetArrayViewFromImage(grid).shape, np.uint8)
    for segment_id in chosen:
        mask[mrml.segment_mask(node, segment_id, grid, frame_node=reference)] = 1
    image = sitk.GetImageFromArray(mask)
    image.CopyInformation(grid)
    return image


def _show_only_lesions(task: Task, segmentation_node: Any) -> None:
    display = segmentation_node.GetDisplayNode()
    for segment_id in mrml.segment_ids(segmentation_node):
        name = segmentation_node.GetSegmentation().GetSegment(segment_id).GetName()
        display.SetSegmentVisibility(segment_id, name in _segment_names(task).values())


# --- the editing loop -----------------------------------------------------------------------

def update_table(task: Task, nodes: mrml.ResultNodes) -> None:
    """Recompute the lesion table from the (edited) segmentation.

    Lesions are the connected components of the lesion segments. A component keeps the id of
    the previous lesion it overlaps most (so unchanged lesions keep id and values); a new
    lesion gets a new id. Measured columns are recomputed, the class column follows the
    segment holding most of the lesion, the location follows the tissue segments (white
    matter); other columns are kept for kept ids and empty for new lesions. A lesion mostly in
    the task's flag segment is flagged and keeps its class (a new one takes the first class).
    """
    grid = mrml.image_from_volume(nodes.lesion_ids)
    classes = lesion_classes(task, nodes.segmentation, grid)
    components = label_components(classes > 0, task.connectivity)
    ids = keep_lesion_ids(components, sitk.GetArrayFromImage(grid))
    columns, previous_rows = mrml.rows_from_table(nodes.table)
    previous = {row["lesion_id"]: row for row in previous_rows}
    rows = []
    locations = _wm_locations(nodes.segmentation, ids, grid) if "location" in columns else {}
    for measured, class_index in zip(lesion_measures(ids, grid), _majority(ids, classes),
                                     strict=True):
        row = {**previous.get(measured["lesion_id"], dict.fromkeys(columns, "")), **measured}
        if task.class_column:
            row[task.class_column] = _class_value(task, class_index, row[task.class_column])
        if task.flag:
            row[task.flag.column] = int(class_index == _flag_index(task))
        if locations:
            row["location"] = locations[measured["lesion_id"]]
        rows.append({column: row[column] for column in columns})
    if "split_from" in columns:
        _prune_split_groups(rows)
    mrml.fill_table(nodes.table, columns, rows)
    mrml.set_volume_voxels(nodes.lesion_ids, ids.astype(np.uint32))


def _prune_split_groups(rows: list[dict[str, Any]]) -> None:
    """A rim split group ("2+3") names lesions of the table: ids gone since the run are
    dropped, and a group of one lesion is no split (so a reused id is never named)."""
    present = {str(row["lesion_id"]) for row in rows}
    for row in rows:
        parts = [part for part in str(row["split_from"]).split("+") if part in present]
        row["split_from"] = "+".join(parts) if len(parts) > 1 else ""


def apply_table_classes(task: Task, nodes: mrml.ResultNodes) -> None:
    """Move each lesion of the table into the segment of its (edited) class column value, or
    into the flag segment when its flag column is 1."""
    if task.class_column is None:
        return
    grid = mrml.image_from_volume(nodes.lesion_ids)
    ids = sitk.GetArrayFromImage(grid)
    target = np.zeros(int(ids.max(initial=0)) + 1, np.int64)  # lesion id → segment index
    for row in mrml.rows_from_table(nodes.table)[1]:
        if row["lesion_id"] < len(target):
            target[row["lesion_id"]] = _row_segment_index(task, row)
    classes = lesion_classes(task, nodes.segmentation, grid)
    classes = np.where(target[ids] > 0, target[ids], classes)
    masks = {name: classes == index for index, name in _segment_names(task).items()}
    if task.flag and not masks[task.flag.segment].any() and not (
            nodes.segmentation.GetSegmentation().GetSegmentIdBySegmentName(task.flag.segment)):
        del masks[task.flag.segment]  # a result without flagged lesions has no flag segment
    mrml.set_segment_masks(nodes.segmentation, {
        _segment_id_by_name(nodes.segmentation, name): mask for name, mask in masks.items()},
        grid)


def _row_segment_index(task: Task, row: dict[str, Any]) -> int:
    """The segment a table row puts its lesion in (an index of `_segment_names`)."""
    class_values = list(task.class_segments)
    value = str(row[task.class_column])
    if value not in task.class_segments:
        raise InputError(f"lesion {row['lesion_id']}: {task.class_column} '{value}' is not "
                         f"one of {', '.join(class_values)}")
    if task.flag and _is_flagged(task, row):
        return _flag_index(task)
    return class_values.index(value) + 1


def _is_flagged(task: Task, row: dict[str, Any]) -> bool:
    value = str(row.get(task.flag.column, 0))  # a table without the column flags nothing
    if value not in ("0", "1"):
        raise InputError(f"lesion {row['lesion_id']}: {task.flag.column} '{value}' is not 0 or 1")
    return value == "1"


def _class_value(task: Task, segment_index: int, previous_value: Any) -> str:
    """The class column's value of a lesion mostly in segment ``segment_index``: its segment's
    class; in the flag segment, which has no class, the class it had (new lesions: the first)."""
    class_values = list(task.class_segments)
    if segment_index <= len(class_values):
        return class_values[segment_index - 1]
    return str(previous_value) if str(previous_value) in class_values else class_values[0]


def table_mismatches(task: Task, nodes: mrml.ResultNodes) -> list[str]:
    """Where the lesion table and the segmentation disagree; empty when they agree, as they must
    after a run or `update_table` (after the user's edits, a non-empty answer means "update the
    table")."""
    grid = mrml.image_from_volume(nodes.lesion_ids)
    ids = sitk.GetArrayFromImage(grid)
    classes = lesion_classes(task, nodes.segmentation, grid)
    rows = mrml.rows_from_table(nodes.table)[1]
    voxels = np.bincount(ids.ravel())
    problems = []
    listed = sorted(row["lesion_id"] for row in rows)
    present = [int(i) for i in np.flatnonzero(voxels[1:]) + 1]
    if listed != present:
        problems.append(f"the table lists lesions {listed}, the lesion labelmap has {present}")
    if not np.array_equal(ids > 0, classes > 0):
        problems.append("the lesion segments differ from the lesions of the table")
    problems += [f"lesion {row['lesion_id']}: the table says {row['voxels']} voxels, "
                 f"the labelmap has {voxels[row['lesion_id']]}"
                 for row in rows if "voxels" in row and row["lesion_id"] in present
                 and row["voxels"] != voxels[row["lesion_id"]]]
    return problems


def lesion_classes(task: Task, segmentation_node: Any, grid: sitk.Image) -> np.ndarray:
    """Per voxel, the index in `_segment_names` of the lesion segment holding it (0: none):
    1.. for the class segments, then the flag segment's when the segmentation has one."""
    classes = _segment_labels(segmentation_node, dict(enumerate(task.lesion_segments, start=1)),
                              grid)
    if task.flag:
        flagged = _segment_labels(segmentation_node, {1: task.flag.segment}, grid,
                                  required=False)
        classes[flagged > 0] = _flag_index(task)
    return classes


def _segment_names(task: Task) -> dict[int, str]:
    """The task's lesion segments by index: its classes' 1.., then its flag segment."""
    names = dict(enumerate(task.lesion_segments, start=1))
    if task.flag:
        names[_flag_index(task)] = task.flag.segment
    return names


def _flag_index(task: Task) -> int:
    return len(task.lesion_segments) + 1


def keep_lesion_ids(components: np.ndarray, previous_ids: np.ndarray) -> np.ndarray:
    """Ids for new components (1..n): each previous id goes to the component that overlaps it
    most, largest overlaps first; components left over get ids above every previous id."""
    both = (components > 0) & (previous_ids > 0)
    pairs, overlaps = np.unique(np.stack([components[both], previous_ids[both]]), axis=1,
                                return_counts=True)
    new_id = np.zeros(int(components.max(initial=0)) + 1, np.int64)
    used = set()
    for index in np.argsort(-overlaps, kind="stable"):
        component, previous = (int(v) for v in pairs[:, index])
        if not new_id[component] and previous not in used:
            new_id[component] = previous
            used.add(previous)
    next_id = int(previous_ids.max(initial=0)) + 1
    for component in range(1, len(new_id)):
        if not new_id[component]:
            new_id[component], next_id = next_id, next_id + 1
    return new_id[components]


def _wm_locations(segmentation_node: Any, ids: np.ndarray, grid: sitk.Image) -> dict[int, str]:
    """Each lesion's location from the tissue segments, by the rules the white-matter pipeline
    uses (none without tissue segments)."""
    tissue = _segment_labels(segmentation_node, TISSUE_NAMES, grid, required=False)
    return wm_lesion_locations(ids, tissue, grid.GetSpacing()[::-1]) if tissue.any() else {}


def _segment_labels(segmentation_node: Any, names: dict[int, str], grid: sitk.Image,
                    required: bool = True) -> np.ndarray:
    """A labelmap on the grid: each voxel has the value of the named segment holding it (the
    last one named, when several do); a missing segment is an error when ``required``."""
    labels = np.zeros(sitk.GetArrayViewFromImage(grid).shape, np.uint8)
    for value, name in names.items():
        if required or segmentation_node.GetSegmentation().GetSegmentIdBySegmentName(name):
            segment_id = _segment_id_by_name(segmentation_node, name)
            labels[mrml.segment_mask(segmentation_node, segment_id, grid)] = value
    return labels


def _majority(ids: np.ndarray, classes: np.ndarray) -> list[int]:
    """For each lesion id present (ascending), the class most of its voxels have."""
    voxels = ids > 0
    counts = np.zeros((int(ids.max(initial=0)) + 1, int(classes.max(initial=0)) + 1), np.int64)
    np.add.at(counts, (ids[voxels], classes[voxels]), 1)
    return [int(np.argmax(counts[i])) for i in np.flatnonzero(counts.sum(axis=1))]


def _segment_id_by_name(segmentation_node: Any, name: str) -> str:
    segment_id = segmentation_node.GetSegmentation().GetSegmentIdBySegmentName(name)
    if not segment_id:
        raise InputError(f"{segmentation_node.GetName()}: has no segment named '{name}'")
    return segment_id


# --- what the panel shows -------------------------------------------------------------------

def finished_message(summary: dict[str, Any]) -> str:
    """The status after a run: the model that made the result (the automatic choice depends on
    the contrasts given), then each warning on its own line."""
    model = summary.get("model")
    done = f"Done with {model['id']} v{model['version']}." if model else "Done."
    return "\n".join([done, *summary.get("warnings", [])])


def summary_line(task: Task, table_node: Any) -> str:
    """Lesion count, total volume, counts by the task's count column (from the table, so it
    stays right after edits); for rim lesions, the PRL count and the chronic-active flag."""
    columns, rows = mrml.rows_from_table(table_node)
    total_ul = sum(row["volume_ul"] for row in rows) if "volume_ul" in columns else 0.0
    parts = [f"{len(rows)} lesions, {total_ul:.1f} µL"]
    if task.count_column in columns:
        counts = Counter(_count_label(task, row) for row in rows)
        parts.append(", ".join(f"{label}: {count}" for label, count in sorted(counts.items())))
    if task is RIM:
        prl_count = sum(str(row["rim_positive"]) == "1" for row in rows)
        chronic = "" if prl_count >= CHRONIC_ACTIVE_MIN_PRL else "not "
        parts.append(POINT_RESULT_NOTE if "point" in mrml.result_nodes(table_node).summary
                     else f"{prl_count} PRL ({chronic}chronic active: ≥ "
                          f"{CHRONIC_ACTIVE_MIN_PRL})")
    return "; ".join(parts)


def _count_label(task: Task, row: dict[str, Any]) -> str:
    """What the summary line counts a lesion as: its segment's name, or the flag's label."""
    if task.flag and str(row.get(task.flag.column)) == "1":
        return task.flag.label
    value = str(row[task.count_column])
    return task.class_segments.get(value, value)
