"""`mslesionai train wm`: train the DeepSCAN-style white-matter model on phantom datasets.

The bundle's metadata is written first as the plan (inputs, spacing, normalisation, slice
stack, classes, thresholds) and the training data are prepared through that same plan
(`pipelines.wm.prepare_inputs`), so inference replays what training saw. With ``--eval``, the
finished bundle is run through the whole pipeline on held-out cases and their Dice, lesion F1
and brain-mask Dice are recorded in the metadata.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from monai.losses import DiceLoss

from ..argtypes import probability
from ..bundles import (
    ModelBundle,
    check_chosen_for,
    find_bundle,
    inputs_text,
    load_bundle,
    update_metadata,
    write_bundle,
)
from ..devices import DEVICE_CHOICES, choose_device
from ..imageio import read_image
from ..labels import TISSUE_COLORS, TISSUE_NAMES, WM_LESION_SEGMENT, Tissue
from ..metrics.msseg import wm_metrics
from ..metrics.overlap import dice
from ..networks import build_network
from ..pipelines import wm as wm_pipeline
from ..preprocessing import ZSCORE_CLIP_PERCENTILES
from ..progress import Progress
from ._loop import (
    fit,
    found_cases,
    minutes_to_seconds,
    parent_record,
    phantom_data_record,
    seed_everything,
    trained_on,
    training_record,
)
from ._parallel import add_device_options, batch_source
from .wm_data import (
    CONTRAST_DROPOUT,
    LESION_CENTRED,
    MIMIC_CENTRED,
    MIMIC_PERCENTILE,
    SliceSampler,
    augmentation_record,
    case_folders,
    load_cases,
)

NAME_PATTERNS = {"flair": ["*flair*", "*FLAIR*", "*Flair*"],
                 "t1": ["*t1*", "*T1*", "*mprage*", "*MPRAGE*"],
                 "t2": ["*t2*", "*T2*"]}
TISSUE_LOSS_WEIGHT = 0.5


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("wm", help="white-matter lesions + tissue (DeepSCAN-style)")
    parser.add_argument("--data", nargs="+", required=True, type=Path,
                        help="phantom dataset folders (case folders with flair.nii.gz, truth/)")
    parser.add_argument("--out", required=True, type=Path, help="new bundle folder")
    parser.add_argument("--eval", nargs="*", default=[], type=Path,
                        help="held-out dataset folders, measured after training")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop", type=int, default=96, help="in-plane crop size (voxels)")
    parser.add_argument("--slices", type=int, default=5, help="slices per stack (odd)")
    parser.add_argument("--features", default="8,16,24,32,48,8",
                        help="BasicUNet features per level (six numbers)")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--contrast-dropout", type=probability, default=CONTRAST_DROPOUT,
                        metavar="P", help="chance of dropping each of T1 and T2 from a training "
                        "sample (default %(default)s; FLAIR alone in P² of the samples)")
    parser.add_argument("--chosen-for-inputs", nargs="+", choices=tuple(NAME_PATTERNS),
                        metavar="NAME", help="the automatic model choice takes this bundle only "
                        "when exactly these contrasts are given, and then before a general one "
                        "(e.g. flair: a FLAIR-only model); it is measured with them too")
    parser.add_argument("--bias-correction", action="store_true",
                        help="N4 bias-field correction of every contrast before normalisation "
                             "(recorded in the bundle, so inference does the same)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    add_device_options(parser)
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop early when this wall-clock budget is spent (the steps done "
                             "are recorded; a shared, loaded machine makes step times vary)")
    parser.add_argument("--init", metavar="BUNDLE",
                        help="start from this bundle's weights (same network settings)")
    parser.add_argument("--id", default="wm-deepscan")
    parser.add_argument("--version", default="1.0.0")
    parser.set_defaults(func=run)
    register_measure(subparsers)


def plan(args: argparse.Namespace) -> dict[str, Any]:
    """Everything inference must know, before any weights exist."""
    lesion_name, lesion_color = WM_LESION_SEGMENT
    return {
        "id": args.id, "version": args.version, "task": "wm", "architecture": "deepscan",
        "title": "White-matter lesions and brain tissue (DeepSCAN-style 3D-to-2D)",
        "network": {"contrasts": 3, "slices": args.slices, "tissue_classes": len(Tissue),
                    "features": [int(f) for f in args.features.split(",")]},
        "inputs": [{"name": name, "required": name == "flair", "name_patterns": patterns}
                   for name, patterns in NAME_PATTERNS.items()],
        "spacing_mm": [1.0, 1.0, 1.0],
        "orientation": "axis-aligned LPS grid over FLAIR's field of view, cropped to the brain",
        "normalisation": {"method": "zscore", "mask": "brain mask, else intensity foreground",
                          "clip_percentiles": list(ZSCORE_CLIP_PERCENTILES),
                          "missing_contrast": "zeros"},
        "bias_correction": args.bias_correction,
        "inference": {"axes": [0, 1, 2], "mirror": True},
        "classes": {"lesion": {"name": lesion_name, "color": list(lesion_color),
                               "value": int(wm_pipeline.LESION_VALUE)},
                    "tissue": [{"value": int(t), "name": TISSUE_NAMES[t],
                                "color": list(TISSUE_COLORS[t])} for t in TISSUE_NAMES]},
        "thresholds": {"lesion_probability": 0.5},
        **({"chosen_for_inputs": args.chosen_for_inputs} if args.chosen_for_inputs else {}),
    }


def loss_function() -> Any:
    """Lesion: binary cross-entropy + soft Dice over the batch; tissue: cross-entropy."""
    lesion_dice = DiceLoss(sigmoid=True, batch=True)
    bce = torch.nn.BCEWithLogitsLoss()
    cross_entropy = torch.nn.CrossEntropyLoss()

    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        lesion = targets[:, :1]
        tissue = targets[:, 1].long()
        return (bce(logits[:, :1], lesion) + lesion_dice(logits[:, :1], lesion)
                + TISSUE_LOSS_WEIGHT * cross_entropy(logits[:, 1:], tissue))

    return loss


def run(args: argparse.Namespace, progress: Progress) -> int:
    torch.set_num_threads(args.threads)
    rng = seed_everything(args.seed)
    metadata = plan(args)
    check_chosen_for(ModelBundle(args.out, metadata))   # before hours of training, not after
    folders = found_cases("--data", args.data, case_folders(args.data), "flair.nii.gz")
    eval_folders = found_cases("--eval", args.eval, case_folders(args.eval or []),
                               "flair.nii.gz")
    progress.update(0.0, f"preparing {len(folders)} training cases")
    cases = load_cases(folders, metadata, rng, args.workers)
    next_batch = batch_source(
        lambda seed: partial(SliceSampler(cases, args.slices, args.crop, seed,
                                          args.contrast_dropout).batch,
                             args.batch_size), args.seed, args.workers)
    device = choose_device(args.device)
    network = build_network("deepscan", **metadata["network"])
    if args.init:
        parent = find_bundle(args.init, "wm", option="--init")
        network.load_state_dict(parent.load_state_dict())
        metadata["parent"] = parent_record(parent)
    start = time.perf_counter()
    record = fit(network, next_batch, loss_function(), args.steps, args.learning_rate, device,
                 progress.sub(0.05, 0.9),
                 max_seconds=minutes_to_seconds(args.max_minutes))
    settings = {k: v for k, v in vars(args).items() if k not in ("func", "data", "out", "eval")}
    settings["sample_centres"] = {"lesion": LESION_CENTRED, "bright_white_matter": MIMIC_CENTRED,
                                  "bright_percentile": MIMIC_PERCENTILE}
    settings["augmentation"] = augmentation_record(args.contrast_dropout)
    metadata["training"] = training_record(args.seed, phantom_data_record(args.data, folders),
                                           settings, time.perf_counter() - start, record)
    if eval_folders:
        with tempfile.TemporaryDirectory() as scratch:
            draft = write_bundle(Path(scratch) / "draft", metadata, network.state_dict())
            metadata["metrics"] = {"heldout_phantom": evaluate(
                draft, eval_folders, progress.sub(0.9, 1.0), device)}
    bundle = write_bundle(args.out, metadata, network.state_dict())
    (bundle.path / "MODEL_CARD.md").write_text(model_card(bundle.metadata), encoding="utf-8")
    print(f"wrote {bundle.path} ({bundle.weights_sha256[:12]}…)")
    return 0


def truth_file(folder: Path) -> Path:
    """A phantom case's truth/wm_lesions.nii.gz, or a real case's wm_lesions_gt.nii.gz."""
    phantom = folder / "truth" / "wm_lesions.nii.gz"
    return phantom if phantom.is_file() else folder / "wm_lesions_gt.nii.gz"


def read_case(folder: Path, bundle: ModelBundle) -> tuple[dict[str, sitk.Image], np.ndarray]:
    """A measured case's contrasts (those of the bundle's measured inputs the folder has) and
    its truth lesion mask."""
    images = {name: read_image(folder / f"{name}.nii.gz", name)
              for name in ("flair", "t1", "t2")
              if name in bundle.measured_inputs and (folder / f"{name}.nii.gz").is_file()}
    return images, sitk.GetArrayFromImage(read_image(truth_file(folder), "truth")) > 0


def evaluate_case(bundle: ModelBundle, folder: Path, device: torch.device) -> dict[str, float]:
    """The whole pipeline on one case without a brain mask (the default path): lesion Dice,
    MSSEG-2016 F1, and the estimated brain mask's Dice where the truth has one."""
    images, truth = read_case(folder, bundle)
    start = time.perf_counter()
    result = wm_pipeline.run(images["flair"], images.get("t1"), images.get("t2"),
                             bundle=bundle, device=device)
    seconds = time.perf_counter() - start
    scores = wm_metrics(truth, result.lesion_ids > 0, images["flair"].GetSpacing()[::-1])
    measured = {key: scores[key] for key in ("dice", "f1", "sensitivity", "precision",
                                             "truth_lesions", "pred_lesions")}
    if (folder / "brainmask.nii.gz").is_file():
        brain = sitk.GetArrayFromImage(read_image(folder / "brainmask.nii.gz", "brainmask"))
        measured["brain_mask_dice"] = dice(brain > 0, result.extra_images["wm_tissue"] > 0)
    return {**measured, "seconds": round(seconds, 1)}


def evaluate(bundle: ModelBundle, folders: list[Path], progress: Progress,
             device: torch.device) -> dict[str, Any]:
    """Per-case figures and their means (the papers average Dice and F1 over cases)."""
    per_case = {}
    for number, folder in enumerate(folders):
        per_case[folder.name] = evaluate_case(bundle, folder, device)
        progress.update((number + 1) / len(folders), f"evaluated {folder.name}")
    keys = next(iter(per_case.values())).keys()
    means = {key: round(float(np.mean([c[key] for c in per_case.values()])), 4) for key in keys}
    return {"cases": [str(f) for f in folders], "mean": means, "per_case": per_case}


def register_measure(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "wm-measure", help="measure a white-matter bundle on held-out phantoms and real cases",
        description="Runs the whole pipeline (no brain mask given) and records Dice, MSSEG-2016 "
                    "lesion F1, brain-mask Dice and time in the bundle's metadata and model "
                    "card; the weights (and their checksum) are not touched.")
    parser.add_argument("--bundle", required=True, type=Path)
    parser.add_argument("--phantom", nargs="*", default=[], type=Path,
                        help="held-out phantom dataset folders (seeds never trained on)")
    parser.add_argument("--real", nargs="*", default=[], type=Path,
                        help="real case folders (flair/t1/t2.nii.gz + wm_lesions_gt.nii.gz)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.set_defaults(func=measure)


def measure(args: argparse.Namespace, progress: Progress) -> int:
    bundle = load_bundle(args.bundle)
    device = choose_device(args.device)
    metrics = dict(bundle.metadata.get("metrics", {}))
    if args.phantom:
        metrics["heldout_phantom"] = evaluate(bundle, case_folders(args.phantom),
                                              progress.sub(0.0, 0.8), device)
    if args.real:
        metrics["real"] = evaluate(bundle, list(args.real), progress.sub(0.8, 1.0), device)
    metadata = update_metadata(bundle, metrics=metrics).metadata
    (bundle.path / "MODEL_CARD.md").write_text(model_card(metadata), encoding="utf-8")
    print(json.dumps({k: v["mean"] for k, v in metrics.items()}, indent=2))
    return 0


def parent_lines(metadata: dict[str, Any]) -> list[str]:
    """The model card's line on the weights training started from, if any."""
    if "parent" not in metadata:
        return []
    parent = metadata["parent"]
    return [f"- Started from {parent['id']} v{parent['version']} (weights SHA-256 "
            f"{parent['sha256'][:12]}…), itself trained with `{parent['command']}`"]


def threshold_lines(metadata: dict[str, Any]) -> list[str]:
    """The model card's line on where the lesion threshold came from."""
    threshold = metadata["thresholds"]["lesion_probability"]
    choice = metadata.get("threshold_choice")
    if choice is None:
        return [f"- Lesion probability threshold {threshold} (the default, not tuned)."]
    return [f"- Lesion probability threshold {threshold}, chosen on {len(choice['cases'])} "
            f"validation phantom cases (never trained on, not test): best {choice['criterion']} "
            "(`mslesionai train wm-threshold`)."]


def chosen_for_lines(chosen_for: list[str] | None) -> list[str]:
    """The model card's line on the inputs a bundle is chosen for, if it names them."""
    if not chosen_for:
        return []
    verb = "is" if len(chosen_for) == 1 else "are"
    return [f"- Chosen automatically only when {inputs_text(chosen_for)} alone {verb} given "
            "(`chosen_for_inputs`); measured and tuned with only those contrasts."]


def model_card(metadata: dict[str, Any]) -> str:
    training = metadata["training"]
    chosen_for = metadata.get("chosen_for_inputs")
    measured_on = f", {inputs_text(chosen_for)} only" if chosen_for else ""
    augmentation = training["settings"].get("augmentation")
    dropout = (augmentation["contrast_dropout"] if augmentation  # v1.3 predates the record
               else f"{CONTRAST_DROPOUT} (the default then; not recorded)")
    lines = [
        f"# {metadata['id']} v{metadata['version']}", "",
        metadata["title"], "",
        "## What it does",
        "FLAIR (required), T1 and T2 (optional) in; white-matter-lesion probability and six "
        "tissue classes out. A 2D MONAI BasicUNet sees a stack of "
        f"{metadata['network']['slices']} neighbouring slices of each contrast and labels the "
        "central slice; it runs along the axial, coronal and sagittal axes and on a left-right "
        "mirrored copy, logits averaged (McKinley et al., Sci. Rep. 2021); with FLAIR voxels "
        "coarser than 2:1 the passes in the acquisition plane weigh more (docs/wm.md, Thick "
        "slices). Uncertainty: the standard deviation of the six passes' lesion "
        "probabilities.", "",
        "Bias field: " + ("N4-corrected inside the normalisation mask before the z-score, in "
                          "training and at inference." if metadata["bias_correction"] else
                          "not corrected (the training augmentation varies it)."), "",
        "## Training",
        f"- Command: `{training['command']}`",
        *parent_lines(metadata),
        f"- Seed {training['seed']}, {training['data']['cases']} synthetic phantom cases "
        f"(seeds {training['data'].get('seeds', 'not recorded')}) "
        f"({', '.join(training['data']['datasets'])}), {training['seconds']:.0f} s on "
        f"{trained_on(training)} (torch {training['torch']}, commit {training['commit']}).",
        "- Augmentation: in-plane affine, left-right flip, per-contrast intensity scale/shift, "
        "gamma, bias field, blur (also across slices), noise; T1 and T2 each dropped with chance "
        f"{dropout}; half of the cases "
        "normalised without their brain mask.",
        *chosen_for_lines(chosen_for),
        *([f"- {metadata['note']}"] if "note" in metadata else []),
        "- No real scan was used for training or tuning.",
        *threshold_lines(metadata), "",
        f"## Measured (whole pipeline, no brain mask given{measured_on}; means over cases)",
    ]
    groups = metadata.get("metrics", {})
    lines += [f"- {group}: " + ", ".join(f"{k} {v}" for k, v in figures["mean"].items())
              for group, figures in groups.items()] or ["- not measured"]
    lines += ["", "## Limits",
              "Trained on synthetic phantoms only; see docs/wm.md for the real-case figures "
              "and the known failure modes."]
    return "\n".join(lines) + "\n"
