"""How the report groups, names and colours lesions: WM lesions by location, cortical lesions by
class, rim lesions by rim status; counts and volumes per group come from the lesion table."""

from __future__ import annotations

from dataclasses import dataclass

from ..labels import (
    CHRONIC_ACTIVE_MIN_PRL,
    CORTICAL_CLASSES,
    CORTICAL_SEGMENTS,
    OVERLAPS_WM_LESION,
    OVERLAPS_WM_LESION_TITLE,
    RIM_SEGMENTS,
    WM_LESION_SEGMENT,
    WM_LOCATIONS,
)
from .collect import PipelineResult

TASK_TITLES = {"wm": "White-matter lesions", "cortical": "Cortical lesions",
               "rim": "Paramagnetic rim lesions"}
# The table column each task's lesions are grouped by, and its known values in display order.
GROUPINGS = {"wm": ("location", WM_LOCATIONS), "cortical": ("class", CORTICAL_CLASSES),
             "rim": ("rim_positive", ("1", "0"))}
GROUP_TITLES = {"deep": "deep white matter", "intracortical_subpial": "intracortical/subpial",
                "1": "rim+", "0": "rim−", "": "not given",
                OVERLAPS_WM_LESION: OVERLAPS_WM_LESION_TITLE}
Color = tuple[float, float, float]


@dataclass(frozen=True)
class Group:
    """Lesions sharing a location, class or rim status."""

    value: str
    count: int
    volume_ul: float

    @property
    def title(self) -> str:
        return title_of(self.value)


    @property
    def counted(self) -> bool:
        return self.value != OVERLAPS_WM_LESION


def title_of(value: str) -> str:
    """How a location, class or rim status reads on the page ("deep" → "deep white matter")."""
    return GROUP_TITLES.get(value, value)


def group_of(task: str, row: dict[str, str]) -> str:
    if row.get(OVERLAPS_WM_LESION, "").strip() == "1":
        return OVERLAPS_WM_LESION
    column, _ = GROUPINGS[task]
    return (row.get(column) or "").strip()


def lesion_color(task: str, row: dict[str, str]) -> Color:
    """The lesion's colour, the same as its segment's in Slicer."""
    if task == "cortical":
        return CORTICAL_SEGMENTS.get(group_of(task, row), WM_LESION_SEGMENT)[1]
    if task == "rim":
        return RIM_SEGMENTS[int(group_of(task, row) == "1")][1]
    return WM_LESION_SEGMENT[1]


def tally(result: PipelineResult) -> list[Group]:
    """Count and volume per group: every known group (zeros included), then any other value."""
    _, known = GROUPINGS[result.task]
    seen = [group_of(result.task, row) for row in result.rows]
    values = list(known) + sorted(set(seen) - set(known))
    return [Group(value, seen.count(value),
                  sum(volume_ul(row) for row, group in zip(result.rows, seen, strict=True)
                      if group == value))
            for value in values]


def volume_ul(row: dict[str, str]) -> float:
    return float(row.get("volume_ul") or 0.0)


def counted(groups: list[Group]) -> Group:
    """All lesions that count (cortical lesions touching a WM lesion do not)."""
    kept = [group for group in groups if group.counted]
    return Group("all", sum(g.count for g in kept), sum(g.volume_ul for g in kept))


def prl_count(result: PipelineResult) -> int:
    return sum(group_of("rim", row) == "1" for row in result.rows)


def chronic_active(result: PipelineResult) -> bool:
    return prl_count(result) >= CHRONIC_ACTIVE_MIN_PRL
