"""The benchmark's sections, one per task plus speed: run every model and baseline through
the `mslesionai` commands, score them with `mslesionai evaluate` (rim: `benchmark.rim`),
and add tables, plot data and notes to a `Report`.

Work files (predictions, evaluations, baseline bundles, speed runs) go under ``OUT/work``, in
folders named after the weights' checksum, and are reused by a later run.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..bundles import ModelBundle, inputs_text
from ..cli import main as cli_main
from ..errors import MSLesionAIError
from ..imageio import array_to_image, read_image, write_image
from ..jsonfiles import read_json
from ..phantom.dataset import MANIFEST, write_dataset
from ..progress import Progress
from ..training._loop import training_stages
from ..training.cortical_data import case_folders as cortical_case_folders
from ..training.cortical_data import case_inputs
from ..training.wm_data import case_folders as wm_case_folders
from . import baselines, speed, tables
from .cohort import (
    CALIBRATION_CASES,
    CALIBRATION_FIRST_SEED,
    FULL_COHORTS,
    QUICK_COHORTS,
    case_record,
    case_seed,
    recorded_seeds,
)
from .intervals import cortical_intervals, rim_intervals, wm_intervals
from .rim import best_on_validation, missing_fit_cases, network_scores, pipeline_scores
from .rim import evaluate as rim_evaluate

REAL_CASE = Path(__file__).resolve().parents[3] / "Resources" / "SampleData" / \
    "lesjak2017_patient07"
QUICK_BASELINE = {"steps": 2, "patch_size": 16}
BASELINE_TASKS = ("wm", "cortical")        # the tasks with a trained U-Net baseline
DEFAULT_STEPS = {"wm": 4000, "cortical": 1500}
DEFAULT_SECONDS = 1800.0
# Settings the baseline takes over from the shipped model (the 3D U-Net's patches are its own).
SAME_SETTINGS = {"wm": (), "cortical": ("patch_size", "batch_size", "learning_rate")}


@dataclass
class Options:
    """``mslesionai benchmark``'s options (see `commands.benchmark`)."""

    out: Path
    quick: bool = False
    cases: int | None = None
    skip_baselines: frozenset[str] = frozenset()   # tasks whose U-Net baseline is not trained
    models: list[Path] | None = None
    baseline_data: list[Path] | None = None
    budget: float = 1.0
    repeats: int = 3
    threads: int = 2
    command: str = "mslesionai benchmark"


@dataclass
class Report:
    """What the sections add up: markdown, plot data, and what was not run."""

    sections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rates: dict[str, tuple[list, list]] = field(default_factory=dict)
    volumes: dict[str, tuple[list, list]] = field(default_factory=dict)
    counts: dict[str, tuple[list, list]] = field(default_factory=dict)
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    speeds: dict[str, dict[str, Any]] = field(default_factory=dict)
    seeds: dict[str, list[int]] = field(default_factory=dict)
    reused: int = 0


def _cli(argv: list[str], log: Path) -> None:
    """``mslesionai ARGV`` in this process; its printed tables go to the log."""
    with open(log, "a", encoding="utf-8") as stream, redirect_stdout(stream):
        code = cli_main(["--progress", "none", *argv])
    if code:
        raise MSLesionAIError(f"mslesionai {' '.join(argv)} failed (exit {code}); see {log}")


def _evaluate(task: str, preds: list[Path], truths: list[Path], json_path: Path,
              log: Path) -> dict[str, Any]:
    """`mslesionai evaluate --json`, unless that JSON already holds these predictions."""
    pred = [str(path) for path in preds]
    if not json_path.is_file() or read_json(json_path)["pred"] != pred:
        json_path.unlink(missing_ok=True)  # stale: made for other predictions
        _cli(["evaluate", "--task", task, "--pred", *pred, "--truth", *map(str, truths),
              "--json", str(json_path)], log)
    return read_json(json_path)


def _wm_inputs(folder: Path, names: Iterable[str] = ("flair", "t1", "t2")) -> list[str]:
    return [arg for name in names if (folder / f"{name}.nii.gz").is_file()
            for arg in (f"--{name}", str(folder / f"{name}.nii.gz"))]


def _predict(folders: list[Path], out_root: Path, predict: Any, report: Report) -> list[Path]:
    """``predict(case_folder, out_folder)`` for each case not yet predicted (the others are
    counted as reused); the out folders."""
    outs = [out_root / folder.name for folder in folders]
    for folder, out in zip(folders, outs, strict=True):
        if (out / "done").is_file():
            report.reused += 1
            continue
        predict(folder, out)
        (out / "done").touch()
    return outs


def _write_lesions(lesion_ids: np.ndarray, reference: sitk.Image, out: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_image(array_to_image(lesion_ids.astype(np.uint16), reference), out / name)


def _name(bundle: ModelBundle) -> str:
    """A method's name in the tables; a bundle chosen for some inputs only is run with them,
    and says so."""
    chosen_for = bundle.chosen_for_inputs
    only = f" ({inputs_text(chosen_for)} only)" if chosen_for else ""
    return f"{bundle.id} v{bundle.metadata['version']}{only}"


def work_key(bundle: ModelBundle) -> str:
    """A work folder name that changes when the weights do."""
    return f"{_slug(bundle.id)}-{bundle.weights_sha256[:8]}"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in name).strip("_")


def range_text(seeds: list[int]) -> str:
    return f"{min(seeds)}–{max(seeds)}" if seeds else "none"


def _wm_methods(bundles: list[ModelBundle], options: Options, work: Path, report: Report,
                progress: Progress) -> dict[str, tuple[str, Any]]:
    """Method name → (work folder key, predict(case folder, out folder)) for white matter."""
    log = work / "log.txt"
    methods: dict[str, tuple[str, Any]] = {
        _name(b): (work_key(b), lambda folder, out, b=b: _cli(
            ["wm", *_wm_inputs(folder, b.measured_inputs), "--model", str(b.path),
             "--device", "cpu", "--out", str(out)], log)) for b in bundles}
    training_cases = _baseline_cases("wm", bundles, options, work, report)
    calibration = _realistic_first(training_cases)[:CALIBRATION_CASES]
    percentile = baselines.calibrate_flair_threshold(calibration)

    def naive(folder: Path, out: Path) -> None:
        flair = read_image(folder / "flair.nii.gz", "flair")
        _write_lesions(baselines.flair_threshold_lesions(flair, percentile), flair, out,
                       "wm_lesions.nii.gz")

    names = ", ".join(case.name for case in calibration)
    report.notes.append(
        f"White matter: FLAIR threshold at the {percentile:g}th percentile of the foreground, "
        f"chosen for the best mean Dice on {len(calibration)} training cases ({names}), never "
        "the test cohort.")
    methods[f"FLAIR threshold (> P{percentile:g})"] = (f"flair-p{percentile:g}", naive)
    if "wm" in options.skip_baselines:
        report.notes.append("White matter: 3D U-Net baseline skipped (--skip-baselines).")
        return methods
    unet = baselines.train_unet3d(training_cases, baselines.wm_plan(), **_budget(
        "wm", bundles, options, work / "baselines", report), progress=progress)
    _note_training_time(unet, report)

    def unet3d(folder: Path, out: Path) -> None:
        contrasts = {name: read_image(folder / f"{name}.nii.gz", name)
                     for name in ("flair", "t1", "t2") if (folder / f"{name}.nii.gz").is_file()}
        _write_lesions(baselines.unet3d_lesions(unet, contrasts), contrasts["flair"], out,
                       "wm_lesions.nii.gz")

    return {**methods, "3D U-Net (MONAI DynUNet, nnU-Net-style)": (work_key(unet), unet3d)}


def _baseline_cases(kind: str, bundles: list[ModelBundle], options: Options, work: Path,
                    report: Report) -> list[Path]:
    """The shipped model's own training cases (its recorded folders, else their copies under
    ``--baseline-data``), else a generated calibration cohort."""
    if bundles and not options.quick:
        data = bundles[0].metadata["training"]["data"]
        cases = _recorded_cases(kind, data)
        where = "recorded folders"
        if not cases and options.baseline_data:
            cases, where = _copies_of(kind, recorded_seeds(data), options.baseline_data), \
                "copies under --baseline-data"
        if cases:
            report.notes.append(f"{kind} baselines drawn from {len(cases)} of "
                                f"{bundles[0].id}'s {data.get('cases', '?')} training cases "
                                f"({where}).")
            return cases
    spec = (QUICK_COHORTS if options.quick else FULL_COHORTS)[kind]
    folder, count = work / "calibration" / kind, 2 if options.quick else CALIBRATION_CASES
    if not (folder / MANIFEST).is_file():
        write_dataset(folder, count, CALIBRATION_FIRST_SEED[kind], kind, mode=spec.mode,
                      spacing_mm=spec.spacing_mm, crop_mm=spec.crop_mm)
    cases = sorted(p.parent for p in folder.glob("*/case.json"))
    report.notes.append(f"{kind} baselines drawn from {len(cases)} phantom cases generated by "
                        f"phantom-dataset (seeds {CALIBRATION_FIRST_SEED[kind]}…); no shipped "
                        "model's training cases found.")
    return cases


def _recorded_cases(kind: str, data: dict[str, Any]) -> list[Path]:
    if kind == "wm":
        cases = wm_case_folders([Path(d) for d in data.get("datasets", []) if Path(d).is_dir()])
    else:
        cases = cortical_case_folders([Path(d) for d in data.get("folders", [])
                                       if Path(d).is_dir()])
    if "seeds" in data:  # the recorded cases only, not every case in their folders
        cases = [case for case in cases if case_seed(case) in set(data["seeds"])]
    return cases


def _copies_of(kind: str, seeds: set[int], folders: list[Path]) -> list[Path]:
    """The phantom cases of ``kind`` with these seeds anywhere under ``folders`` (the generator
    is deterministic: `mslesionai phantom-dataset --seed S --kind K --mode M` remakes a case)."""
    found = {}
    for folder in folders:
        for case_json in sorted(folder.glob("**/case.json")):
            record = case_record(case_json.parent)
            if record.get("kind") == kind and record["seed"] in seeds:
                found.setdefault(record["seed"], case_json.parent)
    return [found[seed] for seed in sorted(found)]


def _realistic_first(cases: list[Path]) -> list[Path]:
    """Realistic phantom cases before domain-randomised ones (a threshold is calibrated on
    intensities, which randomised cases scramble on purpose)."""
    return sorted(cases, key=lambda case: case_record(case).get("mode") != "realistic")


def _note_training_time(baseline: ModelBundle, report: Report) -> None:
    training = baseline.metadata["training"]
    report.notes.append(f"{baseline.id} trained {training['steps_done']} steps in "
                        f"{training['seconds']:.0f} s on {_device_text(training)}.")


def _device_text(stage: dict[str, Any]) -> str:
    """E.g. "cpu (1 torch thread)", "cuda (NVIDIA H100 80GB HBM3)"; older records name no
    threads, or no device."""
    device = stage.get("device") or "an unrecorded device"
    threads = stage.get("threads")
    if device == "cpu" and threads:
        return f"cpu ({threads} torch thread{'s' if threads > 1 else ''})"
    return device


def _budget(kind: str, bundles: list[ModelBundle], options: Options, folder: Path,
            report: Report) -> dict[str, Any]:
    """The baseline's limits: ``--budget`` × the shipped model's training seconds, every stage
    of its chain counted (a model continued from another one cost both), and at most as many
    steps in all; the cache folder."""
    if options.quick:
        settings = dict(QUICK_BASELINE)
        report.notes.append(f"{kind} baseline U-Net: {settings} (--quick).")
    else:
        metadata = bundles[0].metadata if bundles else {}
        stages = training_stages(metadata) if metadata else []
        seconds = sum(stage["seconds"] or 0.0 for stage in stages) or DEFAULT_SECONDS
        steps = sum(stage["steps_done"] or 0 for stage in stages) or DEFAULT_STEPS[kind]
        shipped = metadata.get("training", {}).get("settings", {})
        settings = {"steps": steps, "seconds": round(seconds * options.budget),
                    **{key: shipped[key] for key in SAME_SETTINGS[kind] if key in shipped}}
        report.notes.append(f"{kind} baseline U-Net: at most {settings}: {options.budget:g} × "
                            f"{_stages_text(stages) if stages else 'a default budget'}.")
    name = "-".join(f"{k}{v}" for k, v in settings.items())
    return {**settings, "out": folder / f"{kind}-{name}"}


def _stages_text(stages: list[dict[str, Any]]) -> str:
    """E.g. "the shipped model's 2370 s of training in 3 stage(s): 789 s on cpu, 1261 s on
    cpu, 320 s on cuda (…)", first stage first."""
    parts = [f"{stage['seconds']:.0f} s on {_device_text(stage)}"
             if stage["seconds"] is not None else "one stage of unrecorded time"
             for stage in reversed(stages)]
    total = sum(stage["seconds"] or 0.0 for stage in stages)
    return (f"the shipped model's {total:.0f} s of training in {len(stages)} stage(s): "
            + ", ".join(parts))


def wm_section(by_task: dict[str, list[ModelBundle]], cohorts: dict[str, list[Path]],
                options: Options, work: Path, report: Report, progress: Progress) -> None:
    bundles = by_task.get("wm", [])
    if "wm" not in cohorts:
        report.notes.append("White matter: no wm model installed and baselines skipped.")
        return
    if not bundles:
        report.notes.append("White matter: no wm model installed; baselines only.")
    methods = _wm_methods(bundles, options, work, report, progress.sub(0.0, 0.5))
    cohort = cohorts["wm"]
    reports, real = {}, {}
    for number, (name, (key, predict)) in enumerate(methods.items()):
        progress.update(0.5 + 0.5 * number / len(methods), f"white matter: {name}")
        outs = _predict(cohort, work / "wm" / key, predict, report)
        reports[name] = _evaluate("wm", outs, cohort, work / "wm" / f"{key}.json",
                                  work / "log.txt")
        if not options.quick:
            real_out = _predict([REAL_CASE], work / "wm_real" / key, predict, report)
            real[name] = _evaluate("wm", real_out, [REAL_CASE / "wm_lesions_gt.nii.gz"],
                                   work / "wm_real" / f"{key}.json", work / "log.txt")
        cases = reports[name]["cases"]
        report.rates[f"WM {name}"] = ([c["ltpr"] for c in cases], [c["lfpr"] for c in cases])
        report.volumes[name] = ([c["truth_volume_ul"] for c in cases],
                                [c["pred_volume_ul"] for c in cases])
        report.counts[f"WM {name}"] = ([c["truth_lesions"] for c in cases],
                                       [c["pred_lesions"] for c in cases])
    report.sections.append(
        "## White-matter lesions (DeepSCAN's Table 2 shape)\n\n"
        f"Held-out phantom cohort, {len(cohort)} cases (seeds {range_text(report.seeds['wm'])}), "
        "every method without a brain mask; means over cases. MSSEG-2016 lesion detection "
        "(18-connectivity, lesions ≥ 3 µL, α 10 %, β 70 %, γ 65 %).\n\n"
        + tables.wm_table(reports, "phantom, held out") + "\n"
        + tables.interval_table({name: wm_intervals(r) for name, r in reports.items()}))
    if real:
        report.sections.append(
            "### Real case: lesjak2017 patient 07 (ONE case, consensus of three raters)\n\n"
            + tables.wm_table(real, "real, 1 case"))
    else:
        report.notes.append("White matter: the real case is not run in --quick.")


def cortical_section(by_task: dict[str, list[ModelBundle]], cohorts: dict[str, list[Path]],
                      options: Options, work: Path, report: Report, progress: Progress) -> None:
    bundles = list(by_task.get("cortical", []))
    if "cortical" not in cohorts:
        report.notes.append("Cortical: no cortical model installed and baselines skipped.")
        return
    if not bundles:
        report.notes.append("Cortical: no cortical model installed; baselines only.")
    if "cortical" in options.skip_baselines:
        report.notes.append("Cortical: plain U-Net baseline skipped (--skip-baselines).")
    else:
        cases = _baseline_cases("cortical", bundles, options, work, report)
        plain = baselines.train_plain_cortical(cases, **_budget(
            "cortical", bundles, options, work / "baselines", report),
            progress=progress.sub(0.0, 0.5))
        _note_training_time(plain, report)
        bundles.append(plain)
    cohort = cohorts["cortical"]
    reports = {}
    for bundle in bundles:
        name, key = _name(bundle), work_key(bundle)

        def predict(folder: Path, out: Path, bundle: ModelBundle = bundle) -> None:
            _cli([*_cortical_argv(folder, bundle), "--model", str(bundle.path), "--device",
                  "cpu", "--out", str(out)], work / "log.txt")

        outs = _predict(cohort, work / "cortical" / key, predict, report)
        reports[name] = _evaluate("cortical", outs, cohort, work / "cortical" / f"{key}.json",
                                  work / "log.txt")
        per_case = reports[name]["by_min_volume"][0]["per_case"]
        report.rates[f"cortical {name}"] = ([c["ltpr"] for c in per_case],
                                            [c["lfpr"] for c in per_case])
        report.counts[f"cortical {name}"] = ([c["truth_lesions"] for c in per_case],
                                             [c["pred_lesions"] for c in per_case])
    if reports:
        report.sections.append(
            "## Cortical lesions (CLAIMS's Table 1 shape)\n\n"
            f"Held-out phantom cohort, {len(cohort)} cases (seeds "
            f"{range_text(report.seeds['cortical'])}), at each minimum lesion volume. Lesion-wise "
            "rates pool all lesions; patient-wise ones are medians over cases.\n\n"
            + tables.cortical_table(reports) + "\nAt the smallest minimum volume. "
            + tables.interval_table({name: cortical_intervals(r["by_min_volume"][0])
                                     for name, r in reports.items()}))


def _cortical_argv(folder: Path, bundle: ModelBundle) -> list[str]:
    """``cortical`` and the case's files for the bundle's inputs."""
    inputs = case_inputs(folder, bundle.input_names).contrasts()
    return ["cortical", *[arg for name, path in inputs.items()
                          for arg in (f"--{name.replace('_', '-')}", str(path))]]


def rim_baseline_note(bundle: ModelBundle, missing: list[Path]) -> str:
    """What the rim baselines were fitted on, or why they were not run."""
    if missing:
        return (f"Rim: naive rim score and logistic regression not run: they are fitted on "
                f"{bundle.id}'s training and validation cases, and {len(missing)} of them are "
                f"not on this machine (e.g. {missing[0]}; docs/rim.md shows how to make them).")
    data = bundle.metadata["training"]["data"]
    return (f"Rim: naive rim score and logistic regression fitted on {bundle.id}'s "
            f"{len(data['training_cases'])} training cases and thresholded on its "
            f"{len(data['validation_cases'])} validation cases (95 % specificity).")


def rim_section(by_task: dict[str, list[ModelBundle]], cohorts: dict[str, list[Path]],
                 options: Options, work: Path, report: Report, progress: Progress) -> None:
    bundles = by_task.get("rim", [])
    if not bundles:
        report.notes.append("Rim: no rim model installed; the rim baselines need one's "
                            "training cases, so nothing was run.")
        return
    cohort = cohorts["rim"]
    results, curves, intervals = {}, {}, {}

    def add(name: str, scores: list, labels: list, threshold: float) -> None:
        results[name] = rim_evaluate(scores, labels, threshold)
        intervals[name] = rim_intervals(scores, labels, threshold)

    for bundle in bundles:
        scores, labels, _ = network_scores(bundle, cohort)
        add(bundle.id, scores, labels, bundle.metadata["operating_point"]["threshold"])
        curves[bundle.id] = (scores, labels)
    missing = missing_fit_cases(bundles[0])
    report.notes.append(rim_baseline_note(bundles[0], missing))
    if not missing:
        for name, (scores, labels, threshold) in baselines.rim_baselines(bundles[0],
                                                                         cohort).items():
            add(name, scores, labels, threshold)
            curves[name] = (scores, labels)
    best = best_on_validation(bundles)
    scores, labels, _ = pipeline_scores(best, cohort)
    add(f"{best.id}, whole pipeline (candidates)", scores, labels,
        best.metadata["operating_point"]["threshold"])
    report.curves = {name: (np.concatenate(labels), np.concatenate(scores))
                     for name, (scores, labels) in curves.items()}
    report.sections.append(
        "## Paramagnetic rim lesions (RimNet's Table 3 / Deep-PRL's comparison shape)\n\n"
        f"Held-out phantom cohort, {len(cohort)} cases (seeds {range_text(report.seeds['rim'])}); "
        "lesion-wise on the truth lesions ≥ 12.3 µL, operating points fixed on validation "
        "cases (95 % specificity), patient-wise accuracy of the ≥ 4 PRL rule. The whole "
        "pipeline row starts from the binary truth mask (candidates, automatic splitting).\n\n"
        + tables.rim_table(results) + "\n" + tables.interval_table(intervals))
    progress.update(1.0, "rim done")


def speed_section(by_task: dict[str, list[ModelBundle]], cohorts: dict[str, list[Path]],
                   options: Options, work: Path, report: Report, progress: Progress) -> None:
    if options.repeats < 1:
        report.notes.append("Speed: not measured (--repeats 0).")
        return
    runs = {}
    if by_task.get("wm"):
        wm_case = REAL_CASE if not options.quick else cohorts["wm"][0]
        runs["wm"] = (wm_case, by_task["wm"][0], ["wm", *_wm_inputs(wm_case)])
    if by_task.get("cortical"):
        folder, bundle = cohorts["cortical"][0], by_task["cortical"][0]
        runs["cortical"] = (folder, bundle, _cortical_argv(folder, bundle))
    for bundle in by_task.get("rim", []):
        folder = cohorts["rim"][0]
        runs[f"rim {bundle.id}"] = (folder, bundle, [
            "rim", *[arg for name in bundle.input_names
                     for arg in (f"--{name}", str(folder / f"{name}.nii.gz"))],
            "--lesion-mask", str(folder / "truth" / "wm_lesions.nii.gz")])
    timings = [(name, device) for name in runs for device in speed.speed_devices()]
    for number, (name, device) in enumerate(timings):
        case, bundle, argv = runs[name]
        row = name if device == "cpu" else f"{name} on {device}"
        progress.update(number / len(timings), f"speed: {row}")
        summary = speed.measure([*argv, "--model", str(bundle.path), "--device", device],
                                work / "speed" / _slug(row), options.repeats, options.threads)
        report.speeds[row] = {**summary, "case": case.name}
    if report.speeds:
        report.sections.append(
            f"## Speed and memory ({options.threads} torch threads on the CPU; rows marked "
            "\"on cuda\" ran on the GPU)\n\n"
            f"Medians over {options.repeats} runs of the `mslesionai` command, each in its own "
            "process, timed after the library's imports (last column); stages from "
            "summary.json, `read + write` is the rest of the command (reading, checks, writing "
            "the files). Network forward: time inside the network's own calls. Peak memory: "
            "the process's maximum resident set (imports included).\n\n"
            + tables.speed_table(report.speeds))


