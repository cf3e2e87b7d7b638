"""The benchmark run: held-out cohorts → every model and baseline (`sections`) → RESULTS.md
with the machine, versions, seeds and commit at the top, and the PNG figures (`plots`).
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import monai
import numpy as np
import SimpleITK as sitk
import torch

from .. import __version__
from ..bundles import ModelBundle, list_bundles, load_bundle
from ..devices import choose_device
from ..progress import Progress
from ..training._loop import device_description, git_commit
from . import plots, sections, speed
from .cohort import FULL_COHORTS, QUICK_COHORTS, used_seeds, write_cohort
from .sections import BASELINE_TASKS, Options, Report

__all__ = ["Options", "run_benchmark"]


def run_benchmark(options: Options, progress: Progress | None = None) -> Path:
    """Run everything; write ``OUT/RESULTS.md`` and the figures; return RESULTS.md's path."""
    progress = progress or Progress()
    torch.set_num_threads(options.threads)
    work = options.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    bundles = ([load_bundle(p) for p in options.models] if options.models is not None
               else list_bundles())
    used = used_seeds(bundles)
    report = Report()
    by_task = _by_task(bundles)
    baselines = set(BASELINE_TASKS) - options.skip_baselines
    cohorts = {kind: _cohort(kind, options, work, used, report) for kind in FULL_COHORTS
               if by_task.get(kind) or kind in baselines}
    steps = ((sections.wm_section, 0.4), (sections.cortical_section, 0.7),
             (sections.rim_section, 0.8), (sections.speed_section, 1.0))
    start = 0.0
    for section, end in steps:
        section(by_task, cohorts, options, work, report, progress.sub(start, end))
        start = end
    return _write_results(options, bundles, used, report)


def _by_task(bundles: list[ModelBundle]) -> dict[str, list[ModelBundle]]:
    """Bundles by task, general ones first (in the given order): a task's first bundle is the
    one timed and the one whose training the baselines are measured against, so it is a model
    chosen only for some inputs (a FLAIR-only one) only when no general one is given."""
    grouped: dict[str, list[ModelBundle]] = {}
    for bundle in sorted(bundles, key=lambda b: b.chosen_for_inputs is not None):
        grouped.setdefault(bundle.task, []).append(bundle)
    return grouped


def _cohort(kind: str, options: Options, work: Path, used: dict[int, str],
            report: Report) -> list[Path]:
    spec = (QUICK_COHORTS if options.quick else FULL_COHORTS)[kind]
    if options.cases:
        spec = replace(spec, cases=options.cases)
    folders = write_cohort(work / "cohorts" / kind, spec, used)
    report.seeds[kind] = [int(f.name.split("_")[1]) for f in folders]
    return folders


def _header(options: Options, bundles: list[ModelBundle], used: dict[int, str]) -> str:
    models = "\n".join(f"- `{b.id}` v{b.metadata['version']} ({b.task}), weights SHA-256 "
                       f"{b.weights_sha256[:12]}…" for b in bundles) or "- none installed"
    return (
        "# MSLesionAI benchmark\n\n"
        f"- Command: `{options.command}`\n"
        f"- Date: {time.strftime('%Y-%m-%d %H:%M %Z')}; commit {git_commit()}\n"
        f"- Machine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores "
        f"visible, torch threads {options.threads}; baselines train on "
        f"{device_description(choose_device('auto'))}; speed measured on "
        f"{' and '.join(speed.speed_devices())}\n"
        f"- Versions: mslesionai {__version__}, Python {platform.python_version()}, torch "
        f"{torch.__version__}, MONAI {monai.__version__}, SimpleITK {sitk.Version_VersionString()},"
        f" numpy {np.__version__}\n"
        f"- Training seeds excluded (read from the models' training records): {len(used)} "
        f"seeds, {sections.range_text(sorted(used))}\n\nModels:\n\n{models}\n")


def _write_results(options: Options, bundles: list[ModelBundle], used: dict[int, str],
                   report: Report) -> Path:
    figures = _plot(options.out, report)
    if report.reused:
        report.notes.append(
            f"{report.reused} case predictions were reused from {options.out / 'work'}, made "
            "by an earlier run with the same weights (work folders are named by checksum).")
    text = "\n".join([
        _header(options, bundles, used), *report.sections,
        "## Figures\n", *[f"![{path.stem}]({path.name})\n" for path in figures],
        "## Notes: what was and was not run\n",
        *[f"- {note}" for note in report.notes], ""])
    path = options.out / "RESULTS.md"
    path.write_text(text, encoding="utf-8")
    return path


def _plot(out: Path, report: Report) -> list[Path]:
    figures = []
    if report.curves:
        figures.append(plots.roc_pr_curves(report.curves, out / "rim_roc_pr.png"))
    if report.rates:
        figures.append(plots.rate_violins(report.rates, out / "per_patient_rates.png"))
    if report.volumes:
        figures.append(plots.bland_altman(report.volumes, out / "wm_volume_bland_altman.png"))
    if report.counts:
        figures.append(plots.count_scatter(report.counts, out / "lesion_counts.png"))
    return figures

