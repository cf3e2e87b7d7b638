"""The three modules' tasks: what differs between their runs, inputs and lesion tables.

Light on purpose (no numpy, no SimpleITK): the Slicer panels read it before the first-use
install of the library's dependencies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .labels import (
    CORTICAL_SEGMENTS,
    OVERLAPS_WM_LESION,
    OVERLAPS_WM_LESION_TITLE,
    RIM_SEGMENTS,
    WM_LESION_SEGMENT,
)

TASK_ATTRIBUTE = "MSLesionAI.task"  # on a result table: the name of the task that made it
ROLE_ATTRIBUTE = "MSLesionAI.role"  # on a result's volume (its lesion ids): never an input


@dataclass(frozen=True)
class Flag:
    """Lesions a task lists but does not count: kept in a segment of their own and marked 1 in
    a table column (editable, as the class is)."""

    segment: str
    column: str
    label: str  # in the panel's summary line


@dataclass(frozen=True)
class Task:
    """What differs between the three modules' runs and tables."""

    name: str                       # the CLI subcommand, e.g. "wm"
    title: str                      # in result node names: "FLAIR WM lesions"
    input_patterns: dict[str, str]  # volume inputs (CLI options) → volume name regex
    class_segments: dict[str, str]  # lesion class (a `class_column` value) → segment name
    class_column: str | None = None  # None: a single lesion class
    count_column: str | None = None  # the column the summary line counts by
    connectivity: int = 18
    flag: Flag | None = None

    @property
    def reference_input(self) -> str:
        """The first input: the results are on its grid."""
        return next(iter(self.input_patterns))

    @property
    def lesion_segments(self) -> tuple[str, ...]:
        return tuple(self.class_segments.values())


T2STAR = r"t2\*|t2.?star|swi|gre"
# The MP2RAGE uniform image, not one of its inversions (INV1, inv-2) or its T1 map.
MP2RAGE_UNI = r"^(?!.*(inv|t1.?map)).*(mp2rage|uni)"
# A brain mask, not a lesion mask.
BRAIN_MASK = r"brain.?mask|mask.*brain|skull.?strip"
# T1- and T2-weighted images ("3DT1", "sT1W_3D_TFE", "T2 TSE"): not a number ("patient2",
# "T12"), a T1 map, T2*, T2s or T2 FLAIR.
T1 = r"(?<!patien)t1(?![0-9]|.?map)|mprage"
T2 = r"(?<!patien)t2(?![0-9]|\*|.?star|s\b|s_|.?flair)"
MAGNITUDE = r"(?<![a-z])mag"   # not "images"
WM = Task("wm", "WM lesions", {"flair": "flair", "t1": T1, "t2": T2, "brain-mask": BRAIN_MASK},
          {"wm": WM_LESION_SEGMENT[0]}, count_column="location")
CORTICAL = Task("cortical", "cortical lesions",
                {"mp2rage": MP2RAGE_UNI, "t2star-epi": "epi", "t2star-gre": T2STAR},
                {value: name for value, (name, _) in CORTICAL_SEGMENTS.items()},
                class_column="class", count_column="class",
                flag=Flag(WM_LESION_SEGMENT[0], OVERLAPS_WM_LESION, OVERLAPS_WM_LESION_TITLE))
RIM = Task("rim", "rim lesions",
           {"phase": r"phase|pha\b", "flair": "flair", "mp2rage": MP2RAGE_UNI,
            "t2star": f"{T2STAR}|{MAGNITUDE}", "t1": T1, "t2": T2},
           {str(value): name for value, (name, _) in RIM_SEGMENTS.items()},
           class_column="rim_positive", count_column="rim_positive", connectivity=6)
TASKS = {task.name: task for task in (WM, CORTICAL, RIM)}


def match_inputs(task: Task, volume_nodes: list[Any]) -> dict[str, Any]:
    """Volumes auto-selected by name: each input (in order) takes the first volume not taken
    yet whose name matches its pattern (case-insensitive). A result's own volume (its lesion
    ids, named after the reference volume) and hidden volumes are not the user's inputs, and a
    label map is only ever a mask."""
    chosen: dict[str, Any] = {}
    shown = [node for node in volume_nodes
             if not node.GetHideFromEditors() and not node.GetAttribute(ROLE_ATTRIBUTE)]
    for option, pattern in task.input_patterns.items():
        for node in shown:
            if (node not in chosen.values() and re.search(pattern, node.GetName(), re.IGNORECASE)
                    and (option.endswith("mask") or not node.IsA("vtkMRMLLabelMapVolumeNode"))):
                chosen[option] = node
                break
    return chosen


def option_name(parameter: str) -> str:
    """The CLI option of a (camelCase) module parameter: ``t2starGre`` → ``t2star-gre``."""
    return re.sub(r"([A-Z])", r"-\1", parameter).lower()


def parameter_name(option: str) -> str:
    """The module parameter of a CLI option: ``t2star-gre`` → ``t2starGre``."""
    return re.sub(r"-(\w)", lambda match: match.group(1).upper(), option)
