"""`mslesionai train cortical`: train CLAIMS's U-Net on annotated cortical cases; fine-tuning.

The bundle's metadata is the plan (inputs, spacing, normalisation, patch, classes, scoring) and
the training data go through the pipeline's own preprocessing, so inference replays what
training saw. The loss is CLAIMS's: focal loss (γ = 2) over background, leukocortical and
intracortical/subpial, with white-matter lesion voxels weighted 0. Fine-tuning (CLAIMS's domain
adaptation) retrains every layer from a bundle's weights with a smaller learning rate and writes
a new bundle whose version is bumped and whose parent is recorded. With ``--eval``, held-out
cases go through the whole pipeline and CLAIMS's metrics are printed and stored in the bundle.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from monai.losses import FocalLoss
from monai.networks import one_hot

from ..bundles import ModelBundle, find_bundle, update_metadata, write_bundle
from ..devices import choose_device
from ..errors import InputError
from ..imageio import read_image
from ..labels import CORTICAL_CLASSES, CORTICAL_FAMILY, CORTICAL_TYPES
from ..metrics.cortical import MIN_VOLUMES_UL, CorticalCase, evaluate_cortical
from ..networks import build_network, load_network
from ..pipelines import cortical as pipeline
from ..preprocessing import ZSCORE_CLIP_PERCENTILES
from ..progress import Progress
from ..results import read_table_csv
from ..timing import StageTimer
from ._loop import (
    fit,
    found_cases,
    minutes_to_seconds,
    parent_record,
    phantom_seeds,
    seed_everything,
    training_record,
)
from ._parallel import add_device_options, batch_source, map_in_processes
from .cortical_data import (
    LESION_CENTRED,
    LESION_SAMPLING,
    PatchSampler,
    case_folders,
    case_inputs,
    load_case,
)
from .new_inputs import load_with_new_inputs

NAME_PATTERNS = {"mp2rage": ["*mp2rage*", "*MP2RAGE*", "*UNI*", "*uni*"],
                 "t2star_gre": ["*t2star*", "*T2star*", "*T2s*", "*gre*", "*GRE*"],
                 "t2star_epi": ["*epi*", "*EPI*"]}
SPACING_MM = (0.5, 0.5, 0.5)
FINETUNE_LEARNING_RATE = 0.5e-4     # CLAIMS's domain adaptation
# Low candidates too: a model trained at a lower lesion-class weight is less sure of lesions
# (weight 25: validation F1 within 0.01 of its best from 0.05 to 0.8, docs/cortical.md).
THRESHOLD_CANDIDATES = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95,
                        0.98)


class MaskedFocalLoss:
    """Softmax focal loss per voxel, weighted, plus an optional soft Dice of the two lesion
    classes over the batch: targets (B, 2, …) hold the class labels and the voxel weights, and
    both terms see only weighted voxels, so weight-0 voxels contribute nothing."""

    def __init__(self, gamma: float = 2.0, lesion_weight: float = 1.0,
                 dice_weight: float = 0.0) -> None:
        self.focal = FocalLoss(to_onehot_y=True, use_softmax=True, gamma=gamma,
                               weight=[1.0] + [lesion_weight] * len(CORTICAL_CLASSES),
                               reduction="none")
        self.dice_weight = dice_weight

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        labels, weights = targets[:, :1].long(), targets[:, 1:]
        per_voxel = self.focal(logits, labels).sum(dim=1, keepdim=True)
        loss = (per_voxel * weights).sum() / weights.sum().clamp_min(1.0)
        if self.dice_weight:
            predicted = torch.softmax(logits, dim=1)[:, 1:] * weights
            truth = one_hot(labels, logits.shape[1])[:, 1:] * weights
            dims = (0, *range(2, logits.ndim))
            dice = (2 * (predicted * truth).sum(dims) + 1) / (predicted.sum(dims)
                                                               + truth.sum(dims) + 1)
            loss = loss + self.dice_weight * (1 - dice).mean()
        return loss


class Bfloat16Autocast(torch.nn.Module):
    """Runs a network under bfloat16 autocast on a CPU or CUDA device (on the CPU about 1.5
    times faster with AMX or AVX-512 BF16; elsewhere in float32); its outputs, the loss and
    the weights stay float32."""

    def __init__(self, network: torch.nn.Module, device: torch.device) -> None:
        super().__init__()
        self.network, self.device_type = network, device.type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.device_type not in ("cpu", "cuda"):
            return self.network(x)
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return self.network(x).float()


def add_training_options(parser: argparse.ArgumentParser, steps: int,
                         learning_rate: float) -> None:
    """Options shared by training and fine-tuning."""
    parser.add_argument("--out", required=True, type=Path, help="new bundle folder")
    parser.add_argument("--validation", nargs="*", default=[], type=Path,
                        help="validation case or dataset folders: the score threshold is "
                             "chosen on them after training")
    parser.add_argument("--eval", nargs="*", default=[], type=Path,
                        help="held-out case or dataset folders, measured after training")
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--patch-size", type=int, default=32,
                        help="training patch side in voxels (CLAIMS: 96; a multiple of 8)")
    parser.add_argument("--learning-rate", type=float, default=learning_rate)
    parser.add_argument("--lesion-weight", type=float, default=None,
                        help="focal-loss weight of the two lesion classes (background 1; "
                             "default: the parent model's, 1 for a new one)")
    parser.add_argument("--dice-weight", type=float, default=1.0,
                        help="weight of the lesion-class soft Dice added to the focal loss "
                             "(0: CLAIMS's focal loss alone)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch (1 is fastest on a busy machine)")
    add_device_options(parser)
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop when this wall-clock budget is spent (steps done recorded)")
    parser.add_argument("--lesion-centred", type=float, default=LESION_CENTRED,
                        help="fraction of patches centred on a lesion voxel (the rest "
                             "anywhere in the image: they teach what is not a lesion)")
    parser.add_argument("--lesion-sampling", choices=LESION_SAMPLING, default="voxel",
                        help="centre of a lesion-centred patch: any lesion voxel, or a voxel "
                             "of a lesion type drawn first (each type as often, however small)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cortical", help="cortical lesions, two classes (CLAIMS)")
    parser.add_argument("--data", nargs="+", required=True, type=Path,
                        help="case or dataset folders (mp2rage.nii.gz, truth/ per case)")
    add_training_options(parser, steps=1500, learning_rate=0.5e-3)
    parser.add_argument("--init", metavar="BUNDLE",
                        help="start from this bundle's weights (same network settings; it "
                             "may read fewer contrasts: the new ones start unused)")
    parser.add_argument("--id", default="cortical-claims")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--t2star", action="store_true",
                        help="add the optional T2* GRE input (trained with sequence dropout)")
    parser.add_argument("--t2star-epi", action="store_true",
                        help="add the optional T2* EPI input (trained with sequence dropout; "
                             "case file t2star_epi.nii.gz)")
    parser.set_defaults(func=run)


def plan(args: argparse.Namespace) -> dict[str, Any]:
    """Everything inference must know, before any weights exist."""
    inputs = ["mp2rage", *(["t2star_gre"] if args.t2star else []),
              *(["t2star_epi"] if args.t2star_epi else [])]
    return {
        "id": args.id, "version": args.version, "task": "cortical",
        "architecture": "claims_unet",
        "title": "Cortical lesions, leukocortical and intracortical/subpial (CLAIMS, 7 T)",
        "network": {"in_channels": len(inputs), "out_channels": 1 + len(CORTICAL_CLASSES),
                    "features": [16, 32, 64, 128]},
        "inputs": [{"name": name, "required": name == "mp2rage",
                    "name_patterns": NAME_PATTERNS[name]} for name in inputs],
        "classes": ["background", *CORTICAL_CLASSES],
        "spacing_mm": list(SPACING_MM),
        "orientation": "axis-aligned LPS grid over the MP2RAGE's field of view",
        "normalisation": {"method": "zscore", "mask": "non-zero voxels",
                          "clip_percentiles": list(ZSCORE_CLIP_PERCENTILES),
                          "missing_contrast": "zeros"},
        "patch_size": [args.patch_size] * 3,
        "inference": {"roi_size": [64, 64, 64], "overlap": 0.25, "batch_size": 2,
                      "blending": "gaussian"},
        "postprocessing": {"threshold": 0.5, "score": "p(lesion) = 1 - p(background)",
                           "connectivity": pipeline.CONNECTIVITY,
                           "min_volume_choices_ul": list(pipeline.MIN_VOLUME_CHOICES_UL)},
    }


def inherited_lesion_weight(parent: ModelBundle | None) -> float:
    """The lesion-class weight a continued or fine-tuned model keeps from its parent: the
    weight sets how sure the network is of rare lesion voxels, which the parent's threshold
    was chosen for (1 for a new model or a parent that records none)."""
    metadata = parent.metadata if parent else {}
    record = metadata.get("fine_tuning") or metadata.get("training") or {}
    return float(record.get("settings", {}).get("lesion_class_weight", 1.0))


def train_network(network: torch.nn.Module, metadata: dict[str, Any], folders: list[Path],
                  args: argparse.Namespace, progress: Progress,
                  parent: ModelBundle | None = None) -> dict[str, Any]:
    """Fit ``network`` on the case folders; the ``training`` record of the bundle."""
    lesion_weight = (inherited_lesion_weight(parent) if args.lesion_weight is None
                     else args.lesion_weight)
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    started = time.time()
    names = [spec["name"] for spec in metadata["inputs"]]
    cases = map_in_processes(load_case, args.workers, folders, [names] * len(folders),
                             [tuple(metadata["spacing_mm"])] * len(folders))
    progress.update(0.05, f"{len(cases)} cases loaded")
    next_batch = batch_source(
        lambda seed: partial(PatchSampler(cases, args.patch_size, args.batch_size, seed,
                                          args.lesion_centred, args.lesion_sampling), 0),
        args.seed, args.workers)
    device = choose_device(args.device)
    loss = MaskedFocalLoss(lesion_weight=lesion_weight, dice_weight=args.dice_weight)
    record = fit(Bfloat16Autocast(network, device), next_batch, loss, args.steps,
                 args.learning_rate, device, progress.sub(0.05, 1.0),
                 max_seconds=minutes_to_seconds(args.max_minutes))
    # Absolute folders and the phantom seeds: the benchmark keeps its held-out cases clear of
    # them, from any working directory.
    data = {"cases": len(cases), "folders": sorted({str(f.parent.resolve()) for f in folders}),
            "seeds": phantom_seeds(folders),
            "cortical_lesion_voxels": int(sum(len(c.lesion_voxels) for c in cases))}
    settings = {"steps": args.steps, "batch_size": args.batch_size,
                "patch_size": args.patch_size, "learning_rate": args.learning_rate,
                "loss": "focal, gamma 2, white-matter lesion voxels weighted 0",
                "lesion_class_weight": lesion_weight, "dice_weight": args.dice_weight,
                "lesion_centred_fraction": args.lesion_centred,
                "lesion_sampling": args.lesion_sampling,
                "optimiser": "Adam, polynomial decay", "precision": "bfloat16 autocast"}
    return training_record(args.seed, data, settings, time.time() - started, record)


def initialise_prior(network: torch.nn.Module, lesion_prior: float = 0.01) -> None:
    """Start from "every voxel is background with probability 1 − 2 · prior": the rare-class
    bias initialisation of the focal-loss paper (Lin et al. 2017), without which the first
    hundreds of steps only unlearn the uniform output."""
    prior = torch.tensor([1 - len(CORTICAL_CLASSES) * lesion_prior]
                         + [lesion_prior] * len(CORTICAL_CLASSES))
    with torch.no_grad():
        network.head.bias.copy_(prior.log())


def found_case_folders(roots_by_option: dict[str, list[Path] | None]) -> list[list[Path]]:
    """The case folders under each option's folders, in order; an option given without any
    case is refused, by name, before any work."""
    return [found_cases(option, roots, case_folders(roots or []), "mp2rage.nii.gz")
            for option, roots in roots_by_option.items()]


def run(args: argparse.Namespace, progress: Progress) -> int:
    metadata = plan(args)
    folders, validation, held_out = found_case_folders(
        {"--data": args.data, "--validation": args.validation, "--eval": args.eval})
    input_names = [spec["name"] for spec in metadata["inputs"]]
    check_optional_inputs_present(folders, input_names)
    network = build_network(metadata["architecture"], **metadata["network"])
    parent = find_bundle(args.init, "cortical", option="--init") if args.init else None
    if parent:
        load_with_new_inputs(network, parent.load_state_dict(), parent.input_names,
                             input_names)
        metadata["parent"] = parent_record(parent)
    else:
        initialise_prior(network)
    record = train_network(network, metadata, folders, args, progress.sub(0.0, 0.9), parent)
    bundle = write_bundle(args.out, {**metadata, "training": record}, network.state_dict())
    print(f"cortical model {bundle.id} v{bundle.metadata['version']} written to {args.out}")
    stage = progress.sub(0.9, 1.0).stages(["threshold", "held_out"])
    if validation:
        bundle = calibrate(bundle, validation, args.device, stage["threshold"])
    if held_out:
        record_metrics(bundle, "held_out",
                       evaluate_bundle(bundle, held_out, stage["held_out"], args.device))
    return 0


def check_optional_inputs_present(folders: list[Path], input_names: list[str]) -> None:
    """Refuse to train an input that no training case has: the model would list a contrast it
    never saw (a phantom.7 case folder, for one, has no ``t2star_epi.nii.gz``)."""
    given = set().union(*(case_inputs(folder, input_names).contrasts() for folder in folders))
    unseen = [name for name in input_names if name not in given]
    if unseen:
        raise InputError(f"--data: no training case has {', '.join(unseen)} "
                         f"({', '.join(f'{name}.nii.gz' for name in unseen)})")


def bumped_version(version: str) -> str:
    """``1.0.0`` → ``1.1.0``: a fine-tuned model is a new minor version of its parent."""
    parts = version.split(".")
    if len(parts) < 2 or not parts[1].isdigit():
        return f"{version}.1"
    return ".".join([parts[0], str(int(parts[1]) + 1), *["0"] * len(parts[2:])])


def finetune(parent: ModelBundle, folders: list[Path], args: argparse.Namespace,
             progress: Progress) -> ModelBundle:
    """Retrain all layers of ``parent`` on a new site's cases; a new, versioned bundle."""
    network = load_network(parent, torch.device("cpu"))
    record = train_network(network, parent.metadata, folders, args, progress, parent)
    base_id = parent.metadata.get("parent", {}).get("id", parent.id)
    metadata = {key: value for key, value in parent.metadata.items()
                if key not in ("files", "metrics")}
    metadata.update({"id": args.id or f"{base_id}-finetuned",
                     "version": bumped_version(parent.metadata["version"]),
                     "parent": parent_record(parent),
                     "fine_tuning": record,
                     "postprocessing": inherited_postprocessing(parent)})
    return write_bundle(args.out, metadata, network.state_dict())


def inherited_postprocessing(parent: ModelBundle) -> dict[str, Any]:
    """The parent's post-processing, its threshold marked as the parent's: the record of the
    cases that chose it (``threshold_selection``) is dropped, as they were another model's,
    often another site's; `calibrate` on the new site's cases replaces the mark."""
    post = {key: value for key, value in parent.metadata["postprocessing"].items()
            if key != "threshold_selection"}
    post["threshold_source"] = f"parent {parent.id} v{parent.metadata['version']}"
    return post


def truth_case(folder: Path, pred_ids: np.ndarray, pred_classes: dict[int, str],
               spacing_mm_zyx: tuple[float, ...]) -> CorticalCase:
    """A case folder's truth (on the MP2RAGE's grid) beside a prediction, for the metrics."""
    truth_ids = sitk.GetArrayFromImage(read_image(folder / "truth" / "cortical_lesions.nii.gz",
                                                  "truth"))
    wm_path = folder / "truth" / "wm_lesions.nii.gz"
    types = {int(row["lesion_id"]): row["type"]
             for row in read_table_csv(folder / "truth" / "lesions.csv")
             if row["family"] == CORTICAL_FAMILY and row["type"] in CORTICAL_TYPES}
    return CorticalCase(
        truth_ids=truth_ids, truth_types=types, pred_ids=pred_ids, pred_classes=pred_classes,
        spacing_mm=spacing_mm_zyx,
        wm_mask=sitk.GetArrayFromImage(read_image(wm_path, "wm")) if wm_path.is_file() else None,
        name=folder.name)


def evaluate_bundle(bundle: ModelBundle, folders: list[Path], progress: Progress | None = None,
                    device: str = "cpu") -> list[dict[str, Any]]:
    """CLAIMS's metrics of the whole pipeline on annotated cases, per minimum lesion volume
    (the pipeline keeps everything ≥ 1 µL; the metrics apply the larger minimums)."""
    progress = progress or Progress()
    cases, seconds = [], []
    for number, folder in enumerate(folders):
        started = time.time()
        result = pipeline.run(case_inputs(folder, bundle.input_names), bundle,
                              pipeline.CorticalOptions(device=device),
                              progress.sub(number / len(folders), (number + 1) / len(folders)))
        seconds.append(time.time() - started)
        cases.append(truth_case(folder, result.lesion_ids,
                                {row["lesion_id"]: row["class"] for row in result.rows},
                                result.reference.GetSpacing()[::-1]))
    metrics = evaluate_cortical(cases, MIN_VOLUMES_UL)
    for entry in metrics:
        entry["median_seconds_per_case"] = float(np.median(seconds))
    return metrics


def lesion_f1(metrics: dict[str, Any]) -> float:
    """Harmonic mean of LTPR and 1 − LFPR (0 when nothing is predicted)."""
    precision = 0.0 if np.isnan(metrics["lfpr"]) else 1.0 - metrics["lfpr"]
    recall = metrics["ltpr"]
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def choose_threshold(bundle: ModelBundle, folders: list[Path], device_name: str = "cpu",
                     progress: Progress | None = None) -> dict[str, Any]:
    """The operating point, chosen on validation cases (never the test cases): the score
    threshold with the best lesion-wise F1 at 1 µL. Focal loss leaves probabilities less
    confident than cross-entropy and the added Dice more, so CLAIMS's 0.5 is one candidate
    among lower and higher ones. A whole-brain case takes minutes on a CPU: ``progress``
    follows them (and lets them be cancelled)."""
    device = choose_device(device_name)
    network = load_network(bundle, device)
    progress = progress or Progress()
    maps = []
    for number, folder in enumerate(folders):
        progress.update(number / len(folders),
                        f"choosing the threshold: validation case {number + 1} of {len(folders)}")
        images, _ = pipeline.load_contrasts(case_inputs(folder, bundle.input_names),
                                              warnings=[])
        case_progress = progress.sub(number / len(folders), (number + 1) / len(folders))
        maps.append((folder, images["mp2rage"].GetSpacing()[::-1],
                     pipeline.uni_noise(images["mp2rage"], []),
                     *pipeline.lesion_probabilities(images, network, bundle, device, [],
                                                    case_progress, StageTimer())))
    f1_by_threshold = {}
    for threshold in THRESHOLD_CANDIDATES:
        cases = []
        for folder, spacing, background, leuko, intra in maps:
            lesions = pipeline.find_lesions(leuko, intra, spacing, 1.0, threshold,
                                            background=background)
            cases.append(truth_case(folder, lesions.lesion_ids,
                                    dict(enumerate(lesions.classes, start=1)), spacing))
        f1_by_threshold[threshold] = round(lesion_f1(evaluate_cortical(cases, (1.0,))[0]), 4)
    best = max(f1_by_threshold, key=lambda t: (f1_by_threshold[t], t))
    return {"threshold": best, "validation_cases": [f.name for f in folders],
            "f1_by_threshold": {str(t): f1 for t, f1 in f1_by_threshold.items()}}


def calibrate(bundle: ModelBundle, folders: list[Path], device_name: str = "cpu",
              progress: Progress | None = None) -> ModelBundle:
    """Set the bundle's score threshold from validation cases; the bundle reloaded."""
    selection = choose_threshold(bundle, folders, device_name, progress)
    print(f"operating point: score ≥ {selection['threshold']} "
          f"(validation F1 by threshold {selection['f1_by_threshold']})")
    post = {key: value for key, value in bundle.metadata["postprocessing"].items()
            if key != "threshold_source"}
    post.update(threshold=selection["threshold"], threshold_selection=selection)
    return update_metadata(bundle, postprocessing=post)


def headline(metrics: list[dict[str, Any]]) -> str:
    """One line per minimum volume: the figures CLAIMS reports."""
    keys = ("ltpr", "lfpr", "median_case_ltpr", "median_case_lfpr", "ltpr_leukocortical",
            "ltpr_intracortical", "ltpr_subpial", "classification_accuracy", "kappa",
            "median_dice", "count_ccc")
    return "\n".join(f"≥{m['min_volume_ul']:g} µL: truth {m['truth_lesions']} pred "
                     f"{m['pred_lesions']} " + " ".join(f"{k} {m.get(k, float('nan')):.3f}"
                                                        for k in keys) for m in metrics)


def record_metrics(bundle: ModelBundle, name: str, metrics: list[dict[str, Any]],
                   store: bool = True) -> None:
    """Print the figures and store them (without per-case rows, NaN as null) in the bundle's
    metadata."""
    print(f"{bundle.id} v{bundle.metadata['version']} on {name}:\n{headline(metrics)}")
    if store:
        compact = [{k: None if isinstance(v, float) and np.isnan(v) else v
                    for k, v in m.items() if k != "per_case"} for m in metrics]
        update_metadata(bundle, metrics={**bundle.metadata.get("metrics", {}), name: compact})
