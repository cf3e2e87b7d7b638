"""`mslesionai train rim`: train a RimNet or Deep-PRL bundle on phantom rim cases.

Validation cases (``--validation``, or a seeded fifth of the ``--data`` cases) never train the
network; they choose the operating point: the threshold giving 95 % specificity, as RimNet.
Test cases must be others again (see `benchmark.rim`).
"""

from __future__ import annotations

import argparse
import time
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.losses import FocalLoss

from ..bundles import find_bundle, write_bundle
from ..devices import DEVICE_CHOICES, choose_device
from ..errors import InputError
from ..metrics.rim import TARGET_SPECIFICITY, rim_metrics, threshold_at_specificity
from ..networks import build_network
from ..pipelines.rim import classify
from ..progress import Progress
from ..rim_patches import MASK_LESIONS, PatchSpec
from ._loop import (
    fit,
    minutes_to_seconds,
    parent_record,
    phantom_data_record,
    seed_everything,
    trained_on,
    training_record,
)
from .rim_data import Batches, PatchSet, case_folders, load_patch_set
from .widen import load_widened

# Every mirror of the patch axes (S, P, L): training flips on all three, and a rim's dipolar
# phase is symmetric under each. On 16 validation cases (550 lesions) all eight beat the
# left-right pair: ROC AUC 0.930 against 0.924 (Deep-PRL v5), 0.895 against 0.892 (RimNet v5).
TEST_TIME_FLIPS = [list(axes) for count in range(4) for axes in combinations(range(3), count)]
ARCHITECTURES: dict[str, dict[str, Any]] = {
    # RimNet: phase (main branch) + FLAIR, [-1, 1], ±2-voxel shifts, 2-class cross-entropy.
    "rimnet": {"inputs": ["phase", "flair"], "value_range": (-1.0, 1.0),
               "mask_dilation_vox": 0, "shift_vox": (2, 2), "outputs": 2},
    # Deep-PRL: MP2RAGE + phase + dilated mask, [0, 1], ±2-voxel shifts, one logit. The
    # abstract shifts positives ±5 voxels to multiply them; our batches are balanced anyway,
    # and such shifts take rims away from the patch centre, the first cue a network learns:
    # Deep-PRL then stayed at chance for 1500 steps or more instead of ~500 (docs/rim.md).
    "deep_prl": {"inputs": ["mp2rage", "phase"], "value_range": (0.0, 1.0),
                 "mask_dilation_vox": 2, "shift_vox": (2, 2), "outputs": 1},
}
# Deep-PRL's loss: the abstract's focal loss (γ, α weighing rim+). `--focal-gamma 0
# --focal-alpha 0.5` gives plain (halved) cross-entropy, which left chance sooner when the
# ±5-voxel shifts still held learning back (docs/rim.md).
FOCAL_GAMMA, FOCAL_ALPHA = 2.0, 0.2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rim", help="train a rim-lesion classifier bundle")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), required=True)
    parser.add_argument("--data", nargs="+", required=True, type=Path,
                        help="phantom rim case folders or dataset folders (training)")
    parser.add_argument("--validation", nargs="+", type=Path,
                        help="validation cases (default: a seeded fifth of --data)")
    parser.add_argument("--out", required=True, type=Path, help="new bundle folder")
    parser.add_argument("--id", help="bundle id (default: the folder's name)")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--widths", type=int, nargs=3, default=(4, 8, 16),
                        help="channels of the three convolution blocks")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--spacing-mm", type=float, default=0.75,
                        help="isotropic spacing of the patch grid")
    parser.add_argument("--copies", type=int, nargs=2, default=(0, 3), metavar=("NEG", "POS"),
                        help="extra randomly rotated/scaled copies per rim− and rim+ lesion")
    parser.add_argument("--init", metavar="BUNDLE",
                        help="start from this bundle's weights (same architecture; --widths "
                             "may be a whole multiple of its widths, and the network is then "
                             "widened without changing what it computes)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop when this wall-clock budget is spent (steps done recorded)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument("--shift-vox", type=int, nargs=2, metavar=("NEG", "POS"),
                        help="largest centre shift of rim− and rim+ patches (default: the "
                             "architecture's, 2 2; the Deep-PRL abstract's is 2 5)")
    parser.add_argument("--focal-gamma", type=float, default=FOCAL_GAMMA,
                        help="Deep-PRL: focal loss γ (default the abstract's 2; 0: cross-entropy)")
    parser.add_argument("--focal-alpha", type=float, default=FOCAL_ALPHA,
                        help="Deep-PRL: weight of rim+ in the loss (default the abstract's 0.2)")
    parser.add_argument("--mask-lesions", choices=MASK_LESIONS, default="all",
                        help="Deep-PRL: what the mask channel holds: every lesion (the paper's "
                             "dilated lesion mask; default) or only the patch's own candidate, "
                             "which tells it from a lesion it touches (docs/rim.md)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    rng = seed_everything(args.seed)
    config = ARCHITECTURES[args.arch]
    args.shift_vox = tuple(args.shift_vox or config["shift_vox"])  # recorded as used
    if args.mask_lesions != "all" and not config["mask_dilation_vox"]:
        raise InputError(f"--mask-lesions: {args.arch} has no lesion-mask channel")
    training_cases, validation_cases = split_cases(args.data, args.validation, rng)
    spec = PatchSpec(spacing_mm=args.spacing_mm, value_range=config["value_range"],
                     mask_dilation_vox=config["mask_dilation_vox"], mask_lesions=args.mask_lesions)
    stored_size = spec.size_vox + 2 * max(args.shift_vox)
    train = load_patch_set(training_cases, config["inputs"], spec, stored_size,
                           tuple(args.copies), args.seed, progress.sub(0.0, 0.15))
    validation = load_patch_set(validation_cases, config["inputs"], spec, spec.size_vox, (0, 0),
                                args.seed, progress.sub(0.15, 0.2))
    network_args = {"outputs": config["outputs"], "patch_size": spec.size_vox,
                    "widths": list(args.widths)}
    network = build_network(args.arch, **network_args).to(memory_format=torch.channels_last_3d)
    parent = find_bundle(args.init, "rim", option="--init") if args.init else None
    if parent:
        load_widened(network, parent.load_state_dict(), args.seed)
    batches = Batches(train, spec, len(config["inputs"]), args.batch_size,
                      args.shift_vox, 0.5, "class" if config["outputs"] == 2 else "logit",
                      rng)
    device = choose_device(args.device)
    loss = loss_function(config["outputs"], args.focal_gamma, args.focal_alpha)
    record = fit(network, batches, loss, args.steps, args.learning_rate, device,
                 progress.sub(0.2, 0.95),
                 max_seconds=minutes_to_seconds(args.max_minutes))
    scores = classify(network, validation.patches.astype(np.float32), device, TEST_TIME_FLIPS)
    threshold = threshold_at_specificity(validation.labels, scores, TARGET_SPECIFICITY)
    metadata = bundle_metadata(args, config, spec, network_args, threshold,
                               rim_metrics(validation.labels, scores, scores >= threshold))
    if parent:
        metadata["parent"] = {**parent_record(parent),
                              "widths": parent.metadata["network"]["widths"],
                              "patches": parent.metadata["patches"]}
    metadata["training"] = training_record(
        args.seed, {"training_cases": [str(c) for c in training_cases],
                    "validation_cases": [str(c) for c in validation_cases],
                    "training": phantom_data_record(args.data, training_cases),
                    "validation": phantom_data_record(args.validation or [], validation_cases),
                    **counts("training", train), **counts("validation", validation)},
        {k: v for k, v in vars(args).items() if k not in ("func", "data", "validation", "out")},
        time.perf_counter() - started, record)
    bundle = write_bundle(args.out, metadata, network.state_dict())
    write_model_card(bundle.path, metadata)
    progress.update(1.0, "bundle written")
    print(f"rim {args.arch}: validation ROC AUC {metadata['validation']['roc_auc']:.3f}, "
          f"threshold {threshold:.3f}; bundle in {args.out}")
    return 0


def split_cases(data: list[Path], validation: list[Path] | None,
                rng: np.random.Generator) -> tuple[list[Path], list[Path]]:
    """Training and validation case folders, disjoint."""
    cases = case_folders(data)
    if validation:
        held_out = case_folders(validation, "--validation")
    else:
        order = rng.permutation(len(cases))
        held_out = [cases[i] for i in sorted(order[:max(1, len(cases) // 5)])]
    training = [c for c in cases if c.resolve() not in {h.resolve() for h in held_out}]
    if not training:
        raise InputError("--data: no training case is left after holding out validation cases")
    return training, held_out


def loss_function(outputs: int, focal_gamma: float = FOCAL_GAMMA,
                  focal_alpha: float = FOCAL_ALPHA) -> torch.nn.Module:
    """Cross-entropy for two-class logits (RimNet); for one logit (Deep-PRL) the sigmoid focal
    loss with ``focal_gamma`` and ``focal_alpha`` (the weight of rim+, 1 − α that of rim−)."""
    if outputs == 2:
        return torch.nn.CrossEntropyLoss()
    return FocalLoss(gamma=focal_gamma, alpha=focal_alpha, use_softmax=False)


def counts(name: str, data: PatchSet) -> dict[str, int]:
    return {f"{name}_lesions": int(np.count_nonzero(data.original)),
            f"{name}_rim_positive": int(np.count_nonzero(data.labels[data.original])),
            f"{name}_patches": len(data)}


def bundle_metadata(args: argparse.Namespace, config: dict[str, Any], spec: PatchSpec,
                    network_args: dict[str, Any], threshold: float,
                    validation: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": args.id or args.out.name,
        "version": args.version,
        "task": "rim",
        "architecture": args.arch,
        "network": network_args,
        "inputs": [{"name": name, "required": True} for name in config["inputs"]],
        "classes": ["rim−", "rim+"],
        "patches": spec.to_metadata(),
        "test_time_flips": TEST_TIME_FLIPS,
        "operating_point": {"threshold": threshold, "target_specificity": TARGET_SPECIFICITY,
                            "chosen_on": "validation cases"},
        "validation": validation,
    }


MASK_CHANNEL_HOLDS = {"all": "every lesion", "candidate": "the candidate lesion alone"}


def mask_channel_holds(patches: dict[str, Any]) -> str | None:
    """What a bundle's mask channel holds, as its model card says it; None without one."""
    spec = PatchSpec.from_metadata(patches)
    return MASK_CHANNEL_HOLDS[spec.mask_lesions] if spec.mask_dilation_vox else None


def derivation_line(derivation: dict[str, Any]) -> str:
    """The model card's line for a bundle made by `train rim-operating-point`."""
    source = derivation["from"]
    holds = mask_channel_holds(source["patches"])
    trained_with = f"{holds} in its mask channel" if holds else "no mask channel"
    return (f"- Weights of {source['id']} v{source['version']}, unchanged (trained with "
            f"{trained_with}); patches and operating point set by `{derivation['command']}`")


def write_model_card(folder: Path, metadata: dict[str, Any]) -> Path:
    """``MODEL_CARD.md``: what the bundle is, how it was trained, and its measured figures."""
    data, training = metadata["training"]["data"], metadata["training"]
    derivation = metadata.get("derivation")
    chosen_on = derivation["data"] if derivation else data
    holds = mask_channel_holds(metadata["patches"])
    lines = [
        f"# {metadata['id']} ({metadata['architecture']}, v{metadata['version']})", "",
        "Paramagnetic rim lesion classifier for MSLesionAI (`mslesionai rim`).", "",
        f"- Inputs (channel order): {', '.join(i['name'] for i in metadata['inputs'])}"
        + (f" + dilated mask of {holds}" if holds else ""),
        f"- Patches: {metadata['patches']['size_vox']}³ voxels of "
        f"{metadata['patches']['spacing_mm']} mm, patient-axis aligned, scaled to "
        f"{metadata['patches']['value_range']}",
        f"- Operating point: P(rim+) ≥ {metadata['operating_point']['threshold']:.4f} "
        f"({100 * metadata['operating_point']['target_specificity']:g} % specificity on "
        f"{len(chosen_on['validation_cases'])} validation cases)",
        *([derivation_line(derivation)] if derivation else []),
        f"- Trained on {len(data['training_cases'])} phantom rim cases "
        f"({data['training_lesions']} lesions, {data['training_rim_positive']} rim+), "
        f"seed {training['seed']}, {training['seconds']:.0f} s on {trained_on(training)}",
        f"- Command: `{training['command']}`",
        *([f"- Started from {metadata['parent']['id']} v{metadata['parent']['version']} "
           f"(weights SHA-256 {metadata['parent']['sha256'][:12]}…), trained with "
           f"`{metadata['parent']['command']}`"] if "parent" in metadata else []), "",
        "## Figures", "",
        "| split | lesions | rim+ | ROC AUC | PR AUC | sensitivity | specificity | F1 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split in ("validation", "test"):
        if split in metadata:
            m = metadata[split]
            lines.append(f"| {split} | {m['lesions']} | {m['rim_positive']} | "
                         f"{m['roc_auc']:.3f} | {m['pr_auc']:.3f} | {m['sensitivity']:.3f} | "
                         f"{m['specificity']:.3f} | {m['f1']:.3f} |")
    lines += ["", "Validation cases chose the operating point; test cases (if listed) were used "
              "for nothing else. Phantom data only: not validated on patients; research use.", ""]
    path = Path(folder) / "MODEL_CARD.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
